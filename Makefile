# Developers' entry points. `make demo` and `make test` are the two quick-start commands.
SHELL := /bin/bash
NODE ?= node
NPX ?= npx

.PHONY: all install build test demo bench bench-ingest bench-proxy clean typecheck

all: build

node_modules: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

install: node_modules

build: node_modules
	$(NPX) tsc -b

typecheck: node_modules
	$(NPX) tsc -b
	$(NPX) tsc -p test --noEmit

## The tap suite, against the local PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379).
test: build
	$(NPX) tap

## Start a relay, publish and read back signed events, print what happened, stop.
demo: build
	$(NPX) tsx scripts/demo.ts

bench: bench-ingest bench-proxy

bench-ingest: build
	$(NPX) tsx bench/ingest/index.ts

bench-proxy: build
	$(NPX) tsx bench/proxy/index.ts

clean:
	$(NPX) tsc -b --clean
