import type pg from 'pg';
import { MigrationError } from '../../engine/errors.js';
import { isTransientPostgresError } from '../faults.js';
import { loadMigrations, tooNew } from '../migrations.js';
import { holdConnection } from './connection.js';

/**
 * Applies pending migrations under a session advisory lock keyed by the schema, so concurrent
 * migrators wait for each other. Each migration runs in its own transaction, its row inserted first.
 * A connection that dies meanwhile fails the call (with the driver's error, which the provider
 * turns into a DatabaseConnectionError), never the process, and is not handed out again.
 */
export async function migratePostgres(pool: pg.Pool, schema: string): Promise<void> {
  const migrations = loadMigrations('postgres');
  const latest = migrations.length;
  const client = await pool.connect();
  const held = holdConnection(client);
  let locked = false;
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`cairn.migrate:${schema}`]);
    locked = true;
    // CREATE SCHEMA checks the database's CREATE privilege even when the schema exists: a role
    // that owns its schema but may not create others (a tenant's) skips it.
    const found = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (found.rowCount === 0) await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS "${schema}".migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const { rows } = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM "${schema}".migrations`);
    const current = rows[0]?.v ?? 0;
    if (current > latest) throw tooNew(`Postgres schema "${schema}"`, current, latest);
    for (const m of migrations) {
      if (m.version <= current) continue;
      await client.query('BEGIN');
      try {
        await client.query(`SET LOCAL search_path TO "${schema}"`);
        await client.query(`INSERT INTO "${schema}".migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
        await client.query(m.sql);
        await client.query('COMMIT');
      } catch (cause) {
        await client.query('ROLLBACK').catch((err: unknown) => held.broke(err));
        // A lost connection is not the migration's fault: it is reported as the connection failure it is.
        if (isTransientPostgresError(cause)) throw cause;
        throw new MigrationError(`migration ${m.version} (${m.name}) failed on schema "${schema}": ${(cause as Error).message}`, { cause });
      }
    }
  } catch (err) {
    if (isTransientPostgresError(err)) held.broke(err);
    throw err;
  } finally {
    // A session that died took its advisory lock with it.
    if (locked && held.broken === undefined) {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`cairn.migrate:${schema}`]).catch((err: unknown) => held.broke(err));
    }
    held.release();
  }
}
