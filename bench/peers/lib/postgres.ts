import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

/** Runs one statement on a short-lived connection. */
export async function adminQuery(url: string, text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

/** `url` with another database name. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function createDatabase(adminUrl: string, database: string): Promise<void> {
  await dropDatabase(adminUrl, database);
  await adminQuery(adminUrl, `CREATE DATABASE "${database}"`);
}

export async function dropDatabase(adminUrl: string, database: string): Promise<void> {
  await adminQuery(adminUrl, `DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
}

export async function serverInfo(url: string): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const info: Record<string, string> = {};
    info.version = (await client.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v;
    for (const name of ['synchronous_commit', 'fsync', 'wal_sync_method', 'shared_buffers', 'max_connections']) {
      info[name] = (await client.query<{ s: string }>('SELECT current_setting($1) AS s', [name])).rows[0]!.s;
    }
    return info;
  } finally {
    await client.end();
  }
}

/**
 * Polls `count` (a query returning one row with column n) every `everyMs` until it returns 0, and
 * resolves with the instant it did. Used only after every job's handler has run, to find when the
 * last completion has committed.
 */
export async function untilZero(client: pg.Client, count: string, values: unknown[], everyMs = 2, limitMs = 120_000): Promise<number> {
  const end = performance.now() + limitMs;
  for (;;) {
    const n = Number((await client.query<{ n: string }>(count, values)).rows[0]!.n);
    if (n === 0) return performance.now();
    if (performance.now() > end) throw new Error(`${n} jobs still not completed after ${limitMs} ms`);
    await sleep(everyMs);
  }
}

/** Resolves once `mark` has been called `n` times. */
export class Countdown {
  private count = 0;
  private resolve: () => void = () => undefined;
  readonly done: Promise<void>;
  constructor(readonly n: number) {
    this.done = new Promise<void>((r) => (this.resolve = r));
    if (n === 0) this.resolve();
  }
  mark(k = 1): void {
    this.count += k;
    if (this.count >= this.n) this.resolve();
  }
  get value(): number {
    return this.count;
  }
}
