import { InvalidArgumentError } from '../engine/errors.js';
import { redactUrl } from './faults.js';
import { PostgresProvider } from './postgres/provider.js';
import type { Provider } from './provider.js';
import { SqliteProvider, type SqliteSynchronous } from './sqlite/provider.js';

const SUPPORTED = "use 'sqlite:<path>', 'sqlite::memory:', 'postgres://…' or 'postgresql://…'";

/**
 * Builds a provider from a database URL:
 * `sqlite:./app.db`, `sqlite:/abs/app.db`, `sqlite::memory:` (optionally `?synchronous=NORMAL`),
 * or `postgres://user@host:5432/db` / `postgresql://…`.
 */
export function providerFromUrl(url: unknown, options: { schema?: string } = {}): Provider {
  if (typeof url !== 'string' || url.trim() === '') {
    throw new InvalidArgumentError('database', `database must be a URL string or a Provider, got ${describe(url)}; ${SUPPORTED}`);
  }
  if (url.startsWith('sqlite:')) return sqliteFromUrl(url);
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    try {
      new URL(url);
    } catch (cause) {
      throw new InvalidArgumentError('database', `database URL '${redactUrl(url)}' is malformed: ${(cause as Error).message}`, { cause });
    }
    return new PostgresProvider({ connectionString: url, ...(options.schema === undefined ? {} : { schema: options.schema }) });
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
  throw new InvalidArgumentError(
    'database',
    scheme ? `database URL scheme '${scheme}:' is not supported; ${SUPPORTED}` : `database URL '${redactUrl(url)}' has no scheme; ${SUPPORTED}`,
  );
}

function sqliteFromUrl(url: string): SqliteProvider {
  let rest = url.slice('sqlite:'.length);
  let synchronous: SqliteSynchronous | undefined;
  const q = rest.indexOf('?');
  if (q >= 0) {
    const params = new URLSearchParams(rest.slice(q + 1));
    rest = rest.slice(0, q);
    for (const [key, value] of params) {
      if (key !== 'synchronous') {
        throw new InvalidArgumentError('database', `SQLite URL option '${key}' is not supported; the only option is 'synchronous'`);
      }
      synchronous = value.toUpperCase() as SqliteSynchronous;
    }
  }
  if (rest.startsWith('//')) rest = rest.slice(2);
  if (rest === '') throw new InvalidArgumentError('database', `SQLite URL '${url}' names no file; write 'sqlite:./app.db' or 'sqlite::memory:'`);
  return new SqliteProvider({ path: rest, ...(synchronous === undefined ? {} : { synchronous }) });
}


function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return 'an empty string';
  return typeof v;
}
