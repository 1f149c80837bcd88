import { InvalidArgumentError } from '../engine/errors.js';
import type { DropTenantOptions, Tenant, TenantAdminOptions } from '../types.js';
import { assertTenantName, assertTenantPrefix } from './names.js';
import { PostgresTenants } from './postgres.js';
import { SqliteTenants } from './sqlite.js';
import type { TenantStore } from './store.js';

/**
 * Provisions tenants: on PostgreSQL a schema and a login role per tenant, the role allowed into
 * its own schema only, the schema migrated; on SQLite a migrated file per tenant. Open an engine
 * for a tenant with the `url` and `schema` that `createTenant` returns.
 *
 * @example
 * const admin = await TenantAdmin.open({ database: process.env.ADMIN_DATABASE_URL! });
 * const acme = await admin.createTenant('acme'); // { name, schema: 'tenant_acme', role: 'tenant_acme', url }
 * const engine = await Engine.open({ database: acme.url, schema: acme.schema! });
 * await admin.close();
 */
export class TenantAdmin {
  private closed = false;

  private constructor(private readonly store: TenantStore) {}

  /**
   * Opens the admin on `database` (a `postgres://` URL of a user that may create roles and
   * schemas; the registry schema and table are made if missing) or on `directory` (SQLite files).
   */
  static async open(options: TenantAdminOptions): Promise<TenantAdmin> {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('options', 'TenantAdmin.open needs an options object with a database URL (PostgreSQL) or a directory (SQLite)');
    }
    const { database, directory } = options;
    if ((database === undefined) === (directory === undefined)) {
      throw new InvalidArgumentError('options', 'TenantAdmin.open needs exactly one of database (a postgres:// URL) and directory (for SQLite files)');
    }
    if (directory !== undefined) return new TenantAdmin(new SqliteTenants(directory));
    if (typeof database !== 'string' || !/^postgres(ql)?:\/\//.test(database)) {
      throw new InvalidArgumentError(
        'database',
        `TenantAdmin's database must be a postgres:// or postgresql:// URL, got ${typeof database === 'string' ? `'${database.split(':')[0]}:…'` : typeof database}; for SQLite pass { directory }`,
      );
    }
    try {
      new URL(database);
    } catch (cause) {
      throw new InvalidArgumentError('database', `database URL is malformed: ${(cause as Error).message}`, { cause });
    }
    const prefix = assertTenantPrefix(options.prefix ?? 'tenant_');
    return new TenantAdmin(await PostgresTenants.open(database, options.registry ?? 'cairn_tenants', prefix));
  }

  /**
   * Creates tenant `name` (1 to 40 characters of a-z, 0-9 and _, starting with a letter) and
   * returns how to reach it. The Postgres password appears only in this `url`.
   */
  async createTenant(name: string): Promise<Tenant> {
    this.assertOpen();
    return this.store.create(assertTenantName(name));
  }

  /** Every tenant, by name; Postgres URLs carry no password. */
  async listTenants(): Promise<Tenant[]> {
    this.assertOpen();
    return this.store.list();
  }

  /**
   * Deletes tenant `name` and all its data. Refused while one of its executors is alive (an
   * engine open on it), unless `force`, which on Postgres also ends the role's connections.
   */
  async dropTenant(name: string, options: DropTenantOptions = {}): Promise<void> {
    this.assertOpen();
    await this.store.drop(assertTenantName(name), options.force === true);
  }

  /** Closes the admin's connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.store.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new InvalidArgumentError('admin', 'this TenantAdmin is closed');
  }
}
