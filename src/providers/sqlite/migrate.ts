import type Database from 'better-sqlite3';
import { MigrationError } from '../../engine/errors.js';
import { loadMigrations, tooNew } from '../migrations.js';

/**
 * Applies pending migrations, each in its own IMMEDIATE transaction that re-reads the applied
 * version after taking the write lock, so concurrent migrators apply each migration once.
 */
export function migrateSqlite(db: Database.Database, where: string): void {
  const migrations = loadMigrations('sqlite');
  const latest = migrations.length;
  db.exec('CREATE TABLE IF NOT EXISTS cairn_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const currentVersion = (): number =>
    (db.prepare('SELECT max(version) AS v FROM cairn_migrations').get() as { v: number | null }).v ?? 0;
  const initial = currentVersion();
  if (initial > latest) throw tooNew(`SQLite database ${where}`, initial, latest);
  for (const m of migrations) {
    if (m.version <= initial) continue;
    const apply = db.transaction(() => {
      if (currentVersion() >= m.version) return;
      db.prepare('INSERT INTO cairn_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
      db.exec(m.sql);
    });
    try {
      apply.immediate();
    } catch (cause) {
      throw new MigrationError(`migration ${m.version} (${m.name}) failed on SQLite database ${where}: ${(cause as Error).message}`, { cause });
    }
  }
}
