import type pg from 'pg';
import { MigrationError } from '../../engine/errors.js';
import { loadMigrations, tooNew } from '../migrations.js';

/**
 * Applies pending migrations under a session advisory lock keyed by the schema, so concurrent
 * migrators wait for each other. Each migration runs in its own transaction, its row inserted first.
 */
export async function migratePostgres(pool: pg.Pool, schema: string): Promise<void> {
  const migrations = loadMigrations('postgres');
  const latest = migrations.length;
  const client = await pool.connect();
  let locked = false;
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`cairn.migrate:${schema}`]);
    locked = true;
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
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
        await client.query('ROLLBACK');
        throw new MigrationError(`migration ${m.version} (${m.name}) failed on schema "${schema}": ${(cause as Error).message}`, { cause });
      }
    }
  } finally {
    if (locked) await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`cairn.migrate:${schema}`]).catch(() => undefined);
    client.release();
  }
}
