/** A database of its own for a standalone bench script, removed afterwards whatever happens. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Runs `fn` with the URL of a new database on the server at DATABASE_URL (default: the local one), then drops it. */
export async function withScratchPostgres(label: string, fn: (url: string) => Promise<void>): Promise<void> {
  const dbName = `cairn_bench_${label}_${process.pid}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${dbName}`;
  try {
    await fn(url.toString());
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  }
}

/** Runs `fn` with the path of a SQLite file in a new temporary directory, then removes it. */
export async function withScratchSqlite(label: string, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `cairn-bench-${label}-`));
  try {
    await fn(join(dir, `${label}.db`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
