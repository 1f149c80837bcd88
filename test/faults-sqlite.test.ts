import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { DatabaseConnectionError, Engine, SqliteProvider } from '../src/index.js';
import { defineFaultsSuite } from './faults.js';
import { sqliteTarget } from './helpers/targets.js';

const target = sqliteTarget();
after(() => target.dispose());
defineFaultsSuite(target);

describe('faults on sqlite: locks and unusable files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-faults-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;

  /** A migrated file, and an engine on it whose statements give up on a lock after 100 ms. */
  async function lockedEngine(): Promise<{ path: string; engine: Engine }> {
    const path = join(dir, `busy${++n}.db`);
    await (await Engine.open({ database: `sqlite:${path}` })).close();
    const engine = await Engine.open({ database: new SqliteProvider({ path, busyTimeoutMs: 100 }), migrate: false });
    return { path, engine };
  }

  /** Takes the write lock from another connection and gives it back after `ms`. */
  function holdWriteLock(path: string, ms: number): Promise<void> {
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    return new Promise((resolve) =>
      setTimeout(() => {
        other.exec('COMMIT');
        other.close();
        resolve();
      }, ms),
    );
  }

  test('engine.send waits out a write lock held 1.5 s past a 100 ms busy timeout, and the message arrives', async () => {
    const { path, engine } = await lockedEngine();
    try {
      const inbox = engine.workflow('inbox', async (ctx) => ctx.recv<string>('t', 20_000));
      const h = await inbox.start(undefined, { id: 'inbox-1' });
      const released = holdWriteLock(path, 1_500);
      const t0 = Date.now();
      await engine.send('inbox-1', 'hello', 't');
      const waited = Date.now() - t0;
      await released;
      assert.ok(waited >= 1_300, `send returned after ${waited} ms, while the lock was still held`);
      assert.equal(await h.result(), 'hello');
    } finally {
      await engine.close();
    }
  });

  test('workflow.start waits out a write lock held 1.5 s past a 100 ms busy timeout, and the workflow runs', async () => {
    const { path, engine } = await lockedEngine();
    try {
      const wf = engine.workflow('plain', async (ctx, x: number) => ctx.step('inc', () => x + 1));
      const released = holdWriteLock(path, 1_500);
      const h = await wf.start(1, { id: 'plain-1' });
      await released;
      assert.equal(await h.result(), 2);
      assert.equal((await engine.getWorkflow('plain-1')).status, 'SUCCESS');
    } finally {
      await engine.close();
    }
  });

  test('a write lock held past busyRetryMs still fails, with SQLITE_BUSY, once the retries run out', async () => {
    const path = join(dir, `busy${++n}.db`);
    await (await Engine.open({ database: `sqlite:${path}` })).close();
    const engine = await Engine.open({ database: new SqliteProvider({ path, busyTimeoutMs: 50, busyRetryMs: 300 }), migrate: false });
    try {
      const wf = engine.workflow('plain', async () => 1);
      const released = holdWriteLock(path, 1_500);
      const t0 = Date.now();
      await assert.rejects(wf.start(undefined, { id: 'never' }), (err: unknown) => {
        assert.match((err as { code?: string }).code ?? '', /^SQLITE_BUSY/);
        return true;
      });
      assert.ok(Date.now() - t0 < 1_400, 'gave up within its budget');
      await released;
    } finally {
      await engine.close();
    }
  });

  test('the provider calls SQLITE_BUSY transient, and other SQLite errors not', () => {
    const path = join(dir, `busy${++n}.db`);
    const provider = new SqliteProvider({ path, busyTimeoutMs: 0 });
    const a = new Database(path);
    const b = new Database(path, { timeout: 0 });
    try {
      a.exec('CREATE TABLE t (x)');
      a.exec('BEGIN IMMEDIATE');
      let busy: unknown;
      try {
        b.exec('BEGIN IMMEDIATE');
      } catch (err) {
        busy = err;
      }
      assert.match((busy as { code?: string }).code ?? '', /^SQLITE_BUSY/);
      assert.equal(provider.isTransient(busy), true);
      let syntax: unknown;
      try {
        b.exec('SELEC 1');
      } catch (err) {
        syntax = err;
      }
      assert.equal((syntax as { code?: string }).code, 'SQLITE_ERROR');
      assert.equal(provider.isTransient(syntax), false);
      assert.equal(provider.isTransient(new Error('anything')), false);
    } finally {
      a.close();
      b.close();
      void provider.close();
    }
  });

  test('a file that is not a database fails at open with DatabaseConnectionError (not retryable), keeping the driver error', async () => {
    const path = join(dir, 'not-a-database.db');
    writeFileSync(path, 'this is a text file, not an SQLite database, and it is long enough to have a header\n'.repeat(20));
    await assert.rejects(Engine.open({ database: `sqlite:${path}` }), (err: unknown) => {
      assert.ok(err instanceof DatabaseConnectionError, `got ${String(err)}`);
      assert.equal(err.code, 'DATABASE_CONNECTION');
      assert.equal(err.retryable, false);
      assert.equal((err.cause as { code?: string }).code, 'SQLITE_NOTADB');
      assert.match(err.message, /not-a-database\.db/);
      return true;
    });
  });
});
