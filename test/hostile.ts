import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, afterEach, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import pg from 'pg';
import {
  CairnError,
  Client,
  CorruptValueError,
  Engine,
  EngineClosedError,
  type CairnErrorCode,
  type Context,
  type Logger,
  type Queue,
  type Workflow,
} from '../src/index.js';
import type { Store, Target } from './helpers/targets.js';

/** Runs SQL against a store directly, outside Cairn; `$schema` is the store's Postgres schema. */
async function rawQuery(target: Target, store: Store, sql: { sqlite: string; postgres: string }, params: unknown[] = []): Promise<unknown[]> {
  if (target.kind === 'sqlite') {
    const db = new Database(store.database.slice('sqlite:'.length));
    try {
      const stmt = db.prepare(sql.sqlite);
      return stmt.reader ? stmt.all(...params) : (stmt.run(...params), []);
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: store.database });
  await client.connect();
  try {
    return (await client.query(sql.postgres.replaceAll('$schema', `"${store.schema ?? 'cairn'}"`), params)).rows;
  } finally {
    await client.end();
  }
}

function psql(store: Store, sql: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('psql', [store.database, '-X', '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose', '-At', '-c', sql], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: stdout.trim(), stderr: stderr.trim() }));
  });
}

/** A value nested `depth` levels deep. */
function nested(depth: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

const LONG = 'n'.repeat(256);

/** Strings no name or id may be. */
const BAD_NAMES: Array<[string, unknown]> = [
  ['NUL', 'a\u0000b'],
  ['a lone high surrogate', 'x\uD800'],
  ['a lone low surrogate', '\uDC00y'],
  ['256 characters', LONG],
  ['an empty string', ''],
];

/** Numbers no duration may be. */
const BAD_DURATIONS: Array<[string, unknown]> = [
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
  ['-1', -1],
  ['1e20', 1e20],
  ['1e16', 1e16],
];

/** Numbers no count or limit (a 32-bit integer >= 1) may be. */
const BAD_LIMITS: Array<[string, unknown]> = [
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
  ['-1', -1],
  ['0', 0],
  ['1.5', 1.5],
  ['2^31', 2 ** 31],
  ['1e20', 1e20],
];

/** Numbers no priority (any 32-bit integer) may be. */
const BAD_PRIORITIES: Array<[string, unknown]> = [
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
  ['2^31', 2 ** 31],
  ['-(2^31)-1', -(2 ** 31) - 1],
  ['1e20', 1e20],
  ['1.5', 1.5],
];

/** Values no stored value may be. */
const BAD_VALUES: Array<[string, () => unknown]> = [
  ['nested 100,000 levels deep', () => nested(100_000)],
  ['nested 501 levels deep', () => nested(501)],
  ['holding an invalid Date', () => ({ when: new Date(Number.NaN) })],
  ['holding constructor next to a Date', () => ({ constructor: 'x', at: new Date(0) })],
];

interface Fixture {
  engine: Engine;
  client: Client;
  echo: Workflow<unknown, unknown>;
  probe: Workflow<string, { code: string | null; message: string }>;
  jobs: Queue;
  parts: Queue;
}

type Call = (f: Fixture) => unknown;
interface Case {
  name: string;
  code: CairnErrorCode;
  call: Call;
}

/** Calls made inside a workflow, by case name; the probe workflow runs one and reports its error. */
const inside = new Map<string, (ctx: Context, f: Fixture) => Promise<unknown>>();

function buildCases(): Case[] {
  const cases: Case[] = [];
  const add = (name: string, code: CairnErrorCode, call: Call) => cases.push({ name, code, call });
  const ctxCase = (name: string, code: CairnErrorCode, call: (ctx: Context, f: Fixture) => Promise<unknown>) => {
    inside.set(name, call);
    add(`ctx: ${name}`, code, async (f) => {
      const got = await f.probe.run(name);
      if (got.code !== null) throw Object.assign(new CairnError(got.code as CairnErrorCode, got.message), {});
      return got;
    });
  };
  const names = (label: string, call: (bad: unknown, f: Fixture) => unknown) => {
    for (const [what, bad] of BAD_NAMES) add(`${label}: ${what}`, 'INVALID_ARGUMENT', (f) => call(bad, f));
  };
  const durations = (label: string, call: (bad: unknown, f: Fixture) => unknown) => {
    for (const [what, bad] of BAD_DURATIONS) add(`${label}: ${what}`, 'INVALID_ARGUMENT', (f) => call(bad, f));
  };
  const limits = (label: string, call: (bad: unknown, f: Fixture) => unknown) => {
    for (const [what, bad] of BAD_LIMITS) add(`${label}: ${what}`, 'INVALID_ARGUMENT', (f) => call(bad, f));
  };
  const priorities = (label: string, call: (bad: unknown, f: Fixture) => unknown) => {
    for (const [what, bad] of BAD_PRIORITIES) add(`${label}: ${what}`, 'INVALID_ARGUMENT', (f) => call(bad, f));
  };
  const values = (label: string, call: (bad: unknown, f: Fixture) => unknown) => {
    for (const [what, make] of BAD_VALUES) add(`${label}: a value ${what}`, 'SERIALIZATION', (f) => call(make(), f));
  };
  const database = 'sqlite::memory:';
  const s = (v: unknown) => v as string;
  const n = (v: unknown) => v as number;

  // Engine.open: checked before any database is opened.
  names('Engine.open executorId', (bad) => Engine.open({ database, executorId: s(bad) }));
  names('Engine.open appVersion', (bad) => Engine.open({ database, appVersion: s(bad) }));
  limits('Engine.open maxRecoveryAttempts', (bad) => Engine.open({ database, maxRecoveryAttempts: n(bad) }));
  limits('Engine.open pollIntervalMs', (bad) => Engine.open({ database, pollIntervalMs: n(bad) }));

  // Registration and starts.
  names('engine.workflow name', (bad, f) => f.engine.workflow(s(bad), async () => 1));
  names('workflow.start id', (bad, f) => f.echo.start(1, { id: s(bad) }));
  names('workflow.run id', (bad, f) => f.echo.run(1, { id: s(bad) }));
  names('workflow.start queue', (bad, f) => f.echo.start(1, { queue: s(bad) }));
  names('workflow.start dedupId', (bad, f) => f.echo.start(1, { queue: 'jobs', dedupId: s(bad) }));
  names('workflow.start queued id', (bad, f) => f.echo.start(1, { queue: 'jobs', id: s(bad) }));
  names('workflow.start partitionKey', (bad, f) => f.echo.start(1, { queue: 'parts', partitionKey: s(bad) }));
  durations('workflow.start timeoutMs', (bad, f) => f.echo.start(1, { timeoutMs: n(bad) }));
  durations('workflow.start queued timeoutMs', (bad, f) => f.echo.start(1, { queue: 'jobs', timeoutMs: n(bad) }));
  durations('workflow.start delayMs', (bad, f) => f.echo.start(1, { queue: 'jobs', delayMs: n(bad) }));
  priorities('workflow.start priority', (bad, f) => f.echo.start(1, { queue: 'jobs', priority: n(bad) }));
  values('workflow.start input', (bad, f) => f.echo.start(bad));
  values('workflow.start queued input', (bad, f) => f.echo.start(bad, { queue: 'jobs' }));

  // Queues.
  names('engine.queue name', (bad, f) => f.engine.queue(s(bad)));
  limits('engine.queue concurrency', (bad, f) => f.engine.queue('q-bad', { concurrency: n(bad) }));
  limits('engine.queue workerConcurrency', (bad, f) => f.engine.queue('q-bad', { workerConcurrency: n(bad) }));
  limits('engine.queue rateLimit.limit', (bad, f) => f.engine.queue('q-bad', { rateLimit: { limit: n(bad), periodMs: 1_000 } }));
  for (const [what, bad] of [...BAD_DURATIONS, ['0', 0] as [string, unknown]]) {
    add(`engine.queue rateLimit.periodMs: ${what}`, 'INVALID_ARGUMENT', (f) => f.engine.queue('q-bad', { rateLimit: { limit: 1, periodMs: n(bad) } }));
  }
  names('queue.debounce key', (bad, f) => f.jobs.debounce(f.echo, s(bad), 1, { periodMs: 10 }));
  durations('queue.debounce periodMs', (bad, f) => f.jobs.debounce(f.echo, 'k', 1, { periodMs: n(bad) }));
  durations('queue.debounce maxWaitMs', (bad, f) => f.jobs.debounce(f.echo, 'k', 1, { periodMs: 10, maxWaitMs: n(bad) }));
  priorities('queue.debounce priority', (bad, f) => f.jobs.debounce(f.echo, 'k', 1, { periodMs: 10, priority: n(bad) }));
  names('queue.debounce partitionKey', (bad, f) => f.parts.debounce(f.echo, 'k', 1, { periodMs: 10, partitionKey: s(bad) }));
  values('queue.debounce input', (bad, f) => f.jobs.debounce(f.echo, 'k', bad, { periodMs: 10 }));

  // Client.enqueue.
  names('client.enqueue workflow name', (bad, f) => f.client.enqueue(s(bad), 1, { queue: 'jobs' }));
  names('client.enqueue queue', (bad, f) => f.client.enqueue('echo', 1, { queue: s(bad) }));
  names('client.enqueue id', (bad, f) => f.client.enqueue('echo', 1, { queue: 'jobs', id: s(bad) }));
  names('client.enqueue dedupId', (bad, f) => f.client.enqueue('echo', 1, { queue: 'jobs', dedupId: s(bad) }));
  names('client.enqueue partitionKey', (bad, f) => f.client.enqueue('echo', 1, { queue: 'parts', partitionKey: s(bad) }));
  durations('client.enqueue delayMs', (bad, f) => f.client.enqueue('echo', 1, { queue: 'jobs', delayMs: n(bad) }));
  durations('client.enqueue timeoutMs', (bad, f) => f.client.enqueue('echo', 1, { queue: 'jobs', timeoutMs: n(bad) }));
  priorities('client.enqueue priority', (bad, f) => f.client.enqueue('echo', 1, { queue: 'jobs', priority: n(bad) }));
  values('client.enqueue input', (bad, f) => f.client.enqueue('echo', bad, { queue: 'jobs' }));

  // Messages, events, streams.
  names('engine.send workflow id', (bad, f) => f.engine.send(s(bad), 1));
  names('engine.send topic', (bad, f) => f.engine.send('parked', 1, s(bad)));
  names('engine.send idempotencyKey', (bad, f) => f.engine.send('parked', 1, 'other', { idempotencyKey: s(bad) }));
  values('engine.send message', (bad, f) => f.engine.send('parked', bad, 'other'));
  names('client.send workflow id', (bad, f) => f.client.send(s(bad), 1));
  names('engine.getEvent workflow id', (bad, f) => f.engine.getEvent(s(bad), 'k', 0));
  names('engine.getEvent key', (bad, f) => f.engine.getEvent('parked', s(bad), 0));
  durations('engine.getEvent timeoutMs', (bad, f) => f.engine.getEvent('parked', 'k', n(bad)));
  names('client.getEvent key', (bad, f) => f.client.getEvent('parked', s(bad), 0));
  names('engine.readStream workflow id', (bad, f) => drain(f.engine.readStream(s(bad), 'k')));
  names('engine.readStream key', (bad, f) => drain(f.engine.readStream('parked', s(bad))));

  // Management.
  names('engine.cancel id', (bad, f) => f.engine.cancel(s(bad)));
  names('client.cancel id', (bad, f) => f.client.cancel(s(bad)));
  names('engine.resume id', (bad, f) => f.engine.resume(s(bad)));
  names('engine.fork id', (bad, f) => f.engine.fork(s(bad), { fromStep: 1 }));
  names('engine.fork new id', (bad, f) => f.engine.fork('done-1', { fromStep: 1, id: s(bad) }));
  limits('engine.fork fromStep', (bad, f) => f.engine.fork('done-1', { fromStep: n(bad) }));
  names('engine.handle id', (bad, f) => f.engine.handle(s(bad)));
  names('client.handle id', (bad, f) => f.client.handle(s(bad)));
  names('engine.getWorkflow id', (bad, f) => f.engine.getWorkflow(s(bad)));
  names('client.getWorkflow id', (bad, f) => f.client.getWorkflow(s(bad)));
  names('engine.listSteps id', (bad, f) => f.engine.listSteps(s(bad)));
  names('listWorkflows name', (bad, f) => f.engine.listWorkflows({ name: s(bad) }));
  names('listWorkflows queue', (bad, f) => f.engine.listWorkflows({ queue: s(bad) }));
  names('client.listWorkflows name', (bad, f) => f.client.listWorkflows({ name: s(bad) }));
  for (const [what, bad] of [...BAD_LIMITS.filter(([w]) => w !== '0' && w !== '2^31'), ['1e300', 1e300] as [string, unknown]]) {
    add(`listWorkflows limit: ${what}`, 'INVALID_ARGUMENT', (f) => f.engine.listWorkflows({ limit: n(bad) }));
    add(`listWorkflows offset: ${what}`, 'INVALID_ARGUMENT', (f) => f.engine.listWorkflows({ offset: n(bad) }));
  }
  add('listWorkflows createdAfter: an invalid Date', 'INVALID_ARGUMENT', (f) => f.engine.listWorkflows({ createdAfter: new Date(Number.NaN) }));
  add('listWorkflows createdBefore: an invalid Date', 'INVALID_ARGUMENT', (f) => f.engine.listWorkflows({ createdBefore: new Date(Number.NaN) }));

  // Schedules.
  names('engine.schedule name', (bad, f) => f.engine.schedule(s(bad), '* * * * *', f.echo));
  names('engine.schedule queue', (bad, f) => f.engine.schedule('sch-bad', '* * * * *', f.echo, { queue: s(bad) }));
  for (const [what, bad] of [...BAD_NAMES, ['61 in the minute field', '61 * * * *'] as [string, unknown], ['NUL in the cron', '* * * * *\u0000'] as [string, unknown]]) {
    add(`engine.schedule cron: ${what}`, 'INVALID_ARGUMENT', (f) => f.engine.schedule('sch-bad', s(bad), f.echo));
    add(`schedules.create cron: ${what}`, 'INVALID_ARGUMENT', (f) => f.engine.schedules.create('sch-bad', s(bad), f.echo));
  }
  for (const [what, bad] of [...BAD_NAMES, ['an unknown zone', 'Mars/Olympus'] as [string, unknown], ['NUL in a zone', 'UTC\u0000'] as [string, unknown]]) {
    add(`engine.schedule timezone: ${what}`, 'INVALID_ARGUMENT', (f) => f.engine.schedule('sch-bad', '* * * * *', f.echo, { timezone: s(bad) }));
    add(`schedules.update timezone: ${what}`, 'INVALID_ARGUMENT', (f) => f.engine.schedules.update('sch-ok', { timezone: s(bad) }));
  }
  names('schedules.create name', (bad, f) => f.engine.schedules.create(s(bad), '* * * * *', f.echo));
  names('schedules.create workflow name', (bad, f) => f.engine.schedules.create('sch-bad', '* * * * *', s(bad)));
  names('schedules.get name', (bad, f) => f.engine.schedules.get(s(bad)));
  names('schedules.update name', (bad, f) => f.engine.schedules.update(s(bad), {}));
  names('schedules.pause name', (bad, f) => f.engine.schedules.pause(s(bad)));
  names('schedules.resume name', (bad, f) => f.engine.schedules.resume(s(bad)));
  names('schedules.delete name', (bad, f) => f.engine.schedules.delete(s(bad)));
  names('schedules.trigger name', (bad, f) => f.engine.schedules.trigger(s(bad)));
  names('schedules.backfill name', (bad, f) => f.engine.schedules.backfill(s(bad), new Date(0), new Date(1)));
  add('schedules.backfill from: an invalid Date', 'INVALID_ARGUMENT', (f) => f.engine.schedules.backfill('sch-ok', new Date(Number.NaN), new Date()));
  add('schedules.backfill to: an invalid Date', 'INVALID_ARGUMENT', (f) => f.engine.schedules.backfill('sch-ok', new Date(0), new Date(Number.NaN)));

  // Inside a workflow.
  for (const [what, bad] of BAD_NAMES) {
    ctxCase(`step name: ${what}`, 'INVALID_ARGUMENT', (ctx) => ctx.step(s(bad), () => 1));
    ctxCase(`send destination: ${what}`, 'INVALID_ARGUMENT', (ctx) => ctx.send(s(bad), 1));
    ctxCase(`send topic: ${what}`, 'INVALID_ARGUMENT', (ctx) => ctx.send('parked', 1, s(bad)));
    ctxCase(`recv topic: ${what}`, 'INVALID_ARGUMENT', (ctx) => ctx.recv(s(bad), 0));
    ctxCase(`setEvent key: ${what}`, 'INVALID_ARGUMENT', (ctx) => ctx.setEvent(s(bad), 1));
    ctxCase(`getEvent workflow id: ${what}`, 'INVALID_ARGUMENT', (ctx) => ctx.getEvent(s(bad), 'k', 0));
    ctxCase(`getEvent key: ${what}`, 'INVALID_ARGUMENT', (ctx) => ctx.getEvent('parked', s(bad), 0));
    ctxCase(`writeStream key: ${what}`, 'INVALID_ARGUMENT', (ctx) => ctx.writeStream(s(bad), 1));
    ctxCase(`closeStream key: ${what}`, 'INVALID_ARGUMENT', (ctx) => ctx.closeStream(s(bad)));
    ctxCase(`startChild id: ${what}`, 'INVALID_ARGUMENT', (ctx, f) => ctx.startChild(f.echo, 1, { id: s(bad) }));
  }
  for (const [what, bad] of BAD_DURATIONS) {
    ctxCase(`step timeoutMs: ${what}`, 'INVALID_ARGUMENT', (ctx) => ctx.step('s', () => 1, { timeoutMs: n(bad) }));
    ctxCase(`step retry.minDelayMs: ${what}`, 'INVALID_ARGUMENT', (ctx) => ctx.step('s', () => 1, { retry: { maxAttempts: 2, minDelayMs: n(bad) } }));
    ctxCase(`step retry.maxDelayMs: ${what}`, 'INVALID_ARGUMENT', (ctx) => ctx.step('s', () => 1, { retry: { maxAttempts: 2, maxDelayMs: n(bad) } }));
    ctxCase(`sleep: ${what}`, 'INVALID_ARGUMENT', (ctx) => ctx.sleep(n(bad)));
    ctxCase(`recv timeoutMs: ${what}`, 'INVALID_ARGUMENT', (ctx) => ctx.recv('t', n(bad)));
    ctxCase(`getEvent timeoutMs: ${what}`, 'INVALID_ARGUMENT', (ctx) => ctx.getEvent('parked', 'k', n(bad)));
    ctxCase(`startChild timeoutMs: ${what}`, 'INVALID_ARGUMENT', (ctx, f) => ctx.startChild(f.echo, 1, { timeoutMs: n(bad) }));
  }
  ctxCase('step retry.minDelayMs: 3e9 (past a Node timer)', 'INVALID_ARGUMENT', (ctx) => ctx.step('s', () => 1, { retry: { maxAttempts: 2, minDelayMs: 3e9 } }));
  ctxCase('step retry.maxDelayMs: 2^31', 'INVALID_ARGUMENT', (ctx) => ctx.step('s', () => 1, { retry: { maxAttempts: 2, maxDelayMs: 2 ** 31 } }));
  for (const [what, bad] of BAD_LIMITS) {
    ctxCase(`step retry.maxAttempts: ${what}`, 'INVALID_ARGUMENT', (ctx) => ctx.step('s', () => 1, { retry: { maxAttempts: n(bad) } }));
  }
  ctxCase('sleepUntil: an invalid Date', 'INVALID_ARGUMENT', (ctx) => ctx.sleepUntil(new Date(Number.NaN)));
  for (const [what, make] of BAD_VALUES) {
    ctxCase(`step output: a value ${what}`, 'SERIALIZATION', (ctx) => ctx.step('s', () => make()));
    ctxCase(`send message: a value ${what}`, 'SERIALIZATION', (ctx) => ctx.send('parked', make(), 'other'));
    ctxCase(`setEvent value: a value ${what}`, 'SERIALIZATION', (ctx) => ctx.setEvent('k', make()));
    ctxCase(`writeStream value: a value ${what}`, 'SERIALIZATION', (ctx) => ctx.writeStream('k', make()));
    ctxCase(`startChild input: a value ${what}`, 'SERIALIZATION', (ctx, f) => ctx.startChild(f.echo, make()));
  }
  return cases;
}

async function drain(stream: AsyncGenerator<unknown>): Promise<void> {
  for await (const _ of stream) break;
}

/** A logger that keeps what it is given. */
function recordingLogger(): Logger & { errors: Array<{ obj: unknown; msg: string | undefined }> } {
  const errors: Array<{ obj: unknown; msg: string | undefined }> = [];
  return {
    errors,
    info() {},
    warn() {},
    error(obj: unknown, msg?: string) {
      errors.push({ obj, msg });
    },
  };
}

/**
 * Hostile input at every public entry point, and corrupt data in every stored place: each gets a
 * CairnError with a code, and nothing else breaks. Written once and run on every provider.
 */
export function defineHostileSuite(target: Target): void {
  describe(`hostile input on ${target.kind}`, { skip: target.skip }, () => {
    after(() => target.dispose());

    describe('every entry point refuses hostile names, numbers and values', () => {
      const cases = buildCases();
      let fixture: Fixture;
      let store: Store;
      let parked: Promise<unknown>;
      let stored: Array<[string, string, string]>;

      before(async () => {
        store = await target.fresh();
        const engine = await target.open(store, { appVersion: 'v1' });
        const echo = engine.workflow('echo', async (_ctx: Context, x: unknown) => x);
        const waiter = engine.workflow('waiter', async (ctx: Context, x: number) => {
          const got = await ctx.recv<number>('go', 60_000);
          return (got ?? -1) + x;
        });
        const jobs = engine.queue('jobs', { concurrency: 1 });
        const parts = engine.queue('parts', { partitioned: true });
        const f = {} as Fixture;
        const probe = engine.workflow('probe', async (ctx: Context, name: string) => {
          try {
            await inside.get(name)!(ctx, f);
            return { code: null, message: 'no error' };
          } catch (err) {
            return { code: err instanceof CairnError ? err.code : null, message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) };
          }
        });
        const client = await Client.open({ database: store.database, ...(store.schema && { schema: store.schema }) });
        Object.assign(f, { engine, client, echo, probe, jobs, parts });
        fixture = f;
        await echo.run(1, { id: 'done-1' });
        await engine.schedules.create('sch-ok', '* * * * *', 'echo');
        // Queues are stored at launch; store these two directly so the Client finds them.
        await (engine as unknown as { provider: { upsertQueue(q: unknown, now: number): Promise<void> } }).provider.upsertQueue(jobs.definition, Date.now());
        await (engine as unknown as { provider: { upsertQueue(q: unknown, now: number): Promise<void> } }).provider.upsertQueue(parts.definition, Date.now());
        const h = await waiter.start(41, { id: 'parked' });
        parked = h.result();
        // Parked in recv before the hostile calls.
        await sleep(50);
        assert.equal((await engine.getWorkflow('parked')).status, 'PENDING');
        stored = (await engine.listWorkflows({ order: 'asc' })).map((w) => [w.id, w.name, w.status]);
      });

      after(async () => {
        await fixture?.client.close();
        await target.closeAll();
      });

      for (const c of cases) {
        test(c.name, async () => {
          await assert.rejects(
            async () => c.call(fixture),
            (err: unknown) => {
              assert.ok(err instanceof CairnError, `expected a CairnError with code ${c.code}, got ${String(err)}`);
              assert.equal(err.code, c.code, `unexpected code for: ${err.message}`);
              assert.ok(err.message.length > 0 && err.message.length < 2_000, `the message is readable: ${err.message.slice(0, 200)}`);
              return true;
            },
          );
        });
      }

      test(`the ${cases.length} refused calls stored nothing and the parked workflow still completes`, async () => {
        const probes = (await fixture.engine.listWorkflows({ name: 'probe' })).length;
        const now = (await fixture.engine.listWorkflows({ order: 'asc' })).filter((w) => w.name !== 'probe');
        assert.deepEqual(
          now.map((w) => [w.id, w.name, w.status]),
          stored,
          'no refused call stored a workflow',
        );
        assert.equal(probes, inside.size, 'one probe workflow per call made inside a workflow');
        await fixture.engine.send('parked', 1, 'go');
        assert.equal(await parked, 42);
      });
    });

    describe('durations and priorities that fit the columns', () => {
      afterEach(() => target.closeAll());

      test('the largest duration and 32-bit priorities are stored on both databases, fractions rounded up', async () => {
        const store = await target.fresh();
        const engine = await target.open(store);
        const echo = engine.workflow('echo', async (_ctx: Context, x: number) => x);
        engine.queue('q', { rateLimit: { limit: 2 ** 31 - 1, periodMs: 1.5 }, concurrency: 2 ** 31 - 1 });
        await engine.launch();
        const high = await echo.start(1, { queue: 'q', priority: 2 ** 31 - 1, delayMs: 1e15, timeoutMs: 1e15 });
        const low = await echo.start(2, { queue: 'q', priority: -(2 ** 31) });
        const fraction = await echo.start(3, { queue: 'q', delayMs: 0.25, timeoutMs: 0.5 });
        assert.equal((await high.status()).status, 'DELAYED');
        assert.equal(await low.result(), 2);
        const long = await echo.start(4, { timeoutMs: 1e15 - 0.5 });
        assert.equal(await long.result(), 4);
        const rows = (await rawQuery(target, store, {
          sqlite: `SELECT id, priority, available_at - created_at AS delay FROM cairn_workflows WHERE id = ?`,
          postgres: `SELECT id, priority, (available_at - created_at)::float8 AS delay FROM $schema.workflows WHERE id = $1`,
        }, [high.id])) as Array<{ priority: number; delay: number }>;
        assert.equal(rows[0]!.priority, 2 ** 31 - 1);
        assert.equal(Number(rows[0]!.delay), 1e15);
        const rounded = (await rawQuery(target, store, {
          sqlite: `SELECT available_at - created_at AS delay, deadline_at - created_at AS timeout FROM cairn_workflows WHERE id = ?`,
          postgres: `SELECT (available_at - created_at)::float8 AS delay, (deadline_at - created_at)::float8 AS timeout FROM $schema.workflows WHERE id = $1`,
        }, [fraction.id])) as Array<{ delay: number; timeout: number }>;
        assert.deepEqual([Number(rounded[0]!.delay), Number(rounded[0]!.timeout)], [1, 2], 'fractions are rounded up to whole milliseconds');
      });

      test('a step timeout past 2^31 - 1 ms does not fire at once', async () => {
        const store = await target.fresh();
        const engine = await target.open(store);
        const wf = engine.workflow('slow_step', async (ctx: Context) =>
          ctx.step('wait', async () => {
            await sleep(30);
            return 'finished';
          }, { timeoutMs: 3e9 }),
        );
        assert.equal(await wf.run(undefined), 'finished');
      });
    });

    describe('steps: retryIf that throws, and the retries-exceeded message', () => {
      afterEach(() => target.closeAll());

      test('a retryIf that throws stops the retries and fails the step with its error, the attempt error as cause', async () => {
        const store = await target.fresh();
        const engine = await target.open(store);
        let runs = 0;
        const wf = engine.workflow('picky', async (ctx: Context) =>
          ctx.step('flaky', () => {
            runs++;
            throw new Error('attempt failed');
          }, {
            retry: {
              maxAttempts: 5,
              minDelayMs: 1,
              retryIf: () => {
                throw new Error('retryIf is broken');
              },
            },
          }),
        );
        const h = await wf.start(undefined);
        await assert.rejects(h.result(), (err: unknown) => {
          assert.equal((err as Error).message, 'retryIf is broken');
          assert.equal(((err as Error).cause as Error | undefined)?.message, 'attempt failed');
          return true;
        });
        assert.equal(runs, 1, 'no retry after retryIf threw');
        const steps = await engine.listSteps(h.id);
        assert.equal(steps.length, 1);
        assert.equal((steps[0]!.error as Error).message, 'retryIf is broken');
      });

      test("StepRetriesExceededError's message ends with the last attempt's error", async () => {
        const store = await target.fresh();
        const engine = await target.open(store);
        let n = 0;
        const wf = engine.workflow('hopeless', async (ctx: Context) =>
          ctx.step('charge', () => {
            throw new Error(`card declined #${++n}`);
          }, { retry: { maxAttempts: 3, minDelayMs: 1 } }),
        );
        await assert.rejects(wf.run(undefined), (err: unknown) => {
          assert.ok(err instanceof CairnError);
          assert.equal(err.code, 'STEP_RETRIES_EXCEEDED');
          assert.match(err.message, /step 'charge' failed on all 3 attempts; last error: card declined #3$/);
          return true;
        });
      });
    });

    describe('corrupt stored values', () => {
      afterEach(() => target.closeAll());

      const corruptions: Array<[string, string]> = [
        ['text that is not JSON', '{"json": [1, 2'],
        ['JSON without a json field', '[1, 2, 3]'],
        ['superjson meta that does not fit the value', '{"json": {"a": 1}, "meta": {"values": {"a": ["map"]}}}'],
        ['superjson meta of an unknown type', '{"json": 5, "meta": {"values": ["no-such-type"]}}'],
      ];

      for (const [label, bad] of corruptions) {
        test(`a corrupt workflow output, input, error and step output (${label}) give CorruptValueError; lists keep every row`, async () => {
          const store = await target.fresh();
          const engine = await target.open(store);
          const wf = engine.workflow('w', async (ctx: Context, x: number) => {
            await ctx.step('s', () => x * 2);
            if (x < 0) throw new Error('negative');
            return x;
          });
          await wf.run(1, { id: 'good' });
          await wf.run(2, { id: 'bad-output' });
          await assert.rejects(wf.run(-1, { id: 'bad-error' }));
          await wf.run(4, { id: 'bad-input' });
          const update = (column: string, table: string, where: string, id: string) =>
            rawQuery(target, store, {
              sqlite: `UPDATE cairn_${table} SET ${column} = ? WHERE ${where} = ?`,
              postgres: `UPDATE $schema.${table} SET ${column} = $1 WHERE ${where} = $2`,
            }, [bad, id]);
          await update('output', 'workflows', 'id', 'bad-output');
          await update('error', 'workflows', 'id', 'bad-error');
          await update('input', 'workflows', 'id', 'bad-input');
          await update('output', 'steps', 'workflow_id', 'good');

          const all = await engine.listWorkflows({ order: 'asc' });
          assert.deepEqual(all.map((w) => w.id).sort(), ['bad-error', 'bad-input', 'bad-output', 'good']);
          const byId = new Map(all.map((w) => [w.id, w]));
          assert.equal(byId.get('good')!.output, 1);
          assert.equal(byId.get('good')!.problem, undefined);
          for (const [id, field] of [['bad-output', 'output'], ['bad-error', 'error'], ['bad-input', 'input']] as const) {
            const info = byId.get(id)!;
            assert.equal(info[field], undefined, `${id}.${field} is undefined`);
            assert.ok(info.problem instanceof CorruptValueError, `${id} carries its problem`);
            assert.equal(info.problem.code, 'CORRUPT_VALUE');
            assert.equal(info.problem.what, `the ${field} of workflow '${id}'`);
            assert.ok(info.problem.cause !== undefined, 'the parser error is kept as the cause');
            assert.deepEqual(await engine.getWorkflow(id).then((w) => w.problem?.what), info.problem.what);
          }
          assert.equal(byId.get('bad-input')!.output, 4, 'the other fields of a corrupt row are still read');
          const steps = await engine.listSteps('good');
          assert.equal(steps[0]!.output, undefined);
          assert.ok(steps[0]!.problem instanceof CorruptValueError);
          assert.match(steps[0]!.problem.message, /the output of step 1 \('s'\) of workflow 'good' is corrupt/);
          assert.equal((await engine.handle('bad-output').status()).problem?.code, 'CORRUPT_VALUE');
          await assert.rejects(engine.handle('bad-output').result(), (err: unknown) => err instanceof CorruptValueError && /output of workflow 'bad-output'/.test(err.message));
          await assert.rejects(engine.handle('bad-error').result(), (err: unknown) => err instanceof CorruptValueError && err.code === 'CORRUPT_VALUE');
          assert.equal(await engine.handle('good').result(), 1);
        });
      }

      test('a corrupt event value gives CorruptValueError from getEvent', async () => {
        const store = await target.fresh();
        const engine = await target.open(store);
        const wf = engine.workflow('evt', async (ctx: Context) => {
          await ctx.setEvent('k', { ok: true });
          await ctx.setEvent('fine', 1);
        });
        await wf.run(undefined, { id: 'e1' });
        await rawQuery(target, store, {
          sqlite: `UPDATE cairn_events SET value = 'not json' WHERE workflow_id = 'e1' AND key = 'k'`,
          postgres: `UPDATE $schema.events SET value = 'not json' WHERE workflow_id = 'e1' AND key = 'k'`,
        });
        await assert.rejects(engine.getEvent('e1', 'k', 0), (err: unknown) => {
          assert.ok(err instanceof CorruptValueError);
          assert.equal(err.what, "event 'k' of workflow 'e1'");
          assert.ok(err.cause instanceof SyntaxError);
          return true;
        });
        assert.equal(await engine.getEvent('e1', 'fine', 0), 1);
      });
    });

    describe('a schedule broken in the table', () => {
      afterEach(() => target.closeAll());

      for (const [label, column, value] of [
        ['cron expression', 'cron', 'not a cron'],
        ['time zone', 'timezone', 'Nowhere/Atlantis'],
      ] as const) {
        test(`a broken ${label} is skipped and reported once; healthy schedules keep firing; list() works`, async () => {
          const store = await target.fresh();
          const logger = recordingLogger();
          const engine = await target.open(store, { logger, pollIntervalMs: 100 });
          const counts = new Map<string, number>();
          const tick = engine.workflow('tick', async (_ctx: Context, input: { scheduledAt: Date }) => {
            void input;
            return 1;
          });
          await engine.schedules.create('a', '* * * * * *', tick);
          await engine.schedules.create('b', '* * * * * *', tick);
          await engine.schedules.create('broken', '* * * * * *', tick);
          await rawQuery(target, store, {
            sqlite: `UPDATE cairn_schedules SET ${column} = '${value}' WHERE name = 'broken'`,
            postgres: `UPDATE $schema.schedules SET ${column} = '${value}' WHERE name = 'broken'`,
          });
          await engine.launch();
          await sleep(3_300);
          const ran = await engine.listWorkflows({ name: 'tick' });
          for (const w of ran) {
            const schedule = w.id.slice(0, w.id.indexOf('@'));
            counts.set(schedule, (counts.get(schedule) ?? 0) + 1);
          }
          assert.ok((counts.get('a') ?? 0) >= 2, `schedule a fired ${counts.get('a') ?? 0} times`);
          assert.ok((counts.get('b') ?? 0) >= 2, `schedule b fired ${counts.get('b') ?? 0} times`);
          assert.equal(counts.get('broken') ?? 0, 0);
          const reports = logger.errors.filter((e) => (e.obj as { schedule?: string }).schedule === 'broken');
          assert.equal(reports.length, 1, `reported once, not every poll: ${reports.map((r) => r.msg).join(' | ')}`);
          assert.match(reports[0]!.msg ?? '', /schedule 'broken' cannot fire/);

          const list = await engine.schedules.list();
          assert.deepEqual(list.map((s) => s.name).sort(), ['a', 'b', 'broken']);
          const broken = list.find((s) => s.name === 'broken')!;
          assert.equal(broken.nextTickAt, null);
          assert.equal(typeof broken.problem, 'string');
          assert.match(broken.problem!, column === 'cron' ? /cron/ : /time zone/);
          assert.equal(list.find((s) => s.name === 'a')!.problem, undefined);
          assert.ok(list.find((s) => s.name === 'a')!.nextTickAt instanceof Date);
          assert.equal((await engine.schedules.get('broken'))!.nextTickAt, null);
          await assert.rejects(engine.schedules.backfill('broken', new Date(0), new Date(1_000)), (err: unknown) => err instanceof CairnError && err.code === 'INVALID_ARGUMENT' && /is broken/.test(err.message));

          // Fixing the row through the API makes it fire again.
          await engine.schedules.update('broken', { cron: '* * * * * *', timezone: 'UTC' });
          const fixed = await engine.schedules.get('broken');
          assert.equal(fixed!.problem, undefined);
          assert.ok(fixed!.nextTickAt instanceof Date);
        });
      }
    });

    describe('reads after close', () => {
      test('getWorkflow, listWorkflows, listSteps, handle.status, schedules.* and client reads raise EngineClosedError', async () => {
        const store = await target.fresh();
        const engine = await target.open(store);
        const wf = engine.workflow('w', async (ctx: Context) => ctx.step('s', () => 1));
        await wf.run(undefined, { id: 'w1' });
        await engine.schedules.create('s1', '0 0 * * *', wf);
        const handle = engine.handle('w1');
        const client = await Client.open({ database: store.database, ...(store.schema && { schema: store.schema }) });
        const clientHandle = client.handle('w1');
        await engine.close();
        await client.close();
        const closed = (err: unknown) => {
          assert.ok(err instanceof EngineClosedError, `expected EngineClosedError, got ${String(err)}`);
          assert.equal(err.code, 'ENGINE_CLOSED');
          return true;
        };
        for (const [label, call] of [
          ['getWorkflow', () => engine.getWorkflow('w1')],
          ['listWorkflows', () => engine.listWorkflows()],
          ['listSteps', () => engine.listSteps('w1')],
          ['handle.status', () => handle.status()],
          ['handle.result', () => handle.result()],
          ['schedules.list', () => engine.schedules.list()],
          ['schedules.get', () => engine.schedules.get('s1')],
          ['schedules.create', () => engine.schedules.create('s2', '0 0 * * *', wf)],
          ['schedules.pause', () => engine.schedules.pause('s1')],
          ['schedules.delete', () => engine.schedules.delete('s1')],
          ['client.getWorkflow', () => client.getWorkflow('w1')],
          ['client.listWorkflows', () => client.listWorkflows()],
          ['client handle.status', () => clientHandle.status()],
        ] as const) {
          await assert.rejects(async () => call(), closed, label);
        }
      });
    });

    describe('the enqueue_workflow SQL function', { skip: target.kind !== 'postgres' && 'a Postgres function' }, () => {
      afterEach(() => target.closeAll());

      test('applies the API rules and refuses an id taken by another workflow name', async () => {
        const store = await target.fresh();
        const engine = await target.open(store);
        const echo = engine.workflow('echo', async (_ctx: Context, x: unknown) => x);
        engine.workflow('other', async () => 0);
        engine.queue('jobs', {});
        engine.queue('parts', { partitioned: true });
        await engine.launch();
        await echo.run(1, { id: 'taken' });
        const s = `"${store.schema}"`;
        const before = (await engine.listWorkflows()).map((w) => [w.id, w.name, w.status]);
        const bad: Array<[string, RegExp, string]> = [
          [`SELECT ${s}.enqueue_workflow('other', 'jobs', '1', '{"id": "taken"}')`, /workflow id "taken" is already used by workflow "echo", so it cannot enqueue "other"/, '23505'],
          [`SELECT ${s}.enqueue_workflow('echo', 'jobs', '1', '{"id": "${'i'.repeat(300)}"}')`, /id must be at most 255 characters, got 300/, '22023'],
          [`SELECT ${s}.enqueue_workflow('${'e'.repeat(256)}', 'jobs', '1', '{}')`, /name must be at most 255 characters/, '22023'],
          [`SELECT ${s}.enqueue_workflow('echo', 'jobs', '1', '{"dedup_id": "${'d'.repeat(256)}"}')`, /dedup_id must be at most 255/, '22023'],
          [`SELECT ${s}.enqueue_workflow('echo', 'parts', '1', '{"partition_key": "${'p'.repeat(256)}"}')`, /partition_key must be at most 255/, '22023'],
          [`SELECT ${s}.enqueue_workflow('echo', 'jobs', '1', '{"id": "${'\u{1F600}'.repeat(128)}"}')`, /id must be at most 255 characters, got 256/, '22023'],
          [`SELECT ${s}.enqueue_workflow('echo', 'jobs', '1', '{"priority": 2147483648}')`, /priority must be an integer from -2147483648 to 2147483647/, '22023'],
          [`SELECT ${s}.enqueue_workflow('echo', 'jobs', '1', '{"priority": 1.5}')`, /priority must be an integer/, '22023'],
          [`SELECT ${s}.enqueue_workflow('echo', 'jobs', '1', '{"priority": "high"}')`, /priority must be an integer/, '22023'],
          [`SELECT ${s}.enqueue_workflow('echo', 'jobs', '1', '{"delay_ms": 1e20}')`, /delay_ms must be at most/, '22023'],
          [`SELECT ${s}.enqueue_workflow('echo', 'jobs', '1', '{"id": ""}')`, /id must be a non-empty string/, '22023'],
          [`SELECT ${s}.enqueue_workflow('echo', 'jobs', '1', '{"id": 5}')`, /id must be a string/, '22023'],
          [`SELECT ${s}.enqueue_workflow('echo', 'jobs', '1', '{"partition_key": "p"}')`, /is not partitioned/, '22023'],
          [`SELECT ${s}.enqueue_workflow('echo', 'jobs', '1', '[1]')`, /options must be a JSON object/, '22023'],
        ];
        for (const [sql, message, sqlstate] of bad) {
          const r = await psql(store, sql);
          assert.notEqual(r.code, 0, `${sql.slice(0, 120)} succeeded`);
          assert.match(r.stderr, message);
          assert.match(r.stderr, new RegExp(`ERROR:\\s+${sqlstate}`), `SQLSTATE ${sqlstate} in ${r.stderr}`);
        }
        assert.deepEqual((await engine.listWorkflows()).map((w) => [w.id, w.name, w.status]), before, 'nothing was stored');

        const same = await psql(store, `SELECT ${s}.enqueue_workflow('echo', 'jobs', '1', '{"id": "taken"}')`);
        assert.equal(same.code, 0, same.stderr);
        assert.equal(same.stdout, 'taken', 'an id of the same workflow name returns it, as the API does');
        const ok = await psql(store, `SELECT ${s}.enqueue_workflow('echo', 'jobs', '7', '{"id": "sql-ok", "priority": -2147483648}')`);
        assert.equal(ok.code, 0, ok.stderr);
        assert.equal(await engine.handle('sql-ok').result(), 7);
      });
    });
  });
}
