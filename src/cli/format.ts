/**
 * Output of the `cairn` command: tables for people, JSON for scripts. Stored values are user data:
 * in tables, control characters are shown escaped, so a workflow name or output cannot move the
 * cursor or recolour the terminal.
 */

/** A value as plain JSON: errors as their fields, Maps and Sets as objects and arrays, bigints as strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, replacer, 2);
}

function replacer(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  if (value instanceof Error) {
    const fields: Record<string, unknown> = { name: value.name, message: value.message };
    for (const [k, v] of Object.entries(value)) if (k !== 'stack') fields[k] = v;
    return fields;
  }
  return value;
}

/** Control characters as escapes, so stored text cannot drive the terminal. */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** A short one-line rendering of a stored value for a table cell. */
export function summary(value: unknown, max = 60): string {
  if (value === undefined) return '';
  const text = value instanceof Error ? `${value.name}: ${value.message}` : typeof value === 'string' ? value : JSON.stringify(value, replacer);
  const line = printable(text ?? String(value));
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

export function time(d: Date | null | undefined): string {
  return d ? d.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z') : '';
}

/** How long ago, to the second: "4s", "3m 20s", "2h 5m", "3d 4h". */
export function age(d: Date, now = Date.now()): string {
  let s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  const units: Array<[string, number]> = [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]];
  const parts: string[] = [];
  for (const [unit, size] of units) {
    if (s >= size || (unit === 's' && parts.length === 0)) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

/** Rows under a header, each column as wide as its widest cell. */
export function table(header: string[], rows: string[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => printable(c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

/** `key: value` lines, keys aligned. */
export function fields(pairs: Array<[string, string]>): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${printable(v)}`).join('\n');
}
