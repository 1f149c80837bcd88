/** Parsing the `cairn` command's option values: bad ones are usage errors (exit code 2). */

/** Bad usage: exit code 2. */
export class UsageError extends Error {}

/** The database and schema from the options or the environment. */
export function target(g: { database?: string; schema?: string }): { database: string; schema?: string } {
  const database = g.database ?? process.env.CAIRN_DATABASE_URL ?? process.env.DATABASE_URL;
  if (!database) throw new UsageError('no database: pass --database <url>, or set CAIRN_DATABASE_URL or DATABASE_URL');
  return { database, ...(g.schema !== undefined && { schema: g.schema }) };
}

export function count(flag: string, text: string): number {
  if (!/^[1-9]\d{0,8}$/.test(text)) throw new UsageError(`${flag} must be a positive whole number, got '${text}'`);
  return Number(text);
}

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration such as 90s, 15m, 1h or 7d, in ms; undefined when `text` is not one. */
export function duration(text: string): number | undefined {
  const m = /^(\d{1,9})([smhd])$/.exec(text);
  return m ? Number(m[1]) * UNITS[m[2]!]! : undefined;
}

/** An ISO time, or a duration ago ("90s", "15m", "1h", "7d"). */
export function instant(flag: string, text: string): Date {
  const ago = duration(text);
  if (ago !== undefined) return new Date(Date.now() - ago);
  const at = /^\d{4}-\d{2}-\d{2}/.test(text) ? new Date(text) : new Date(NaN);
  if (Number.isNaN(at.getTime())) throw new UsageError(`${flag} must be an ISO time (2026-01-31T12:00:00Z) or a duration ago (30m, 1h, 7d), got '${text}'`);
  return at;
}

/** A TCP port from 0 (any free one) to 65535. */
export function port(flag: string, text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65_535) throw new UsageError(`${flag} must be a port from 0 to 65535, got '${text}'`);
  return Number(text);
}
