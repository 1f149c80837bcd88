import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, test } from 'node:test';
import { Client, Engine, MigrationError } from '../src/index.js';
import type { Store, Target } from './helpers/targets.js';

/**
 * Faults every provider shares: opening with `migrate: false` checks the schema version, so an
 * unmigrated or outdated database fails at open with a MigrationError that says what to run,
 * instead of failing later on a missing table. The caller disposes of the target when its file is done.
 */
export function defineFaultsSuite(target: Target): void {
  describe(`faults on ${target.kind}`, { skip: target.skip }, () => {
    /** Removes the newest applied migration's row, so the store looks one migration behind. */
    async function rollBackOneMigration(store: Store): Promise<number> {
      if (target.kind === 'sqlite') {
        const db = new Database(store.database.slice('sqlite:'.length));
        try {
          const { v } = db.prepare('SELECT max(version) AS v FROM cairn_migrations').get() as { v: number };
          db.prepare('DELETE FROM cairn_migrations WHERE version = ?').run(v);
          return v;
        } finally {
          db.close();
        }
      }
      const client = new pg.Client({ connectionString: store.database });
      await client.connect();
      try {
        const res = await client.query<{ v: number }>(`DELETE FROM "${store.schema}".migrations WHERE version = (SELECT max(version) FROM "${store.schema}".migrations) RETURNING version AS v`);
        return res.rows[0]!.v;
      } finally {
        await client.end();
      }
    }

    const openOptions = (store: Store) => ({ database: store.database, ...(store.schema && { schema: store.schema }), migrate: false as const });

    test('migrate: false on a database never migrated fails at open with a MigrationError naming what to run', async () => {
      const store = await target.fresh();
      for (const open of [() => Engine.open(openOptions(store)), () => Client.open(openOptions(store))]) {
        await assert.rejects(open(), (err: unknown) => {
          assert.ok(err instanceof MigrationError, `got ${String(err)}`);
          assert.equal(err.code, 'MIGRATION');
          assert.match(err.message, /is not migrated/);
          assert.match(err.message, /migrate\(\{ database \}\)/);
          assert.match(err.message, /without `migrate: false`/);
          return true;
        });
      }
    });

    test('migrate: false on a database one migration behind fails at open, saying it is older than the code', async () => {
      const store = await target.fresh();
      await (await target.open(store)).close();
      const removed = await rollBackOneMigration(store);
      await assert.rejects(Engine.open(openOptions(store)), (err: unknown) => {
        assert.ok(err instanceof MigrationError, `got ${String(err)}`);
        assert.match(err.message, new RegExp(`at migration ${removed - 1}, older than the ${removed} this version of Cairn needs`));
        return true;
      });
    });

    test('migrate: false on a migrated database opens, and the engine works', async () => {
      const store = await target.fresh();
      await (await target.open(store)).close();
      const engine = await Engine.open(openOptions(store));
      try {
        const wf = engine.workflow('plain', async (ctx, x: number) => ctx.step('double', () => x * 2));
        assert.equal(await wf.run(21, { id: 'plain-1' }), 42);
      } finally {
        await engine.close();
      }
    });
  });
}
