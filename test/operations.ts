import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Client, type Context, type WorkflowInfo } from '../src/index.js';
import { cairnError } from './helpers/assertions.js';
import type { Store, Target } from './helpers/targets.js';
import { until } from './helpers/worker.js';

const ids = (rows: WorkflowInfo[]) => rows.map((w) => w.id);

/** Listing by every filter with keyset paging, deleting, gc, queue counts and the Client's fork and schedules. */
export function defineOperationsSuite(target: Target): void {
  describe(`operations on ${target.kind}`, { skip: target.skip }, () => {
    const clients: Client[] = [];
    afterEach(async () => {
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await target.closeAll();
    });
    after(() => target.dispose());
    const client = async (store: Store) => {
      const c = await Client.open({ database: store.database, ...(store.schema && { schema: store.schema }) });
      clients.push(c);
      return c;
    };

    test('listWorkflows pages by keyset in both orders without repeats or gaps, and filters by ids, prefix, executor, version, parent and completion', async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { appVersion: 'v7', executorId: 'exec-a' });
      const child = engine.workflow('child', async (ctx: Context, n: number) => ctx.step('double', () => n * 2));
      const parent = engine.workflow('parent', async (ctx: Context) => {
        const a = await ctx.startChild(child, 1, { id: 'kid-1' });
        const b = await ctx.startChild(child, 2, { id: 'kid-2' });
        return (await a.result()) + (await b.result());
      });
      const item = engine.workflow('item', async (ctx: Context, n: number) => ctx.step('echo', () => n));
      // Started together, many share a createdAt: the id breaks the tie.
      await Promise.all(Array.from({ length: 23 }, (_, i) => item.run(i, { id: `item-${String(i).padStart(2, '0')}` })));
      const afterItems = new Date();
      await new Promise((r) => setTimeout(r, 5));
      assert.equal(await parent.run(undefined, { id: 'parent-1' }), 6);

      for (const order of ['asc', 'desc'] as const) {
        const all = ids(await engine.listWorkflows({ name: 'item', order }));
        assert.equal(all.length, 23);
        const paged: string[] = [];
        let last: WorkflowInfo | undefined;
        for (;;) {
          const page = await engine.listWorkflows({ name: 'item', order, limit: 5, ...(last && { after: last }) });
          paged.push(...ids(page));
          if (page.length < 5) break;
          last = page.at(-1);
        }
        assert.deepEqual(paged, all, `keyset pages in ${order} order`);
      }
      // Rows inserted while paging neither repeat nor shift the pages already read.
      const first = await engine.listWorkflows({ name: 'item', order: 'desc', limit: 10 });
      await item.run(99, { id: 'item-late' });
      const second = await engine.listWorkflows({ name: 'item', order: 'desc', limit: 10, after: first.at(-1)! });
      assert.equal(second.length, 10);
      assert.ok(second.every((w) => !ids(first).includes(w.id) && w.id !== 'item-late'));

      assert.deepEqual(ids(await engine.listWorkflows({ ids: ['item-03', 'kid-2', 'nobody'] })).sort(), ['item-03', 'kid-2']);
      assert.deepEqual(ids(await engine.listWorkflows({ idPrefix: 'item-1' })), ['item-10', 'item-11', 'item-12', 'item-13', 'item-14', 'item-15', 'item-16', 'item-17', 'item-18', 'item-19']);
      // A prefix is matched exactly: no case folding, no wildcard.
      assert.deepEqual(ids(await engine.listWorkflows({ idPrefix: 'ITEM-1' })), []);
      assert.deepEqual(ids(await engine.listWorkflows({ idPrefix: 'item_1' })), []);
      for (const id of ['odd*1', 'odd?2', 'odd[3]', 'oddX', 'odd%5', 'odd_6']) await item.run(0, { id });
      for (const [prefix, expected] of [['odd*', ['odd*1']], ['odd?', ['odd?2']], ['odd[', ['odd[3]']], ['odd%', ['odd%5']], ['odd_', ['odd_6']], ['odd', ['odd%5', 'odd*1', 'odd?2', 'oddX', 'odd[3]', 'odd_6']]] as const) {
        assert.deepEqual(ids(await engine.listWorkflows({ idPrefix: prefix })).sort(), [...expected].sort(), `prefix ${prefix}`);
      }
      assert.deepEqual(ids(await engine.listWorkflows({ parentId: 'parent-1' })).sort(), ['kid-1', 'kid-2']);
      assert.equal((await engine.listWorkflows({ executorId: 'exec-a' })).length, 33);
      assert.equal((await engine.listWorkflows({ executorId: 'exec-b' })).length, 0);
      assert.equal((await engine.listWorkflows({ appVersion: 'v7', name: 'parent' })).length, 1);
      const late = ids(await engine.listWorkflows({ completedAfter: afterItems }));
      assert.deepEqual(late.sort(), ['item-late', 'kid-1', 'kid-2', 'odd%5', 'odd*1', 'odd?2', 'oddX', 'odd[3]', 'odd_6', 'parent-1'].sort());
      assert.equal((await engine.listWorkflows({ completedBefore: afterItems })).length, 23);

      await assert.rejects(engine.listWorkflows({ after: 'item-03' as never }), cairnError('INVALID_ARGUMENT', /after must be the last workflow of the previous page/));
      await assert.rejects(engine.listWorkflows({ after: { id: 'x', createdAt: 'yesterday' } as never }), cairnError('INVALID_ARGUMENT', /after\.createdAt must be a valid Date/));
      await assert.rejects(engine.listWorkflows({ ids: Array.from({ length: 1_001 }, (_, i) => `w${i}`) }), cairnError('INVALID_ARGUMENT', /names 1001 workflows; at most 1000/));
      await assert.rejects(engine.listWorkflows({ idPrefix: 'a\u0000b' }), cairnError('INVALID_ARGUMENT', /idPrefix/));
      await assert.rejects(engine.listWorkflows({ completedAfter: new Date(Number.NaN) }), cairnError('INVALID_ARGUMENT', /completedAfter must be a valid Date/));
    });

    test('deleteWorkflow removes a finished workflow with its steps, messages, events and streams, and refuses one still to run', async () => {
      const store = await target.fresh();
      const engine = await target.open(store);
      const talk = engine.workflow('talk', async (ctx: Context) => {
        await ctx.setEvent('stage', 'started');
        await ctx.writeStream('log', 'line 1');
        await ctx.closeStream('log');
        const msg = await ctx.recv<string>('go', 60_000);
        return ctx.step('finish', () => `got ${msg}`);
      });
      const kid = engine.workflow('kid', async (ctx: Context) => ctx.recv('go', 60_000));
      const mom = engine.workflow('mom', async (ctx: Context) => {
        await ctx.startChild(kid, undefined, { id: 'kid-waiting' });
        return 'left the child running';
      });
      const done = await talk.start(undefined, { id: 'talk-done' });
      await engine.send('talk-done', 'first', 'go');
      await engine.send('talk-done', 'unread', 'other');
      assert.equal(await done.result(), 'got first');
      const running = await talk.start(undefined, { id: 'talk-running' });
      await until('talk-running parked in recv', async () => (await engine.getEvent('talk-running', 'stage', 0)) === 'started');

      await assert.rejects(engine.deleteWorkflow('talk-running'), cairnError('INVALID_ARGUMENT', /workflow 'talk-running' is PENDING: only a finished workflow can be deleted; cancel it first/));
      await engine.deleteWorkflow('talk-done');
      await assert.rejects(engine.getWorkflow('talk-done'), cairnError('WORKFLOW_NOT_FOUND', /talk-done/));
      await assert.rejects(engine.deleteWorkflow('talk-done'), cairnError('WORKFLOW_NOT_FOUND', /talk-done/));
      assert.equal(await engine.getEvent('talk-done', 'stage', 0), null);
      const leftovers = await countStored(target, store, 'talk-done');
      assert.deepEqual(leftovers, { steps: 0, events: 0, streams: 0, messages: 0 });
      // The refused one lost nothing and still runs to the end.
      assert.ok((await countStored(target, store, 'talk-running')).events > 0);
      await engine.send('talk-running', 'second', 'go');
      assert.equal(await running.result(), 'got second');

      assert.equal(await mom.run(undefined, { id: 'mom' }), 'left the child running');
      await assert.rejects(engine.deleteWorkflow('mom'), cairnError('INVALID_ARGUMENT', /workflow 'mom' has child workflows still to run/));
      await engine.cancel('kid-waiting');
      await engine.deleteWorkflow('mom');
      await engine.deleteWorkflow('kid-waiting');
      await assert.rejects(engine.deleteWorkflow('bad\u0000id'), cairnError('INVALID_ARGUMENT', /workflow id/));
    });

    test('gc deletes finished workflows older than the cutoff in batches, never a running one or a parked one unless named', async () => {
      const store = await target.fresh();
      const engine = await target.open(store);
      let fail = true;
      const job = engine.workflow('job', async (ctx: Context, n: number) => {
        await ctx.step('one', () => n);
        return ctx.step('two', () => {
          if (fail && n % 5 === 0) throw new Error(`job ${n} failed`);
          return n;
        });
      });
      const waiter = engine.workflow('waiter', async (ctx: Context) => ctx.recv('go', 60_000));
      for (let i = 0; i < 30; i++) await job.run(i, { id: `old-${i}` }).catch(() => undefined);
      const parked = await waiter.start(undefined, { id: 'old-waiting' });
      await new Promise((r) => setTimeout(r, 20));
      const cutoff = new Date();
      await new Promise((r) => setTimeout(r, 20));
      fail = false;
      for (let i = 0; i < 4; i++) await job.run(i, { id: `new-${i}` });

      await assert.rejects(engine.gc({ olderThan: new Date(Date.now() + 60_000) }), cairnError('INVALID_ARGUMENT', /is in the future/));
      await assert.rejects(engine.gc({ olderThan: -1 }), cairnError('INVALID_ARGUMENT', /olderThan must be a finite number of milliseconds >= 0/));
      await assert.rejects(engine.gc({ olderThan: cutoff, statuses: ['PENDING'] }), cairnError('INVALID_ARGUMENT', /cannot include PENDING/));
      await assert.rejects(engine.gc({ olderThan: cutoff, batchSize: 0 }), cairnError('INVALID_ARGUMENT', /batchSize must be an integer >= 1/));
      await assert.rejects(engine.gc(undefined as never), cairnError('INVALID_ARGUMENT', /gc needs options with olderThan/));
      assert.equal((await engine.listWorkflows()).length, 35, 'bad calls deleted nothing');

      const progress: number[] = [];
      const errorsOnly = await engine.gc({ olderThan: cutoff, statuses: ['ERROR'], batchSize: 4 });
      assert.equal(errorsOnly.deleted, 6);
      const { deleted } = await engine.gc({ olderThan: cutoff, batchSize: 7, onProgress: (n) => progress.push(n) });
      assert.equal(deleted, 24);
      assert.deepEqual(progress, [7, 14, 21, 24]);
      const left = ids(await engine.listWorkflows()).sort();
      assert.deepEqual(left, ['new-0', 'new-1', 'new-2', 'new-3', 'old-waiting']);
      assert.deepEqual(await countStored(target, store, 'old-3'), { steps: 0, events: 0, streams: 0, messages: 0 });
      assert.equal((await engine.listSteps('new-2')).length, 2);
      // An age in ms works too; nothing finished before "now minus an hour".
      assert.equal((await engine.gc({ olderThan: 3_600_000 })).deleted, 0);
      await engine.send('old-waiting', 'go!', 'go');
      assert.equal(await parked.result(), 'go!');
    });

    test('maxPayloadBytes refuses a value too big to store, naming its largest part, and stores nothing of it', async () => {
      const store = await target.fresh();
      await assert.rejects(target.open(store, { maxPayloadBytes: 0 }), cairnError('INVALID_ARGUMENT', /maxPayloadBytes must be an integer >= 1/));
      await assert.rejects(target.open(store, { maxPayloadBytes: 2 ** 40 }), cairnError('INVALID_ARGUMENT', /maxPayloadBytes must be at most/));
      const engine = await target.open(store, { maxPayloadBytes: 4_096, appVersion: 'v1' });
      const big = 'x'.repeat(5_000);
      const wf = engine.workflow('payloads', async (ctx: Context, kind: string) => {
        if (kind === 'step') return ctx.step('fat', () => ({ small: 1, nested: { blob: big } }));
        if (kind === 'event') return ctx.setEvent('e', big);
        if (kind === 'wide') return ctx.step('wide', () => 'é'.repeat(3_000));
        if (kind === 'output') return { rows: [1, 2, big] };
        return ctx.step('fine', () => 'é'.repeat(1_000));
      });
      await assert.rejects(wf.run('step', { id: 'p-step' }), cairnError('SERIALIZATION', /the output of step 'fat' .* cannot be stored: it takes 5\d{3} bytes stored, over maxPayloadBytes \(4096\) at \$\.nested\.blob/));
      await assert.rejects(wf.run('event', { id: 'p-event' }), cairnError('SERIALIZATION', /event 'e' .* over maxPayloadBytes/));
      // 3,000 characters of two bytes each: measured in UTF-8 bytes, not characters.
      await assert.rejects(wf.run('wide', { id: 'p-wide' }), cairnError('SERIALIZATION', /it takes 60\d\d bytes stored/));
      await assert.rejects(wf.run('output', { id: 'p-out' }), cairnError('SERIALIZATION', /the output of workflow 'p-out' .* at \$\.rows\[2\]/));
      assert.equal(await wf.run('fine', { id: 'p-fine' }), 'é'.repeat(1_000));
      await assert.rejects(wf.start(big, { id: 'p-input' }), cairnError('SERIALIZATION', /the input of workflow 'payloads' .* at \$/));
      await assert.rejects(engine.getWorkflow('p-input'), cairnError('WORKFLOW_NOT_FOUND', /p-input/));
      await assert.rejects(engine.send('p-fine', big), cairnError('SERIALIZATION', /the message to workflow 'p-fine'/));
      assert.deepEqual((await engine.listSteps('p-step')).map((s) => s.name), ['fat']);
      assert.equal((await engine.listSteps('p-step'))[0]!.output, undefined, 'the refused output was not stored');
    });

    test('retention deletes finished workflows on a timer and keeps running ones; bad settings are refused at open', async () => {
      const store = await target.fresh();
      for (const [retention, message] of [
        [{}, /retention needs completedOlderThanMs/],
        [{ completedOlderThanMs: -5 }, /olderThan must be a finite number of milliseconds >= 0/],
        [{ completedOlderThanMs: 1_000, statuses: ['PENDING'] }, /cannot include PENDING/],
        [{ completedOlderThanMs: 1_000, intervalMs: 0 }, /retention\.intervalMs must be an integer >= 1/],
      ] as const) {
        await assert.rejects(target.open(store, { retention: retention as never }), cairnError('INVALID_ARGUMENT', message));
      }
      const logs: string[] = [];
      const logger = { info: (_o: unknown, m?: string) => void logs.push(m ?? ''), warn() {}, error() {} };
      const engine = await target.open(store, { appVersion: 'v1', logger, retention: { completedOlderThanMs: 200, intervalMs: 150 } });
      const job = engine.workflow('job', async (ctx: Context, n: number) => ctx.step('one', () => n));
      const wait = engine.workflow('wait', async (ctx: Context) => ctx.recv('go', 60_000));
      for (let i = 0; i < 5; i++) await job.run(i, { id: `r-${i}` });
      const parked = await wait.start(undefined, { id: 'r-wait' });
      await until('retention deleted the finished workflows', async () => (await engine.listWorkflows({ name: 'job' })).length === 0, 20_000);
      assert.ok(logs.includes('retention deleted finished workflows'));
      assert.deepEqual(ids(await engine.listWorkflows()), ['r-wait']);
      await engine.send('r-wait', 'ok', 'go');
      assert.equal(await parked.result(), 'ok');
    });

    test('listQueues counts ready, delayed and running workflows per queue with its limits', async () => {
      const store = await target.fresh();
      const worker = await target.open(store);
      const hold = worker.workflow('hold', async (ctx: Context) => ctx.recv('go', 60_000));
      worker.queue('slow', { concurrency: 2, rateLimit: { limit: 10, periodMs: 1_000 } });
      worker.queue('idle', { partitioned: true });
      await worker.launch();
      const c = await client(store);
      for (let i = 0; i < 5; i++) await c.enqueue('hold', undefined, { queue: 'slow', id: `q-${i}` });
      await c.enqueue('hold', undefined, { queue: 'slow', id: 'q-later', delayMs: 600_000 });
      await until('two running on slow', async () => (await c.listWorkflows({ queue: 'slow', status: 'PENDING' })).length === 2);
      const queues = await c.listQueues();
      assert.deepEqual(queues.map((q) => q.name), ['idle', 'slow']);
      assert.deepEqual(queues[1], {
        name: 'slow',
        concurrency: 2,
        workerConcurrency: null,
        rateLimit: { limit: 10, periodMs: 1_000 },
        partitioned: false,
        enqueued: 3,
        delayed: 1,
        running: 2,
      });
      assert.deepEqual(queues[0], { name: 'idle', concurrency: null, workerConcurrency: null, rateLimit: null, partitioned: true, enqueued: 0, delayed: 0, running: 0 });
      void hold;
    });

    test("a Client's fork and schedule trigger are handed to a live engine that registers the workflow", async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { leaseMs: 1_000, heartbeatMs: 100 });
      const runs: string[] = [];
      const chain = engine.workflow('chain', async (ctx: Context, n: number) => {
        const a = await ctx.step('a', () => (runs.push('a'), n + 1));
        return ctx.step('b', () => (runs.push('b'), a * 10));
      });
      const tick = engine.workflow('tick', async (ctx: Context, input: { scheduledAt: Date }) => ctx.step('at', () => input.scheduledAt.getTime() > 0));
      assert.equal(await chain.run(4, { id: 'chain-src' }), 50);
      const c = await client(store);

      const fork = await c.fork<number>('chain-src', { fromStep: 2, id: 'chain-copy' });
      assert.equal(fork.id, 'chain-copy');
      assert.equal(await fork.result(), 50);
      assert.deepEqual(runs, ['a', 'b', 'b']);
      await assert.rejects(c.fork('chain-src', { fromStep: 9 }), cairnError('INVALID_ARGUMENT', /fromStep 9 is past the last recorded step/));
      await assert.rejects(c.fork('chain-src', { fromStep: 1, id: 'chain-copy' }), cairnError('INVALID_ARGUMENT', /workflow id 'chain-copy' is already taken/));

      // A Client may create a schedule of a workflow it does not register; firing it hands the tick over.
      const created = await c.schedules.create('hourly', '0 * * * *', 'tick');
      assert.equal(created.workflowName, 'tick');
      assert.equal((await c.schedules.pause('hourly')).paused, true);
      assert.equal((await c.schedules.list())[0]!.paused, true);
      assert.equal((await c.schedules.resume('hourly')).paused, false);
      const fired = await c.schedules.trigger('hourly');
      assert.equal(await fired.result(), true);
      const backfilled = await c.schedules.backfill('hourly', new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T03:00:00Z'));
      assert.deepEqual(backfilled.map((h) => h.id), ['hourly@2026-01-01T00:00:00.000Z', 'hourly@2026-01-01T01:00:00.000Z', 'hourly@2026-01-01T02:00:00.000Z']);
      for (const h of backfilled) assert.equal(await h.result(), true);
      // The same ticks again start nothing new.
      const again = await c.schedules.backfill('hourly', new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T01:00:00Z'));
      assert.deepEqual(again.map((h) => h.id), ['hourly@2026-01-01T00:00:00.000Z']);
      assert.equal((await c.listWorkflows({ name: 'tick' })).length, 4);
      void tick;
    });
  });
}

/** Rows stored under a workflow id in the tables deleted with it, read with plain SQL. */
async function countStored(target: Target, store: Store, id: string): Promise<{ steps: number; events: number; streams: number; messages: number }> {
  const tables = { steps: 'workflow_id', events: 'workflow_id', streams: 'workflow_id', messages: 'destination_id' } as const;
  const counts = { steps: 0, events: 0, streams: 0, messages: 0 };
  if (target.kind === 'sqlite') {
    const db = new Database(store.database.slice('sqlite:'.length), { readonly: true });
    try {
      for (const [table, column] of Object.entries(tables)) {
        counts[table as keyof typeof counts] = (db.prepare(`SELECT count(*) AS n FROM cairn_${table} WHERE ${column} = ?`).get(id) as { n: number }).n;
      }
    } finally {
      db.close();
    }
    return counts;
  }
  const pgc = new pg.Client({ connectionString: store.database });
  await pgc.connect();
  try {
    for (const [table, column] of Object.entries(tables)) {
      const res = await pgc.query(`SELECT count(*)::int AS n FROM "${store.schema ?? 'cairn'}".${table} WHERE ${column} = $1`, [id]);
      counts[table as keyof typeof counts] = (res.rows[0] as { n: number }).n;
    }
  } finally {
    await pgc.end();
  }
  return counts;
}
