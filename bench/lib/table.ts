/** Plain-text tables, so benchmark output reads the same in a terminal and in a CI log. */

export type Cell = string | number;

/** Formats a number with a fixed number of decimals and thousands separators; strings pass through. */
export function fmt(value: Cell, decimals = 0): string {
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return '-';
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** Prints `rows` under `title` with columns aligned; numbers are right-aligned. */
export function printTable(title: string, rows: Array<Record<string, Cell>>, out: (line: string) => void = console.log): void {
  out('');
  out(title);
  if (rows.length === 0) {
    out('  (no rows)');
    return;
  }
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const text = rows.map((r) => columns.map((c) => (r[c] === undefined ? '' : typeof r[c] === 'number' ? fmt(r[c] as number, Number.isInteger(r[c]) ? 0 : 1) : String(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...text.map((row) => row[i]!.length)));
  const numeric = columns.map((c) => rows.every((r) => r[c] === undefined || typeof r[c] === 'number' || /^[\d,.\-]+$/.test(String(r[c]))));
  const line = (cells: string[]) => '  ' + cells.map((cell, i) => (numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!))).join('  ');
  out(line(columns));
  out(line(widths.map((w) => '-'.repeat(w))));
  for (const row of text) out(line(row));
}
