import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Engine, PostgresProvider, SqliteProvider, type EngineOptions, type Provider, type StatementObserver } from '../../src/index.js';

/**
 * One behavioural suite runs against every target. A target hands out isolated stores: a fresh
 * SQLite file, or a fresh schema inside a Postgres database created for this test file.
 */

export interface Store {
  /** Passed to Engine.open as `database`. */
  database: string;
  /** Postgres schema of this store. */
  schema?: string;
}

export interface Target {
  readonly kind: 'sqlite' | 'postgres';
  /** A reason to skip, or false. */
  readonly skip: string | false;
  fresh(): Promise<Store>;
  /** A provider on a store, for tests that observe statements. */
  provider(store: Store, onStatement?: StatementObserver): Provider;
  /** Opens an engine on a store; closed automatically by `closeAll`. */
  open(store: Store, options?: Omit<EngineOptions, 'database' | 'schema'>): Promise<Engine>;
  closeAll(): Promise<void>;
  dispose(): Promise<void>;
}

export const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let counter = 0;

abstract class BaseTarget implements Target {
  abstract readonly kind: 'sqlite' | 'postgres';
  abstract readonly skip: string | false;
  private readonly engines = new Set<Engine>();
  abstract fresh(): Promise<Store>;
  abstract provider(store: Store, onStatement?: StatementObserver): Provider;
  abstract dispose(): Promise<void>;

  async open(store: Store, options: Omit<EngineOptions, 'database' | 'schema'> = {}): Promise<Engine> {
    const engine = await Engine.open({ ...options, database: store.database, ...(store.schema && { schema: store.schema }) });
    this.engines.add(engine);
    return engine;
  }

  async closeAll(): Promise<void> {
    const engines = [...this.engines];
    this.engines.clear();
    await Promise.all(engines.map((e) => e.close({ timeoutMs: 2_000 })));
  }
}

class SqliteTarget extends BaseTarget {
  readonly kind = 'sqlite';
  readonly skip = false;
  private readonly dir = mkdtempSync(join(tmpdir(), 'cairn-test-'));

  async fresh(): Promise<Store> {
    return { database: `sqlite:${join(this.dir, `db${++counter}.db`)}` };
  }

  provider(store: Store, onStatement?: StatementObserver): Provider {
    return new SqliteProvider({ path: store.database.slice('sqlite:'.length), ...(onStatement && { onStatement }) });
  }

  async dispose(): Promise<void> {
    await this.closeAll();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

class PostgresTarget extends BaseTarget {
  readonly kind = 'postgres';
  constructor(
    readonly skip: string | false,
    private readonly url: string,
    private readonly dbName: string,
  ) {
    super();
  }

  async fresh(): Promise<Store> {
    return { database: this.url, schema: `t${process.pid}_${++counter}` };
  }

  provider(store: Store, onStatement?: StatementObserver): Provider {
    return new PostgresProvider({ connectionString: store.database, schema: store.schema ?? 'cairn', ...(onStatement && { onStatement }) });
  }

  async dispose(): Promise<void> {
    await this.closeAll();
    if (this.skip) return;
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS "${this.dbName}" WITH (FORCE)`);
    await admin.end();
  }
}

export function sqliteTarget(): Target {
  return new SqliteTarget();
}

/**
 * Creates a database for this test file on the server at DATABASE_URL (default: the local server).
 * Without a reachable server the target is skipped, loudly; under CI=true that is a failure.
 */
export async function postgresTarget(label: string): Promise<Target> {
  const dbName = `cairn_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${process.pid}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3_000 });
  try {
    await admin.connect();
  } catch (err) {
    const reason = `PostgreSQL is not reachable at ${ADMIN_URL} (${(err as Error).message}); set DATABASE_URL to run the Postgres suite`;
    if (process.env.CI) throw new Error(`${reason}. CI must not skip the Postgres suite.`);
    process.stderr.write(`\n*** Postgres suite SKIPPED: ${reason}\n\n`);
    return new PostgresTarget(reason, ADMIN_URL, dbName);
  }
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${dbName}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${dbName}`;
  return new PostgresTarget(false, url.toString(), dbName);
}
