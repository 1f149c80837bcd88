import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { PostgresProvider, SqliteProvider, type Provider } from '../../src/index.js';

/**
 * Where a benchmark runs. Each measurement asks its target for a fresh store: a new schema in a
 * database created for this run (Postgres), or a new file in a temporary directory (SQLite).
 */

export type TargetKind = 'postgres' | 'sqlite';

/** Bare single-row insert commits on the same driver and connection settings Cairn uses. */
export interface FloorDriver {
  /** One committed insert of one row. */
  insert(): Promise<void>;
  close(): Promise<void>;
}

/** Provider settings a scenario may vary; anything not given is the provider's default. */
export interface ProviderTuning {
  /** Group commit of checkpoints (both providers default to on). */
  groupCommit?: boolean;
}

/** Where a store lives, for a child process that opens its own provider on it. */
export type StoreLocation = { kind: 'postgres'; url: string; schema: string } | { kind: 'sqlite'; path: string };

export interface Store {
  readonly label: string;
  readonly location: StoreLocation;
  /** A Cairn provider on this store; `poolSize` is the pg.Pool max on Postgres and unused on SQLite. */
  provider(poolSize: number, tuning?: ProviderTuning): Provider;
  /** A floor driver writing into a plain table of this store. */
  floor(poolSize: number): Promise<FloorDriver>;
  /**
   * A provider and a floor driver on this store sharing their connections: one pg.Pool of
   * `poolSize` on Postgres (so two of them never need twice the connections), and two connections
   * to the same file on SQLite. For measurements that alternate between the engine and its floor.
   */
  pair(poolSize: number, tuning?: ProviderTuning): Promise<Pair>;
  dispose(): Promise<void>;
}

export interface Pair {
  /** Hand it to Engine.open; closing the engine leaves the shared connections open. */
  provider: Provider;
  floor: FloorDriver;
  /** Closes the shared connections; close the engine first. */
  close(): Promise<void>;
}

export interface Target {
  readonly kind: TargetKind;
  /** What "concurrency C" means on this target, printed with its table. */
  readonly concurrencyNote: string;
  /** Server, library and setting details for the report. */
  readonly info: Record<string, unknown>;
  /** A one-line description for the table header. */
  readonly headline: string;
  /** How connections are provided at a given pool size, for the notes column. */
  poolLabel(poolSize: number): string;
  fresh(label: string): Promise<Store>;
  teardown(): Promise<void>;
}

function slug(label: string): string {
  return label.toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 40);
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

const PG_SETTINGS = ['synchronous_commit', 'fsync', 'wal_sync_method', 'full_page_writes', 'shared_buffers', 'max_connections'];

export class PostgresTarget implements Target {
  readonly kind = 'postgres';
  readonly concurrencyNote =
    'concurrency C: C loops each awaiting one operation, on a pg.Pool with max = C (floor and engine alike); sequential runs use max = 1';
  private counter = 0;

  private constructor(
    private readonly adminUrl: string,
    readonly database: string,
    private readonly url: string,
    private readonly maintenance: pg.Pool,
    readonly info: Record<string, unknown>,
    readonly headline: string,
  ) {}

  /** Creates the run's database on the server at `adminUrl`; rejects when the server is unreachable. */
  static async create(adminUrl: string): Promise<PostgresTarget> {
    const database = `cairn_bench_${process.pid}`;
    const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5_000 });
    await admin.connect();
    let version: string;
    const settings: Record<string, string> = {};
    try {
      version = (await admin.query<{ version: string }>('SELECT version()')).rows[0]!.version;
      for (const name of PG_SETTINGS) {
        const res = await admin.query<{ setting: string }>('SELECT current_setting($1) AS setting', [name]);
        settings[name] = res.rows[0]!.setting;
      }
      await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
      await admin.query(`CREATE DATABASE "${database}"`);
    } finally {
      await admin.end();
    }
    const url = new URL(adminUrl);
    url.pathname = `/${database}`;
    const maintenance = new pg.Pool({ connectionString: url.toString(), max: 1 });
    maintenance.on('error', () => undefined);
    const short = /^PostgreSQL [^\s]+/.exec(version)?.[0] ?? version;
    const info = { server: version, database, settings };
    const headline = `${short}, synchronous_commit=${settings.synchronous_commit}, fsync=${settings.fsync}, wal_sync_method=${settings.wal_sync_method}`;
    return new PostgresTarget(adminUrl, database, url.toString(), maintenance, info, headline);
  }

  poolLabel(poolSize: number): string {
    return `pg.Pool max ${poolSize}`;
  }

  async fresh(label: string): Promise<Store> {
    const schema = `b${++this.counter}_${slug(label)}`;
    const url = this.url;
    const maintenance = this.maintenance;
    const newPool = (max: number): pg.Pool => {
      const pool = new pg.Pool({ connectionString: url, max });
      // A connection dropped at teardown must not crash the run.
      pool.on('error', () => undefined);
      return pool;
    };
    const floorOn = async (pool: pg.Pool): Promise<() => Promise<void>> => {
      await maintenance.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      await maintenance.query(
        `CREATE TABLE IF NOT EXISTS "${schema}".floor (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload text NOT NULL)`,
      );
      // A named statement, prepared once per connection, as the provider sends its statements.
      const insert = { name: `floor_insert_${schema}`, text: `INSERT INTO "${schema}".floor (payload) VALUES ($1)`, values: ['x'] };
      return async () => {
        await pool.query(insert);
      };
    };
    return {
      label,
      location: { kind: 'postgres', url, schema },
      provider: (poolSize, tuning = {}) => new PostgresProvider({ connectionString: url, schema, max: poolSize, ...tuning }),
      floor: async (poolSize) => {
        const pool = newPool(poolSize);
        try {
          return { insert: await floorOn(pool), close: () => pool.end() };
        } catch (err) {
          await pool.end();
          throw err;
        }
      },
      pair: async (poolSize, tuning = {}) => {
        const pool = newPool(poolSize);
        try {
          return {
            provider: new PostgresProvider({ pool, schema, ...tuning }),
            floor: { insert: await floorOn(pool), close: async () => undefined },
            close: () => pool.end(),
          };
        } catch (err) {
          await pool.end();
          throw err;
        }
      },
      dispose: async () => {
        await maintenance.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      },
    };
  }

  async teardown(): Promise<void> {
    await this.maintenance.end();
    await dropDatabase(this.adminUrl, this.database);
  }
}

/** Drops the run's database, closing any connection still attached to it. */
export async function dropDatabase(adminUrl: string, database: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5_000 });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

// ---------------------------------------------------------------------------------------------
// SQLite

/** The connection settings SqliteProvider applies by default. */
const SQLITE_BUSY_TIMEOUT_MS = 5_000;

function openSqlite(path: string): Database.Database {
  const db = new Database(path, { timeout: SQLITE_BUSY_TIMEOUT_MS });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  return db;
}

export class SqliteTarget implements Target {
  readonly kind = 'sqlite';
  readonly concurrencyNote =
    'concurrency C: better-sqlite3 is synchronous, so C means C async loops interleaving on one connection; ' +
    'every floor insert is its own fsync\'d autocommit, and the engine runs C workflows on one provider';
  readonly info: Record<string, unknown>;
  readonly headline: string;
  readonly dir: string;
  private counter = 0;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'cairn-bench-'));
    const probe = openSqlite(join(this.dir, 'probe.db'));
    try {
      const version = (probe.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
      const journal = probe.pragma('journal_mode', { simple: true }) as string;
      const synchronous = probe.pragma('synchronous', { simple: true }) as number;
      const names = ['OFF', 'NORMAL', 'FULL', 'EXTRA'];
      this.info = {
        version,
        journal_mode: journal,
        synchronous: names[synchronous] ?? String(synchronous),
        busy_timeout_ms: SQLITE_BUSY_TIMEOUT_MS,
        directory: this.dir,
      };
      this.headline = `SQLite ${version}, journal_mode=${journal}, synchronous=${names[synchronous] ?? synchronous}`;
    } finally {
      probe.close();
      rmSync(join(this.dir, 'probe.db'), { force: true });
    }
  }

  poolLabel(): string {
    return 'one connection';
  }

  async fresh(label: string): Promise<Store> {
    const path = join(this.dir, `${++this.counter}-${slug(label)}.db`);
    const floor = async (): Promise<FloorDriver> => {
      const db = openSqlite(path);
      db.exec('CREATE TABLE IF NOT EXISTS floor (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)');
      const insert = db.prepare('INSERT INTO floor (payload) VALUES (?)');
      return {
        insert: async () => {
          insert.run('x');
        },
        close: async () => {
          db.close();
        },
      };
    };
    return {
      label,
      location: { kind: 'sqlite', path },
      // synchronous is left at the provider's default, FULL.
      provider: (_poolSize, tuning = {}) => new SqliteProvider({ path, ...tuning }),
      floor,
      pair: async (_poolSize, tuning = {}) => {
        const driver = await floor();
        return {
          provider: new SqliteProvider({ path, ...tuning }),
          floor: { insert: driver.insert, close: async () => undefined },
          close: () => driver.close(),
        };
      },
      dispose: async () => {
        for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
      },
    };
  }

  async teardown(): Promise<void> {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
