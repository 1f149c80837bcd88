import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MigrationError } from '../engine/errors.js';
import type { SchemaVersion } from './provider.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

const cache = new Map<string, Migration[]>();

/** The numbered `.sql` files of one dialect, in order. Works from src/ and from dist/ alike. */
export function loadMigrations(dialect: 'postgres' | 'sqlite'): Migration[] {
  const cached = cache.get(dialect);
  if (cached) return cached;
  const dir = fileURLToPath(new URL(`../../migrations/${dialect}/`, import.meta.url));
  const migrations = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .map((file) => {
      const m = FILE.exec(file);
      if (!m) throw new MigrationError(`migration file '${file}' in ${dir} is not named NNNN_name.sql`);
      return { version: Number(m[1]), name: m[2]!, sql: readFileSync(dir + file, 'utf8') };
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new MigrationError(`migrations in ${dir} must be numbered 1, 2, 3, ... without gaps; found ${m.version} at position ${i + 1}`);
  });
  cache.set(dialect, migrations);
  return migrations;
}

export function tooNew(where: string, current: number, latest: number): MigrationError {
  return new MigrationError(
    `${where} is at migration ${current}, newer than the ${latest} this version of Cairn knows; upgrade Cairn before opening it`,
  );
}

/**
 * Throws a MigrationError unless the database has exactly the migrations this code expects: for a
 * database opened with `migrate: false`, which would otherwise fail later on a missing table or column.
 */
export function assertMigrated(v: SchemaVersion): void {
  if (v.applied > v.expected) throw tooNew(v.where, v.applied, v.expected);
  if (v.applied === v.expected) return;
  const fix = "open it once without `migrate: false`, or run `migrate({ database })` (exported by 'cairn') before opening it";
  throw new MigrationError(
    v.applied === 0
      ? `${v.where} is not migrated: it has none of Cairn's ${v.expected} migrations; ${fix}`
      : `${v.where} is at migration ${v.applied}, older than the ${v.expected} this version of Cairn needs; ${fix}`,
  );
}
