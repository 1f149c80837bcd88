import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, afterEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import superjson from 'superjson';
import { Engine, type Context } from '../src/index.js';
import {
  APP_VERSION,
  Gates,
  openLedger,
  registerMessagingWorkflows,
  type Ball,
  type LeafOutput,
  type MessagingWorkflows,
  type WorkflowName,
} from './fixtures/messaging-workflows.js';
import { cairnError, connectionsGone } from './helpers/assertions.js';
import type { Store, Target } from './helpers/targets.js';

/**
 * Messages, events, streams and child workflows, with real processes where it matters: on
 * Postgres the peer of a test runs in a child process (test/fixtures/messaging-child.ts) and is
 * woken through LISTEN/NOTIFY; on SQLite the peer is a second engine on the same file in this
 * process, except for the crash and stream tests, which use a child process on both.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHILD = fileURLToPath(new URL('./fixtures/messaging-child.ts', import.meta.url));
const forever = () => new Promise<never>(() => undefined);

type ChildEvent = { ev: string; id?: string; key?: string; what?: string; at?: number; value?: string; code?: string; message?: string };

/** The other side of a test: starts workflows, opens their gates, sends messages, reports results. */
interface Peer {
  start(name: WorkflowName, id: string, input: unknown): Promise<void>;
  /** Opens a gate; resolves with the instant just before it opened. */
  open(key: string): Promise<number>;
  /** engine.send; resolves with the instant just before the send. */
  send(id: string, topic: string, message: unknown): Promise<number>;
  /** The workflow's result as the peer sees it; rejects with an object carrying the error code. */
  result(id: string): Promise<unknown>;
  /** Resolves with the instant of a workflow note (`closed`, `recv`). */
  noted(what: string, id: string): Promise<number>;
  close(): Promise<void>;
}

/** A peer in this process: a second engine on the same store. */
class LocalPeer implements Peer {
  private readonly gates = new Gates();
  private readonly notes = new Map<string, { at: Promise<number>; set: (at: number) => void }>();
  private readonly workflows: MessagingWorkflows;

  constructor(readonly engine: Engine) {
    this.workflows = registerMessagingWorkflows(engine, {
      gate: (key) => this.gates.wait(key),
      note: (what, id) => this.note(what, id).set(Date.now()),
    });
  }

  private note(what: string, id: string) {
    const key = `${what}:${id}`;
    let n = this.notes.get(key);
    if (!n) {
      let set!: (at: number) => void;
      const at = new Promise<number>((resolve) => (set = resolve));
      this.notes.set(key, (n = { at, set }));
    }
    return n;
  }

  async start(name: WorkflowName, id: string, input: unknown): Promise<void> {
    await (this.workflows[name] as { start(input: unknown, options: { id: string }): Promise<unknown> }).start(input, { id });
  }

  async open(key: string): Promise<number> {
    const at = Date.now();
    this.gates.open(key);
    return at;
  }

  async send(id: string, topic: string, message: unknown): Promise<number> {
    const at = Date.now();
    await this.engine.send(id, message, topic);
    return at;
  }

  result(id: string): Promise<unknown> {
    return this.engine.handle(id).result();
  }

  noted(what: string, id: string): Promise<number> {
    return this.note(what, id).at;
  }

  close(): Promise<void> {
    return this.engine.close({ timeoutMs: 0 });
  }
}

/** A peer in a child process, driven by JSON lines (see test/fixtures/messaging-child.ts). */
class ChildPeer implements Peer {
  private readonly events: ChildEvent[] = [];
  private readonly waiters = new Set<(e: ChildEvent | 'exit') => void>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private hasExited = false;

  private constructor(private readonly child: ChildProcess) {
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        const event = JSON.parse(line) as ChildEvent;
        this.events.push(event);
        for (const w of [...this.waiters]) w(event);
      }
    });
    this.exited = new Promise((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        this.hasExited = true;
        for (const w of [...this.waiters]) w('exit');
        resolve({ code, signal });
      });
    });
  }

  static live = new Set<ChildProcess>();

  static async spawn(store: Store, executorId: string, options: { kill?: string; applicationName?: string } = {}): Promise<ChildPeer> {
    let database = store.database;
    if (options.applicationName && database.startsWith('postgres')) {
      const url = new URL(database);
      url.searchParams.set('application_name', options.applicationName);
      database = url.toString();
    }
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
      cwd: ROOT,
      env: {
        ...process.env,
        CAIRN_DATABASE: database,
        CAIRN_SCHEMA: store.schema ?? '',
        MSG_EXECUTOR_ID: executorId,
        MSG_KILL: options.kill ?? '',
      },
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    ChildPeer.live.add(child);
    child.on('exit', () => ChildPeer.live.delete(child));
    const peer = new ChildPeer(child);
    await peer.expect((e) => e.ev === 'ready', 'ready');
    return peer;
  }

  /** The first event (already printed or to come) matching `match`. */
  expect(match: (e: ChildEvent) => boolean, label: string, timeoutMs = 30_000): Promise<ChildEvent> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`child did not report ${label} within ${timeoutMs} ms`)), timeoutMs);
      const done = (result: ChildEvent | Error) => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      const waiter = (e: ChildEvent | 'exit') => {
        if (e === 'exit') done(new Error(`child exited before reporting ${label}`));
        else if (match(e)) done(e);
      };
      if (this.hasExited) return done(new Error(`child exited before reporting ${label}`));
      this.waiters.add(waiter);
    });
  }

  private command(cmd: Record<string, unknown>): void {
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
  }

  async start(name: WorkflowName, id: string, input: unknown): Promise<void> {
    this.command({ op: 'start', name, id, input });
    await this.expect((e) => e.ev === 'started' && e.id === id, `the start of ${id}`);
  }

  async open(key: string): Promise<number> {
    this.command({ op: 'open', key });
    return (await this.expect((e) => e.ev === 'opened' && e.key === key, `opening ${key}`)).at!;
  }

  async send(id: string, topic: string, message: unknown): Promise<number> {
    const before = this.events.length;
    this.command({ op: 'send', id, topic, message });
    const sent = await this.expect((e) => e.ev === 'sent' && e.id === id && this.events.indexOf(e) >= before, `a send to ${id}`);
    return sent.at!;
  }

  async result(id: string): Promise<unknown> {
    this.command({ op: 'result', id });
    const e = await this.expect((x) => (x.ev === 'result' || x.ev === 'failed') && x.id === id, `the result of ${id}`);
    if (e.ev === 'failed') throw Object.assign(new Error(e.message), { code: e.code });
    return superjson.parse(e.value!);
  }

  async noted(what: string, id: string): Promise<number> {
    return (await this.expect((e) => e.ev === 'note' && e.what === what && e.id === id, `note ${what} of ${id}`)).at!;
  }

  async close(): Promise<void> {
    if (this.hasExited) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

interface MessageRow {
  seq: number;
  destinationId: string;
  topic: string;
  body: unknown;
  idempotencyKey: string | null;
  consumedAt: number | null;
}

/** Runs SQL against a store directly, outside Cairn (`$s` is the Postgres schema). */
async function rawQuery<T>(store: Store, sql: { sqlite: string; postgres: string }): Promise<T[]> {
  if (store.database.startsWith('sqlite:')) {
    const db = new Database(store.database.slice('sqlite:'.length), { timeout: 5_000 });
    try {
      return db.prepare(sql.sqlite).all() as T[];
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: store.database });
  await client.connect();
  try {
    return (await client.query(sql.postgres.replaceAll('$s', `"${store.schema ?? 'cairn'}"`))).rows as T[];
  } finally {
    await client.end();
  }
}

/** Every row of the messages table, bodies parsed. */
async function messageRows(store: Store): Promise<MessageRow[]> {
  const rows = await rawQuery<Omit<MessageRow, 'body'> & { body: string }>(store, {
    sqlite: `SELECT seq, destination_id AS destinationId, topic, body, idempotency_key AS idempotencyKey, consumed_at AS consumedAt
             FROM cairn_messages ORDER BY seq`,
    postgres: `SELECT seq::int AS seq, destination_id AS "destinationId", topic, body, idempotency_key AS "idempotencyKey",
                      consumed_at::float8 AS "consumedAt" FROM $s.messages ORDER BY seq`,
  });
  return rows.map((r) => ({ ...r, body: superjson.parse(r.body) }));
}

/** The stored event values, each under the step that set it. */
async function eventRows(store: Store): Promise<Array<{ workflowId: string; key: string; stepId: number; value: unknown }>> {
  const rows = await rawQuery<{ workflowId: string; key: string; stepId: number; value: string }>(store, {
    sqlite: 'SELECT workflow_id AS workflowId, key, step_id AS stepId, value FROM cairn_events ORDER BY workflow_id, key, step_id',
    postgres: 'SELECT workflow_id AS "workflowId", key, step_id AS "stepId", value FROM $s.events ORDER BY workflow_id, key, step_id',
  });
  return rows.map((r) => ({ ...r, value: superjson.parse(r.value) }));
}


async function waitFor(cond: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}


const balls = (count: number, from: string): Ball[] => Array.from({ length: count }, (_, n) => ({ n, from }));
let appName = 0;

export function defineMessagingSuite(target: Target): void {
  describe(`messaging, events, streams and children on ${target.kind}`, { skip: target.skip }, () => {
    afterEach(() => target.closeAll());
    after(async () => {
      for (const child of ChildPeer.live) child.kill('SIGKILL');
      await target.dispose();
    });

    const crossProcess = target.kind === 'postgres';

    /** The peer of a test: a child process on Postgres, a second engine in this process on SQLite. */
    async function openPeer(store: Store, executorId: string): Promise<Peer> {
      if (crossProcess) return ChildPeer.spawn(store, executorId);
      return new LocalPeer(await target.open(store, { executorId, appVersion: APP_VERSION }));
    }

    describe('send and recv', () => {
      test(`ping-pong: 50 round trips ${crossProcess ? 'between two processes' : 'between two engines'}, each message delivered once and in order`, async () => {
        const store = await target.fresh();
        const peer = await openPeer(store, 'pong-exec');
        try {
          await peer.start('pong', 'pong-1', { peer: 'ping-1', rounds: 50 });
          const engine = await target.open(store, { executorId: 'ping-exec', appVersion: APP_VERSION });
          const { ping } = registerMessagingWorkflows(engine);
          const pinged = await ping.run({ peer: 'pong-1', rounds: 50 }, { id: 'ping-1' });
          const ponged = await peer.result('pong-1');
          assert.deepEqual(pinged, balls(50, 'pong-1'), 'ping received every answer once, in order');
          assert.deepEqual(ponged, balls(50, 'ping-1'), 'pong received every ball once, in order');
          assert.equal((await engine.getWorkflow('pong-1')).status, 'SUCCESS');

          const rows = await messageRows(store);
          assert.equal(rows.length, 100, 'one row per message');
          assert.ok(rows.every((r) => r.consumedAt !== null), 'every message consumed');
          assert.deepEqual(rows.filter((r) => r.destinationId === 'pong-1').map((r) => [r.topic, r.body]), balls(50, 'ping-1').map((b) => ['ping', b]));
          assert.deepEqual(rows.filter((r) => r.destinationId === 'ping-1').map((r) => [r.topic, r.body]), balls(50, 'pong-1').map((b) => ['pong', b]));

          const steps = await engine.listSteps('ping-1');
          assert.deepEqual(steps.map((s) => s.name), Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? 'cairn.send' : 'cairn.recv')));
          assert.deepEqual(steps.filter((s) => s.name === 'cairn.recv').map((s) => s.output), balls(50, 'pong-1'), 'each recv checkpoint holds its message');
        } finally {
          await peer.close();
        }
      });

      test('topics are isolated, and each topic is delivered in send order', async () => {
        const store = await target.fresh();
        const engine = await target.open(store);
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        const wf = engine.workflow('sorter', async (ctx: Context) => {
          await gate;
          const take = async (topic: string | undefined) => {
            const got: unknown[] = [];
            for (let i = 0; i < 10; i++) got.push(await ctx.recv(topic, 5_000));
            return got;
          };
          const b = await take('b');
          const a = await take('a');
          const untitled = await take(undefined);
          return { b, a, untitled, moreA: await ctx.recv('a', 100), moreUntitled: await ctx.recv(undefined, 100) };
        });
        const h = await wf.start(undefined, { id: 'sorter-1' });
        for (let i = 0; i < 10; i++) {
          await engine.send('sorter-1', { t: 'a', i }, 'a');
          await engine.send('sorter-1', { t: 'none', i });
          await engine.send('sorter-1', { t: 'b', i }, 'b');
          if (i < 3) await engine.send('sorter-1', { t: 'c', i }, 'c');
        }
        release();
        const seq = (t: string) => Array.from({ length: 10 }, (_, i) => ({ t, i }));
        assert.deepEqual(await h.result(), { b: seq('b'), a: seq('a'), untitled: seq('none'), moreA: null, moreUntitled: null });
        const rows = await messageRows(store);
        assert.equal(rows.length, 33);
        assert.deepEqual(rows.filter((r) => r.consumedAt === null).map((r) => [r.topic, r.body]), [0, 1, 2].map((i) => ['c', { t: 'c', i }]), 'only topic c is left');
        assert.deepEqual(rows.filter((r) => r.topic === '').map((r) => r.body), seq('none'), 'no topic is stored as the empty topic');
      });

      test('recv returns null after its timeout; the null is recorded and a replay returns it at once', async () => {
        const store = await target.fresh();
        let finish = false;
        const body = async (ctx: Context) => {
          const got = await ctx.recv('quiet', 1_000);
          if (!finish) await forever();
          return got;
        };
        const first = await target.open(store, { executorId: 'quiet-exec', appVersion: 'quiet-v1' });
        const started = Date.now();
        await first.workflow('quiet', body).start(undefined, { id: 'quiet-1' });
        await waitFor(async () => (await first.listSteps('quiet-1')).length === 1, 'the recv checkpoint');
        const [step] = await first.listSteps('quiet-1');
        assert.equal(step!.name, 'cairn.recv');
        assert.equal(step!.output, null, 'the timeout is recorded as null');
        assert.ok(Date.now() - started >= 990, 'recv waited for its timeout');
        // A message arriving after the timeout must not change the recorded outcome.
        await first.send('quiet-1', 'too late', 'quiet');
        await first.close({ timeoutMs: 0 });

        finish = true;
        const second = await target.open(store, { executorId: 'quiet-exec', appVersion: 'quiet-v1' });
        second.workflow('quiet', body);
        const t0 = Date.now();
        const [h] = await second.recover();
        assert.equal(await h!.result(), null);
        // The late message waits unconsumed below, so a recv run again would have returned it: the
        // null result is the recorded timeout. The time only guards against a hang.
        const replayMs = Date.now() - t0;
        assert.ok(replayMs < 5_000, `the replay took ${replayMs} ms`);
        const rows = await messageRows(store);
        assert.deepEqual(rows.map((r) => [r.body, r.consumedAt]), [['too late', null]], 'the late message was not consumed by the replay');
        assert.deepEqual((await second.listSteps('quiet-1')).map((s) => [s.name, s.output]), [['cairn.recv', null]]);
      });

      test('exactly-once recv: a child killed right after its first recv; recovery delivers each message once', async () => {
        const store = await target.fresh();
        const application = `msg_recv_${process.pid}_${++appName}`;
        const child = await ChildPeer.spawn(store, 'recv-exec', { kill: 'recv:1', applicationName: application });
        try {
          await child.start('collector', 'col-1', { topic: 'inbox', count: 3, timeoutMs: 20_000 });
          const sender = await target.open(store, { executorId: 'sender', appVersion: APP_VERSION });
          for (const m of [1, 2, 3]) await sender.send('col-1', { m }, 'inbox');
          await sender.send('col-1', { m: 'other' }, 'elsewhere');
          await sender.close();
          await child.open('col-1');
          const exit = await child.exited;
          assert.equal(exit.signal, 'SIGKILL');
        } finally {
          await child.close();
        }
        await connectionsGone(store, application);

        const before = await messageRows(store);
        assert.deepEqual(before.map((r) => [r.topic, r.body, r.consumedAt !== null]), [
          ['inbox', { m: 1 }, true],
          ['inbox', { m: 2 }, false],
          ['inbox', { m: 3 }, false],
          ['elsewhere', { m: 'other' }, false],
        ]);

        const engine = await target.open(store, { executorId: 'recv-exec', appVersion: APP_VERSION });
        assert.deepEqual((await engine.listSteps('col-1')).map((s) => [s.stepId, s.name, s.output]), [[1, 'cairn.recv', { m: 1 }]]);
        registerMessagingWorkflows(engine);
        const handles = await engine.recover();
        assert.deepEqual(handles.map((h) => h.id), ['col-1']);
        assert.deepEqual(await handles[0]!.result(), [{ m: 1 }, { m: 2 }, { m: 3 }]);

        const rows = await messageRows(store);
        assert.equal(rows.length, 4, 'one row per message');
        const inbox = rows.filter((r) => r.topic === 'inbox');
        assert.deepEqual(inbox.map((r) => r.body), [{ m: 1 }, { m: 2 }, { m: 3 }]);
        assert.ok(inbox.every((r) => r.consumedAt !== null), 'every inbox message is consumed');
        assert.equal(inbox[0]!.consumedAt, before[0]!.consumedAt, 'the message consumed before the kill was not consumed again');
        assert.equal(rows[3]!.consumedAt, null, 'a message on another topic is untouched');
        const steps = await engine.listSteps('col-1');
        assert.deepEqual(steps.map((s) => [s.stepId, s.name, s.output]), [
          [1, 'cairn.recv', { m: 1 }],
          [2, 'cairn.recv', { m: 2 }],
          [3, 'cairn.recv', { m: 3 }],
        ]);
        assert.equal((await engine.getWorkflow('col-1')).status, 'SUCCESS');
      });
    });

    describe('waking', () => {
      test("a parked recv's fallback poll backs off, since other processes' changes reach it without polling", async () => {
        const store = await target.fresh();
        const setup = await target.open(store);
        await setup.close();
        let looks = 0;
        const provider = target.provider(store, (sql) => {
          if (sql.includes('consumed_at IS NULL') && sql.includes('ORDER BY seq LIMIT 1')) looks++;
        });
        const engine = await Engine.open({ database: provider, migrate: false, pollIntervalMs: 20 });
        try {
          const wf = engine.workflow('lonely', async (ctx) => ctx.recv('never', 1_300));
          assert.equal(await wf.run(null), null);
        } finally {
          await engine.close();
        }
        // A fixed 20 ms poll looks about 65 times in 1.3 s; doubling pauses (20, 40, 80, ... ms) about 7.
        assert.ok(looks >= 3 && looks <= 12, `recv looked ${looks} times`);
      });

      test('a recv whose poll has backed off still wakes within a poll interval of a send from another process', async () => {
        const store = await target.fresh();
        const peer = await ChildPeer.spawn(store, 'late-sender');
        try {
          const engine = await target.open(store, { executorId: 'late-waiter', appVersion: APP_VERSION, pollIntervalMs: 100 });
          let wokeAt = 0;
          const wf = engine.workflow('late', async (ctx) => {
            const m = await ctx.recv('late', 60_000);
            wokeAt = Date.now();
            return m;
          });
          const handle = await wf.start(null, { id: 'late-1' });
          // Its own polls come at about 0.1, 0.3, 0.7, 1.5, 3.1 and 6.3 s. A send at 3.5 s is nearly 3 s
          // before the next one, so only a notification (or the watch for other processes' commits) wakes it in time.
          await sleep(3_500);
          const sentAt = await peer.send('late-1', 'late', { n: 1 });
          assert.deepEqual(await handle.result(), { n: 1 });
          assert.ok(wokeAt - sentAt < 1_500, `woke ${wokeAt - sentAt} ms after the send`);
        } finally {
          await peer.close();
        }
      });

      test('workflows ending together in another process wake their result() waiters from one notification', { skip: !crossProcess && 'Postgres only: SQLite wakes waiters of other processes by its change check' }, async () => {
        const store = await target.fresh();
        const peer = await ChildPeer.spawn(store, 'batch-ender');
        const listener = new pg.Client({ connectionString: store.database });
        const payloads: string[] = [];
        try {
          await listener.connect();
          listener.on('notification', (n) => void (n.payload !== undefined && payloads.push(n.payload)));
          await listener.query(`LISTEN "cairn_${store.schema ?? 'cairn'}"`);
          const waiter = await target.open(store, { executorId: 'batch-waiter', appVersion: APP_VERSION, pollIntervalMs: 10_000 });
          const ids = Array.from({ length: 60 }, (_, k) => `em-batch-${k}`);
          for (const id of ids) await peer.start('emitter', id, { kind: 'return', key: '', value: id });
          const results = Promise.all(ids.map((id) => waiter.handle(id).result()));
          await sleep(300);
          const openedAt = Date.now();
          await Promise.all(ids.map((id) => peer.open(id)));
          assert.deepEqual(await results, ids, 'every waiter got its own workflow\'s result');
          assert.ok(Date.now() - openedAt < 5_000, `results came ${Date.now() - openedAt} ms after the gates opened; the poll is 10 s`);
          const arrays = payloads.filter((p) => p.startsWith('[')).map((p) => JSON.parse(p) as string[]);
          const endKeys = arrays.flat().filter((k) => k.startsWith('w:em-batch-'));
          assert.equal(new Set(endKeys).size, 60, 'each end was notified');
          assert.ok(arrays.some((keys) => keys.filter((k) => k.startsWith('w:')).length > 1), 'some ends shared one notification');
        } finally {
          await listener.end();
          await peer.close();
        }
      });

      test(`recv, getEvent, readStream and result() wake within 5 s of a write ${crossProcess ? 'in another process' : 'by another engine'}, with a 10 s fallback poll`, async (t) => {
        const store = await target.fresh();
        const peer = await openPeer(store, 'writer-exec');
        try {
          const waiter = await target.open(store, { executorId: 'waiter-exec', appVersion: APP_VERSION, pollIntervalMs: 10_000 });
          let recvAt!: (at: number) => void;
          const received = new Promise<number>((r) => (recvAt = r));
          const { collector } = registerMessagingWorkflows(waiter, { note: (what, id) => void (what === 'recv' && id === 'inbox-1' && recvAt(Date.now())) });

          /** Starts waiting, writes 300 ms later, and returns how long after the write the waiter woke. */
          const measure = async (label: string, wait: () => Promise<unknown>, write: () => Promise<number>, expected: unknown) => {
            let wokeAt = 0;
            let value: unknown;
            const waiting = wait().then((v) => {
              wokeAt = Date.now();
              value = v;
            });
            await sleep(300);
            assert.equal(wokeAt, 0, `${label}: nothing to wake for before the write`);
            const wroteAt = await write();
            await waiting;
            assert.deepEqual(value, expected, label);
            const latency = wokeAt - wroteAt;
            assert.ok(latency < 5_000, `${label} woke ${latency} ms after the write; the fallback poll is 10 s`);
            return latency;
          };

          await peer.start('emitter', 'em-event', { kind: 'event', key: 'ready', value: { ok: 1 } });
          await peer.start('emitter', 'em-stream', { kind: 'stream', key: 'tokens', value: 'first' });
          await peer.start('emitter', 'em-return', { kind: 'return', key: '', value: 'finished' });
          const latencies = {
            recv: await measure(
              'recv',
              async () => {
                await collector.start({ topic: 'wake', count: 1, timeoutMs: 20_000 }, { id: 'inbox-1' });
                return received.then(() => 'received');
              },
              () => peer.send('inbox-1', 'wake', 'hello'),
              'received',
            ),
            getEvent: await measure('engine.getEvent', () => waiter.getEvent('em-event', 'ready', 20_000), () => peer.open('em-event'), { ok: 1 }),
            readStream: await measure(
              'engine.readStream',
              async () => {
                const reader = waiter.readStream('em-stream', 'tokens');
                const first = await reader.next();
                await reader.return();
                return first.value;
              },
              () => peer.open('em-stream'),
              'first',
            ),
            result: await measure('handle.result()', () => waiter.handle('em-return').result(), () => peer.open('em-return'), 'finished'),
          };
          assert.deepEqual(await waiter.handle('inbox-1').result(), ['hello']);
          // A stream that is never closed ends for its readers when its workflow ends.
          await peer.open('em-stream/end');
          assert.equal(await waiter.handle('em-stream').result(), null);
          const tail: unknown[] = [];
          for await (const v of waiter.readStream('em-stream', 'tokens')) tail.push(v);
          assert.deepEqual(tail, ['first']);
          t.diagnostic(`wake latencies (ms) on ${target.kind}: ${JSON.stringify(latencies)}`);
        } finally {
          await peer.close();
        }
      });

      test('a stream of 1,000 values written in a child process is read live, complete and in order, and ends when closed', async () => {
        const store = await target.fresh();
        const child = await ChildPeer.spawn(store, 'stream-exec');
        try {
          await child.start('streamer', 'st-1', { key: 'numbers', count: 1_000 });
          // On SQLite a reader in another process finds new entries by its fallback poll.
          const reader = await target.open(store, { executorId: 'reader', ...(target.kind === 'sqlite' && { pollIntervalMs: 100 }) });
          const values: unknown[] = [];
          let firstAt = 0;
          const reading = (async () => {
            for await (const v of reader.readStream('st-1', 'numbers')) {
              if (values.length === 0) firstAt = Date.now();
              values.push(v);
            }
          })();
          await sleep(50);
          assert.equal(values.length, 0);
          await child.open('st-1');
          const closedAt = await child.noted('closed', 'st-1');
          await reading;
          assert.equal(values.length, 1_000);
          assert.deepEqual(values, Array.from({ length: 1_000 }, (_, i) => ({ i })), 'complete and in order');
          assert.ok(firstAt > 0 && firstAt < closedAt, 'the first value arrived while the stream was still being written');
          assert.equal((await reader.getWorkflow('st-1')).status, 'PENDING', 'the reader ended at the close, not at the end of the workflow');
          await child.open('st-1/end');
          assert.equal(await child.result('st-1'), 1_000);
          // A reader started after the close reads the whole stream and stops.
          const again: unknown[] = [];
          for await (const v of reader.readStream('st-1', 'numbers')) again.push(v);
          assert.deepEqual(again, values);
        } finally {
          await child.close();
        }
      });
    });

    describe('child workflows', () => {
      test('a parent fanning out 20 children survives a SIGKILL mid-way: each child once, none re-run past its checkpoint', async (t) => {
        const store = await target.fresh();
        const ledger = await openLedger(store, { create: true });
        try {
          const application = `msg_fan_${process.pid}_${++appName}`;
          const child = await ChildPeer.spawn(store, 'fan-exec', { kill: 'effects:8', applicationName: application });
          try {
            await child.start('fanout', 'fan-1', { count: 20 });
            assert.equal((await child.exited).signal, 'SIGKILL');
          } finally {
            await child.close();
          }
          await connectionsGone(store, application);

          const engine = await target.open(store, { executorId: 'fan-exec', appVersion: APP_VERSION });
          const childIds = Array.from({ length: 20 }, (_, i) => `fan-1-${i + 1}`);
          const runsOf = async () => {
            const rows = await ledger.rows();
            return new Map(childIds.map((id) => [id, rows.filter((r) => r.workflowId === id).map((r) => r.pid)]));
          };
          const before = {
            runs: await runsOf(),
            statuses: new Map((await engine.listWorkflows()).map((w) => [w.id, w.status])),
            checkpointed: new Set<string>(),
          };
          for (const id of childIds) {
            if (before.statuses.has(id) && (await engine.listSteps(id)).some((s) => s.name === 'work')) before.checkpointed.add(id);
          }
          const finished = childIds.filter((id) => before.statuses.get(id) === 'SUCCESS').length;
          assert.ok(finished >= 1 && finished < 20, `${finished} children had finished at the kill; the kill must come mid-way`);
          assert.equal([...before.runs.values()].flat().length, 8, 'the kill came right after the 8th effect');
          const killedIn = (await ledger.rows()).at(-1)!.workflowId;
          assert.ok(!before.checkpointed.has(killedIn), `${killedIn} was killed between its effect and its checkpoint`);
          t.diagnostic(`at the kill: ${finished} children finished, ${before.checkpointed.size} checkpointed, ${before.statuses.size - 1} stored; killed inside ${killedIn}`);

          registerMessagingWorkflows(engine, { effect: (id) => ledger.record(id) });
          const handles = await engine.recover();
          assert.ok(handles.some((h) => h.id === 'fan-1'), 'the parent is recovered');
          const expected: LeafOutput[] = Array.from({ length: 20 }, (_, i) => ({ i, square: i * i }));
          assert.deepEqual(await engine.handle('fan-1').result(), expected, 'the parent joins all 20');
          await Promise.all(handles.map((h) => h.result()));

          const all = await engine.listWorkflows();
          assert.deepEqual(all.map((w) => w.id).sort(), ['fan-1', ...childIds].sort(), 'every child exists exactly once, under its counter id');
          for (const [i, id] of childIds.entries()) {
            const info = all.find((w) => w.id === id)!;
            assert.equal(info.parentId, 'fan-1');
            assert.equal(info.status, 'SUCCESS', `${id} status`);
            assert.deepEqual(info.output, expected[i]);
          }
          assert.deepEqual(
            (await engine.listSteps('fan-1')).map((s) => [s.stepId, s.name, s.childId]),
            childIds.map((id, i) => [i + 1, 'cairn.child:msg_leaf', id]),
          );
          const runs = await runsOf();
          for (const id of childIds) {
            const now = runs.get(id)!;
            const prior = before.runs.get(id)!;
            assert.ok(now.length >= 1 && now.length <= 2, `${id} ran ${now.length} times`);
            if (before.checkpointed.has(id)) assert.deepEqual(now, prior, `${id} was checkpointed before the kill and must not run again`);
            else assert.deepEqual(now, [...prior, process.pid], `${id} had no checkpoint: recovery runs it exactly once more`);
          }
          assert.equal(runs.get(killedIn)!.length, 2, 'the child killed mid-step ran twice: once before the kill, once in recovery');
        } finally {
          await ledger.close();
        }
      });

      test('cancelling a parent cancels its children blocked in recv', async () => {
        const engine = await target.open(await target.fresh());
        const { brood } = registerMessagingWorkflows(engine);
        const h = await brood.start({ count: 3 }, { id: 'brood-1' });
        await waitFor(async () => (await engine.listSteps('brood-1')).length === 3, 'three children started');
        await sleep(100);
        const t0 = Date.now();
        await engine.cancel('brood-1');
        await assert.rejects(h.result(), { code: 'WORKFLOW_CANCELLED' });
        for (const id of ['brood-1-1', 'brood-1-2', 'brood-1-3']) {
          await assert.rejects(engine.handle(id).result(), cairnError('WORKFLOW_CANCELLED', new RegExp(id)));
          assert.equal((await engine.getWorkflow(id)).status, 'CANCELLED');
        }
        assert.ok(Date.now() - t0 < 5_000, 'the children stopped waiting at once');
      });

      test('cancelling a parent from another process cancels its children blocked in recv there', async () => {
        const store = await target.fresh();
        const child = await ChildPeer.spawn(store, 'brood-exec');
        try {
          await child.start('brood', 'brood-2', { count: 3 });
          const engine = await target.open(store);
          await waitFor(async () => (await engine.listWorkflows()).length === 4, 'three children started');
          await engine.cancel('brood-2');
          const outcomes = await Promise.all(
            ['brood-2', 'brood-2-1', 'brood-2-2', 'brood-2-3'].map((id) => child.result(id).then(() => 'resolved', (err: { code: string }) => err.code)),
          );
          assert.deepEqual(outcomes, Array(4).fill('WORKFLOW_CANCELLED'), 'each result() in the other process rejects with WORKFLOW_CANCELLED');
          for (const w of await engine.listWorkflows()) assert.equal(w.status, 'CANCELLED', w.id);
        } finally {
          await child.close();
        }
      });
    });

    describe('events', () => {
      test('setEvent: the last value wins, for outside readers and for other workflows', async () => {
        const store = await target.fresh();
        const engine = await target.open(store);
        const publisher = engine.workflow('publisher', async (ctx: Context) => {
          await ctx.setEvent('phase', 'one');
          await ctx.setEvent('phase', 'two');
          await ctx.setEvent('other', 1);
          await ctx.setEvent('phase', { n: 3 });
          return 'done';
        });
        const observer = engine.workflow('observer', async (ctx: Context, id: string) => ctx.getEvent(id, 'phase', 1_000));
        await publisher.run(undefined, { id: 'pub-1' });
        assert.deepEqual(await engine.getEvent('pub-1', 'phase', 1_000), { n: 3 });
        assert.equal(await engine.getEvent('pub-1', 'other', 1_000), 1);
        assert.deepEqual(await observer.run('pub-1', { id: 'obs-1' }), { n: 3 });
        // Each value is kept under the step that set it (a fork from a step sees the values before it).
        assert.deepEqual(await eventRows(store), [
          { workflowId: 'pub-1', key: 'other', stepId: 3, value: 1 },
          { workflowId: 'pub-1', key: 'phase', stepId: 1, value: 'one' },
          { workflowId: 'pub-1', key: 'phase', stepId: 2, value: 'two' },
          { workflowId: 'pub-1', key: 'phase', stepId: 4, value: { n: 3 } },
        ]);
      });

      test('ctx.getEvent is recorded: a replay returns the recorded value, and a recorded null, without waiting', async () => {
        const store = await target.fresh();
        const source = await target.open(store, { executorId: 'source-exec', appVersion: 'ev-v1' });
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        const sourceWf = source.workflow('source', async (ctx: Context) => {
          await ctx.setEvent('k', 'first');
          await gate;
          await ctx.setEvent('k', 'second');
          await ctx.setEvent('late', 'now set');
          return 'done';
        });
        let finish = false;
        const readerBody = async (ctx: Context) => {
          const k = await ctx.getEvent('src-1', 'k', 5_000);
          const late = await ctx.getEvent('src-1', 'late', 200);
          if (!finish) await forever();
          return { k, late };
        };
        await sourceWf.start(undefined, { id: 'src-1' });
        const first = await target.open(store, { executorId: 'reader-exec', appVersion: 'ev-v1' });
        await first.workflow('reader', readerBody).start(undefined, { id: 'rd-1' });
        await waitFor(async () => (await first.listSteps('rd-1')).length === 2, 'both getEvent checkpoints');
        assert.deepEqual((await first.listSteps('rd-1')).map((s) => [s.name, s.output]), [
          ['cairn.getEvent', 'first'],
          ['cairn.getEvent', null],
        ]);
        await first.close({ timeoutMs: 0 });
        release();
        assert.equal(await source.handle('src-1').result(), 'done');
        assert.equal(await source.getEvent('src-1', 'k', 0), 'second');

        finish = true;
        const second = await target.open(store, { executorId: 'reader-exec', appVersion: 'ev-v1' });
        second.workflow('reader', readerBody);
        const t0 = Date.now();
        const [h] = await second.recover();
        assert.deepEqual(await h!.result(), { k: 'first', late: null }, 'the replay returns what was recorded, not the current values');
        assert.ok(Date.now() - t0 < 5_000, `the replay took ${Date.now() - t0} ms`);
      });

      test('getEvent returns null after its timeout, from outside and inside a workflow', async () => {
        const engine = await target.open(await target.fresh());
        const wf = engine.workflow('asker', async (ctx: Context) => {
          const t0 = Date.now();
          const value = await ctx.getEvent('asker-1', 'missing', 200);
          return { value, waited: Date.now() - t0 };
        });
        const out = await wf.run(undefined, { id: 'asker-1' });
        assert.equal(out.value, null);
        assert.ok(out.waited >= 190 && out.waited < 5_000, `waited ${out.waited} ms`);
        assert.deepEqual((await engine.listSteps('asker-1')).map((s) => [s.name, s.output]), [['cairn.getEvent', null]]);
        const t0 = Date.now();
        assert.equal(await engine.getEvent('asker-1', 'missing', 200), null);
        const waited = Date.now() - t0;
        assert.ok(waited >= 190 && waited < 5_000, `engine.getEvent waited ${waited} ms`);
      });
    });

    describe('bad input', () => {
      test('send to an unknown workflow id: WORKFLOW_NOT_FOUND naming the id, recorded as that call\'s outcome; no message is stored', async () => {
        const store = await target.fresh();
        const engine = await target.open(store);
        let caught: unknown;
        const wf = engine.workflow('sender', async (ctx: Context) => {
          try {
            await ctx.send('ghost-1', { hello: 1 }, 'greetings');
          } catch (err) {
            caught = err;
          }
          return ctx.step('after', () => 'ok');
        });
        assert.equal(await wf.run(undefined, { id: 'sender-1' }), 'ok');
        cairnError('WORKFLOW_NOT_FOUND', /no workflow with id 'ghost-1'/, { workflowId: 'ghost-1' })(caught);
        await assert.rejects(engine.send('ghost-2', { hello: 2 }), cairnError('WORKFLOW_NOT_FOUND', /no workflow with id 'ghost-2'/, { workflowId: 'ghost-2' }));
        await assert.rejects(engine.send('ghost-3', 'x', 't', { idempotencyKey: 'k' }), { code: 'WORKFLOW_NOT_FOUND' });
        assert.deepEqual(await messageRows(store), [], 'no message stored');
        const steps = await engine.listSteps('sender-1');
        assert.deepEqual(steps.map((s) => s.name), ['cairn.send', 'after']);
        cairnError('WORKFLOW_NOT_FOUND', /no workflow with id 'ghost-1'/, { workflowId: 'ghost-1' })(steps[0]!.error);
        assert.equal(steps[0]!.output, undefined, 'the failed send is recorded as an error, so a replay fails the same way');
        assert.deepEqual((await engine.listWorkflows()).map((w) => w.id), ['sender-1'], 'no workflow was created for the unknown id');
      });

      test('ctx.recv inside a step, or after the workflow returned: CONTEXT_USAGE, and no message is consumed', async () => {
        const store = await target.fresh();
        const engine = await target.open(store);
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        let kept: Context | undefined;
        let inStep: unknown;
        const wf = engine.workflow('misuser', async (ctx: Context) => {
          kept = ctx;
          await gate;
          try {
            await ctx.step('inner', () => ctx.recv('t', 10));
          } catch (err) {
            inStep = err;
          }
          return 'returned';
        });
        const h = await wf.start(undefined, { id: 'mis-1' });
        await engine.send('mis-1', 'keep me', 't');
        release();
        assert.equal(await h.result(), 'returned');
        cairnError('CONTEXT_USAGE', /ctx\.recv was called inside step 'inner' of workflow 'mis-1'/)(inStep);
        await assert.rejects(kept!.recv('t', 10), cairnError('CONTEXT_USAGE', /ctx\.recv was called after workflow 'mis-1' returned/));
        await assert.rejects(kept!.send('mis-1', 'again', 't'), { code: 'CONTEXT_USAGE' });
        const rows = await messageRows(store);
        assert.deepEqual(rows.map((r) => [r.body, r.consumedAt]), [['keep me', null]]);
        const steps = await engine.listSteps('mis-1');
        assert.deepEqual(steps.map((s) => s.name), ['inner'], 'only the step, holding its error');
        cairnError('CONTEXT_USAGE', /inside step 'inner'/)(steps[0]!.error);
      });

      test('negative or NaN timeouts for recv and getEvent: INVALID_ARGUMENT, and no counter is taken', async () => {
        const store = await target.fresh();
        const engine = await target.open(store);
        const results: Array<[string, unknown]> = [];
        const wf = engine.workflow('impatient', async (ctx: Context) => {
          const tries: Record<string, () => Promise<unknown>> = {
            recvNegative: () => ctx.recv('t', -1),
            recvNaN: () => ctx.recv('t', Number.NaN),
            getEventNegative: () => ctx.getEvent('imp-1', 'k', -5),
            getEventNaN: () => ctx.getEvent('imp-1', 'k', Number.NaN),
            getEventInfinite: () => ctx.getEvent('imp-1', 'k', Number.POSITIVE_INFINITY),
          };
          for (const [name, call] of Object.entries(tries)) {
            try {
              await call();
              results.push([name, 'no error']);
            } catch (err) {
              results.push([name, err]);
            }
          }
          return ctx.step('fine', () => 'ok');
        });
        const h = await wf.start(undefined, { id: 'imp-1' });
        await engine.send('imp-1', 'untouched', 't');
        assert.equal(await h.result(), 'ok');
        const byName = Object.fromEntries(results);
        invalidTimeout('recv timeoutMs', /-1/)(byName.recvNegative);
        invalidTimeout('recv timeoutMs', /NaN/)(byName.recvNaN);
        invalidTimeout('getEvent timeoutMs', /-5/)(byName.getEventNegative);
        invalidTimeout('getEvent timeoutMs', /NaN/)(byName.getEventNaN);
        invalidTimeout('getEvent timeoutMs', /Infinity/)(byName.getEventInfinite);
        assert.deepEqual((await engine.listSteps('imp-1')).map((s) => [s.stepId, s.name]), [[1, 'fine']], 'rejected calls took no counter and stored nothing');
        for (const bad of [-1, Number.NaN]) {
          const t0 = Date.now();
          await assert.rejects(engine.getEvent('imp-1', 'k', bad), invalidTimeout('timeoutMs', new RegExp(String(bad))));
          assert.ok(Date.now() - t0 < 2_000, `rejected after ${Date.now() - t0} ms; it must not wait`);
        }
        assert.deepEqual((await messageRows(store)).map((r) => [r.body, r.consumedAt]), [['untouched', null]]);
      });

      test('an unserializable message: SERIALIZATION naming the path, for ctx.send and engine.send; nothing is stored', async () => {
        const store = await target.fresh();
        const engine = await target.open(store);
        let caught: unknown;
        const wf = engine.workflow('leaky', async (ctx: Context) => {
          try {
            await ctx.send('leaky-1', { order: { id: 7, callback: () => 'nope' } }, 't');
          } catch (err) {
            caught = err;
          }
          return ctx.step('after', () => 'ok');
        });
        assert.equal(await wf.run(undefined, { id: 'leaky-1' }), 'ok');
        cairnError('SERIALIZATION', /\$\.order\.callback/, { path: '$.order.callback' })(caught);
        assert.match((caught as Error).message, /a function/);
        await assert.rejects(
          engine.send('leaky-1', { items: [1, { fn: () => 2 }] }),
          cairnError('SERIALIZATION', /\$\.items\[1\]\.fn/, { path: '$.items[1].fn' }),
        );
        assert.deepEqual(await messageRows(store), [], 'no message stored');
        assert.deepEqual((await engine.listSteps('leaky-1')).map((s) => [s.stepId, s.name]), [[1, 'after']], 'the refused send took no counter');
      });

      test('engine.send with the same idempotency key twice delivers once', async () => {
        const store = await target.fresh();
        const engine = await target.open(store);
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        const wf = engine.workflow('inbox', async (ctx: Context) => {
          await gate;
          return [await ctx.recv('t', 1_000), await ctx.recv('t', 1_000), await ctx.recv('t', 200)];
        });
        const h = await wf.start(undefined, { id: 'inbox-1' });
        await engine.send('inbox-1', 'once', 't', { idempotencyKey: 'order-7' });
        await engine.send('inbox-1', 'once again', 't', { idempotencyKey: 'order-7' });
        await engine.send('inbox-1', 'other', 't', { idempotencyKey: 'order-8' });
        release();
        assert.deepEqual(await h.result(), ['once', 'other', null]);
        // The key is spent even after the message was consumed.
        await engine.send('inbox-1', 'late retry', 't', { idempotencyKey: 'order-7' });
        const rows = await messageRows(store);
        assert.deepEqual(rows.map((r) => [r.body, r.idempotencyKey]), [['once', 'order-7'], ['other', 'order-8']]);
      });
    });
  });
}

function invalidTimeout(argument: string, value: RegExp) {
  return (err: unknown): true => {
    cairnError('INVALID_ARGUMENT', new RegExp(`${argument.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} must be a finite number of milliseconds >= 0`), { argument })(err);
    assert.match((err as Error).message, value);
    return true;
  };
}
