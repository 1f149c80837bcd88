import pg from 'pg';
import { InvalidArgumentError } from '../engine/errors.js';
import { migrate } from '../providers/migrate.js';
import { postgresConnectionError, redactUrl } from '../providers/faults.js';
import { assertSchemaName } from '../providers/schema-name.js';
import type { Tenant } from '../types.js';
import { busyMessage, liveExecutors } from './live.js';
import { quoteIdent } from './names.js';
import { generatePassword, scramVerifier } from './password.js';
import type { TenantStore } from './store.js';

type Row = { name: string; schema: string; role: string; created_at: Date };

/** duplicate_object: CREATE ROLE of a name some role of the server already has. */
const DUPLICATE_OBJECT = '42710';
/** duplicate_schema. */
const DUPLICATE_SCHEMA = '42P06';

/**
 * Tenants on PostgreSQL: for each, a login role and a schema it owns, named `<prefix><name>`,
 * recorded in `<registry>.tenants`. Every change holds a transaction-level advisory lock on the
 * registry, so two admins never interleave.
 */
export class PostgresTenants implements TenantStore {
  private readonly pool: pg.Pool;
  private readonly registry: string;
  private readonly where: string;

  private constructor(
    private readonly url: string,
    registry: string,
    private readonly prefix: string,
  ) {
    this.registry = quoteIdent(registry) + '.tenants';
    this.where = redactUrl(url);
    this.pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: 10_000 });
    this.pool.on('error', () => undefined);
  }

  static async open(url: string, registry: string, prefix: string): Promise<PostgresTenants> {
    assertSchemaName(registry);
    const store = new PostgresTenants(url, registry, prefix);
    try {
      await store.locked(async (c) => {
        // A schema made here is closed to PUBLIC; one that exists (say 'public') keeps its grants.
        const found = await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [registry]);
        if (found.rowCount === 0) {
          await c.query(`CREATE SCHEMA ${quoteIdent(registry)}`);
          await c.query(`REVOKE ALL ON SCHEMA ${quoteIdent(registry)} FROM PUBLIC`);
        }
        await c.query(
          `CREATE TABLE IF NOT EXISTS ${store.registry} (name text PRIMARY KEY, schema text NOT NULL UNIQUE, role text NOT NULL UNIQUE,
             ready boolean NOT NULL DEFAULT false, created_at timestamptz NOT NULL DEFAULT now())`,
        );
      });
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  /**
   * Makes the role and the schema in one transaction, then applies Cairn's migrations connected
   * as the new role, so everything in the schema is the tenant's own. A failed migration drops
   * what was made; the registry row turns ready only once migrated.
   */
  async create(name: string): Promise<Tenant> {
    const schema = assertSchemaName(this.prefix + name);
    const role = schema;
    const password = generatePassword();
    await this.locked(async (c) => {
      const found = await c.query<{ ready: boolean }>(`SELECT ready FROM ${this.registry} WHERE name = $1`, [name]);
      if (found.rows[0]) {
        throw new InvalidArgumentError(
          'name',
          found.rows[0].ready
            ? `tenant '${name}' already exists`
            : `tenant '${name}' already exists, half made by a createTenant that did not finish; dropTenant('${name}') removes it`,
        );
      }
      const r = quoteIdent(role);
      const s = quoteIdent(schema);
      try {
        await c.query(`CREATE ROLE ${r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT PASSWORD '${scramVerifier(password)}'`);
        await c.query(`CREATE SCHEMA ${s} AUTHORIZATION ${r}`);
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (code === DUPLICATE_OBJECT || code === DUPLICATE_SCHEMA) {
          throw new InvalidArgumentError(
            'name',
            `tenant '${name}' cannot be created: ${code === DUPLICATE_OBJECT ? 'a role' : 'a schema'} named '${role}' already exists and is not a tenant of this registry`,
            { cause: err },
          );
        }
        throw err;
      }
      const { rows } = await c.query<{ db: string }>('SELECT current_database() AS db');
      await c.query(`GRANT CONNECT ON DATABASE ${quoteIdent(rows[0]!.db)} TO ${r}`);
      await c.query(`REVOKE ALL ON SCHEMA ${s} FROM PUBLIC`);
      await c.query(`ALTER ROLE ${r} SET search_path = ${s}`);
      await c.query(`INSERT INTO ${this.registry} (name, schema, role) VALUES ($1, $2, $3)`, [name, schema, role]);
    });
    const url = this.tenantUrl(role, password);
    try {
      await migrate({ database: url, schema });
      const res = await this.pool.query<{ created_at: Date }>(`UPDATE ${this.registry} SET ready = true WHERE name = $1 RETURNING created_at`, [name]);
      return { name, schema, role, url, createdAt: res.rows[0]!.created_at };
    } catch (err) {
      await this.drop(name, true).catch(() => undefined);
      throw err;
    }
  }

  async list(): Promise<Tenant[]> {
    const res = await this.query<Row>(`SELECT name, schema, role, created_at FROM ${this.registry} WHERE ready ORDER BY name`);
    return res.rows.map((r) => ({ name: r.name, schema: r.schema, role: r.role, url: this.tenantUrl(r.role), createdAt: r.created_at }));
  }

  /**
   * Refuses while the tenant's executors are alive, unless forced. Then stops the role from
   * logging in (committed, so no new connection slips in), ends its sessions, and drops the
   * schema with everything in it, the role and the registry row in one transaction.
   */
  async drop(name: string, force: boolean): Promise<void> {
    const row = (await this.query<Row>(`SELECT name, schema, role FROM ${this.registry} WHERE name = $1`, [name])).rows[0];
    if (!row) throw new InvalidArgumentError('name', `there is no tenant named '${name}' in ${this.where} (registry ${this.registry})`);
    if (!force) {
      const live = await liveExecutors(this.url, row.schema);
      if (live.length > 0) throw new InvalidArgumentError('force', busyMessage(name, live));
    }
    const r = quoteIdent(row.role);
    const roleExists = async (c: pg.PoolClient) => ((await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [row.role])).rowCount ?? 0) > 0;
    await this.locked(async (c) => {
      if (await roleExists(c)) await c.query(`ALTER ROLE ${r} NOLOGIN`);
    });
    await this.pool.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [row.role]);
    await this.locked(async (c) => {
      await c.query(`DROP SCHEMA IF EXISTS ${quoteIdent(row.schema)} CASCADE`);
      if (await roleExists(c)) {
        await c.query(`DROP OWNED BY ${r}`);
        await c.query(`DROP ROLE ${r}`);
      }
      await c.query(`DELETE FROM ${this.registry} WHERE name = $1`, [name]);
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** The admin URL with the tenant's role as user, and its password when known. */
  private tenantUrl(role: string, password?: string): string {
    const url = new URL(this.url);
    url.username = role;
    url.password = password ?? '';
    return url.toString();
  }

  private async query<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<T>> {
    try {
      return await this.pool.query<T>(text, values);
    } catch (err) {
      throw postgresConnectionError(err, this.where) ?? err;
    }
  }

  /** Runs `body` in a transaction holding the registry's advisory lock. */
  private async locked(body: (c: pg.PoolClient) => Promise<void>): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw postgresConnectionError(err, this.where) ?? err;
    }
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`cairn.tenants:${this.registry}`]);
      await body(client);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw postgresConnectionError(err, this.where) ?? err;
    } finally {
      client.release();
    }
  }
}
