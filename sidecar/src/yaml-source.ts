/**
 * YAML with positions: validation errors name the file, the line and the
 * field ("chaos-profiles/x.yaml:12: steps[0].faults[1].delay.latency: ...").
 */
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document, type Node } from 'yaml';

export type Path = Array<string | number>;

export class ValidationError extends Error {
  constructor(readonly file: string, readonly line: number, readonly field: string, readonly reason: string) {
    super(`${file}:${line}: ${field ? `${field}: ` : ''}${reason}`);
  }
}

export function formatPath(path: Path): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${p}` : p;
  return s;
}

/** Profiles and configs are small; bounds checked before the parser sees the text (it recurses, and OOMed on depth). */
export const MAX_YAML_BYTES = 256 * 1024;
const MAX_YAML_DEPTH = 64;

/** Rejects text whose nesting (indentation, compact "- - -" sequences, or flow [ { ) is deeper than any real file's. */
function checkShape(text: string, file: string): void {
  if (Buffer.byteLength(text) > MAX_YAML_BYTES) throw new ValidationError(file, 1, '', `YAML over ${MAX_YAML_BYTES} bytes`);
  const lines = text.split('\n');
  let flow = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const m = /^( *)((?:- +)*)/.exec(line)!;
    const dashes = m[2]!.split('-').length - 1;
    if (m[1]!.length > MAX_YAML_DEPTH * 4 || dashes > MAX_YAML_DEPTH) throw new ValidationError(file, i + 1, '', `YAML nested deeper than ${MAX_YAML_DEPTH} levels`);
    let quote = '';
    for (const ch of line) {
      if (quote) {
        if (ch === quote) quote = '';
      } else if (ch === '"' || ch === "'") quote = ch;
      else if (ch === '#') break;
      else if (ch === '[' || ch === '{') {
        if (++flow > MAX_YAML_DEPTH) throw new ValidationError(file, i + 1, '', `YAML nested deeper than ${MAX_YAML_DEPTH} levels`);
      } else if (ch === ']' || ch === '}') flow = Math.max(0, flow - 1);
    }
  }
}

export class YamlSource {
  private constructor(readonly file: string, private readonly doc: Document, private readonly lines: LineCounter) {}

  static parse(text: string, file: string): YamlSource {
    checkShape(text, file);
    const lines = new LineCounter();
    let doc: Document;
    try {
      doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    } catch (err) {
      throw new ValidationError(file, 1, '', `invalid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
    const err = doc.errors[0];
    if (err) {
      const line = lines.linePos(err.pos[0]).line;
      throw new ValidationError(file, line, '', `invalid YAML: ${err.message.split('\n')[0]}`);
    }
    return new YamlSource(file, doc, lines);
  }

  value(): unknown {
    try {
      // Alias bombs (billion laughs) stop at the library's alias budget.
      return this.doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      throw new ValidationError(this.file, 1, '', `invalid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
  }

  /** Line of the node at path, or of its nearest ancestor that exists. */
  lineOf(path: Path): number {
    for (let n = path.length; n >= 0; n--) {
      const node = (n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n), true)) as Node | null | undefined;
      if (node && typeof node === 'object' && 'range' in node && node.range) return this.lines.linePos(node.range[0]).line;
    }
    return 1;
  }

  /** Line of a key inside the map at path (for unknown-key errors). */
  keyLine(path: Path, key: string): number {
    const map = path.length === 0 ? this.doc.contents : this.doc.getIn(path, true);
    if (isMap(map)) {
      for (const item of map.items) {
        if (isPair(item) && isScalar(item.key) && String(item.key.value) === key && item.key.range) {
          return this.lines.linePos(item.key.range[0]).line;
        }
      }
    }
    return this.lineOf(path);
  }

  fail(path: Path, reason: string): never {
    throw new ValidationError(this.file, this.lineOf(path), formatPath(path), reason);
  }

  /** Check a mapping: it must be an object whose keys are all known. */
  object(path: Path, v: unknown, known: readonly string[]): Record<string, unknown> {
    if (!v || typeof v !== 'object' || Array.isArray(v)) this.fail(path, 'expected a mapping');
    for (const key of Object.keys(v as object)) {
      if (!known.includes(key)) {
        throw new ValidationError(this.file, this.keyLine(path, key), formatPath([...path, key]), `unknown key (known: ${known.join(', ')})`);
      }
    }
    return v as Record<string, unknown>;
  }

  /** Run a parser and turn its exception into an error at path. */
  check<T>(path: Path, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof ValidationError) throw err;
      this.fail(path, (err as Error).message);
    }
  }
}
