import { CairnError, DatabaseConnectionError, ERROR_CODES } from '../engine/errors.js';

/**
 * Which database failures pass by themselves. One place for both providers: the engine asks the
 * provider (`Provider.isTransient`), never the driver's error codes directly.
 */

/** Socket-level codes Node gives a connection that was refused, dropped or could not be routed. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EAI_AGAIN', 'ECONNABORTED']);

/**
 * Postgres SQLSTATEs that pass: admin/crash shutdown and "starting up" (57P01-57P03), too many
 * connections (53300), serialization failure (40001) and deadlock (40P01). Class 08 (connection
 * exceptions) is matched by prefix.
 */
const POSTGRES_TRANSIENT_STATES = new Set(['57P01', '57P02', '57P03', '53300', '40001', '40P01']);

/** What node-postgres says, without a code, when its connection goes away under it. */
const POSTGRES_DROPPED = /Connection terminated|connection error and is not queryable|Connection ended|timeout exceeded when trying to connect|connection timeout/i;

/** The error and everything it wraps (`cause`, and an AggregateError's `errors`), at most a few levels deep. */
function* chain(err: unknown, depth = 0): Generator<unknown> {
  if (err === null || err === undefined || depth > 4) return;
  yield err;
  if (typeof err !== 'object') return;
  const e = err as { cause?: unknown; errors?: unknown };
  if (Array.isArray(e.errors)) for (const inner of e.errors) yield* chain(inner, depth + 1);
  if (e.cause !== undefined) yield* chain(e.cause, depth + 1);
}

/** The error's own `code` (a SQLSTATE from pg, an errno name from Node), if it has one. */
export function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A Cairn error is an answer, not a failure; only a connection error that says so passes. */
function cairnVerdict(err: unknown): boolean | undefined {
  if (!(err instanceof CairnError)) return undefined;
  return err.code === ERROR_CODES.DatabaseConnectionError && err.retryable;
}

/** Whether a failure of a Postgres call may pass if the call is made again later. */
export function isTransientPostgresError(err: unknown): boolean {
  const verdict = cairnVerdict(err);
  if (verdict !== undefined) return verdict;
  for (const e of chain(err)) {
    const code = codeOf(e);
    if (code !== undefined) {
      if (NETWORK_CODES.has(code) || POSTGRES_TRANSIENT_STATES.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return true;
    }
    if (e instanceof Error && code === undefined && POSTGRES_DROPPED.test(e.message)) return true;
  }
  return false;
}

/** Whether a failure of an SQLite call may pass: another connection held the lock (SQLITE_BUSY*, SQLITE_LOCKED*). */
export function isTransientSqliteError(err: unknown): boolean {
  const verdict = cairnVerdict(err);
  if (verdict !== undefined) return verdict;
  for (const e of chain(err)) {
    const code = codeOf(e);
    if (code !== undefined && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))) return true;
  }
  return false;
}

/** Postgres SQLSTATEs of a connection refused for good: unknown database, bad password, no such role, no entry in pg_hba. */
const POSTGRES_REFUSED_FOR_GOOD: Record<string, string> = {
  '3D000': 'the database does not exist',
  '28P01': 'the password was not accepted',
  '28000': 'the server did not accept these credentials',
  '42501': 'the role may not connect',
};

/**
 * Turns a failure to reach or enter a Postgres server into a {@link DatabaseConnectionError}, or
 * returns undefined when `err` is something else (a failing statement, a migration error).
 */
export function postgresConnectionError(err: unknown, database: string): DatabaseConnectionError | undefined {
  if (err instanceof CairnError) return undefined;
  for (const e of chain(err)) {
    const code = codeOf(e);
    if (code !== undefined && code in POSTGRES_REFUSED_FOR_GOOD) {
      return new DatabaseConnectionError(database, `${POSTGRES_REFUSED_FOR_GOOD[code]} (${code}: ${(e as Error).message})`, { cause: err, retryable: false });
    }
    // node-postgres, asked for a password it was not given, fails before the server can say 28P01.
    if (e instanceof Error && /password must be a string|no password was provided|SASL/i.test(e.message)) {
      return new DatabaseConnectionError(database, `the server asked for a password that was not accepted (${e.message})`, { cause: err, retryable: false });
    }
  }
  if (isTransientPostgresError(err)) {
    const reason = (err as Error)?.message || codeOf(err) || String(err);
    return new DatabaseConnectionError(database, `the server could not be reached or dropped the connection (${reason})`, { cause: err, retryable: true });
  }
  for (const e of chain(err)) {
    if (codeOf(e) === 'ENOTFOUND') {
      return new DatabaseConnectionError(database, `the host name does not resolve (${(e as Error).message})`, { cause: err, retryable: false });
    }
  }
  return undefined;
}

/** SQLite result codes of a file that cannot be used as a database at all. */
const SQLITE_UNUSABLE = /^SQLITE_(CANTOPEN|NOTADB|PERM|AUTH|READONLY|IOERR|CORRUPT)/;

/** Turns an SQLite failure to open or read its file into a {@link DatabaseConnectionError}, or undefined. */
export function sqliteConnectionError(err: unknown, database: string): DatabaseConnectionError | undefined {
  if (err instanceof CairnError) return undefined;
  const code = codeOf(err);
  if (code === undefined || !SQLITE_UNUSABLE.test(code)) return undefined;
  return new DatabaseConnectionError(database, `the file cannot be used as a database (${code}: ${(err as Error).message})`, { cause: err, retryable: false });
}

/** A database URL with its password replaced by `***`. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}
