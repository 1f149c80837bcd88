import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, afterEach, describe, test } from 'node:test';
import { Engine, SqliteProvider, StepRetriesExceededError, type CairnError, type Context } from '../src/index.js';
import { finished, printed, spawnFixture } from './fixtures/spawn.js';
import { registerNap } from './fixtures/nap.js';
import type { Target } from './helpers/targets.js';

const forever = () => new Promise<never>(() => undefined);

/** Retries, durable time, timeouts, cancellation and workflow management, on every provider. */
export function defineControlSuite(target: Target): void {
  describe(`retries, time and cancellation on ${target.kind}`, { skip: target.skip }, () => {
    afterEach(() => target.closeAll());
    after(() => target.dispose());

    describe('step retries', () => {
      test('a step failing twice then succeeding is recorded once, with attempt 3', async () => {
        const engine = await target.open(await target.fresh());
        const seen: number[] = [];
        const wf = engine.workflow('flaky', async (ctx) =>
          ctx.step(
            'call',
            ({ attempt }) => {
              seen.push(attempt);
              if (attempt < 3) throw new Error(`failure ${attempt}`);
              return `ok on ${attempt}`;
            },
            { retry: { maxAttempts: 5, minDelayMs: 1, factor: 2 } },
          ),
        );
        const h = await wf.start(undefined, { id: 'flaky-1' });
        assert.equal(await h.result(), 'ok on 3');
        assert.deepEqual(seen, [1, 2, 3]);
        const steps = await engine.listSteps('flaky-1');
        assert.equal(steps.length, 1);
        assert.equal(steps[0]!.attempts, 3);
        assert.equal(steps[0]!.output, 'ok on 3');
      });

      test('exhausted retries record StepRetriesExceededError with every cause, and a replay does not call the step', async () => {
        const store = await target.fresh();
        let calls = 0;
        let finish = false;
        const body = async (ctx: Context) => {
          let caught: unknown;
          try {
            await ctx.step(
              'doomed',
              ({ attempt }) => {
                calls++;
                throw Object.assign(new Error(`boom ${attempt}`), { code: `E${attempt}` });
              },
              { retry: { maxAttempts: 3, minDelayMs: 1 } },
            );
          } catch (err) {
            caught = err;
          }
          if (!finish) await forever();
          const e = caught as StepRetriesExceededError;
          return { isClass: e instanceof StepRetriesExceededError, code: e.code, causes: e.errors.map((c) => [(c as Error).message, (c as { code: string }).code]) };
        };
        const first = await target.open(store, { appVersion: 'v1' });
        await first.workflow('doomed', body).start(undefined, { id: 'doomed-1' });
        await waitFor(async () => (await first.listSteps('doomed-1')).length === 1);
        assert.equal(calls, 3);
        const [step] = await first.listSteps('doomed-1');
        assert.equal(step!.attempts, 3);
        assert.ok(step!.error instanceof StepRetriesExceededError);
        await first.close({ timeoutMs: 0 });

        finish = true;
        const second = await target.open(store, { appVersion: 'v1' });
        second.workflow('doomed', body);
        const [h] = await second.recover();
        assert.deepEqual(await h!.result(), {
          isClass: true,
          code: 'STEP_RETRIES_EXCEEDED',
          causes: [['boom 1', 'E1'], ['boom 2', 'E2'], ['boom 3', 'E3']],
        });
        assert.equal(calls, 3, 'the replay rethrew the recorded error without calling the step');
      });

      test('a non-retryable error, or retryIf returning false, stops at once', async () => {
        const engine = await target.open(await target.fresh());
        let calls = 0;
        const wf = engine.workflow('stop', async (ctx, kind: string) => {
          try {
            await ctx.step(
              'once',
              () => {
                calls++;
                throw kind === 'flag' ? Object.assign(new Error('fatal'), { nonRetryable: true }) : new Error('skip');
              },
              { retry: { maxAttempts: 5, minDelayMs: 1, retryIf: (e) => (e as Error).message !== 'skip' } },
            );
          } catch (err) {
            return (err as Error).message;
          }
          return 'unreachable';
        });
        assert.equal(await wf.run('flag', { id: 'stop-flag' }), 'fatal');
        assert.equal(await wf.run('retryIf', { id: 'stop-if' }), 'skip');
        assert.equal(calls, 2);
        assert.equal((await engine.listSteps('stop-flag'))[0]!.attempts, 1);
      });

      test('a per-attempt timeout aborts the attempt signal and counts as a failed attempt', async () => {
        const engine = await target.open(await target.fresh());
        const observed: string[] = [];
        const wf = engine.workflow('slowpoke', async (ctx) =>
          ctx.step(
            'call',
            ({ signal, attempt }) =>
              attempt === 1
                ? new Promise<string>((resolve) => signal.addEventListener('abort', () => (observed.push((signal.reason as Error).name), resolve('late'))))
                : 'fast',
            { timeoutMs: 50, retry: { maxAttempts: 2, minDelayMs: 1 } },
          ),
        );
        const h = await wf.start(undefined, { id: 'slow-1' });
        assert.equal(await h.result(), 'fast');
        assert.deepEqual(observed, ['StepTimeoutError']);
        assert.equal((await engine.listSteps('slow-1'))[0]!.attempts, 2);
      });
    });

    describe('durable time', () => {
      test('a workflow sleeping 3 s, killed after 1 s, completes about 2 s after the kill', async () => {
        const store = await target.fresh();
        const child = spawnFixture('./control-child.ts', store, { CHILD_MODE: 'sleep', CHILD_WORKFLOW_ID: 'nap-1' });
        const exit = finished(child);
        await printed(child, 'started');
        const observer = await target.open(store, { executorId: 'sleeper', appVersion: 'v1' });
        await waitFor(async () => (await observer.listSteps('nap-1')).length === 2);
        const sleep = (await observer.listSteps('nap-1'))[1]!;
        assert.equal(sleep.name, 'cairn.sleep');
        const wakeAt = sleep.output as number;
        await new Promise((r) => setTimeout(r, Math.max(0, wakeAt - 2_000 - Date.now())));
        child.kill('SIGKILL');
        assert.equal((await exit).signal, 'SIGKILL');
        const killedAt = Date.now();
        await observer.close();

        const engine = await target.open(store, { executorId: 'sleeper', appVersion: 'v1' });
        registerNap(engine);
        const recoveredAt = Date.now();
        const [h] = await engine.recover();
        const wokeAt = (await h!.result()) as number;
        assert.ok(wokeAt >= wakeAt, `woke ${wakeAt - wokeAt} ms before the recorded instant`);
        // A sleep begun again at recovery could not end before recoveredAt + 3 s; the recorded one ends about 2 s after the kill.
        assert.ok(
          wokeAt < recoveredAt + 3_000,
          `woke ${wokeAt - killedAt} ms after the kill and ${wokeAt - recoveredAt} ms after recovery; the recorded instant was ${wakeAt - killedAt} ms after the kill`,
        );
        const steps = await engine.listSteps('nap-1');
        assert.deepEqual(steps.map((s) => s.name), ['before', 'cairn.sleep', 'after']);
      });

      test('sleeps longer than a timer can hold still wait, and cancellation ends them', async () => {
        const engine = await target.open(await target.fresh());
        const warnings: string[] = [];
        const onWarning = (w: Error) => warnings.push(w.name);
        process.on('warning', onWarning);
        const wf = engine.workflow('long-nap', async (ctx) => {
          await ctx.sleep(30 * 24 * 3600_000);
          return 'woke';
        });
        const h = await wf.start(undefined, { id: 'long-1' });
        await new Promise((r) => setTimeout(r, 200));
        assert.equal((await h.status()).status, 'PENDING');
        const [step] = await engine.listSteps('long-1');
        assert.ok((step!.output as number) - Date.now() > 29 * 24 * 3600_000);
        await engine.cancel('long-1');
        await assert.rejects(h.result(), { code: 'WORKFLOW_CANCELLED' });
        process.off('warning', onWarning);
        assert.deepEqual(warnings.filter((w) => w === 'TimeoutOverflowWarning'), []);
      });

      test('sleepUntil, now, random and uuid are recorded and replayed', async () => {
        const store = await target.fresh();
        let finish = false;
        const body = async (ctx: Context) => {
          const values = { now: await ctx.now(), random: await ctx.random(), uuid: await ctx.uuid() };
          await ctx.sleepUntil(new Date(Date.now() + 20));
          if (!finish) await forever();
          return values;
        };
        const first = await target.open(store, { appVersion: 'v1' });
        await first.workflow('clock', body).start(undefined, { id: 'clock-1' });
        await waitFor(async () => (await first.listSteps('clock-1')).length === 4);
        const recorded = await first.listSteps('clock-1');
        await first.close({ timeoutMs: 0 });
        finish = true;
        const second = await target.open(store, { appVersion: 'v1' });
        second.workflow('clock', body);
        const [h] = await second.recover();
        const out = (await h!.result()) as { now: Date; random: number; uuid: string };
        assert.deepEqual(recorded.map((s) => s.name), ['cairn.now', 'cairn.random', 'cairn.uuid', 'cairn.sleep']);
        assert.deepEqual(out, { now: recorded[0]!.output, random: recorded[1]!.output, uuid: recorded[2]!.output });
        assert.ok(out.now instanceof Date);
      });
    });

    describe('timeouts and cancellation', () => {
      test('a timeout ends the workflow CANCELLED with WorkflowTimeoutError and aborts the step in flight', async () => {
        const engine = await target.open(await target.fresh());
        let stepSawAbort: unknown;
        const wf = engine.workflow('deadline', async (ctx) => {
          await ctx.step('wait', ({ signal }) => new Promise<void>((resolve) => signal.addEventListener('abort', () => ((stepSawAbort = signal.reason), resolve()))));
          return ctx.step('never', () => 'should not run');
        });
        const h = await wf.start(undefined, { id: 'dl-1', timeoutMs: 150 });
        await assert.rejects(h.result(), (err: CairnError) => err.code === 'WORKFLOW_TIMEOUT' && err.name === 'WorkflowTimeoutError');
        assert.equal((stepSawAbort as CairnError).code, 'WORKFLOW_TIMEOUT');
        const info = await engine.getWorkflow('dl-1');
        assert.equal(info.status, 'CANCELLED');
        assert.equal((info.error as CairnError).code, 'WORKFLOW_TIMEOUT');
        // The step returned once aborted: its outcome is kept; the next step never ran.
        assert.deepEqual((await engine.listSteps('dl-1')).map((s) => s.name), ['wait']);
      });

      test('cancel from a second process stops a running workflow before its next step; resume finishes it', async () => {
        const store = await target.fresh();
        const engine = await target.open(store, { appVersion: 'v1' });
        const runs: Record<string, number> = {};
        let release!: () => void;
        let gate = new Promise<void>((r) => (release = r));
        const count = (name: string) => (runs[name] = (runs[name] ?? 0) + 1);
        const wf = engine.workflow('five', async (ctx) => {
          for (const name of ['s1', 's2', 's3', 's4', 's5']) {
            await ctx.step(name, async () => {
              count(name);
              if (name === 's3') await gate;
              return name;
            });
          }
          return 'done';
        });
        const h = await wf.start(undefined, { id: 'five-1' });
        await waitFor(async () => runs.s3 === 1);
        const canceller = spawnFixture('./control-child.ts', store, { CHILD_MODE: 'cancel', CHILD_WORKFLOW_ID: 'five-1' });
        const done = await finished(canceller);
        assert.equal(done.code, 0);
        assert.equal(done.stdout.trim(), 'cancelled');
        release();
        await assert.rejects(h.result(), { code: 'WORKFLOW_CANCELLED' });
        assert.deepEqual(runs, { s1: 1, s2: 1, s3: 1 }, 'nothing ran after the cancellation');
        // s3 finished after the cancel: its effect happened, so it is on record.
        assert.deepEqual((await engine.listSteps('five-1')).map((s) => s.name), ['s1', 's2', 's3']);
        assert.equal((await engine.getWorkflow('five-1')).status, 'CANCELLED');

        gate = Promise.resolve();
        const resumed = await engine.resume('five-1');
        assert.equal(await resumed.result(), 'done');
        assert.deepEqual(runs, { s1: 1, s2: 1, s3: 1, s4: 1, s5: 1 }, 'recorded steps were not run again');
        const info = await engine.getWorkflow('five-1');
        assert.equal(info.status, 'SUCCESS');
        assert.equal(info.error, undefined);
      });

      test('cancel in the running process aborts ctx.signal at once', async () => {
        const engine = await target.open(await target.fresh());
        let aborted = false;
        const wf = engine.workflow('listen', async (ctx) => {
          await ctx.step('wait', ({ signal }) => new Promise<void>((resolve) => signal.addEventListener('abort', () => ((aborted = true), resolve()))));
          return 'unreachable';
        });
        const h = await wf.start(undefined, { id: 'listen-1' });
        await new Promise((r) => setTimeout(r, 30));
        await engine.cancel('listen-1');
        await assert.rejects(h.result(), { code: 'WORKFLOW_CANCELLED' });
        assert.equal(aborted, true);
        await engine.cancel('listen-1');
        assert.equal((await engine.getWorkflow('listen-1')).status, 'CANCELLED');
      });

      test("a handle from start() answers from its run once it succeeded, and follows a resume after a failure", async () => {
        const store = await target.fresh();
        const sent: string[] = [];
        const engine = await Engine.open({ database: target.provider(store, (sql) => sent.push(sql)) });
        try {
          let fail = true;
          const wf = engine.workflow('flaky', async (ctx, n: number) => {
            const v = await ctx.step('v', () => n);
            if (fail && n === 2) throw new Error('not yet');
            return v * 2;
          });
          const ok = await wf.start(1, { id: 'ok-1' });
          const bad = await wf.start(2, { id: 'bad-1' });
          await assert.rejects(bad.result(), /not yet/);
          assert.equal(await ok.result(), 2);
          sent.length = 0;
          assert.equal(await ok.result(), 2, 'asked again after the run ended');
          assert.equal(sent.length, 0, 'a success this process ran is answered without a query');
          fail = false;
          await engine.resume('bad-1');
          assert.equal(await bad.result(), 4, 'the handle taken before the resume sees the resumed outcome');
        } finally {
          await engine.close();
        }
      });

      test('resume runs a parked workflow again from its checkpoints', async () => {
        const store = await target.fresh();
        let calls = 0;
        let finish = false;
        const body = async (ctx: Context) => {
          const v = await ctx.step('once', () => ++calls);
          if (!finish) await forever();
          return v;
        };
        const e0 = await target.open(store, { appVersion: 'v1', maxRecoveryAttempts: 1 });
        await e0.workflow('parked', body).start(undefined, { id: 'park-1' });
        await waitFor(async () => (await e0.listSteps('park-1')).length === 1);
        await e0.close({ timeoutMs: 0 });
        for (let i = 0; i < 2; i++) {
          const e = await target.open(store, { appVersion: 'v1', maxRecoveryAttempts: 1 });
          e.workflow('parked', body);
          await e.recover();
          await e.close({ timeoutMs: 0 });
        }
        finish = true;
        const engine = await target.open(store, { appVersion: 'v1', maxRecoveryAttempts: 1 });
        engine.workflow('parked', body);
        assert.equal((await engine.getWorkflow('park-1')).status, 'MAX_RECOVERY_ATTEMPTS_EXCEEDED');
        assert.equal(await (await engine.resume('park-1')).result(), 1);
        assert.equal(calls, 1);
        const info = await engine.getWorkflow('park-1');
        assert.equal(info.status, 'SUCCESS');
        assert.equal(info.recoveryAttempts, 0);
      });
    });

    describe('database failures', () => {
      test(
        'a database that keeps refusing writes interrupts the execution; the engine runs it again from its checkpoints',
        { skip: target.kind === 'sqlite' ? false : 'holds the SQLite write lock from another process' },
        async () => {
          const store = await target.fresh();
          const warnings: string[] = [];
          const logger = { info() {}, warn: (_o: object, m?: string) => void warnings.push(m ?? ''), error: (_o: object, m?: string) => void warnings.push(m ?? '') };
          const path = store.database.slice('sqlite:'.length);
          await (await target.open(store)).close();
          // A short busy timeout, so the write retries run out while the lock is held.
          const engine = await Engine.open({ database: new SqliteProvider({ path, busyTimeoutMs: 100 }), migrate: false, logger });
          const runs: Record<string, number> = {};
          let holder: ReturnType<typeof spawn> | undefined;
          const wf = engine.workflow('stubborn', async (ctx) => {
            await ctx.step('before', () => ((runs.before = (runs.before ?? 0) + 1), 'b'));
            const v = await ctx.step('locked', async () => {
              runs.locked = (runs.locked ?? 0) + 1;
              if (runs.locked === 1) {
                // Another process holds the write lock past the busy timeout and every retry.
                holder = spawn(process.execPath, [
                  '-e',
                  `const db = new (require('better-sqlite3'))(${JSON.stringify(path)}); db.exec('BEGIN IMMEDIATE'); console.log('locked');
                   Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 4000); db.exec('COMMIT');`,
                ], { stdio: ['ignore', 'pipe', 'inherit'] });
                await new Promise((resolve) => holder!.stdout!.once('data', resolve));
              }
              return 'l';
            });
            return ctx.step('after', () => v + 'a');
          });
          const h = await wf.start(undefined, { id: 'stubborn-1' });
          assert.equal(await h.result(), 'la');
          assert.deepEqual(runs, { before: 1, locked: 2 }, 'the recorded step did not run again; the unrecorded one ran once more');
          const info = await engine.getWorkflow('stubborn-1');
          assert.equal(info.status, 'SUCCESS');
          assert.ok(warnings.some((w) => /running it again later/.test(w)), 'the execution was interrupted and run again');
          await new Promise((resolve) => (holder?.exitCode === null ? holder.once('exit', resolve) : resolve(undefined)));
          await engine.close();
        },
      );
    });

    describe('fork and inspection', () => {
      test('fork from step k re-runs steps k.. only', async () => {
        const engine = await target.open(await target.fresh());
        const runs: Record<string, number> = {};
        const wf = engine.workflow('chain', async (ctx, start: number) => {
          let acc = start;
          for (const name of ['s1', 's2', 's3', 's4', 's5']) {
            acc = await ctx.step(name, () => ((runs[name] = (runs[name] ?? 0) + 1), acc * 2));
          }
          return acc;
        });
        assert.equal(await wf.run(1, { id: 'chain-1' }), 32);
        const fork = await engine.fork('chain-1', { fromStep: 3, id: 'chain-1-fork' });
        assert.equal(fork.id, 'chain-1-fork');
        assert.equal(await fork.result(), 32);
        assert.deepEqual(runs, { s1: 1, s2: 1, s3: 2, s4: 2, s5: 2 });
        const steps = await engine.listSteps('chain-1-fork');
        assert.deepEqual(steps.map((s) => [s.stepId, s.name, s.output]), [[1, 's1', 2], [2, 's2', 4], [3, 's3', 8], [4, 's4', 16], [5, 's5', 32]]);
        const info = await engine.getWorkflow('chain-1-fork');
        assert.equal(info.input, 1);
        assert.equal(info.status, 'SUCCESS');
        const again = await engine.fork('chain-1', { fromStep: 1 });
        assert.equal(await again.result(), 32);
        assert.equal(runs.s1, 2);
      });

      test('getWorkflow and listSteps report input, output, error, timestamps and attempts', async () => {
        const engine = await target.open(await target.fresh());
        const wf = engine.workflow('report', async (ctx, x: { n: number }) => {
          await ctx.step('ok', () => x.n);
          await ctx.step('bad', () => Promise.reject(new Error('nope'))).catch(() => undefined);
          throw new Error('workflow failed');
        });
        const h = await wf.start({ n: 7 }, { id: 'rep-1' });
        await assert.rejects(h.result(), /workflow failed/);
        const info = await engine.getWorkflow('rep-1');
        assert.deepEqual(info.input, { n: 7 });
        assert.equal(info.status, 'ERROR');
        assert.equal((info.error as Error).message, 'workflow failed');
        assert.ok(info.startedAt! <= info.completedAt!);
        const steps = await engine.listSteps('rep-1');
        assert.deepEqual(steps.map((s) => [s.stepId, s.name, s.output, s.error instanceof Error ? s.error.message : s.error, s.attempts]), [
          [1, 'ok', 7, undefined, 1],
          [2, 'bad', undefined, 'nope', 1],
        ]);
        assert.ok(steps.every((s) => s.startedAt <= s.completedAt));
      });
    });

    describe('bad input', () => {
      test('negative or NaN delays and timeouts, maxAttempts < 1, fork past the last step, unknown ids: clear errors, nothing stored changes', async () => {
        const store = await target.fresh();
        const engine = await target.open(store);
        const attempts: Array<[string, unknown]> = [];
        const wf = engine.workflow('bad', async (ctx, kind: string) => {
          const tries: Record<string, () => Promise<unknown>> = {
            sleepNegative: () => ctx.sleep(-1),
            sleepNaN: () => ctx.sleep(Number.NaN),
            sleepUntilInvalid: () => ctx.sleepUntil(new Date('nope')),
            stepTimeout: () => ctx.step('t', () => 1, { timeoutMs: -5 }),
            stepTimeoutNaN: () => ctx.step('t', () => 1, { timeoutMs: Number.NaN }),
            maxAttempts: () => ctx.step('r', () => 1, { retry: { maxAttempts: 0 } }),
            minDelay: () => ctx.step('r', () => 1, { retry: { maxAttempts: 2, minDelayMs: -1 } }),
          };
          for (const [name, call] of Object.entries(tries)) {
            try {
              await call();
              attempts.push([name, 'no error']);
            } catch (err) {
              attempts.push([name, [(err as CairnError).code, (err as { argument?: string }).argument, (err as Error).message]]);
            }
          }
          return ctx.step('fine', () => kind);
        });
        assert.equal(await wf.run('x', { id: 'bad-1' }), 'x');
        const byName = Object.fromEntries(attempts) as Record<string, [string, string, string]>;
        for (const [name, argument, pattern] of [
          ['sleepNegative', 'sleep duration', /sleep duration must be a finite number of milliseconds >= 0, got -1/],
          ['sleepNaN', 'sleep duration', /got NaN/],
          ['sleepUntilInvalid', 'sleepUntil date', /must be a valid Date/],
          ['stepTimeout', 'timeoutMs', /timeoutMs must be .* got -5/],
          ['stepTimeoutNaN', 'timeoutMs', /got NaN/],
          ['maxAttempts', 'retry.maxAttempts', /retry.maxAttempts must be an integer >= 1, got 0/],
          ['minDelay', 'retry.minDelayMs', /got -1/],
        ] as const) {
          assert.equal(byName[name]![0], 'INVALID_ARGUMENT', name);
          assert.equal(byName[name]![1], argument, name);
          assert.match(byName[name]![2], pattern, name);
        }
        assert.deepEqual((await engine.listSteps('bad-1')).map((s) => [s.stepId, s.name]), [[1, 'fine']], 'rejected calls took no counter and stored nothing');

        const before = await snapshot(engine);
        await assert.rejects(wf.start('y', { timeoutMs: -1 }), { code: 'INVALID_ARGUMENT', argument: 'timeoutMs' });
        await assert.rejects(wf.start('y', { timeoutMs: Number.NaN }), { code: 'INVALID_ARGUMENT', argument: 'timeoutMs' });
        await assert.rejects(engine.fork('bad-1', { fromStep: 2 }), (err: CairnError) => {
          assert.equal(err.code, 'INVALID_ARGUMENT');
          assert.match(err.message, /fromStep 2 is past the last recorded step of workflow 'bad-1' \(step 1\)/);
          return true;
        });
        await assert.rejects(engine.fork('bad-1', { fromStep: 0 }), { code: 'INVALID_ARGUMENT', argument: 'fromStep' });
        for (const call of [() => engine.cancel('ghost'), () => engine.resume('ghost'), () => engine.fork('ghost', { fromStep: 1 })]) {
          await assert.rejects(call(), (err: CairnError) => err.code === 'WORKFLOW_NOT_FOUND' && /no workflow with id 'ghost'/.test(err.message));
        }
        assert.deepEqual(await snapshot(engine), before);
      });
    });
  });
}

async function snapshot(engine: Engine) {
  const workflows = await engine.listWorkflows();
  return Promise.all(workflows.map(async (w) => ({ ...w, steps: await engine.listSteps(w.id) })));
}

async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs = 8_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

