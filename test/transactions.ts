import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, afterEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';
import pg from 'pg';
import type { Context } from '../src/index.js';
import { cairnError, connectionsGone } from './helpers/assertions.js';
import type { Store, Target } from './helpers/targets.js';
import { until } from './helpers/worker.js';
import { appRows, appTable, CONFIG_ENV, createAppTable, EXECUTOR_ID, type TxChildConfig, type TxKill } from './fixtures/transaction-child.js';

const CHILD = fileURLToPath(new URL('./fixtures/transaction-child.ts', import.meta.url));

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** What a transaction function inserts, on either database. */
function inserter(target: Target, store: Store) {
  const table = appTable(store);
  return (workflowId: string, kind: string, amount = 1) =>
    target.kind === 'sqlite'
      ? (tx: Database.Database) => void tx.prepare(`INSERT INTO ${table} (workflow_id, kind, amount, pid) VALUES (?, ?, ?, ?)`).run(workflowId, kind, amount, process.pid)
      : async (tx: pg.PoolClient) => void (await tx.query(`INSERT INTO ${table} (workflow_id, kind, amount, pid) VALUES ($1, $2, $3, $4)`, [workflowId, kind, amount, process.pid]));
}

/** ctx.transaction: the function's writes and the checkpoint commit together, through crashes too. */
export function defineTransactionSuite(target: Target): void {
  describe(`transactional steps on ${target.kind}`, { skip: target.skip }, () => {
    const live = new Set<ChildProcess>();
    let children = 0;
    afterEach(() => target.closeAll());
    after(async () => {
      for (const child of live) child.kill('SIGKILL');
      await target.dispose();
    });

    function runChild(cfg: TxChildConfig): Promise<Run> {
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, [CONFIG_ENV]: JSON.stringify(cfg) }, stdio: ['ignore', 'pipe', 'pipe'] });
        live.add(child);
        let stdout = '';
        let stderr = '';
        const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          stdout += chunk;
          if (cfg.kill?.by === 'parent' && /^REACHED /m.test(stdout)) child.kill('SIGKILL');
        });
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
        child.on('error', reject);
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          live.delete(child);
          resolve({ code, signal, stdout, stderr });
        });
      });
    }

    // `before`: the app rows the crash left, which says the kill came where it was meant to.
    const none: string[] = [];
    const debit = ['tx-1:debit'];
    const both = ['tx-1:credit', 'tx-1:debit'];
    const scenarios: Array<{ name: string; kill: TxKill; before?: string[]; ids?: string[]; flaky?: boolean; postgresOnly?: boolean }> = [
      { name: 'in the step before the transaction', kill: { point: 'before-tx', by: 'self' }, before: none },
      { name: 'in the function, before its insert', kill: { point: 'fn-start', by: 'self' }, before: none },
      { name: 'in the function, after its insert', kill: { point: 'fn-after-insert', by: 'self' }, before: none },
      { name: 'in the function, after its insert, by the parent', kill: { point: 'fn-after-insert', by: 'parent' }, before: none },
      { name: 'after the function returned, before the checkpoint is sent', kill: { point: 'before-checkpoint', by: 'self' }, before: none },
      { name: 'after the checkpoint, before COMMIT is sent', kill: { point: 'before-commit', by: 'self' }, before: none, postgresOnly: true },
      { name: 'after the commit, in the next step', kill: { point: 'after-commit', by: 'self' }, before: debit },
      { name: "in the second transaction's function, after its insert", kill: { point: 'fn2-after-insert', by: 'self' }, before: debit },
      { name: 'after the second commit', kill: { point: 'after-second-commit', by: 'self' }, before: both },
      { name: 'before the workflow ends', kill: { point: 'before-end', by: 'self' }, before: both },
      { name: 'in the retry of a function that failed after its insert', kill: { point: 'fn-after-insert', call: 2, by: 'self' }, before: none, flaky: true },
      { name: 'in one of three concurrent transactions', kill: { point: 'fn-after-insert', workflowId: 'tx-b', by: 'self' }, ids: ['tx-a', 'tx-b', 'tx-c'] },
    ];
    for (const sc of scenarios) {
      test(`SIGKILL ${sc.name}: each row exactly once after recovery`, { skip: sc.postgresOnly && target.kind !== 'postgres' ? 'SQLite commits inside one synchronous call' : false, timeout: 120_000 }, async () => {
        const store = await target.fresh();
        await createAppTable(store);
        const ids = sc.ids ?? ['tx-1'];
        const applicationName = `tx-child-${process.pid}-${++children}`;
        const crashed = await runChild({ store, applicationName, ids, kill: sc.kill, ...(sc.flaky && { flaky: true }) });
        assert.equal(crashed.signal, 'SIGKILL', `the child was to die at ${sc.kill.point}: code ${crashed.code}, ${crashed.stderr}`);
        await connectionsGone(store, applicationName);
        const before = await appRows(store);
        if (sc.before) assert.deepEqual(before, sc.before, `the rows the crash at ${sc.kill.point} left`);
        else assert.ok(!before.includes('tx-b:debit'), 'the transaction killed in its function committed nothing');
        const recovered = await runChild({ store, applicationName: `${applicationName}-r`, ids });
        assert.equal(recovered.code, 0, recovered.stderr);
        const results = JSON.parse(/^DONE (.*)$/m.exec(recovered.stdout)![1]!) as Array<{ debit: { amount: number }; credit: { amount: number } }>;
        assert.deepEqual(results.map((r) => [r.debit.amount, r.credit.amount]), ids.map((_, i) => [100 + i, 100 + i]));
        const rows = await appRows(store);
        assert.deepEqual(rows, ids.flatMap((id) => [`${id}:credit`, `${id}:debit`]), `rows after recovery (before it: ${before.join(', ')})`);
        const engine = await target.open(store, { executorId: EXECUTOR_ID, appVersion: 'tx-v1' });
        for (const id of ids) {
          const steps = await engine.listSteps(id);
          assert.deepEqual(steps.map((s) => s.name), ['prep', 'debit', 'middle', 'credit', 'final']);
          assert.equal((await engine.getWorkflow(id)).status, 'SUCCESS');
        }
      });
    }

    test('a replay returns the recorded result without running the function; a failing function rolls back and is retried', async () => {
      const store = await target.fresh();
      await createAppTable(store);
      const engine = await target.open(store, { appVersion: 'v1' });
      const insert = inserter(target, store);
      let failNext = true;
      let boomFails = true;
      let calls = 0;
      const wf = engine.workflow('pay', async (ctx: Context, id: string) => {
        const first = await ctx.transaction<{ n: number }, never>(
          'first',
          target.kind === 'sqlite'
            ? (tx: Database.Database) => {
                calls++;
                (insert(id, 'first') as (tx: Database.Database) => void)(tx);
                if (failNext) {
                  failNext = false;
                  throw new Error('fails after its insert');
                }
                return { n: calls };
              }
            : async (tx: pg.PoolClient) => {
                calls++;
                await (insert(id, 'first') as (tx: pg.PoolClient) => Promise<void>)(tx);
                if (failNext) {
                  failNext = false;
                  throw new Error('fails after its insert');
                }
                return { n: calls };
              },
          { retry: { maxAttempts: 3, minDelayMs: 1 } },
        );
        await ctx.step('boom', () => {
          if (boomFails) throw new Error('a later step fails');
        });
        return first;
      });
      await assert.rejects(wf.run('w1', { id: 'w1' }), /a later step fails/);
      assert.deepEqual(await appRows(store), ['w1:first'], 'the failed attempt left nothing');
      const steps = await engine.listSteps('w1');
      assert.equal(steps[0]!.name, 'first');
      assert.equal(steps[0]!.attempts, 2);
      assert.deepEqual(steps[0]!.output, { n: 2 });
      // The retry replays the transaction: its function does not run again.
      boomFails = false;
      await engine.retry('w1', { fromStep: 2 });
      assert.deepEqual(await engine.handle('w1').result(), { n: 2 });
      assert.equal(calls, 2, 'the transaction function did not run again');
      assert.deepEqual(await appRows(store), ['w1:first']);

      // Every attempt failing: nothing committed, and the step's error is recorded.
      const never = engine.workflow('never', async (ctx: Context, id: string) =>
        ctx.transaction<never, never>('nope', target.kind === 'sqlite'
          ? (tx: Database.Database) => {
              (insert(id, 'nope') as (tx: Database.Database) => void)(tx);
              throw new Error('always fails');
            }
          : async (tx: pg.PoolClient) => {
              await (insert(id, 'nope') as (tx: pg.PoolClient) => Promise<void>)(tx);
              throw new Error('always fails');
            }, { retry: { maxAttempts: 2, minDelayMs: 1 } }),
      );
      await assert.rejects(never.run('n1', { id: 'n1' }), cairnError('STEP_RETRIES_EXCEEDED', /nope/));
      assert.deepEqual(await appRows(store), ['w1:first']);
    });

    test('bad input: not a function, nested Context calls, an async function on SQLite, an unstorable result', async () => {
      const store = await target.fresh();
      await createAppTable(store);
      const engine = await target.open(store);
      const insert = inserter(target, store);
      const probe = engine.workflow('probe', async (ctx: Context, kind: string) => {
        if (kind === 'not-a-function') return ctx.transaction('x', 42 as never);
        if (kind === 'blank-name') return ctx.transaction('', () => 1);
        if (kind === 'nested') return ctx.transaction('outer', () => ctx.transaction('inner', () => 1));
        if (kind === 'step-inside') return ctx.transaction('outer', () => ctx.step('inner', () => 1));
        if (kind === 'unstorable') return ctx.transaction('fn-result', (tx: unknown) => (void tx, () => 'a function'));
        return ctx.transaction('async', async (tx: Database.Database & pg.PoolClient) => {
          if (target.kind === 'sqlite') (insert('async', 'first') as (t: Database.Database) => void)(tx);
          await new Promise((r) => setTimeout(r, 1));
          if (target.kind === 'sqlite') (insert('async', 'late') as (t: Database.Database) => void)(tx);
          return 'done';
        });
      });
      await assert.rejects(probe.run('not-a-function'), cairnError('INVALID_ARGUMENT', /transaction function must be a function, got 42/));
      await assert.rejects(probe.run('blank-name'), cairnError('INVALID_ARGUMENT', /transaction name/));
      await assert.rejects(probe.run('nested'), cairnError('CONTEXT_USAGE', /ctx\.transaction\('inner'\) was called inside step 'outer'/));
      await assert.rejects(probe.run('step-inside'), cairnError('CONTEXT_USAGE', /ctx\.step\('inner'\) was called inside step 'outer'/));
      await assert.rejects(probe.run('unstorable'), cairnError('SERIALIZATION', /the output of transaction 'fn-result'/));
      if (target.kind === 'sqlite') {
        await assert.rejects(probe.run('async', { id: 'async-1' }), cairnError('INVALID_ARGUMENT', /on SQLite the function of ctx\.transaction must be synchronous/));
        await new Promise((r) => setTimeout(r, 20));
        // What ran before the first await was rolled back; what ran after it is the caller's own doing.
        assert.ok(!(await appRows(store)).includes('async:first'));
      } else {
        assert.equal(await probe.run('async'), 'done');
      }
    });

    test("start and enqueue inside the caller's transaction: committed runs, rolled back leaves nothing", { timeout: 60_000 }, async () => {
      const store = await target.fresh();
      await createAppTable(store);
      const engine = await target.open(store, { appVersion: 'v1', leaseMs: 60_000 });
      const ran: string[] = [];
      const order = engine.workflow('order', async (ctx: Context, n: number) => ctx.step('ship', () => (ran.push(ctx.workflowId), n * 2)));
      engine.queue('orders', { concurrency: 4 });
      await engine.launch();
      const table = appTable(store);
      /** Runs `body` in a transaction of the caller's own connection, committing or rolling back. */
      let within: (commit: boolean, body: (tx: unknown) => Promise<void>) => Promise<void>;
      let notes: string[] = [];
      let cleanup = async () => {};
      if (target.kind === 'sqlite') {
        const { default: Sqlite } = await import('better-sqlite3');
        const db = new Sqlite(store.database.slice('sqlite:'.length), { timeout: 10_000 });
        within = async (commit, body) => {
          db.exec('BEGIN IMMEDIATE');
          await body(db);
          db.exec(commit ? 'COMMIT' : 'ROLLBACK');
        };
        cleanup = async () => void db.close();
      } else {
        const client = new pg.Client({ connectionString: store.database });
        await client.connect();
        const listener = new pg.Client({ connectionString: store.database });
        await listener.connect();
        await listener.query(`LISTEN "cairn_${store.schema}"`);
        listener.on('notification', (n) => notes.push(n.payload ?? ''));
        within = async (commit, body) => {
          await client.query('BEGIN');
          await body(client);
          await client.query(commit ? 'COMMIT' : 'ROLLBACK');
        };
        cleanup = async () => {
          await client.end();
          await listener.end();
        };
      }
      const app = (tx: unknown, id: string) =>
        target.kind === 'sqlite'
          ? void (tx as Database.Database).prepare(`INSERT INTO ${table} (workflow_id, kind, amount, pid) VALUES (?, 'order', 1, ?)`).run(id, process.pid)
          : (tx as pg.Client).query(`INSERT INTO ${table} (workflow_id, kind, amount, pid) VALUES ($1, 'order', 1, $2)`, [id, process.pid]);
      try {
        let committed!: Awaited<ReturnType<typeof order.start>>;
        await within(true, async (tx) => {
          await app(tx, 'o-commit');
          committed = await order.start(21, { id: 'o-commit', transaction: tx });
        });
        assert.equal(await committed.result(), 42);
        // An id already taken, read through the caller's transaction: its handle, nothing inserted.
        await within(false, async (tx) => {
          const again = await order.start(99, { id: 'o-commit', transaction: tx });
          assert.equal(await again.result(), 42);
        });
        let queued!: Awaited<ReturnType<typeof order.start>>;
        await within(true, async (tx) => {
          queued = await order.start(5, { id: 'o-queued', queue: 'orders', transaction: tx });
        });
        assert.equal(await queued.result(), 10);

        notes = [];
        await within(false, async (tx) => {
          await app(tx, 'o-rollback');
          await order.start(1, { id: 'o-rollback', transaction: tx });
          await order.start(2, { id: 'o-rollback-q', queue: 'orders', transaction: tx });
        });
        await new Promise((r) => setTimeout(r, 500));
        assert.deepEqual(ran.sort(), ['o-commit', 'o-queued']);
        await assert.rejects(engine.getWorkflow('o-rollback'), cairnError('WORKFLOW_NOT_FOUND', /o-rollback/));
        await assert.rejects(engine.getWorkflow('o-rollback-q'), cairnError('WORKFLOW_NOT_FOUND', /o-rollback-q/));
        assert.deepEqual(await appRows(store), ['o-commit:order']);
        if (target.kind === 'postgres') assert.deepEqual(notes.filter((n) => n.includes('o-rollback')), [], 'no notification of a rolled-back start');

        // Bad input: nothing is inserted.
        await assert.rejects(order.start(1, { id: 'o-bad', transaction: 'BEGIN' }), cairnError('INVALID_ARGUMENT', /transaction must be/));
        if (target.kind === 'sqlite') {
          const { default: Sqlite } = await import('better-sqlite3');
          const idle = new Sqlite(store.database.slice('sqlite:'.length));
          await assert.rejects(order.start(1, { id: 'o-bad', transaction: idle }), cairnError('INVALID_ARGUMENT', /no transaction open/));
          idle.close();
          const other = new Sqlite(':memory:');
          other.exec('BEGIN');
          await assert.rejects(order.start(1, { id: 'o-bad', transaction: other }), cairnError('INVALID_ARGUMENT', /on Cairn's own file/));
          other.close();
        } else {
          await assert.rejects(order.start(1, { id: 'o-bad', transaction: { query: 42 } }), cairnError('INVALID_ARGUMENT', /transaction must be a pg client/));
        }
        await assert.rejects(engine.getWorkflow('o-bad'), cairnError('WORKFLOW_NOT_FOUND', /o-bad/));
      } finally {
        await cleanup();
      }
    });

    if (target.kind === 'postgres') {
      test('a cancelled workflow commits nothing; serialization failures run the transaction again', async () => {
        const store = await target.fresh();
        await createAppTable(store);
        const engine = await target.open(store, { appVersion: 'v1' });
        const insert = inserter(target, store);
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        let entered = false;
        const slow = engine.workflow('slow', async (ctx: Context) =>
          ctx.transaction('held', async (tx: pg.PoolClient) => {
            await (insert('slow-1', 'held') as (tx: pg.PoolClient) => Promise<void>)(tx);
            entered = true;
            await gate;
            return 'committed?';
          }),
        );
        const handle = await slow.start(undefined, { id: 'slow-1' });
        await until('the transaction function is running', () => entered);
        await engine.cancel('slow-1');
        release();
        await assert.rejects(handle.result(), cairnError('WORKFLOW_CANCELLED', /slow-1/));
        assert.deepEqual(await appRows(store), [], 'the checkpoint missed, so the insert rolled back');
        assert.deepEqual(await engine.listSteps('slow-1'), []);

        // Two serializable transactions that read what the other writes: one loses and runs again.
        const table = appTable(store);
        let rounds = 0;
        let arrived = 0;
        let bothIn!: () => void;
        const together = new Promise<void>((r) => (bothIn = r));
        const tally = engine.workflow('tally', async (ctx: Context, kind: string) =>
          ctx.transaction('count-then-insert', async (tx: pg.PoolClient) => {
            rounds++;
            await tx.query('SET TRANSACTION ISOLATION LEVEL SERIALIZABLE');
            const seen = (await tx.query(`SELECT count(*)::int AS n FROM ${table} WHERE kind LIKE 'tally%'`)).rows[0] as { n: number };
            if (++arrived === 2) bothIn();
            await Promise.race([together, new Promise((r) => setTimeout(r, 2_000))]);
            await tx.query(`INSERT INTO ${table} (workflow_id, kind, amount, pid) VALUES ($1, $2, $3, $4)`, [ctx.workflowId, kind, seen.n, process.pid]);
            return seen.n;
          }),
        );
        const counts = await Promise.all([tally.run('tally-a', { id: 'tally-a' }), tally.run('tally-b', { id: 'tally-b' })]);
        assert.deepEqual([...counts].sort(), [0, 1], 'the loser ran again and saw the winner');
        assert.equal(rounds, 3);
        assert.deepEqual((await appRows(store)).filter((r) => r.includes('tally')), ['tally-a:tally-a', 'tally-b:tally-b']);
      });
    }
  });
}
