import { closeSync, mkdirSync, openSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidArgumentError } from '../engine/errors.js';
import { migrate } from '../providers/migrate.js';
import type { Tenant } from '../types.js';
import { busyMessage, liveExecutors } from './live.js';
import { MAX_TENANT_NAME } from './names.js';
import type { TenantStore } from './store.js';

const FILE = new RegExp(`^([a-z][a-z0-9_]{0,${MAX_TENANT_NAME - 1}})\\.db$`);

/**
 * Tenants on SQLite: one database file per tenant, `<directory>/<name>.db`, migrated when made.
 * The directory is the registry: every `.db` file named like a tenant is one.
 */
export class SqliteTenants implements TenantStore {
  private readonly directory: string;

  constructor(directory: string) {
    if (typeof directory !== 'string' || directory.trim() === '') {
      throw new InvalidArgumentError('directory', `directory must be a non-empty path, got ${JSON.stringify(directory)}`);
    }
    this.directory = resolve(directory);
    mkdirSync(this.directory, { recursive: true });
  }

  async create(name: string): Promise<Tenant> {
    const path = this.path(name);
    try {
      // 'wx' creates the file or fails if it is there: two admins cannot both make it.
      closeSync(openSync(path, 'wx'));
    } catch (err) {
      if ((err as { code?: unknown }).code === 'EEXIST') throw new InvalidArgumentError('name', `tenant '${name}' already exists (${path})`, { cause: err });
      throw err;
    }
    const url = `sqlite:${path}`;
    try {
      await migrate({ database: url });
    } catch (err) {
      this.remove(path);
      throw err;
    }
    return { name, schema: null, role: null, url, createdAt: createdAt(path) };
  }

  async list(): Promise<Tenant[]> {
    return readdirSync(this.directory)
      .map((file) => FILE.exec(file)?.[1])
      .filter((name): name is string => name !== undefined)
      .sort()
      .map((name) => {
        const path = this.path(name);
        return { name, schema: null, role: null, url: `sqlite:${path}`, createdAt: createdAt(path) };
      });
  }

  /** Refuses while the tenant's executors are alive, unless forced; then deletes its file and WAL. */
  async drop(name: string, force: boolean): Promise<void> {
    const path = this.path(name);
    if (!statSync(path, { throwIfNoEntry: false })?.isFile()) {
      throw new InvalidArgumentError('name', `there is no tenant named '${name}' in ${this.directory}`);
    }
    if (!force) {
      const live = await liveExecutors(`sqlite:${path}`);
      if (live.length > 0) throw new InvalidArgumentError('force', busyMessage(name, live));
    }
    this.remove(path);
  }

  async close(): Promise<void> {}

  private path(name: string): string {
    return join(this.directory, `${name}.db`);
  }

  private remove(path: string): void {
    for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
  }
}

/** When the file was made, where the file system records it; else when it last changed. */
function createdAt(path: string): Date {
  const s = statSync(path);
  return new Date(s.birthtimeMs || s.mtimeMs);
}
