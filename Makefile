# Developers' entry points. `make demo` and `make test` are the two quick-start commands.
SHELL := /bin/bash
NODEJS ?= node
NPX ?= npx

.PHONY: all install build native native-clean test demo demo-relay bench bench-verify bench-ingest bench-proxy bench-outage bench-network bench-byzantine bench-fanout clean typecheck

all: build

node_modules: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

install: node_modules

build: node_modules
	$(NPX) tsc -b

## Optional: the libsecp256k1 N-API verifier (relay/native/secp256k1). Needs a C compiler and Debian's
## libsecp256k1-dev (>= 0.2, with the schnorrsig module). The relay falls back to the WASM pool when it is not built.
# node-gyp ships inside npm; headers come from the running node's prefix when they are installed there
# (Debian's nodejs puts them in /usr/include/node), otherwise node-gyp fetches the matching ones.
NODE_GYP ?= $(NODEJS) $(shell npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js
NODE_PREFIX := $(shell $(NODEJS) -p "require('path').resolve(process.execPath, '../..')")
NODE_GYP_DIR_FLAG := $(if $(wildcard $(NODE_PREFIX)/include/node/node_api.h),--nodedir=$(NODE_PREFIX))

native:
	@test -f /usr/include/secp256k1_schnorrsig.h || { echo "native: /usr/include/secp256k1_schnorrsig.h missing (apt-get install libsecp256k1-dev)" >&2; exit 1; }
	$(NODE_GYP) rebuild -C relay/native/secp256k1 $(NODE_GYP_DIR_FLAG)

native-clean:
	rm -rf relay/native/secp256k1/build

typecheck: node_modules
	$(NPX) tsc -b
	$(NPX) tsc -p test --noEmit

## The tap suite, against the local PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379).
test: build
	$(NPX) tap

## Start a local cluster, run every chaos profile as an experiment, print the table and write the report, stop.
demo: build
	$(NODEJS) cluster/dist/cli/chaos.js demo

## The single-relay walk-through: start one relay, publish and read back signed events, stop.
demo-relay: build
	$(NPX) tsx scripts/demo.ts

## Benchmarks print figures (with a baseline measured in the same run); they are not tests.
bench: bench-verify bench-ingest bench-proxy bench-outage bench-network bench-byzantine bench-fanout

## native libsecp256k1 (when built) vs tiny-secp256k1 (WASM) vs @noble/secp256k1, per core, with the load average.
bench-verify: build
	$(NPX) tsx bench/verify/index.ts

bench-ingest: build
	$(NPX) tsx bench/ingest/index.ts

bench-proxy: build
	$(NPX) tsx bench/proxy/index.ts

bench-outage: build
	$(NPX) tsx bench/outage/index.ts

bench-network: build
	$(NPX) tsx bench/network/index.ts

# ARGS='--only req-flood,peer-forged --seconds 5' picks attacks (npx tsx bench/byzantine/index.ts --help lists them).
bench-byzantine: build
	$(NPX) tsx bench/byzantine/index.ts $(ARGS)

## 10,000 connections with 2 live subscriptions each under 1,000 events/s: fan-out p50/p99 and relay RSS, next to a 100-connection baseline.
bench-fanout: build
	$(NPX) tsx bench/fanout/index.ts

clean:
	$(NPX) tsc -b --clean

# ==== Local cluster and chaos targets (cluster/**, docs/OPERATIONS.md) =========================================
# make up [NODES=3]             private PostgreSQL + Redis, relays a..e each behind its own sidecar, a supervisor
# make status | down [KEEP=1] | logs [NODE=a] [COMPONENT=sidecar] [LINES=50]
# make console [CONSOLE_PORT=7700]  the SRE console of the running cluster (prints the URL to open)
# make chaos-partition [SHAPE=isolate|halves|bridge|majorities-ring|groups] [GROUPS=a,b/c] [TARGET=a] [ONE_WAY=1]
# make chaos-db-outage | chaos-redis-outage | chaos-latency | chaos-flaky | chaos-byzantine [NODES_ONLY=a]
# make chaos-crash [NODE=a] | chaos-reset | chaos-run PROFILE=partition [SHAPE=...] [HOLD=15s] [RATE=200]
CLUSTER_DIR ?= .cluster
NODES ?= 2
CLUSTER_TSC = ./node_modules/.bin/tsc -b cluster
CLUSTER_CLI = node cluster/dist/cli/cluster.js --dir $(CLUSTER_DIR)
CHAOS_CLI = node cluster/dist/cli/chaos.js --dir $(CLUSTER_DIR)
# NODE also names the node binary above (and npm exports NODE=/path/to/node): such values mean no node was chosen.
CLUSTER_NODE = $(if $(findstring /,$(NODE)),,$(filter-out node,$(NODE)))
CHAOS_ONLY = $(if $(NODES_ONLY),--nodes $(NODES_ONLY))

.PHONY: up down status logs console chaos-partition chaos-db-outage chaos-redis-outage chaos-latency chaos-flaky chaos-byzantine chaos-crash chaos-reset chaos-run

up: build
	@$(CLUSTER_TSC)
	@$(CLUSTER_CLI) up --nodes $(NODES)

down:
	@$(CLUSTER_TSC)
	@$(CLUSTER_CLI) down $(if $(KEEP),--keep)

status:
	@$(CLUSTER_TSC)
	@$(CLUSTER_CLI) status

logs:
	@$(CLUSTER_TSC)
	@$(CLUSTER_CLI) logs $(CLUSTER_NODE) $(if $(COMPONENT),--component $(COMPONENT)) $(if $(LINES),--lines $(LINES))

CONSOLE_PORT ?= 7700
console:
	@$(CLUSTER_TSC)
	@node cluster/dist/cli/console.js --dir $(CLUSTER_DIR) --port $(CONSOLE_PORT)

chaos-partition:
	@$(CLUSTER_TSC)
	@$(CHAOS_CLI) partition $(if $(SHAPE),--shape $(SHAPE)) $(if $(GROUPS),--groups $(GROUPS)) $(if $(TARGET),--node $(TARGET)) $(if $(ONE_WAY),--one-way) $(if $(DURATION),--duration $(DURATION))

chaos-db-outage:
	@$(CLUSTER_TSC)
	@$(CHAOS_CLI) apply db-outage $(CHAOS_ONLY)

chaos-redis-outage:
	@$(CLUSTER_TSC)
	@$(CHAOS_CLI) apply redis-outage $(CHAOS_ONLY)

chaos-latency:
	@$(CLUSTER_TSC)
	@$(CHAOS_CLI) apply latency $(CHAOS_ONLY)

chaos-flaky:
	@$(CLUSTER_TSC)
	@$(CHAOS_CLI) apply flaky-network $(CHAOS_ONLY)

chaos-byzantine:
	@$(CLUSTER_TSC)
	@$(CHAOS_CLI) apply byzantine $(CHAOS_ONLY)

chaos-crash:
	@$(CLUSTER_TSC)
	@$(CHAOS_CLI) crash $(or $(CLUSTER_NODE),a)

chaos-reset:
	@$(CLUSTER_TSC)
	@$(CHAOS_CLI) reset

chaos-run:
	@$(CLUSTER_TSC)
	@$(CHAOS_CLI) run $(or $(PROFILE),partition) $(if $(SHAPE),--shape $(SHAPE)) $(if $(GROUPS),--groups $(GROUPS)) $(if $(HOLD),--hold $(HOLD)) $(if $(RATE),--rate $(RATE)) $(if $(NODES_ONLY),--nodes $(NODES_ONLY))
# ==== end of local cluster and chaos targets ====================================================================
