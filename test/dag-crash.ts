import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Client, TaskNotWaitingError, type Engine } from '../src/index.js';
import { openEffects, type Effects } from './fixtures/crash-child.js';
import {
  APP_VERSION,
  CONFIG_ENV,
  EXECUTOR_ID,
  FAN_CONCURRENCY,
  FAN_ID,
  FAN_KILL_AT,
  FAN_SIZE,
  RUN_ID,
  fanValue,
  registerFanOut,
  type ChildConfig,
} from './fixtures/dag-child.js';
import { cairnError, connectionsGone } from './helpers/assertions.js';
import type { Store, Target } from './helpers/targets.js';

/**
 * Pipelines and ctx.all across real crashes: a child process is killed by SIGKILL mid-run, another
 * process recovers the run, and the `effects` table (one committed row per run of a body) shows
 * what ran again.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHILD = 'test/fixtures/dag-child.ts';

/** A fixture process, read line by line. */
class Child {
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly process: ChildProcess;
  private stderr = '';
  private readonly waiters = new Set<() => void>();

  constructor(cfg: ChildConfig, live: Set<Child>) {
    this.process = spawn(process.execPath, ['--import', 'tsx', CHILD], {
      cwd: ROOT,
      env: { ...process.env, [CONFIG_ENV]: JSON.stringify(cfg) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    live.add(this);
    let buffer = '';
    this.process.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      this.lines.push(...parts);
      for (const w of this.waiters) w();
    });
    this.process.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) =>
      this.process.on('exit', (code, signal) => {
        live.delete(this);
        for (const w of this.waiters) w();
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.process.pid!;
  }

  /** The first line starting with `prefix`, waiting up to 30 s for it. */
  async line(prefix: string): Promise<string> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const found = this.lines.find((l) => l.startsWith(prefix));
      if (found !== undefined) return found;
      const gone = this.process.exitCode !== null || this.process.signalCode !== null;
      assert.ok(!gone && Date.now() < deadline, `child ${this.pid} printed no '${prefix}' (exit ${this.process.exitCode ?? this.process.signalCode}); stdout: ${this.lines.join(' | ')}; stderr: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const wake = () => (this.waiters.delete(wake), resolve());
        this.waiters.add(wake);
        setTimeout(wake, 200);
      });
    }
  }

  /** Writes a line to its stdin. */
  tell(line: string): void {
    this.process.stdin!.write(`${line}\n`);
  }

  kill(): void {
    this.process.kill('SIGKILL');
  }
}

/** Runs of each body, by name, from the effects table; and the pids that ran them. */
async function runs(effects: Effects, workflowId: string): Promise<Map<string, number[]>> {
  const byName = new Map<string, number[]>();
  for (const row of await effects.all()) {
    if (row.workflowId === workflowId) byName.set(row.step, [...(byName.get(row.step) ?? []), row.pid]);
  }
  return byName;
}

export function defineDagCrashSuite(target: Target): void {
  describe(`pipelines and ctx.all across crashes on ${target.kind}`, { skip: target.skip }, () => {
    const live = new Set<Child>();
    let children = 0;
    after(async () => {
      for (const child of live) child.kill();
      await target.dispose();
    });

    /** A child on `store`, its Postgres connections named `dag_<pid>_<n>`. */
    const start = (mode: ChildConfig['mode'], store: Store, value?: unknown): Child => {
      const named = { ...store };
      if (store.database.startsWith('postgres')) {
        const url = new URL(store.database);
        url.searchParams.set('application_name', `dag_${process.pid}_${++children}`);
        named.database = url.toString();
      }
      return new Child({ mode, store: named, ...(value !== undefined && { value }) }, live);
    };

    async function killed(child: Child, store: Store): Promise<void> {
      const { signal } = await child.exited;
      assert.equal(signal, 'SIGKILL');
      await connectionsGone(store, `dag_${process.pid}_${children}`);
    }

    test('SIGKILL while two tasks run: a second process runs only the unfinished tasks; the approval, completed from a third, resumes the run once', { timeout: 90_000 }, async (t) => {
      const store = await target.fresh();
      const effects = await openEffects(store, { create: true });
      t.after(() => effects.close());
      const first = start('etl-crash', store);
      await first.line('REACHED');
      first.kill();
      await killed(first, store);

      const client = await Client.open({ database: store.database, ...(store.schema && { schema: store.schema }) });
      t.after(() => client.close());
      const before = await client.listSteps(RUN_ID);
      assert.deepEqual(before.map((s) => s.name).slice(1), ['extract', 't1'], 'checkpoints at the kill: the shape, extract and t1');
      assert.equal((await client.getWorkflow(RUN_ID)).status, 'PENDING');
      assert.deepEqual([...(await runs(effects, RUN_ID)).entries()].map(([k, v]) => [k, v.length]).sort(), [['extract', 1], ['t1', 1], ['t2', 1], ['t3', 1]]);

      const second = start('etl-recover', store);
      await second.line('WAITING');
      // Two completions race from two processes (this one and a third): one is taken, once.
      const third = start('complete', store, { by: 'bob' });
      await third.line('READY');
      third.tell('go');
      const [mine, theirs] = await Promise.all([
        client.completeTask(RUN_ID, 'approve', { by: 'ada' }).then(
          () => ({ ok: true }) as const,
          (err: unknown) => ({ ok: false, reason: (err as TaskNotWaitingError).reason, isClass: err instanceof TaskNotWaitingError }) as const,
        ),
        third.line('{').then((l) => JSON.parse(l) as { ok: boolean; code?: string; reason?: string }),
      ]);
      assert.equal([mine.ok, theirs.ok].filter(Boolean).length, 1, `exactly one completion is taken: ${JSON.stringify([mine, theirs])}`);
      // The loser saw the completion taken, or (if the run was that quick) the run over.
      const loser = mine.ok ? theirs : mine;
      assert.ok(loser.reason === 'completed' || loser.reason === 'ended', `the second completion was refused as ${loser.reason}`);
      const winner = mine.ok ? { by: 'ada' } : { by: 'bob' };

      const done = JSON.parse((await second.line('DONE ')).slice('DONE '.length)) as { outputs: Record<string, unknown>; skipped: string[]; version: string };
      assert.equal((await second.exited).code, 0);
      assert.deepEqual(done.outputs.approve, winner);
      assert.deepEqual(done.outputs.load, { sum: 59, max: 15, count: 6, approval: winner });
      assert.deepEqual(done.skipped, []);

      const ran = await runs(effects, RUN_ID);
      const counts = Object.fromEntries([...ran.entries()].map(([k, v]) => [k, v.length]));
      assert.deepEqual(counts, { extract: 1, t1: 1, t2: 2, t3: 2, approve: 1, load: 1 }, 'only t2 and t3, unfinished at the kill, ran again');
      for (const key of ['t2', 't3', 'approve', 'load']) assert.equal(ran.get(key)!.at(-1), second.pid, `${key} ran in the recovering process`);

      const info = await client.getWorkflow(RUN_ID);
      assert.equal(info.status, 'SUCCESS');
      await assert.rejects(client.completeTask(RUN_ID, 'approve', { by: 'eve' }), cairnError('TASK_NOT_WAITING', /run has ended/, { reason: 'ended' }));
      assert.equal(third.lines.length, 2, "READY, then one outcome");
      assert.equal((await third.exited).code, 0);
    });

    test('ctx.all with 100 thunks, 5 at once: after a SIGKILL, recovery replays it to the same result and runs no finished step again', { timeout: 90_000 }, async (t) => {
      const store = await target.fresh();
      const effects = await openEffects(store, { create: true });
      t.after(() => effects.close());
      const child = start('fan-crash', store);
      await killed(child, store);

      const engine: Engine = await target.open(store, { executorId: EXECUTOR_ID, appVersion: APP_VERSION });
      const recorded = await engine.listSteps(FAN_ID);
      const checkpointed = new Set(recorded.map((s) => s.name));
      const before = await runs(effects, FAN_ID);
      // It died as the 40th second step started; other second steps in flight may have logged their run too.
      const secondSteps = [...before.keys()].filter((k) => k.startsWith('b')).length;
      assert.ok(secondSteps >= FAN_KILL_AT && secondSteps < FAN_KILL_AT + FAN_CONCURRENCY, `${secondSteps} second steps had started at the kill`);
      assert.ok(recorded.length >= FAN_KILL_AT + 30, `${recorded.length} checkpoints at the kill`);
      const peak = { now: 0, max: 0 };
      registerFanOut(engine, effects, { running: (n) => ((peak.now = n), (peak.max = Math.max(peak.max, n))) });
      const [handle] = await engine.recover();
      const result = await handle!.result();

      assert.deepEqual(result, Array.from({ length: FAN_SIZE }, (_, i) => fanValue(i)));
      assert.ok(peak.max <= FAN_CONCURRENCY, `at most ${FAN_CONCURRENCY} step bodies at once during recovery, saw ${peak.max}`);
      const after = await runs(effects, FAN_ID);
      let again = 0;
      for (let i = 0; i < FAN_SIZE; i++) {
        for (const name of [`a${i}`, `b${i}`]) {
          const total = after.get(name)?.length ?? 0;
          const earlier = before.get(name)?.length ?? 0;
          if (checkpointed.has(name)) assert.equal(total, 1, `${name} was checkpointed before the kill and ran again`);
          else assert.equal(total - earlier, 1, `${name} ran ${total - earlier} times in recovery`);
          if (!checkpointed.has(name) && earlier > 0) again++;
        }
      }
      assert.ok(again <= FAN_CONCURRENCY, `${again} steps in flight at the kill ran again`);
      // Each thunk's steps sit in its own lane: thunk i's n-th step has id n * 100 + i + 1.
      const steps = await engine.listSteps(FAN_ID);
      assert.equal(steps.length, 2 * FAN_SIZE);
      for (const s of steps) {
        const [, kind, i] = /^([ab])(\d+)$/.exec(s.name)!;
        assert.equal(s.stepId, (kind === 'a' ? 0 : FAN_SIZE) + Number(i) + 1, `${s.name} has id ${s.stepId}`);
      }
    });
  });
}
