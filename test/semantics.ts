import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { WorkflowCancelledError, type Context, type Engine } from '../src/index.js';
import { cairnError } from './helpers/assertions.js';
import type { Store, Target } from './helpers/targets.js';

function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Polls `check` every 10 ms until it holds, failing after `ms`. */
async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting until ${what}`);
    await sleep(10);
  }
}

/** Runs one SQL statement against a store directly, outside Cairn. */
async function execute(target: Target, store: Store, sql: { sqlite: string; postgres: string }): Promise<void> {
  if (target.kind === 'sqlite') {
    const db = new Database(store.database.slice('sqlite:'.length));
    try {
      db.prepare(sql.sqlite).run();
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: store.database });
  await client.connect();
  try {
    await client.query(`SET search_path TO "${store.schema}"`);
    await client.query(sql.postgres);
  } finally {
    await client.end();
  }
}

const table = (target: Target, name: string) => (target.kind === 'sqlite' ? `cairn_${name}` : name);

/** Semantics at the edges: cancellation mid-step, forks, close() and waits across restarts, children on queues. */
export function defineSemanticsSuite(target: Target): void {
  describe(`semantics at the edges on ${target.kind}`, { skip: target.skip }, () => {
    afterEach(() => target.closeAll());
    after(() => target.dispose());

    test('a step whose body finishes after its workflow was cancelled is recorded, so resume does not run it again', async () => {
      const engine = await target.open(await target.fresh());
      const ran: number[] = [];
      const inBody = deferred();
      const release = deferred();
      const wf = engine.workflow('charge-then-ship', async (ctx: Context) => {
        for (let i = 0; i < 4; i++) {
          await ctx.step(`s${i}`, async () => {
            ran.push(i);
            if (i === 1 && ran.filter((r) => r === 1).length === 1) {
              inBody.resolve();
              await release.promise;
            }
            return i;
          });
        }
        return 'done';
      });
      const h = await wf.start(undefined, { id: 'cancel-mid-step' });
      await inBody.promise;
      await engine.cancel('cancel-mid-step');
      release.resolve();
      await assert.rejects(h.result(), (err) => err instanceof WorkflowCancelledError);
      // Stopped before the next step, and the finished one is on record.
      assert.deepEqual(ran, [0, 1]);
      assert.deepEqual(
        (await engine.listSteps('cancel-mid-step')).map((s) => [s.stepId, s.output]),
        [
          [1, 0],
          [2, 1],
        ],
      );
      const resumed = await engine.resume('cancel-mid-step');
      assert.equal(await resumed.result(), 'done');
      assert.deepEqual(ran, [0, 1, 2, 3]);
    });

    test('a step that fails after its workflow was cancelled is not recorded, and runs again on resume', async () => {
      const engine = await target.open(await target.fresh());
      let calls = 0;
      const inBody = deferred();
      const wf = engine.workflow('aborts-on-cancel', async (ctx: Context) =>
        ctx.step('watch', async ({ signal }) => {
          calls++;
          if (calls > 1) return 'second run';
          inBody.resolve();
          await new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
        }),
      );
      const h = await wf.start(undefined, { id: 'cancel-fails' });
      await inBody.promise;
      await engine.cancel('cancel-fails');
      await assert.rejects(h.result(), (err) => err instanceof WorkflowCancelledError);
      assert.deepEqual(await engine.listSteps('cancel-fails'), []);
      assert.equal(await (await engine.resume('cancel-fails')).result(), 'second run');
      assert.equal(calls, 2);
    });

    test('a fork carries the events and stream values written before fromStep, and not those after', async () => {
      const engine = await target.open(await target.fresh());
      const wf = engine.workflow('progress', async (ctx: Context) => {
        await ctx.setEvent('stage', 'one'); // 1
        await ctx.writeStream('log', 'a'); // 2
        await ctx.setEvent('stage', 'two'); // 3
        await ctx.writeStream('log', 'b'); // 4
        const forked = ctx.workflowId !== 'progress-1';
        await ctx.setEvent('stage', forked ? 'fork-three' : 'three'); // 5
        await ctx.writeStream('log', forked ? 'fork-c' : 'c'); // 6
        await ctx.closeStream('log'); // 7
        return 'ok';
      });
      const gate = deferred();
      const slow = engine.workflow('progress-slow', async (ctx: Context) => {
        await ctx.setEvent('stage', 'one'); // 1
        await ctx.writeStream('log', 'a'); // 2
        await ctx.setEvent('stage', 'two'); // 3
        if (ctx.workflowId === 'slow-fork') await gate.promise;
        await ctx.setEvent('stage', 'three'); // 4
        return 'ok';
      });
      await wf.run(undefined, { id: 'progress-1' });
      assert.equal(await engine.getEvent('progress-1', 'stage', 0), 'three');

      const fork = await engine.fork('progress-1', { fromStep: 4, id: 'progress-fork' });
      // The fork replays steps 1-3 and runs 4 on, so at its end it holds its own values.
      assert.equal(await fork.result(), 'ok');
      assert.equal(await engine.getEvent('progress-fork', 'stage', 0), 'fork-three');
      const values: unknown[] = [];
      for await (const v of engine.readStream('progress-fork', 'log')) values.push(v);
      assert.deepEqual(values, ['a', 'b', 'fork-c']);

      // A fork that has not run past the fork point yet sees the values set before it.
      await slow.run(undefined, { id: 'slow-1' });
      const slowFork = await engine.fork('slow-1', { fromStep: 4, id: 'slow-fork' });
      assert.equal(await engine.getEvent('slow-fork', 'stage', 0), 'two');
      gate.resolve();
      assert.equal(await slowFork.result(), 'ok');
      assert.equal(await engine.getEvent('slow-fork', 'stage', 0), 'three');
      // The source keeps its own values.
      assert.equal(await engine.getEvent('slow-1', 'stage', 0), 'three');
    });

    test('a fork into an id that exists is refused, and the existing workflow is unchanged', async () => {
      const engine = await target.open(await target.fresh());
      const wf = engine.workflow('forkable', async (ctx: Context, n: number) => ctx.step('double', () => n * 2));
      await wf.run(1, { id: 'f-source' });
      await wf.run(5, { id: 'f-taken' });
      await assert.rejects(engine.fork('f-source', { fromStep: 1, id: 'f-taken' }), cairnError('INVALID_ARGUMENT', /f-taken.*already taken/, { argument: 'id' }));
      const taken = await engine.getWorkflow('f-taken');
      assert.equal(taken.input, 5);
      assert.equal(taken.output, 10);
    });

    test('a workflow that starts and awaits a child while close() drains finishes, child included', async () => {
      const store = await target.fresh();
      const engine = await target.open(store);
      const inStep = deferred();
      const child = engine.workflow('drain-child', async (ctx: Context, n: number) => ctx.step('inc', () => n + 1));
      const parent = engine.workflow('drain-parent', async (ctx: Context) => {
        await ctx.step('slow', async () => {
          inStep.resolve();
          await sleep(300);
        });
        return ctx.runChild(child, 41);
      });
      const h = await parent.start(undefined, { id: 'drain-parent' });
      await inStep.promise;
      await engine.close({ timeoutMs: 10_000 });
      const reader = await target.open(store);
      assert.equal((await reader.getWorkflow('drain-parent')).status, 'SUCCESS');
      assert.equal((await reader.getWorkflow('drain-parent')).output, 42);
      assert.equal((await reader.getWorkflow('drain-parent-2')).status, 'SUCCESS');
      // The handle made before the close answers from the run that finished during it.
      assert.equal(await h.result(), 42);
    });

    test('close() releases workflows parked in sleep and recv at once, and they resume after a restart', async () => {
      const store = await target.fresh();
      const build = (engine: Engine) => ({
        sleeper: engine.workflow('long-sleep', async (ctx: Context) => {
          await ctx.sleep(60_000);
          return 'woke';
        }),
        waiter: engine.workflow('long-recv', async (ctx: Context) => ctx.recv('go', 60_000)),
        stepper: engine.workflow('in-a-step', async (ctx: Context) => {
          await ctx.step('slow', async () => {
            await sleep(400);
            return 'slow done';
          });
          await ctx.sleep(60_000);
          return 'never here before the restart';
        }),
      });
      const engine = await target.open(store);
      const a = build(engine);
      await a.sleeper.start(undefined, { id: 'sleeper' });
      await a.waiter.start(undefined, { id: 'waiter' });
      await a.stepper.start(undefined, { id: 'stepper' });
      await eventually('all three are parked or stepping', async () => (await engine.listSteps('sleeper')).length === 1);
      const began = Date.now();
      await engine.close({ timeoutMs: 20_000 });
      // The step in flight took 400 ms; the parked sleep and recv held nothing up to the 20 s limit.
      assert.ok(Date.now() - began < 10_000, `close() took ${Date.now() - began} ms`);

      const again = await target.open(store);
      build(again);
      for (const id of ['sleeper', 'waiter', 'stepper']) assert.equal((await again.getWorkflow(id)).status, 'PENDING');
      assert.deepEqual(
        (await again.listSteps('stepper')).map((s) => [s.name, s.output]),
        [['slow', 'slow done'], ['cairn.sleep', (await again.listSteps('stepper'))[1]!.output]],
      );
      const handles = await again.recover();
      assert.equal(handles.length, 3);
      await again.send('waiter', 'now', 'go');
      assert.equal(await again.handle('waiter').result(), 'now');
    });

    test('a recv timeout keeps its deadline across a restart instead of starting again', async () => {
      const store = await target.fresh();
      const timeoutMs = 3_000;
      const engine = await target.open(store);
      const started = Date.now();
      await engine.workflow('timed-recv-2', async (ctx: Context) => ctx.recv('never', timeoutMs)).start(undefined, { id: 'timed' });
      // Parked, with its deadline recorded.
      await sleep(2_000);
      await engine.close({ timeoutMs: 100 });
      const again = await target.open(store);
      again.workflow('timed-recv-2', async (ctx: Context) => ctx.recv('never', timeoutMs));
      const restartedAt = Date.now();
      await again.recover();
      assert.equal(await again.handle('timed').result(), null);
      const [recv] = await again.listSteps('timed');
      const info = await again.getWorkflow('timed');
      assert.equal(recv!.name, 'cairn.recv');
      // Timed out 3 s after it began waiting, not 3 s after the restart 2 s in: a timeout begun
      // again at the restart could not end before restartedAt + 3 s.
      const waited = recv!.completedAt.getTime() - info.createdAt.getTime();
      const sinceRestart = recv!.completedAt.getTime() - restartedAt;
      assert.ok(waited >= timeoutMs, `the recv timed out ${waited} ms after the start, before its timeout`);
      assert.ok(sinceRestart < timeoutMs, `the recv timed out ${waited} ms after the start, ${sinceRestart} ms after the restart: its deadline began again`);
      assert.ok(Date.now() - started >= timeoutMs);
    });

    test('a getEvent timeout keeps its deadline across a restart', async () => {
      const store = await target.fresh();
      const timeoutMs = 3_000;
      const body = async (ctx: Context) => ctx.getEvent('nobody', 'never', timeoutMs);
      const engine = await target.open(store);
      await engine.workflow('timed-event', body).start(undefined, { id: 'timed-event' });
      await sleep(2_000);
      await engine.close({ timeoutMs: 100 });
      const again = await target.open(store);
      again.workflow('timed-event', body);
      const restartedAt = Date.now();
      await again.recover();
      assert.equal(await again.handle('timed-event').result(), null);
      const [wait] = await again.listSteps('timed-event');
      const waited = wait!.completedAt.getTime() - (await again.getWorkflow('timed-event')).createdAt.getTime();
      const sinceRestart = wait!.completedAt.getTime() - restartedAt;
      assert.ok(waited >= timeoutMs, `the getEvent timed out ${waited} ms after the start, before its timeout`);
      assert.ok(sinceRestart < timeoutMs, `the getEvent timed out ${waited} ms after the start, ${sinceRestart} ms after the restart: its deadline began again`);
    });

    test('a child started on a queue keeps its parent link and is cancelled with its parent', async () => {
      const engine = await target.open(await target.fresh());
      engine.queue('children', { concurrency: 1 });
      const gate = deferred();
      const child = engine.workflow('queued-child', async (ctx: Context, n: number) =>
        ctx.step('work', async () => {
          if (n === 2) await gate.promise;
          return n * 10;
        }),
      );
      const parent = engine.workflow('queue-parent', async (ctx: Context) => {
        const first = await ctx.runChild(child, 1, { queue: 'children' });
        const second = await ctx.startChild(child, 2, { queue: 'children', priority: 3 });
        const third = await ctx.startChild(child, 3, { queue: 'children', priority: 5 });
        return [first, await second.result(), await third.result()];
      });
      await engine.launch();
      const h = await parent.start(undefined, { id: 'qp' });
      await eventually('the second child runs and the third is enqueued', async () => {
        const children = await engine.listWorkflows({ queue: 'children' });
        return children.some((w) => w.id === 'qp-3' && w.status === 'PENDING') && children.some((w) => w.id === 'qp-4');
      });
      const children = await engine.listWorkflows({ queue: 'children' });
      assert.deepEqual(
        children.map((c) => [c.id, c.parentId, c.queue]),
        [
          ['qp-1', 'qp', 'children'],
          ['qp-3', 'qp', 'children'],
          ['qp-4', 'qp', 'children'],
        ],
      );
      assert.equal((await engine.getWorkflow('qp-4')).status, 'ENQUEUED');
      await engine.cancel('qp');
      gate.resolve();
      await assert.rejects(h.result(), (err) => err instanceof WorkflowCancelledError);
      assert.equal((await engine.getWorkflow('qp-4')).status, 'CANCELLED');
      assert.equal((await engine.getWorkflow('qp-1')).output, 10);
    });

    test('a child on a queue no engine declared is refused with a clear error', async () => {
      const engine = await target.open(await target.fresh());
      const child = engine.workflow('orphan-child', async () => 1);
      const parent = engine.workflow('orphan-parent', async (ctx: Context) => ctx.startChild(child, undefined, { queue: 'nowhere' }));
      const noQueue = engine.workflow('priority-without-queue', async (ctx: Context) => ctx.startChild(child, undefined, { priority: 1 }));
      await assert.rejects(parent.run(undefined), cairnError('INVALID_ARGUMENT', /queue 'nowhere' is not declared/));
      await assert.rejects(noQueue.run(undefined), cairnError('INVALID_ARGUMENT', /priority applies to a child started on a queue/));
    });

    test('a schedule for a workflow this engine does not register, with no queue, is refused', async () => {
      const engine = await target.open(await target.fresh());
      const known = engine.workflow('known', async () => 'ok');
      engine.queue('elsewhere');
      await assert.rejects(
        engine.schedules.create('typo', '0 * * * *', 'knwon'),
        cairnError('INVALID_ARGUMENT', /workflow 'knwon', which is not registered in this engine/, { argument: 'workflow' }),
      );
      assert.deepEqual(await engine.schedules.list(), []);
      // A queue's workers may register it; and a registered one is accepted.
      await engine.schedules.create('remote', '0 * * * *', 'runs-on-workers', { queue: 'elsewhere' });
      await engine.schedules.create('local', '0 * * * *', known);
      await assert.rejects(
        engine.schedules.update('local', { workflow: 'knwon' }),
        cairnError('INVALID_ARGUMENT', /not registered in this engine/),
      );
      assert.deepEqual((await engine.schedules.list()).map((s) => [s.name, s.workflowName]), [
        ['local', 'known'],
        ['remote', 'runs-on-workers'],
      ]);
    });

    test('workflows claimed in one batch start in priority order', async () => {
      const store = await target.fresh();
      const submitter = await target.open(store);
      submitter.queue('ordered', { concurrency: 1 });
      await submitter.launch();
      await submitter.close();
      const engine = await target.open(store);
      const order: number[] = [];
      const wf = engine.workflow('ordered-job', async (ctx: Context, p: number) => ctx.step('note', () => void order.push(p)));
      engine.queue('ordered', { workerConcurrency: 100 });
      const priorities = [5, 3, 9, 1, 7, 2, 8, 0, 6, 4];
      const handles = [];
      for (const p of priorities) handles.push(await wf.start(p, { queue: 'ordered', priority: p }));
      await engine.launch();
      await Promise.all(handles.map((h) => h.result()));
      assert.deepEqual(order, [...priorities].sort((a, b) => a - b));
    });

    test('a debounce whose maxWaitMs is below periodMs is accepted and starts within maxWaitMs', async () => {
      const engine = await target.open(await target.fresh());
      const q = engine.queue('debounced');
      const wf = engine.workflow('reindex', async (_ctx: Context, n: number) => n);
      await engine.launch();
      const first = await q.debounce(wf, 'k', 1, { periodMs: 600_000, maxWaitMs: 300 });
      const second = await q.debounce(wf, 'k', 2, { periodMs: 600_000, maxWaitMs: 300 });
      assert.equal(first.id, second.id);
      assert.equal(await second.result(), 2);
    });

    test('one corrupt workflow input fails only its own workflow, in recovery and in a queue claim', async () => {
      const store = await target.fresh();
      const first = await target.open(store);
      const gate = deferred();
      const body = async (ctx: Context, n: number) => {
        await ctx.step('wait', () => gate.promise);
        return n;
      };
      const wf = first.workflow('fragile', body);
      for (const id of ['r1', 'r2', 'r3']) await wf.start(Number(id.slice(1)), { id });
      await first.close({ timeoutMs: 10 });
      gate.resolve();
      await execute(target, store, {
        sqlite: `UPDATE ${table(target, 'workflows')} SET input = '{"json":' WHERE id = 'r2'`,
        postgres: `UPDATE ${table(target, 'workflows')} SET input = '{"json":' WHERE id = 'r2'`,
      });
      const engine = await target.open(store);
      const again = engine.workflow('fragile', body);
      engine.queue('fragile-q');
      const handles = await engine.recover();
      assert.equal(handles.length, 3);
      const results = await Promise.allSettled(handles.map((h) => h.result()));
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      );
      assert.equal((await engine.getWorkflow('r2')).status, 'ERROR');

      // The same on a queue: the rows claimed after the corrupt one still run.
      const queued = [];
      for (const n of [4, 5, 6]) queued.push(await again.start(n, { queue: 'fragile-q', id: `q${n}` }));
      await execute(target, store, {
        sqlite: `UPDATE ${table(target, 'workflows')} SET input = 'not json' WHERE id = 'q5'`,
        postgres: `UPDATE ${table(target, 'workflows')} SET input = 'not json' WHERE id = 'q5'`,
      });
      await engine.launch();
      assert.equal(await queued[0]!.result(), 4);
      assert.equal(await queued[2]!.result(), 6);
      await assert.rejects(queued[1]!.result());
      assert.equal((await engine.getWorkflow('q5')).status, 'ERROR');
    });
  });
}
