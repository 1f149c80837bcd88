import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, afterEach, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import superjson from 'superjson';
import {
  CairnError,
  Client,
  DuplicateQueueEntryError,
  InvalidArgumentError,
  type Engine,
  type QueueDefinition,
  type QueueOptions,
  type WorkflowHandle,
  type WorkflowInfo,
  type WorkflowRow,
  type WorkflowStatus,
} from '../src/index.js';
import { Waits } from '../src/engine/waits.js';
import { Dispatcher, type DispatcherHost } from '../src/queues/dispatcher.js';
import { CLIENT_CONFIG_ENV, type ClientConfig, type ClientResult } from './fixtures/queue-client.js';
import {
  APP_VERSION,
  CONFIG_ENV,
  applicationName,
  openLedger,
  registerQueueWorkflows,
  type EchoOutput,
  type Ledger,
  type RunRow,
  type TickInput,
  type TickOutput,
  type WorkerConfig,
} from './fixtures/queue-worker.js';
import { spawnFixture } from './fixtures/spawn.js';
import { connectionsGone } from './helpers/assertions.js';
import type { Store, Target } from './helpers/targets.js';

/**
 * Durable queues: flow control under load with several worker processes, priority and FIFO order,
 * deduplication, delays and debouncing, SIGKILL of a worker mid-run, producers in other processes
 * (a Client, and on Postgres the SQL function through psql), and bad input.
 *
 * Flow control is checked from what the workflows record in a side table (the ledger of
 * test/fixtures/queue-worker.ts): each execution writes its start and end instants and its
 * executor; the rate limit is checked on the stored startedAt of each workflow, the instant of its claim.
 */

type Interval = [start: number, end: number];

/** Most intervals open at one instant; an interval ending when another starts does not overlap it. */
function maxOverlap(intervals: Interval[]): number {
  const events: [number, number][] = [];
  for (const [s, e] of intervals) events.push([s, 1], [e, -1]);
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let open = 0;
  let max = 0;
  for (const [, d] of events) {
    open += d;
    max = Math.max(max, open);
  }
  return max;
}

/** Most instants in any closed window [t, t + periodMs] that begins at one of them. */
function maxInWindow(instants: number[], periodMs: number): number {
  const t = [...instants].sort((a, b) => a - b);
  let max = 0;
  let j = 0;
  for (let i = 0; i < t.length; i++) {
    if (j < i) j = i;
    while (j < t.length && t[j]! <= t[i]! + periodMs) j++;
    max = Math.max(max, j - i);
  }
  return max;
}

interface Execution {
  workflowId: string;
  queue: string;
  tag: string;
  executorId: string;
  pid: number;
  start: number;
  end: number | undefined;
}

/** Pairs the ledger's start and end rows into executions (per workflow and process). */
function executionsOf(runs: RunRow[]): Execution[] {
  const open = new Map<string, Execution>();
  const out: Execution[] = [];
  for (const r of runs) {
    const key = `${r.workflowId}|${r.pid}`;
    if (r.phase === 'start') {
      assert.ok(!open.has(key), `${r.workflowId} started twice in process ${r.pid} without ending`);
      const e: Execution = { workflowId: r.workflowId, queue: r.queue, tag: r.tag, executorId: r.executorId, pid: r.pid, start: r.at, end: undefined };
      open.set(key, e);
      out.push(e);
    } else {
      const e = open.get(key);
      assert.ok(e, `${r.workflowId} ended in process ${r.pid} without starting there`);
      assert.ok(r.at >= e.start, `${r.workflowId} ended before it started`);
      e.end = r.at;
      open.delete(key);
    }
  }
  return out;
}

function describeError(err: unknown): string {
  if (err === undefined) return 'no error';
  const e = err as { name?: string; code?: string; message?: string; cause?: unknown };
  return `${e.name ?? 'Error'}${e.code ? ` ${e.code}` : ''}: ${e.message ?? String(err)}${e.cause ? ` (cause: ${describeError(e.cause)})` : ''}`;
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const g = groups.get(k);
    if (g) g.push(item);
    else groups.set(k, [item]);
  }
  return groups;
}

/** Runs `fn` over `items` with at most `width` calls in flight. */
async function eachLimited<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** Checks the error's class, code and argument, and that the message names the problem. */
function rejectsWith(argument: string, pattern: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(err)}`);
    assert.ok(err instanceof CairnError, 'an InvalidArgumentError is a CairnError');
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.equal(err.argument, argument);
    assert.match(err.message, pattern);
    return true;
  };
}

function isDuplicate(queue: string, dedupId: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof DuplicateQueueEntryError, `expected DuplicateQueueEntryError, got ${String(err)}`);
    assert.ok(err instanceof CairnError, 'a DuplicateQueueEntryError is a CairnError');
    assert.equal(err.code, 'DUPLICATE_QUEUE_ENTRY');
    assert.equal(err.queue, queue);
    assert.equal(err.dedupId, dedupId);
    assert.match(err.message, new RegExp(`'${queue}'.*'${dedupId}'`));
    return true;
  };
}

/** A latch a workflow can wait on. */
class Gate {
  private release!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.release = resolve));
  open(): void {
    this.release();
  }
}

type WorkerEvent = { ev: string; id?: string; executorId?: string; pid?: number; recovered?: string[] };

/** One worker process (test/fixtures/queue-worker.ts). */
class WorkerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly events: WorkerEvent[] = [];
  private readonly watchers = new Set<() => void>();
  private gone = false;

  constructor(
    store: Store,
    readonly executorId: string,
    cfg: WorkerConfig,
    live: Set<ChildProcess>,
  ) {
    this.child = spawnFixture('./queue-worker.ts', store, { CAIRN_EXECUTOR_ID: executorId, [CONFIG_ENV]: JSON.stringify(cfg) });
    live.add(this.child);
    let buf = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buf += chunk;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 1);
        if (line !== '') this.events.push(JSON.parse(line) as WorkerEvent);
      }
      for (const w of this.watchers) w();
    });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        live.delete(this.child);
        this.gone = true;
        for (const w of this.watchers) w();
        resolve({ code, signal });
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The first event named `ev` this worker printed (waiting for it if need be). */
  next(ev: string, timeoutMs = 60_000): Promise<WorkerEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`worker ${this.executorId} printed no '${ev}' within ${timeoutMs} ms`)), timeoutMs);
      const finish = (err?: Error, event?: WorkerEvent) => {
        clearTimeout(timer);
        this.watchers.delete(check);
        if (err) reject(err);
        else resolve(event!);
      };
      const check = () => {
        const found = this.events.find((e) => e.ev === ev);
        if (found) finish(undefined, found);
        else if (this.gone) finish(new Error(`worker ${this.executorId} exited before printing '${ev}'`));
      };
      this.watchers.add(check);
      check();
    });
  }

  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    const { signal } = await this.exited;
    assert.equal(signal, 'SIGKILL');
  }

  async stop(): Promise<void> {
    if (this.gone) return;
    this.child.kill('SIGTERM');
    const { code, signal } = await this.exited;
    assert.equal(code, 0, `worker ${this.executorId} exited with ${code ?? signal}`);
  }
}

/** Workers of the flow-control test: processes, or engines in this process. */
interface Workers {
  stop(): Promise<void>;
}

interface Queued {
  id: string;
  input: TickInput;
}

const OPEN: WorkflowStatus[] = ['ENQUEUED', 'DELAYED', 'PENDING'];

export function defineQueueSuite(target: Target): void {
  describe(`queues on ${target.kind}`, { skip: target.skip }, () => {
    const live = new Set<ChildProcess>();
    const cleanups: (() => Promise<unknown>)[] = [];

    afterEach(async () => {
      for (const child of live) child.kill('SIGKILL');
      while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
      await target.closeAll();
    });
    after(async () => {
      for (const child of live) child.kill('SIGKILL');
      await target.dispose();
    });

    /** Waits until the queue definitions are stored (dispatchers store them as they start). */
    async function queuesStored(store: Store, names: string[]): Promise<void> {
      const provider = target.provider(store);
      try {
        for (const name of names) {
          const deadline = Date.now() + 10_000;
          while (!(await provider.getQueue(name))) {
            assert.ok(Date.now() < deadline, `queue '${name}' was not stored`);
            await sleep(10);
          }
        }
      } finally {
        await provider.close();
      }
    }

    async function storedQueue(store: Store, name: string): Promise<QueueDefinition | undefined> {
      const provider = target.provider(store);
      try {
        return await provider.getQueue(name);
      } finally {
        await provider.close();
      }
    }

    async function openLedgerFor(store: Store, create = false): Promise<Ledger> {
      const ledger = await openLedger(store, { create });
      cleanups.push(() => ledger.close());
      return ledger;
    }

    function startWorker(store: Store, executorId: string, cfg: WorkerConfig): WorkerProcess {
      return new WorkerProcess(store, executorId, cfg, live);
    }

    /** Starts worker processes and waits until each is ready. */
    async function startWorkers(store: Store, ids: string[], cfg: WorkerConfig): Promise<WorkerProcess[]> {
      const workers = ids.map((id) => startWorker(store, id, cfg));
      await Promise.all(workers.map((w) => w.next('ready')));
      return workers;
    }

    /** Worker engines in this process, each with its own ledger connection. */
    async function startLocalWorkers(store: Store, ids: string[], queues: WorkerConfig['queues']): Promise<Workers> {
      const engines: Engine[] = [];
      const ledgers: Ledger[] = [];
      for (const executorId of ids) {
        const engine = await target.open(store, { executorId, appVersion: APP_VERSION });
        const ledger = await openLedger(store);
        registerQueueWorkflows(engine, ledger);
        for (const q of queues) engine.queue(q.name, q.options);
        await engine.recover();
        engines.push(engine);
        ledgers.push(ledger);
      }
      for (const engine of engines) await engine.launch();
      await queuesStored(
        store,
        queues.map((q) => q.name),
      );
      let stopping: Promise<void> | undefined;
      return {
        stop: () =>
          (stopping ??= (async () => {
            await Promise.all(engines.map((e) => e.close()));
            for (const l of ledgers) await l.close();
          })()),
      };
    }

    /** Waits until no workflow of these queues is ENQUEUED, DELAYED or PENDING. */
    async function drained(engine: Engine, queues: string[], timeoutMs: number): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        let open = 0;
        for (const queue of queues) open += (await engine.listWorkflows({ queue, status: OPEN, limit: 1 })).length;
        if (open === 0) return;
        if (Date.now() > deadline) {
          const left = await engine.listWorkflows({ status: OPEN });
          assert.fail(`${left.length} workflows still unfinished after ${timeoutMs} ms: ${left.slice(0, 5).map((w) => `${w.id} ${w.status} ${w.executorId}`).join(', ')}`);
        }
        await sleep(100);
      }
    }

    function psql(store: Store, sql: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
      return new Promise((resolve, reject) => {
        const child = spawn('psql', [store.database, '-X', '-v', 'ON_ERROR_STOP=1', '-At', '-c', sql], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout: stdout.trim(), stderr: stderr.trim() }));
      });
    }


    /**
     * Engines of the single-process tests poll often, so those tests do not hang on when a
     * notification arrives (the dispatcher's handling of a notification during a claim has a test of its own).
     */
    const FEATURE_POLL = { pollIntervalMs: 200 };

    /** Workers on SQLite learn of other processes' writes by polling. */
    const workerPoll = target.kind === 'sqlite' ? { pollIntervalMs: 25 } : {};

    test('flow control under load: concurrency, workerConcurrency, rate limit and partitions hold', { timeout: 180_000 }, async (t: TestContext) => {
      const began = Date.now();
      const store = await target.fresh();
      const producer = await target.open(store, { executorId: 'producer', appVersion: APP_VERSION });
      const ledger = await openLedgerFor(store, true);

      const LOAD = { name: 'load', options: { concurrency: 10, workerConcurrency: 4 } };
      const RATED = { name: 'rated', options: { rateLimit: { limit: 20, periodMs: 500 } } };
      const PARTED = { name: 'parted', options: { partitioned: true, concurrency: 2 } };
      const queues: WorkerConfig['queues'] = [LOAD, RATED, PARTED];
      const KEYS = ['k1', 'k2', 'k3', 'k4'];
      const ids = ['w1', 'w2', 'w3'];

      // Postgres: three worker processes. SQLite: three worker engines in this process.
      let workers: Workers;
      if (target.kind === 'postgres') {
        const procs = await startWorkers(store, ids, { queues, ...workerPoll });
        workers = { stop: async () => void (await Promise.all(procs.map((p) => p.stop()))) };
      } else {
        workers = await startLocalWorkers(store, ids, queues);
      }
      cleanups.push(() => workers.stop());
      const ready = Date.now();

      const jobs: (Queued & { partitionKey?: string })[] = [
        ...Array.from({ length: 2000 }, (_, n) => ({ id: `load-${n}`, input: { n, queue: 'load' } })),
        ...Array.from({ length: 200 }, (_, n) => ({ id: `rated-${n}`, input: { n, queue: 'rated' } })),
        ...Array.from({ length: 400 }, (_, n) => {
          const key = KEYS[n % KEYS.length]!;
          return { id: `parted-${n}`, input: { n, queue: 'parted', key }, partitionKey: key };
        }),
      ];
      // The rated backlog first, so the rate limit is what holds it back; then the other two
      // interleaved, so both are busy at once.
      jobs.sort((a, b) => Number(b.input.queue === 'rated') - Number(a.input.queue === 'rated') || a.input.n - b.input.n);
      await eachLimited(jobs, 4, (j) =>
        producer.enqueue('tick', j.input, { queue: j.input.queue, id: j.id, ...(j.partitionKey !== undefined && { partitionKey: j.partitionKey }) }),
      );
      const enqueued = Date.now();
      await drained(producer, ['load', 'rated', 'parted'], 150_000);
      const done = Date.now();
      await workers.stop();

      const stored = new Map<string, WorkflowInfo>();
      for (const q of queues) for (const w of await producer.listWorkflows({ queue: q.name })) stored.set(w.id, w);
      assert.equal(stored.size, jobs.length, 'every enqueued workflow is stored');
      for (const j of jobs) {
        const w = stored.get(j.id)!;
        assert.equal(w.status, 'SUCCESS', `${j.id} status: ${describeError(w.error)}`);
        assert.equal(w.name, 'tick');
        assert.equal(w.queue, j.input.queue);
        assert.ok(ids.includes(w.executorId!), `${j.id} executor ${w.executorId}`);
        assert.equal(w.appVersion, APP_VERSION);
        assert.deepEqual(w.output, { n: j.input.n, executorId: w.executorId! } satisfies TickOutput);
        assert.ok(w.startedAt !== null && w.completedAt !== null && w.completedAt >= w.startedAt, `${j.id} startedAt ${String(w.startedAt)} completedAt ${String(w.completedAt)}`);
      }
      // A claim stamps the instant its dispatcher read before the claim ran; a workflow enqueued
      // while that claim waited for the queue can show a startedAt before its createdAt.
      const early = [...stored.values()].map((w) => w.createdAt.getTime() - w.startedAt!.getTime()).filter((d) => d > 0);

      // Every run recorded its start and end, once, in the executor that the store names.
      const runs = executionsOf(await ledger.runs());
      const byWorkflow = groupBy(runs, (e) => e.workflowId);
      assert.equal(byWorkflow.size, jobs.length, 'every workflow recorded a run');
      for (const j of jobs) {
        const mine = byWorkflow.get(j.id) ?? [];
        assert.equal(mine.length, 1, `${j.id} ran ${mine.length} times`);
        const e = mine[0]!;
        assert.ok(e.end !== undefined, `${j.id} recorded no end`);
        assert.equal(e.executorId, stored.get(j.id)!.executorId, `${j.id} ran in the executor that claimed it`);
        assert.equal(e.tag, j.input.key ?? '');
      }
      const effects = groupBy(await ledger.effects(), (e) => e.workflowId);
      for (const j of jobs) assert.equal(effects.get(j.id)?.length, 1, `${j.id} step body runs`);

      const interval = (e: Execution): Interval => [e.start, e.end!];
      const ofQueue = (q: string) => runs.filter((e) => e.queue === q);

      // Concurrency across all workers, and per worker.
      const load = ofQueue('load');
      const loadMax = maxOverlap(load.map(interval));
      const perWorker = ids.map((id) => maxOverlap(load.filter((e) => e.executorId === id).map(interval)));
      const perWorkerRuns = ids.map((id) => load.filter((e) => e.executorId === id).length);
      assert.ok(loadMax <= LOAD.options.concurrency, `'load' had ${loadMax} workflows running at once; concurrency is ${LOAD.options.concurrency}`);
      for (const [i, m] of perWorker.entries()) {
        assert.ok(m <= LOAD.options.workerConcurrency, `worker ${ids[i]} ran ${m} 'load' workflows at once; workerConcurrency is ${LOAD.options.workerConcurrency}`);
      }
      // The limits were reached, so they were what held the load back.
      assert.ok(loadMax > LOAD.options.workerConcurrency, `'load' never ran more than one worker's worth at once (${loadMax})`);
      assert.ok(Math.max(...perWorker) === LOAD.options.workerConcurrency, `no worker reached its workerConcurrency (${perWorker.join(', ')})`);
      for (const [i, n] of perWorkerRuns.entries()) assert.ok(n > 0, `worker ${ids[i]} ran no 'load' workflow`);

      // Rate limit: no closed window of periodMs holds more than `limit` claims.
      const rated = [...stored.values()].filter((w) => w.queue === 'rated');
      const starts = rated.map((w) => w.startedAt!.getTime());
      const { limit, periodMs } = RATED.options.rateLimit;
      const rateMax = maxInWindow(starts, periodMs);
      const span = Math.max(...starts) - Math.min(...starts);
      assert.ok(rateMax <= limit, `'rated' claimed ${rateMax} workflows within ${periodMs} ms; the limit is ${limit}`);
      assert.equal(rateMax, limit, 'the rate limit was reached');
      assert.ok(span >= (rated.length / limit - 1) * periodMs, `${rated.length} rated claims spread over only ${span} ms`);
      const ratedRunMax = maxOverlap(ofQueue('rated').map(interval));

      // Partitioned queue: the concurrency holds per key, and keys run side by side.
      const parted = ofQueue('parted');
      const perKey = KEYS.map((k) => maxOverlap(parted.filter((e) => e.tag === k).map(interval)));
      const partedMax = maxOverlap(parted.map(interval));
      for (const [i, m] of perKey.entries()) {
        assert.ok(m <= PARTED.options.concurrency, `key ${KEYS[i]} ran ${m} workflows at once; per-key concurrency is ${PARTED.options.concurrency}`);
      }
      assert.equal(Math.max(...perKey), PARTED.options.concurrency, 'some key reached its concurrency');
      assert.ok(partedMax > PARTED.options.concurrency, `keys never ran side by side (max ${partedMax} across keys)`);

      t.diagnostic(
        `load: max overlap ${loadMax}/${LOAD.options.concurrency}, per worker ${perWorker.join('/')} (limit ${LOAD.options.workerConcurrency}), runs per worker ${perWorkerRuns.join('/')}`,
      );
      t.diagnostic(`rated: max ${rateMax} claims per ${periodMs} ms window (limit ${limit}), claims spread over ${span} ms, max running ${ratedRunMax}`);
      t.diagnostic(`parted: max per key ${perKey.join('/')} (limit ${PARTED.options.concurrency}), max across keys ${partedMax}`);
      t.diagnostic(`startedAt before createdAt: ${early.length} workflow(s), by up to ${Math.max(0, ...early)} ms`);
      t.diagnostic(
        `timing: workers ready ${ready - began} ms, ${jobs.length} enqueued in ${enqueued - ready} ms, drained ${done - ready} ms after ready`,
      );
    });

    test('priority then FIFO: a backlog drains through one slot in (priority, enqueue) order', async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { executorId: 'prio', appVersion: APP_VERSION, ...FEATURE_POLL });
      const order: string[] = [];
      const wf = engine.workflow('ordered', async (ctx, label: string) => {
        order.push(label);
        await ctx.step('s', () => sleep(1));
        return label;
      });
      engine.queue('one-slot', { concurrency: 1 });
      // A fixed scramble of priorities, with ties, negatives and gaps.
      const priorities = [3, 0, 2, -1, 0, 3, 1, 1, -1, 2, 0, 5, 3, 0, -1, 2, 1, 5, 0, 3, 2, -1, 1, 0];
      const jobs = priorities.map((priority, i) => ({ label: `j${String(i).padStart(2, '0')}p${priority}`, priority, i }));
      const handles = [];
      for (const j of jobs) {
        // priority 0 is the default: leave it out for some of them.
        const opts = j.priority === 0 && j.i % 2 === 0 ? { queue: 'one-slot' } : { queue: 'one-slot', priority: j.priority };
        const h = await wf.start(j.label, opts);
        assert.equal((await h.status()).status, 'ENQUEUED');
        handles.push(h);
      }
      await engine.launch();
      const outputs = await Promise.all(handles.map((h) => h.result()));
      assert.deepEqual(
        outputs,
        jobs.map((j) => j.label),
      );
      const expected = [...jobs].sort((a, b) => a.priority - b.priority || a.i - b.i).map((j) => j.label);
      assert.deepEqual(order, expected);
      // The claims were made in that order, one at a time.
      const infos = await Promise.all(handles.map((h) => h.status()));
      const byLabel = new Map(infos.map((w) => [w.input as string, w]));
      for (let k = 1; k < expected.length; k++) {
        const prev = byLabel.get(expected[k - 1]!)!;
        const cur = byLabel.get(expected[k]!)!;
        assert.ok(cur.startedAt!.getTime() >= prev.completedAt!.getTime(), `${expected[k]} was claimed before ${expected[k - 1]} finished`);
      }
    });

    test('dedupId: one unfinished workflow per (queue, dedupId); accepted again once it finished', async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { executorId: 'dedup', appVersion: APP_VERSION, ...FEATURE_POLL });
      const gate = new Gate();
      const runs: string[] = [];
      const wf = engine.workflow('gated', async (ctx, label: string) => {
        runs.push(label);
        await ctx.step('wait', () => gate.opened);
        return label;
      });
      engine.queue('dd', {});
      engine.queue('dd-other', {});

      // ENQUEUED (not launched yet).
      const first = await wf.start('a', { queue: 'dd', dedupId: 'job-1' });
      assert.equal((await first.status()).status, 'ENQUEUED');
      await assert.rejects(wf.start('b', { queue: 'dd', dedupId: 'job-1' }), isDuplicate('dd', 'job-1'));
      await assert.rejects(wf.start('b', { queue: 'dd', dedupId: 'job-1', onDuplicate: 'error' }), isDuplicate('dd', 'job-1'));
      const existing = await wf.start('c', { queue: 'dd', dedupId: 'job-1', onDuplicate: 'return-existing' });
      assert.equal(existing.id, first.id);
      // The same dedupId on another queue is another entry.
      const elsewhere = await wf.start('d', { queue: 'dd-other', dedupId: 'job-1' });
      assert.notEqual(elsewhere.id, first.id);
      // DELAYED counts as unfinished too.
      const later = await wf.start('e', { queue: 'dd', dedupId: 'job-2', delayMs: 60_000 });
      assert.equal((await later.status()).status, 'DELAYED');
      await assert.rejects(wf.start('f', { queue: 'dd', dedupId: 'job-2' }), isDuplicate('dd', 'job-2'));
      assert.equal((await engine.listWorkflows({ queue: 'dd' })).length, 2, 'rejected duplicates stored nothing');

      // PENDING: running, held at the gate.
      await engine.launch();
      const deadline = Date.now() + 10_000;
      while ((await first.status()).status !== 'PENDING' || !runs.includes('a')) {
        assert.ok(Date.now() < deadline, 'the first workflow never started');
        await sleep(10);
      }
      await assert.rejects(wf.start('g', { queue: 'dd', dedupId: 'job-1' }), isDuplicate('dd', 'job-1'));
      await assert.rejects(engine.enqueue('gated', 'h', { queue: 'dd', dedupId: 'job-1' }), isDuplicate('dd', 'job-1'));
      const again = await engine.enqueue('gated', 'i', { queue: 'dd', dedupId: 'job-1', onDuplicate: 'return-existing' });
      assert.equal(again.id, first.id);
      assert.equal((await engine.listWorkflows({ queue: 'dd' })).length, 2, 'rejected duplicates stored nothing');

      gate.open();
      assert.equal(await first.result(), 'a');
      assert.equal((await first.status()).input, 'a', 'the duplicates did not touch the first workflow');
      // Finished: the dedupId is free again.
      const second = await wf.start('j', { queue: 'dd', dedupId: 'job-1' });
      assert.notEqual(second.id, first.id);
      assert.equal(await second.result(), 'j');
      assert.equal(await elsewhere.result(), 'd');
      assert.deepEqual([...runs].sort(), ['a', 'd', 'j']);
      await engine.cancel(later.id);
    });

    test('delayMs: the workflow waits DELAYED, does not run before its time, then runs', async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { executorId: 'delay', appVersion: APP_VERSION, ...FEATURE_POLL });
      const ranAt = new Map<string, number>();
      const wf = engine.workflow('stamp', async (ctx, label: string) => {
        ranAt.set(label, Date.now());
        return ctx.step('s', () => label);
      });
      engine.queue('later', {});
      await engine.launch();
      const DELAY = 1_200;
      const delayed = await wf.start('delayed', { queue: 'later', delayMs: DELAY });
      const created = (await delayed.status()).createdAt.getTime();
      assert.equal((await delayed.status()).status, 'DELAYED');
      const zero = await wf.start('zero', { queue: 'later', delayMs: 0 });
      const now = await wf.start('now', { queue: 'later' });
      assert.equal(await now.result(), 'now');
      assert.equal(await zero.result(), 'zero');
      await sleep(Math.max(0, created + DELAY - 300 - Date.now()));
      const before = await delayed.status();
      // Only a look that ended before its time must find it waiting; a loaded machine may oversleep.
      if (Date.now() < created + DELAY) {
        assert.equal(before.status, 'DELAYED', 'still waiting before its time');
        assert.equal(before.startedAt, null);
        assert.ok(!ranAt.has('delayed'));
      }
      assert.equal(await delayed.result(), 'delayed');
      const info = await delayed.status();
      assert.ok(ranAt.get('delayed')! >= created + DELAY, `ran ${ranAt.get('delayed')! - created} ms after enqueue; delay ${DELAY}`);
      assert.ok(info.startedAt!.getTime() >= created + DELAY, 'claimed before its time');
      assert.ok(ranAt.get('delayed')! <= created + DELAY + 5_000, `ran ${ranAt.get('delayed')! - created - DELAY} ms late`);
      assert.ok(ranAt.get('now')! < created + DELAY);
    });

    test('debounce: a burst makes one run with the last input; maxWaitMs caps the wait', async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { executorId: 'debounce', appVersion: APP_VERSION, ...FEATURE_POLL });
      const runs: { id: string; input: number; at: number }[] = [];
      const wf = engine.workflow('collect', async (ctx, input: number) => {
        runs.push({ id: ctx.workflowId, input, at: Date.now() });
        return ctx.step('s', () => input);
      });
      const q = engine.queue('bounce', {});
      await engine.launch();

      // Five calls 40 ms apart, quiet period 400 ms: one run, with the fifth input, 400 ms after the fifth call.
      const burst: WorkflowHandle<number>[] = [];
      let lastCall = 0;
      for (let i = 1; i <= 5; i++) {
        if (i > 1) await sleep(40);
        lastCall = Date.now();
        burst.push(await q.debounce(wf, 'user-1', i, { periodMs: 400 }));
        if (i < 5) assert.equal((await burst[0]!.status()).status, 'DELAYED');
      }
      assert.equal(new Set(burst.map((h) => h.id)).size, 1, 'every call of the burst names one workflow');
      assert.equal(await burst[0]!.result(), 5);
      await sleep(200);
      const mine = runs.filter((r) => r.id === burst[0]!.id);
      assert.equal(mine.length, 1);
      assert.equal(mine[0]!.input, 5);
      assert.ok(mine[0]!.at >= lastCall + 400, `ran ${mine[0]!.at - lastCall} ms after the last call; the quiet period is 400 ms`);
      assert.ok(mine[0]!.at <= lastCall + 400 + 5_000, `ran ${mine[0]!.at - lastCall - 400} ms after it was due`);
      assert.equal((await engine.listWorkflows({ name: 'collect' })).length, 1, 'one workflow stored for the burst');

      // Calls every 100 ms for 1.5 s with a 300 ms quiet period never go quiet; maxWaitMs 700 makes
      // a run 700 ms after the first call anyway, and the calls after it start a new debounce.
      const calls: { id: string; input: number; at: number }[] = [];
      const first = Date.now();
      for (let i = 100; i < 115; i++) {
        const at = Date.now();
        const h = await q.debounce(wf, 'user-2', i, { periodMs: 300, maxWaitMs: 700 });
        calls.push({ id: h.id, input: i, at });
        await sleep(Math.max(0, first + (i - 99) * 100 - Date.now()));
      }
      const groups = [...new Set(calls.map((c) => c.id))];
      assert.ok(groups.length >= 2, `the burst of ${calls.length} calls over ${calls.at(-1)!.at - first} ms made ${groups.length} workflow(s)`);
      const outputs = await Promise.all(groups.map((id) => engine.handle<number>(id).result()));
      for (const [k, id] of groups.entries()) {
        const mineCalls = calls.filter((c) => c.id === id);
        // The calls of one workflow are consecutive, and it ran once with the last of their inputs.
        assert.equal(mineCalls.at(-1)!.input - mineCalls[0]!.input, mineCalls.length - 1, `calls of ${id} are consecutive`);
        assert.equal(outputs[k], mineCalls.at(-1)!.input);
        const ran = runs.filter((r) => r.id === id);
        assert.equal(ran.length, 1, `${id} ran once`);
      }
      const firstRun = runs.find((r) => r.id === groups[0])!;
      assert.ok(firstRun.at >= first + 700, `first run ${firstRun.at - first} ms after the first call; maxWaitMs is 700`);
      assert.ok(firstRun.at < calls.at(-1)!.at, 'the first run came before the burst ended (capped by maxWaitMs)');
      assert.ok(firstRun.at <= first + 700 + 5_000, `first run ${firstRun.at - first} ms after the first call`);
      // Each workflow ran no earlier than the quiet period after its last call or maxWaitMs after its first.
      for (const id of groups) {
        const mineCalls = calls.filter((c) => c.id === id);
        const due = Math.min(mineCalls.at(-1)!.at + 300, mineCalls[0]!.at + 700);
        const ran = runs.find((r) => r.id === id)!;
        assert.ok(ran.at >= due, `${id} ran ${due - ran.at} ms before it was due`);
      }
    });

    test(`SIGKILL of one of three workers mid-run: all 2,000 end SUCCESS and no checkpointed step runs again`, { timeout: 180_000 }, async (t: TestContext) => {
      const began = Date.now();
      const store = await target.fresh();
      const producer = await target.open(store, { executorId: 'producer', appVersion: APP_VERSION });
      const ledger = await openLedgerFor(store, true);
      const CRASH = { name: 'crash', options: { concurrency: 12, workerConcurrency: 5 } };
      const cfg: WorkerConfig = { queues: [CRASH], ...workerPoll };
      const COUNT = 2_000;
      const a = startWorker(store, 'c1', cfg);
      const victim = startWorker(store, 'c2', { ...cfg, parkAfterCheckpoints: 140, parkAfterEffects: 150 });
      const c = startWorker(store, 'c3', cfg);
      await Promise.all([a, victim, c].map((w) => w.next('ready')));
      const jobs = Array.from({ length: COUNT }, (_, n) => ({ id: `crash-${n}`, input: { n, queue: 'crash' } }));
      const enqueuing = eachLimited(jobs, 4, (j) => producer.enqueue('tick', j.input, { queue: 'crash', id: j.id }));

      // The victim parks one workflow right after its checkpoint, and one step right after its
      // effect committed; the kill also lands on its other workflows wherever they are.
      const parkedCheckpointed = (await victim.next('parked-checkpointed', 120_000)).id!;
      const parked = (await victim.next('parked', 120_000)).id!;
      await sleep(15);
      await victim.kill();
      await connectionsGone(store, applicationName(victim.pid));
      const killedAt = await ledger.now();

      // What the kill left: the victim's PENDING workflows, their checkpoints and effects.
      const stranded = (await producer.listWorkflows({ queue: 'crash', status: 'PENDING' })).filter((w) => w.executorId === 'c2');
      const checkpointed = new Set<string>();
      for (const w of stranded) if ((await producer.listSteps(w.id)).some((s) => s.name === 'work')) checkpointed.add(w.id);
      const effectsAtKill = groupBy(await ledger.effects(), (e) => e.workflowId);
      const strandedIds = new Set(stranded.map((w) => w.id));
      assert.ok(strandedIds.has(parked), `the parked workflow ${parked} is left PENDING`);
      assert.ok(!checkpointed.has(parked), 'the parked step has no checkpoint');
      assert.equal(effectsAtKill.get(parked)?.length, 1, 'the parked step committed its effect');
      assert.ok(strandedIds.has(parkedCheckpointed) && checkpointed.has(parkedCheckpointed), `${parkedCheckpointed} is left PENDING with its checkpoint`);
      assert.equal(effectsAtKill.get(parkedCheckpointed)?.length, 1);
      assert.ok(stranded.length <= CRASH.options.workerConcurrency, `${stranded.length} workflows in flight in the victim`);

      // A replacement with the victim's executor id recovers them, unless a live worker's heartbeat
      // found the victim's process gone first and put them back on their queue.
      const replacement = startWorker(store, 'c2', cfg);
      const ready = await replacement.next('ready');
      for (const id of ready.recovered!) assert.ok(strandedIds.has(id), `recover() resumed ${id}, which the kill did not strand`);
      await enqueuing;
      await drained(producer, ['crash'], 150_000);
      const done = Date.now();
      await Promise.all([a.stop(), c.stop(), replacement.stop()]);

      const stored = await producer.listWorkflows({ queue: 'crash' });
      assert.equal(stored.length, COUNT);
      for (const w of stored) {
        assert.equal(w.status, 'SUCCESS', `${w.id} status: ${describeError(w.error)}`);
        assert.deepEqual(w.output, { n: (w.input as TickInput).n, executorId: w.executorId });
      }
      const effects = groupBy(await ledger.effects(), (e) => e.workflowId);
      let twice = 0;
      for (const w of stored) {
        const pids = (effects.get(w.id) ?? []).map((e) => e.pid);
        const before = (effectsAtKill.get(w.id) ?? []).map((e) => e.pid);
        assert.ok(pids.length >= 1 && pids.length <= 2, `${w.id}: step body ran ${pids.length} times`);
        if (!strandedIds.has(w.id)) {
          assert.equal(pids.length, 1, `${w.id} was not in flight at the kill, so its step ran once`);
        } else if (checkpointed.has(w.id)) {
          assert.deepEqual(pids, before, `${w.id} was checkpointed before the kill: replayed, not run again`);
          assert.deepEqual(pids, [victim.pid]);
        } else {
          // Run once more: by the replacement, or by a live worker that found the victim gone first.
          assert.equal(pids.length, before.length + 1, `${w.id} had no checkpoint at the kill: it ran once more`);
          assert.deepEqual(pids.slice(0, before.length), before);
          assert.notEqual(pids.at(-1), victim.pid, `${w.id} ran again in another process`);
        }
        if (pids.length === 2) twice++;
      }
      assert.ok(twice >= 1, 'the kill caught at least one step between effect and checkpoint');
      assert.deepEqual(effects.get(parkedCheckpointed)?.map((e) => e.pid), [victim.pid], 'the workflow checkpointed before the kill did not run its step again');
      const parkedRuns = effects.get(parked)?.map((e) => e.pid) ?? [];
      assert.equal(parkedRuns.length, 2, 'the step killed after its effect ran once more');
      assert.equal(parkedRuns[0], victim.pid);
      assert.notEqual(parkedRuns[1], victim.pid);

      // The queue's limits held through the crash: a workflow holds its slot from its first start to its last end.
      const runs = executionsOf(await ledger.runs());
      const spans = [...groupBy(runs, (e) => e.workflowId).values()].map((es): Interval => {
        const last = es.at(-1)!;
        assert.ok(last.end !== undefined, `${last.workflowId}: its last execution recorded no end`);
        return [es[0]!.start, last.end];
      });
      const globalMax = maxOverlap(spans);
      assert.ok(globalMax <= CRASH.options.concurrency, `${globalMax} workflows held slots at once; concurrency ${CRASH.options.concurrency}`);
      const perProcess = [...groupBy(runs, (e) => String(e.pid)).entries()].map(([pid, es]) => {
        const m = maxOverlap(es.map((e): Interval => [e.start, e.end ?? killedAt]));
        assert.ok(m <= CRASH.options.workerConcurrency, `process ${pid} ran ${m} at once; workerConcurrency ${CRASH.options.workerConcurrency}`);
        return m;
      });
      const unfinished = runs.filter((e) => e.end === undefined);
      assert.ok(unfinished.every((e) => e.pid === victim.pid && strandedIds.has(e.workflowId)), 'only the victim left runs unfinished');
      t.diagnostic(
        `kill: ${stranded.length} in flight in the victim (${checkpointed.size} checkpointed, ${stranded.length - checkpointed.size} not), ${twice} step(s) ran twice`,
      );
      t.diagnostic(`crash: max slots held ${globalMax}/${CRASH.options.concurrency}, per process ${perProcess.join('/')} (limit ${CRASH.options.workerConcurrency})`);
      t.diagnostic(`timing: ${COUNT} workflows done ${done - began} ms after the test began`);
    });

    test('producers in other processes: a Client enqueues and awaits; unknown names stay ENQUEUED', { timeout: 60_000 }, async () => {
      const store = await target.fresh();
      const producer = await target.open(store, { executorId: 'observer', appVersion: APP_VERSION });
      await openLedgerFor(store, true);
      const worker = startWorker(store, 'jw1', { queues: [{ name: 'jobs', options: { concurrency: 4 } }], ...workerPoll });
      await worker.next('ready');

      // A workflow nobody registered, enqueued first: it must not block the queue, and stays ENQUEUED.
      const ghost = await producer.enqueue('ghost', { boo: true }, { queue: 'jobs', id: 'ghost-1' });

      const jobs: ClientConfig['jobs'] = Array.from({ length: 12 }, (_, i) => ({
        name: 'echo',
        input: { i, when: new Date(Date.UTC(2024, 0, i + 1)) },
        options: { queue: 'jobs', id: `from-client-${i}`, priority: i % 3 },
      }));
      const cfg: ClientConfig = { jobs, ...(target.kind === 'sqlite' && { pollIntervalMs: 25 }) };
      const client = spawnFixture('./queue-client.ts', store, { [CLIENT_CONFIG_ENV]: superjson.stringify(cfg) });
      live.add(client);
      let out = '';
      client.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
      const exit = await new Promise<number | null>((resolve) => client.on('exit', (code) => resolve(code)));
      live.delete(client);
      assert.equal(exit, 0, 'the client process exits cleanly');
      const events = out
        .trim()
        .split('\n')
        .map((l) => superjson.parse<{ ev: string; ids?: string[]; results?: ClientResult[] }>(l));
      assert.deepEqual(
        events.find((e) => e.ev === 'enqueued')?.ids,
        jobs.map((j) => j.options.id),
      );
      const results = events.find((e) => e.ev === 'done')!.results!;
      for (const [i, r] of results.entries()) {
        assert.ok(r.ok, `${r.id}: ${r.ok ? '' : r.message}`);
        assert.deepEqual(r.value, { input: { i, when: new Date(Date.UTC(2024, 0, i + 1)) }, executorId: 'jw1' } satisfies EchoOutput);
        const info = await producer.getWorkflow(r.id);
        assert.equal(info.status, 'SUCCESS');
        assert.equal(info.queue, 'jobs');
        assert.equal(info.executorId, 'jw1');
        assert.deepEqual(info.input, { i, when: new Date(Date.UTC(2024, 0, i + 1)) }, 'the input kept its types');
      }

      if (target.kind === 'postgres') {
        const schema = store.schema!;
        const plain = await psql(store, `SELECT "${schema}".enqueue_workflow('echo', 'jobs', '{"x":1}', '{}')`);
        assert.equal(plain.code, 0, plain.stderr);
        const withId = await psql(store, `SELECT "${schema}".enqueue_workflow('echo', 'jobs', '{"x":[2,3],"y":"z"}', '{"id":"sql-2","priority":1}')`);
        assert.equal(withId.code, 0, withId.stderr);
        assert.equal(withId.stdout, 'sql-2');
        const ghostSql = await psql(store, `SELECT "${schema}".enqueue_workflow('ghost_sql', 'jobs', '{}', '{"id":"ghost-sql"}')`);
        assert.equal(ghostSql.code, 0, ghostSql.stderr);
        assert.deepEqual(await producer.handle(plain.stdout).result(), { input: { x: 1 }, executorId: 'jw1' } satisfies EchoOutput);
        assert.deepEqual(await producer.handle('sql-2').result(), { input: { x: [2, 3], y: 'z' }, executorId: 'jw1' });
        const info = await producer.getWorkflow(plain.stdout);
        assert.deepEqual(info.input, { x: 1 });
        assert.equal(info.name, 'echo');
        assert.equal(info.queue, 'jobs');
        assert.equal(info.appVersion, APP_VERSION);
      }

      // Unknown names: still ENQUEUED after everything else ran and the dispatcher looked again.
      await sleep(target.kind === 'sqlite' ? 300 : 500);
      const ghosts = target.kind === 'postgres' ? ['ghost-1', 'ghost-sql'] : ['ghost-1'];
      const enqueued = await producer.listWorkflows({ status: 'ENQUEUED' });
      assert.deepEqual(enqueued.map((w) => w.id).sort(), ghosts);
      for (const w of enqueued) {
        assert.equal(w.queue, 'jobs');
        assert.equal(w.executorId, null);
        assert.equal(w.startedAt, null);
      }
      const listed = await producer.listWorkflows({ name: 'ghost' });
      assert.equal(listed.length, 1);
      assert.deepEqual(listed[0]!.input, { boo: true });
      assert.equal((await ghost.status()).status, 'ENQUEUED');
      await worker.stop();
    });

    test(
      'rate limit in real time: a claim that waited for the database does not let two starts through one period',
      {
        skip: target.kind === 'postgres' ? false : 'needs a second session holding a table lock while a claim runs',
        timeout: 30_000,
      },
      async () => {
        const store = await target.fresh();
        const engine = await target.open(store, { executorId: 'slow-claim', appVersion: APP_VERSION, ...FEATURE_POLL });
        const ran: number[] = [];
        const wf = engine.workflow('mark', async (ctx, i: number) => {
          ran.push(Date.now());
          return ctx.step('s', () => i);
        });
        const PERIOD = 500;
        engine.queue('paced', { rateLimit: { limit: 1, periodMs: PERIOD } });
        const handles = [await wf.start(1, { queue: 'paced' }), await wf.start(2, { queue: 'paced' })];
        // Another session holds the workflows table while the dispatcher makes its first claim, for
        // longer than the period; the claim waits, then runs.
        const blocker = new pg.Client({ connectionString: store.database });
        await blocker.connect();
        let released: number;
        try {
          await blocker.query('BEGIN');
          await blocker.query(`LOCK TABLE "${store.schema!}".workflows IN EXCLUSIVE MODE`);
          await engine.launch();
          await sleep(PERIOD + 300);
          // Taken before the lock goes: no claim that waited for it can have run before this instant.
          released = Date.now();
          await blocker.query('COMMIT');
        } finally {
          await blocker.end();
        }
        assert.deepEqual(await Promise.all(handles.map((h) => h.result())), [1, 2]);
        const infos = await Promise.all(handles.map((h) => h.status()));
        const [first, second] = infos.map((info) => info.startedAt!.getTime()) as [number, number];
        // The claim that waited stamps the time it ran, not the time it began waiting: a stamp from
        // before the wait would leave the first start out of the next claim's window too early.
        assert.ok(
          first >= released,
          `the first claim waited for the lock released at ${released} but its stored startedAt is ${released - first} ms before that`,
        );
        // What the limit promises, on what Cairn records: no two claims within one period.
        assert.ok(
          second - first >= PERIOD,
          `with a limit of 1 per ${PERIOD} ms the two workflows' stored startedAt are ${second - first} ms apart`,
        );
        // Each body ran once its claim was made, so the second began at least a period after the first claim.
        assert.ok(ran[0]! >= first && ran[1]! >= second, `a body ran before its claim: ran at ${ran.join(', ')}, claimed at ${first}, ${second}`);
        for (const info of infos) {
          assert.ok(info.startedAt!.getTime() >= info.createdAt.getTime(), `${info.id} startedAt ${info.startedAt!.toISOString()} precedes createdAt ${info.createdAt.toISOString()}`);
        }
      },
    );

    test(
      'a checkpoint write that meets another process holding the SQLite write lock past the busy timeout does not fail the workflow',
      {
        skip: target.kind === 'sqlite' ? false : 'SQLite locking',
        timeout: 30_000,
      },
      async () => {
        const store = await target.fresh();
        const engine = await target.open(store, { executorId: 'locked-out', appVersion: APP_VERSION, ...FEATURE_POLL });
        const path = store.database.slice('sqlite:'.length);
        let bodies = 0;
        const HOLD_MS = 6_000;
        const holders: ChildProcess[] = [];
        const wf = engine.workflow('contended', async (ctx, label: string) => {
          await ctx.step('work', async () => {
            bodies++;
            if (bodies > 1) return label;
            // Another process takes the write lock and keeps it longer than the busy timeout (5 s).
            const holder = spawn(
              process.execPath,
              [
                '-e',
                `const db = new (require('better-sqlite3'))(${JSON.stringify(path)}); db.exec('BEGIN IMMEDIATE'); console.log('locked');
                 Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${HOLD_MS}); db.exec('COMMIT');`,
              ],
              { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'inherit'] },
            );
            holders.push(holder);
            live.add(holder);
            await new Promise((resolve) => holder.stdout.once('data', resolve));
            return label;
          });
          return label;
        });
        engine.queue('contended', {});
        await engine.launch();
        const h = await wf.start('x', { queue: 'contended' });
        const deadline = Date.now() + 15_000;
        let info = await h.status();
        while (info.status === 'ENQUEUED' || info.status === 'PENDING') {
          if (Date.now() > deadline) break;
          await sleep(100);
          info = await h.status();
        }
        for (const holder of holders) live.delete(holder);
        assert.equal(info.status, 'SUCCESS', `status ${info.status}: ${describeError(info.error)}`);
        assert.ok(bodies <= 2, `the step body ran ${bodies} times`);
      },
    );

    test(
      'a dispatcher woken while its claim runs claims again at once, not at the next fallback poll',
      {
        timeout: 10_000,
      },
      async () => {
        // The dispatcher alone, with a host standing in for the engine and the database: the first
        // claim finds nothing, and while it runs a workflow is enqueued and its notification arrives.
        const provider = target.provider(await target.fresh());
        cleanups.push(() => provider.close());
        const closing = new AbortController();
        const waits = new Waits(provider, 5_000, closing.signal);
        cleanups.push(async () => {
          closing.abort();
          await waits.close();
        });
        const queue: QueueDefinition = { name: 'woken', concurrency: null, workerConcurrency: null, rateLimit: null, partitioned: false };
        const row = { id: 'wf-1', name: 'tick', status: 'PENDING', queue: 'woken' } as WorkflowRow;
        let enqueued = false;
        let claims = 0;
        let claimedAt: number | undefined;
        const host: DispatcherHost = {
          waits,
          logger: { info() {}, warn() {}, error() {} },
          register: async () => undefined,
          claim: async () => {
            claims++;
            await sleep(5);
            if (claims === 1) {
              // This claim already read the queue and found it empty; the enqueue lands now.
              enqueued = true;
              waits.notify('q:woken');
              await sleep(5);
              return { claimed: [], nextAt: null };
            }
            if (!enqueued || claimedAt !== undefined) return { claimed: [], nextAt: null };
            claimedAt = Date.now();
            return { claimed: [row], nextAt: null };
          },
          run: () => undefined,
          running: () => 0,
        };
        const dispatcher = new Dispatcher(queue, host);
        const began = Date.now();
        dispatcher.start();
        cleanups.push(() => dispatcher.stop());
        // Anything well before the 5 s fallback poll shows the notification was acted on.
        const deadline = began + 3_500;
        while (claimedAt === undefined && Date.now() < deadline) await sleep(10);
        await dispatcher.stop();
        assert.ok(claimedAt !== undefined, `the enqueued workflow was not claimed within 3.5 s (claims made: ${claims}; the fallback poll is 5 s)`);
        assert.ok(claimedAt - began < 3_500, `claimed ${claimedAt - began} ms after the notification`);
      },
    );

    test('bad input: clear CairnErrors, and nothing stored changes', { timeout: 60_000 }, async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { executorId: 'bad', appVersion: APP_VERSION, ...FEATURE_POLL });
      const gate = new Gate();
      const wf = engine.workflow('gated', async (ctx, label: string) => {
        await ctx.step('wait', () => gate.opened);
        return label;
      });
      engine.queue('plain', { concurrency: 3 });
      engine.queue('parts', { partitioned: true, concurrency: 1 });
      await engine.launch();
      await queuesStored(store, ['plain', 'parts']);
      const client = await Client.open({ database: store.database, ...(store.schema && { schema: store.schema }) });
      cleanups.push(() => client.close());

      const busy = await wf.start('busy', { queue: 'plain', dedupId: 'busy' });
      const part = await wf.start('p', { queue: 'parts', partitionKey: 'k' });
      for (const h of [busy, part]) {
        const deadline = Date.now() + 10_000;
        while ((await h.status()).status !== 'PENDING') {
          assert.ok(Date.now() < deadline, `${h.id} never started`);
          await sleep(10);
        }
      }
      const snapshot = async () => ({
        workflows: (await engine.listWorkflows()).map((w) => ({ ...w })),
        plain: await storedQueue(store, 'plain'),
        parts: await storedQueue(store, 'parts'),
      });
      const before = await snapshot();
      assert.equal(before.workflows.length, 2);

      // Unknown queue.
      await assert.rejects(wf.start('x', { queue: 'nowhere' }), rejectsWith('queue', /queue 'nowhere' is not declared.*engine\.queue\('nowhere'/));
      await assert.rejects(client.enqueue('gated', 'x', { queue: 'nowhere' }), rejectsWith('queue', /queue 'nowhere' is not declared/));
      await assert.rejects(client.enqueue('gated', 'x', { queue: '' }), rejectsWith('queue', /non-empty string/));
      await assert.rejects(client.enqueue('gated', 'x', undefined as never), rejectsWith('queue', /needs options with a queue/));

      // Queue limits.
      for (const concurrency of [0, -1, 1.5, Number.NaN, '2']) {
        assert.throws(() => engine.queue('bad-c', { concurrency } as QueueOptions), rejectsWith('concurrency', /concurrency must be an integer >= 1/));
      }
      for (const workerConcurrency of [0, -3, 2.5]) {
        assert.throws(() => engine.queue('bad-w', { workerConcurrency } as QueueOptions), rejectsWith('workerConcurrency', /workerConcurrency must be an integer >= 1/));
      }
      for (const periodMs of [0, -500, Number.POSITIVE_INFINITY, Number.NaN]) {
        assert.throws(
          () => engine.queue('bad-r', { rateLimit: { limit: 5, periodMs } }),
          rejectsWith('rateLimit.periodMs', /rateLimit\.periodMs must be a finite number of milliseconds > 0/),
        );
      }
      for (const limit of [0, -1, 0.5]) {
        assert.throws(() => engine.queue('bad-r', { rateLimit: { limit, periodMs: 1_000 } }), rejectsWith('rateLimit.limit', /rateLimit\.limit must be an integer >= 1/));
      }
      assert.throws(() => engine.queue('plain', {}), rejectsWith('name', /already declared/));
      for (const name of ['bad-c', 'bad-w', 'bad-r']) {
        await assert.rejects(wf.start('x', { queue: name }), rejectsWith('queue', /is not declared/), `${name} was not half-declared`);
        assert.equal(await storedQueue(store, name), undefined);
      }

      // Partition keys.
      await assert.rejects(wf.start('x', { queue: 'parts' }), rejectsWith('partitionKey', /queue 'parts' is partitioned/));
      await assert.rejects(client.enqueue('gated', 'x', { queue: 'parts' }), rejectsWith('partitionKey', /queue 'parts' is partitioned/));
      await assert.rejects(wf.start('x', { queue: 'plain', partitionKey: 'k' }), rejectsWith('partitionKey', /queue 'plain' is not partitioned/));
      await assert.rejects(client.enqueue('gated', 'x', { queue: 'plain', partitionKey: 'k' }), rejectsWith('partitionKey', /not partitioned/));
      await assert.rejects(wf.start('x', { partitionKey: 'k' }), rejectsWith('partitionKey', /queued workflows/));
      await assert.rejects(wf.start('x', { queue: 'parts', partitionKey: '' }), rejectsWith('partitionKey', /non-empty string/));

      // A dedupId held by a running workflow.
      await assert.rejects(wf.start('x', { queue: 'plain', dedupId: 'busy' }), isDuplicate('plain', 'busy'));
      await assert.rejects(client.enqueue('gated', 'x', { queue: 'plain', dedupId: 'busy' }), isDuplicate('plain', 'busy'));

      // Priority, delay and the rest of the options.
      for (const priority of [1.5, Number.NaN, Number.POSITIVE_INFINITY, '1', 2 ** 60]) {
        await assert.rejects(wf.start('x', { queue: 'plain', priority } as never), rejectsWith('priority', /priority must be an integer/));
        await assert.rejects(client.enqueue('gated', 'x', { queue: 'plain', priority } as never), rejectsWith('priority', /priority must be an integer/));
      }
      for (const delayMs of [-1, -0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        await assert.rejects(wf.start('x', { queue: 'plain', delayMs }), rejectsWith('delayMs', /delayMs must be a finite number of milliseconds >= 0/));
        await assert.rejects(client.enqueue('gated', 'x', { queue: 'plain', delayMs }), rejectsWith('delayMs', /delayMs/));
      }
      await assert.rejects(wf.start('x', { priority: 1 }), rejectsWith('priority', /pass a queue as well/));
      await assert.rejects(wf.start('x', { delayMs: 10 }), rejectsWith('delayMs', /pass a queue as well/));
      await assert.rejects(wf.start('x', { dedupId: 'd' }), rejectsWith('dedupId', /pass a queue as well/));
      await assert.rejects(wf.start('x', { queue: 'plain', onDuplicate: 'ignore' } as never), rejectsWith('onDuplicate', /'error' or 'return-existing'/));
      const bounce = engine.queue('bounce', {});
      await assert.rejects(bounce.debounce(wf, 'k', 'x', { periodMs: -1 }), rejectsWith('periodMs', /periodMs must be/));

      if (target.kind === 'postgres') {
        const s = store.schema!;
        const bad = [
          [`SELECT "${s}".enqueue_workflow('gated', 'nowhere', '"x"', '{}')`, /queue "nowhere" is not declared/],
          [`SELECT "${s}".enqueue_workflow('gated', 'parts', '"x"', '{}')`, /queue "parts" is partitioned; pass partition_key/],
          [`SELECT "${s}".enqueue_workflow('gated', 'plain', '"x"', '{"delay_ms": -5}')`, /delay_ms must be >= 0/],
          [`SELECT "${s}".enqueue_workflow('', 'plain', '"x"', '{}')`, /needs a workflow name/],
          [`SELECT "${s}".enqueue_workflow('gated', 'plain', '"x"', '{"dedup_id": "busy"}')`, /workflows_dedup_idx|duplicate key/],
        ] as const;
        for (const [sql, message] of bad) {
          const r = await psql(store, sql);
          assert.notEqual(r.code, 0, `${sql} succeeded`);
          assert.match(r.stderr, message);
        }
      }

      const afterwards = await snapshot();
      assert.deepEqual(afterwards, before, 'bad calls changed nothing stored');
      gate.open();
      assert.equal(await busy.result(), 'busy');
      assert.equal(await part.result(), 'p');
    });
  });
}
