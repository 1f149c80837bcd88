import { hostname } from 'node:os';
import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { Engine, type Context } from '../src/index.js';
import type { Store, Target } from './helpers/targets.js';

/** Parks a workflow function forever, so closing its engine leaves the workflow PENDING. */
const forever = () => new Promise<never>(() => undefined);

/** The behavioural contract of the engine, written once and run on every provider. */
export function defineBehaviourSuite(target: Target): void {
  describe(`engine behaviour on ${target.kind}`, { skip: target.skip }, () => {
    afterEach(() => target.closeAll());
    after(() => target.dispose());

    test('runs a workflow, checkpoints each step in order, and reports it', async () => {
      const engine = await target.open(await target.fresh());
      const wf = engine.workflow('sum', async (ctx, n: number) => {
        const a = await ctx.step('double', () => n * 2);
        const b = await ctx.step('inc', () => a + 1);
        return { a, b };
      });
      const h = await wf.start(5, { id: 'sum-1' });
      assert.equal(h.id, 'sum-1');
      assert.deepEqual(await h.result(), { a: 10, b: 11 });
      const info = await h.status();
      assert.equal(info.status, 'SUCCESS');
      assert.equal(info.name, 'sum');
      assert.equal(info.input, 5);
      assert.deepEqual(info.output, { a: 10, b: 11 });
      // The default executor id is this process's host name and pid (with a counter for a second engine).
      assert.equal(info.executorId, engine.executorId);
      assert.match(info.executorId!, new RegExp(`^${hostname().replace(/[.]/g, '\\.')}:${process.pid}(:\\d+)?$`));
      assert.equal(info.appVersion, engine.appVersion);
      assert.ok(info.completedAt instanceof Date && info.completedAt >= info.createdAt);
      const steps = await engine.listSteps('sum-1');
      assert.deepEqual(steps.map((s) => [s.stepId, s.name, s.output]), [[1, 'double', 10], [2, 'inc', 11]]);
    });

    test('generates ids when none is given', async () => {
      const engine = await target.open(await target.fresh());
      const wf = engine.workflow('noop', async () => 'ok');
      const [a, b] = await Promise.all([wf.start(undefined), wf.start(undefined)]);
      assert.notEqual(a.id, b.id);
      assert.match(a.id, /^[0-9a-f-]{36}$/);
      assert.equal(await wf.run(undefined), 'ok');
    });

    test('first execution sees values exactly as a replay would', async () => {
      const engine = await target.open(await target.fresh());
      class Point {
        constructor(readonly x: number) {}
        norm() {
          return Math.abs(this.x);
        }
      }
      const seen: unknown[] = [];
      const wf = engine.workflow('values', async (ctx, input: { when: Date; tags: Set<string> }) => {
        seen.push(input.when instanceof Date, input.tags instanceof Set);
        const m = await ctx.step('map', () => new Map([['k', 10n]]));
        const p = await ctx.step('point', () => new Point(-3));
        const u = await ctx.step('undef', () => undefined);
        seen.push(m.get('k'), p instanceof Point, Object.getPrototypeOf(p) === Object.prototype, u);
        return { m, when: input.when };
      });
      const out = await wf.run({ when: new Date(1000), tags: new Set(['a']) });
      assert.deepEqual(seen, [true, true, 10n, false, true, undefined]);
      assert.deepEqual(out, { m: new Map([['k', 10n]]), when: new Date(1000) });
    });

    test('steps started together get ids in call order', async () => {
      const engine = await target.open(await target.fresh());
      const wf = engine.workflow('fanout', async (ctx) => {
        const delays = [30, 5, 15, 0];
        return Promise.all(delays.map((d, i) => ctx.step(`s${i}`, () => new Promise<number>((r) => setTimeout(() => r(i), d)))));
      });
      const h = await wf.start(undefined, { id: 'fan' });
      assert.deepEqual(await h.result(), [0, 1, 2, 3]);
      const steps = await engine.listSteps('fan');
      assert.deepEqual(steps.map((s) => [s.stepId, s.name]), [[1, 's0'], [2, 's1'], [3, 's2'], [4, 's3']]);
    });

    test('a failing step is recorded and rethrown; an uncaught error ends the workflow in ERROR', async () => {
      const engine = await target.open(await target.fresh());
      class PaymentDeclined extends Error {
        code = 'DECLINED';
        amount = 42;
      }
      const wf = engine.workflow('pay', async (ctx, fail: boolean) => {
        try {
          await ctx.step('charge', () => {
            throw new PaymentDeclined('card declined');
          });
        } catch (err) {
          const e = err as PaymentDeclined;
          if (fail) throw e;
          return `recovered from ${e.name}:${e.code}:${e.amount}`;
        }
        return 'unreachable';
      });
      assert.equal(await wf.run(false), 'recovered from Error:DECLINED:42');
      const h = await wf.start(true, { id: 'pay-fail' });
      await assert.rejects(h.result(), (err: Error & { code?: string }) => {
        assert.equal(err.message, 'card declined');
        assert.equal(err.code, 'DECLINED');
        return true;
      });
      const info = await h.status();
      assert.equal(info.status, 'ERROR');
      assert.equal((info.error as Error).message, 'card declined');
      const [step] = await engine.listSteps('pay-fail');
      assert.equal((step!.error as Error).message, 'card declined');
      assert.equal(step!.output, undefined);
    });

    test('starting an existing id returns its handle and runs nothing again', async () => {
      const engine = await target.open(await target.fresh());
      let runs = 0;
      const wf = engine.workflow('once', async (ctx, x: number) => ctx.step('count', () => ++runs + x));
      const first = await wf.start(10, { id: 'same' });
      assert.equal(await first.result(), 11);
      const second = await wf.start(99, { id: 'same' });
      assert.equal(await second.result(), 11);
      assert.equal(runs, 1);
      assert.equal((await engine.listWorkflows()).length, 1);
    });

    test('concurrent starts: one id started 20 times at once runs once; 40 distinct ids all start, sharing commits', async () => {
      const store = await target.fresh();
      await (await target.open(store)).close();
      const sent: string[] = [];
      const engine = await Engine.open({ database: target.provider(store, (sql) => sent.push(sql)), migrate: false });
      try {
        let runs = 0;
        const wf = engine.workflow('burst', async (ctx, x: number) => ctx.step('count', () => (runs++, x)));
        const same = await Promise.all(Array.from({ length: 20 }, (_, k) => wf.start(k, { id: 'burst-same' })));
        const results = await Promise.all(same.map((h) => h.result()));
        assert.equal(runs, 1, 'the id ran once');
        assert.equal(new Set(results).size, 1, 'every handle sees the one run');
        sent.length = 0;
        const distinct = await Promise.all(Array.from({ length: 40 }, (_, k) => wf.start(k, { id: `burst-${k}` })));
        assert.deepEqual(await Promise.all(distinct.map((h) => h.result())), Array.from({ length: 40 }, (_, k) => k));
        assert.equal(runs, 41);
        const inserts = sent.filter((sql) => /INSERT INTO \S*workflows/.test(sql)).length;
        if (target.kind === 'postgres') assert.ok(inserts < 40, `40 starts took ${inserts} insert statements`);
        else assert.equal(inserts, 40);
      } finally {
        await engine.close();
      }
    });

    test('recovery replays recorded steps and runs only the missing ones', async () => {
      const store = await target.fresh();
      const runs: string[] = [];
      let block = true;
      const body = async (ctx: Context, n: number) => {
        const a = await ctx.step('a', () => (runs.push('a'), n + 1));
        const b = await ctx.step('b', () => (runs.push('b'), a * 10));
        if (block) await forever();
        const c = await ctx.step('c', () => (runs.push('c'), b + 5));
        return c;
      };
      const first = await target.open(store, { appVersion: 'v1' });
      await first.workflow('resume', body).start(1, { id: 'r-1' });
      await waitFor(async () => (await first.listSteps('r-1')).length === 2);
      await first.close({ timeoutMs: 0 });
      assert.equal((await readStatus(target, store, 'r-1')), 'PENDING');

      block = false;
      const second = await target.open(store, { appVersion: 'v1' });
      second.workflow('resume', body);
      const handles = await second.recover();
      assert.deepEqual(handles.map((h) => h.id), ['r-1']);
      assert.equal(await handles[0]!.result(), 25);
      assert.deepEqual(runs, ['a', 'b', 'c']);
      const info = await second.getWorkflow('r-1');
      assert.equal(info.status, 'SUCCESS');
      assert.equal(info.recoveryAttempts, 0, 'a recovery that records a new checkpoint made progress, so the count starts again');
    });

    test('recover() resumes its own executor of any app version, and adopts a stopped executor', async () => {
      const store = await target.fresh();
      const body = async (ctx: Context) => {
        await forever();
        return ctx.workflowId;
      };
      for (const [executorId, appVersion, id] of [['a', 'v1', 'w-a'], ['b', 'v1', 'w-b'], ['a', 'v2', 'w-a2']] as const) {
        const e = await target.open(store, { executorId, appVersion });
        await e.workflow('park', body).start(null, { id });
        await e.close({ timeoutMs: 0 });
      }
      const engine = await target.open(store, { executorId: 'a', appVersion: 'v1' });
      engine.workflow('park', body);
      const handles = await engine.recover();
      // Executor b closed, so its work is adopted at once; the v2 workflow runs here too, where its replay decides.
      assert.deepEqual(handles.map((h) => h.id).sort(), ['w-a', 'w-a2', 'w-b']);
      const infos = await engine.listWorkflows({ order: 'asc' });
      assert.deepEqual(
        infos.map((i) => [i.id, i.executorId, i.recoveryAttempts]).sort(),
        [['w-a', 'a', 1], ['w-a2', 'a', 1], ['w-b', 'a', 1]],
      );
    });

    test('a changed step name at a recorded counter runs nothing and leaves the workflow PENDING under its version', async () => {
      const store = await target.fresh();
      const first = await target.open(store, { appVersion: 'v1', executorId: 'old' });
      const drift = first.workflow('drift', async (ctx) => {
        await ctx.step('charge', () => 1);
        await forever();
      });
      await drift.start(null, { id: 'd-1' });
      await waitFor(async () => (await first.listSteps('d-1')).length === 1);
      await first.close({ timeoutMs: 0 });

      const warnings: Array<{ obj: Record<string, unknown>; msg: string | undefined }> = [];
      const logger = { info() {}, error() {}, warn: (obj: object, msg?: string) => void warnings.push({ obj: obj as Record<string, unknown>, msg }) };
      const second = await target.open(store, { appVersion: 'v2', executorId: 'new', logger });
      let refunded = 0;
      second.workflow('drift', async (ctx) => ctx.step('refund', () => ++refunded));
      const [h] = await second.recover();
      assert.equal(h!.id, 'd-1');
      await waitFor(async () => (await second.getWorkflow('d-1')).executorId === null);
      const info = await second.getWorkflow('d-1');
      assert.equal(info.status, 'PENDING');
      assert.equal(info.appVersion, 'v1');
      assert.equal(refunded, 0);
      assert.deepEqual((await second.listSteps('d-1')).map((s) => s.name), ['charge']);
      assert.equal(warnings.length, 1);
      assert.deepEqual(
        [warnings[0]!.obj.workflowId, warnings[0]!.obj.stepId, warnings[0]!.obj.recordedName, warnings[0]!.obj.calledName, warnings[0]!.obj.recordedVersion, warnings[0]!.obj.appVersion],
        ['d-1', 1, 'charge', 'refund', 'v1', 'v2'],
      );
      assert.match(warnings[0]!.msg!, /step 1 was recorded as 'charge' but this code called 'refund' there \(at .*behaviour\.ts:\d+:\d+\)/);
      // This process does not take it again; nor does a second recover().
      assert.deepEqual(await second.recover(), []);
    });

    test('recovery attempts are counted and a workflow past the cap is parked', async () => {
      const store = await target.fresh();
      const body = async () => forever();
      const e0 = await target.open(store, { appVersion: 'v1', maxRecoveryAttempts: 2 });
      await e0.workflow('crashy', body).start(null, { id: 'c-1' });
      await e0.close({ timeoutMs: 0 });
      for (let attempt = 1; attempt <= 2; attempt++) {
        const e = await target.open(store, { appVersion: 'v1', maxRecoveryAttempts: 2 });
        e.workflow('crashy', body);
        assert.equal((await e.recover()).length, 1);
        assert.equal((await e.getWorkflow('c-1')).recoveryAttempts, attempt);
        await e.close({ timeoutMs: 0 });
      }
      const last = await target.open(store, { appVersion: 'v1', maxRecoveryAttempts: 2 });
      last.workflow('crashy', body);
      const [h] = await last.recover();
      await assert.rejects(h!.result(), { code: 'MAX_RECOVERY_ATTEMPTS' });
      const info = await last.getWorkflow('c-1');
      assert.equal(info.status, 'MAX_RECOVERY_ATTEMPTS_EXCEEDED');
      assert.equal(info.recoveryAttempts, 3);
      assert.deepEqual(await last.recover(), []);
    });

    test('two engines recovering one workflow at once record each step once; the loser adopts', async () => {
      const store = await target.fresh();
      // Two live processes under one executor id (a misconfiguration) both recover its work.
      const first = await target.open(store, { appVersion: 'v1', executorId: 'shared' });
      await first.workflow('race', async () => forever()).start(null, { id: 'race-1' });
      await first.close({ timeoutMs: 0 });

      let arrived = 0;
      let release!: () => void;
      const bothInside = new Promise<void>((r) => (release = r));
      const executions: number[] = [];
      const body = async (ctx: Context) => {
        const v = await ctx.step('pick', async () => {
          const mine = Math.random();
          executions.push(mine);
          if (++arrived === 2) release();
          await bothInside;
          return mine;
        });
        const w = await ctx.step('after', () => v * 2);
        return { v, w };
      };
      const engines = await Promise.all([0, 1].map(() => target.open(store, { appVersion: 'v1', executorId: 'shared' })));
      engines.forEach((e) => e.workflow('race', body));
      const handles = (await Promise.all(engines.map((e) => e.recover()))).flat();
      assert.equal(handles.length, 2);
      const [r1, r2] = await Promise.all(handles.map((h) => h.result()));
      assert.equal(executions.length, 2, 'both executions ran the step body');
      assert.deepEqual(r1, r2, 'both executions end with the same, recorded result');
      const steps = await engines[0]!.listSteps('race-1');
      assert.deepEqual(steps.map((s) => s.name), ['pick', 'after']);
      assert.deepEqual(r1, { v: steps[0]!.output, w: steps[1]!.output });
      assert.ok(executions.includes(steps[0]!.output as number));
      assert.deepEqual((await engines[0]!.getWorkflow('race-1')).output, r1);
    });

    test('a fresh 10-step workflow sends 12 statements and reads nothing before its steps', async () => {
      const store = await target.fresh();
      const setup = await target.open(store);
      await setup.close();
      const sent: string[] = [];
      const engine = await Engine.open({ database: target.provider(store, (sql) => sent.push(sql)), migrate: false });
      // Opening registered the executor; from here on, only the workflow's own statements.
      sent.length = 0;
      try {
        const wf = engine.workflow('ten', async (ctx) => {
          let acc = 0;
          for (let i = 0; i < 10; i++) acc = await ctx.step(`s${i}`, () => acc + i);
          return acc;
        });
        const h = await wf.start(undefined, { id: 'ten-1' });
        await h.result();
        assert.equal(sent.length, 12, sent.join('\n---\n'));
        assert.match(sent[0]!, /^\s*INSERT INTO \S*workflows/);
        for (const sql of sent.slice(1, 11)) assert.match(sql, /^\s*INSERT INTO \S*steps/);
        // The end: an UPDATE, on Postgres inside a WITH that also sends its notification.
        assert.match(sent[11]!, /^\s*(WITH done AS \(\s*)?UPDATE \S*workflows/);
        assert.ok(!sent.some((s) => /^\s*SELECT/i.test(s)), 'no SELECT on the happy path');
      } finally {
        await engine.close();
      }
    });

    test('a replay of a 10-step workflow reads all checkpoints in one query and writes none', async () => {
      const store = await target.fresh();
      let finish = false;
      const body = async (ctx: Context) => {
        let acc = 0;
        for (let i = 0; i < 10; i++) acc = await ctx.step(`s${i}`, () => acc + i);
        if (!finish) await forever();
        return acc;
      };
      const first = await target.open(store, { appVersion: 'v1' });
      await first.workflow('ten', body).start(null, { id: 'ten-2' });
      await waitFor(async () => (await first.listSteps('ten-2')).length === 10);
      await first.close({ timeoutMs: 0 });

      finish = true;
      const sent: string[] = [];
      const engine = await Engine.open({ database: target.provider(store, (sql) => sent.push(sql)), migrate: false, appVersion: 'v1' });
      try {
        engine.workflow('ten', body);
        const [h] = await engine.recover();
        assert.equal(await h!.result(), 45);
        const stepReads = sent.filter((s) => /FROM \S*steps/.test(s));
        assert.equal(stepReads.length, 1, 'one query loads every checkpoint');
        assert.equal(sent.filter((s) => /INSERT INTO \S*steps/.test(s)).length, 0, 'no checkpoint is written again');
      } finally {
        await engine.close();
      }
    });

    test('recovery of 1,200 workflows loads their checkpoints a batch of workflows per query and replays each', async () => {
      const store = await target.fresh();
      const n = 1_200;
      let finish = false;
      let ran = 0;
      let parked = 0;
      const body = async (ctx: Context, i: number) => {
        const a = await ctx.step('a', () => (ran++, i * 2));
        const b = await ctx.step('b', () => (ran++, a + 1));
        if (!finish) {
          parked++;
          await forever();
        }
        return b;
      };
      const first = await target.open(store, { appVersion: 'v1' });
      const wf = first.workflow('many', body);
      for (let i = 0; i < n; i += 100) await Promise.all(Array.from({ length: 100 }, (_, k) => wf.start(i + k, { id: `many-${i + k}` })));
      await waitFor(async () => parked === n, 20_000);
      await first.close({ timeoutMs: 0 });

      finish = true;
      ran = 0;
      const sent: string[] = [];
      const engine = await Engine.open({ database: target.provider(store, (sql) => sent.push(sql)), migrate: false, appVersion: 'v1' });
      try {
        engine.workflow('many', body);
        const handles = await engine.recover();
        assert.equal(handles.length, n);
        const results = await Promise.all(handles.map((h) => h.result()));
        const byId = new Map(handles.map((h, k) => [h.id, results[k]]));
        for (let i = 0; i < n; i++) assert.equal(byId.get(`many-${i}`), i * 2 + 1, `many-${i}`);
        assert.equal(ran, 0, 'no step body ran again');
        const stepReads = sent.filter((s) => /FROM \S*steps/.test(s)).length;
        assert.equal(stepReads, 3, `checkpoints of ${n} workflows load in 3 queries, not ${stepReads}`);
      } finally {
        await engine.close();
      }
    });

    test('group commit: concurrent checkpoints share commits, and each row keeps its own cancellation check', async () => {
      const store = await target.fresh();
      await (await target.open(store)).close();
      const sent: string[] = [];
      const engine = await Engine.open({ database: target.provider(store, (sql) => sent.push(sql)), migrate: false });
      try {
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        const wf = engine.workflow('many', async (ctx, n: number) => {
          let acc = n;
          for (let i = 0; i < 5; i++) acc = await ctx.step(`s${i}`, async () => (i === 2 && n === 0 ? (await gate, acc + 1) : acc + 1));
          return acc;
        });
        const handles = await Promise.all(Array.from({ length: 20 }, (_, n) => wf.start(n, { id: `many-${n}` })));
        // Workflow 0 waits inside its third step; cancel it, then let it try to record that step.
        await waitFor(async () => (await engine.listSteps('many-0')).length === 2);
        await engine.cancel('many-0');
        release();
        await assert.rejects(handles[0]!.result(), { code: 'WORKFLOW_CANCELLED' });
        for (let n = 1; n < 20; n++) assert.equal(await handles[n]!.result(), n + 5);
        // The step in flight finished after the cancel: it is kept (its effect happened), nothing after it.
        assert.deepEqual((await engine.listSteps('many-0')).map((s) => s.name), ['s0', 's1', 's2'], 'the cancelled workflow recorded nothing more');
        assert.ok(
          sent.some((sql) => /INSERT INTO \S*steps[\s\S]*status = 'CANCELLED'/.test(sql)),
          'the batch row of the cancelled workflow was refused, and its step written by the statement for cancelled workflows',
        );
        const checkpoints = 19 * 5 + 3;
        let commits = 0;
        let inBatch = false;
        let batches = 0;
        for (const sql of sent) {
          if (sql === 'BEGIN IMMEDIATE') inBatch = true;
          else if (sql === 'COMMIT') (inBatch = false), commits++, batches++;
          else if (/INSERT INTO \S*steps[\s\S]*unnest/.test(sql)) commits++, batches++;
          else if (/^\s*INSERT INTO \S*steps/.test(sql) && !inBatch) commits++;
        }
        assert.ok(batches > 0, 'some checkpoints were written together');
        assert.ok(commits < checkpoints, `${checkpoints} checkpoints took ${commits} commits`);
      } finally {
        await engine.close();
      }
    });

    test('a workflow started from inside a step runs normally', async () => {
      const engine = await target.open(await target.fresh());
      const inner = engine.workflow('inner', async (ctx, x: number) => ctx.step('inner-step', () => x + 1));
      const outer = engine.workflow('outer', async (ctx) => {
        const id = await ctx.step('spawn', async () => (await inner.start(1, { id: 'inner-1' })).id);
        return id;
      });
      assert.equal(await outer.run(undefined), 'inner-1');
      assert.equal(await engine.handle('inner-1').result(), 2);
    });

    test('handle.result() waits for a workflow running in another engine', async () => {
      const store = await target.fresh();
      const runner = await target.open(store);
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const wf = runner.workflow('slow', async (ctx) => {
        await ctx.step('wait', () => gate);
        return 'done';
      });
      await wf.start(undefined, { id: 'slow-1' });
      const observer = await target.open(store);
      const waiting = observer.handle<string>('slow-1').result();
      setTimeout(release, 50);
      assert.equal(await waiting, 'done');
      await assert.rejects(observer.handle('nope').result(), { code: 'WORKFLOW_NOT_FOUND' });
    });

    test('listWorkflows filters by status, name and time, and pages', async () => {
      const engine = await target.open(await target.fresh());
      const ok = engine.workflow('ok', async (_ctx, i: number) => i);
      const bad = engine.workflow('bad', async () => {
        throw new Error('no');
      });
      const t0 = new Date();
      for (let i = 0; i < 5; i++) await ok.run(i, { id: `ok-${i}` });
      await assert.rejects(bad.run(undefined, { id: 'bad-0' }));
      assert.deepEqual((await engine.listWorkflows({ status: 'ERROR' })).map((w) => w.id), ['bad-0']);
      assert.deepEqual((await engine.listWorkflows({ name: 'ok', limit: 2, offset: 1 })).map((w) => w.id), ['ok-1', 'ok-2']);
      assert.equal((await engine.listWorkflows({ name: 'ok', order: 'desc', limit: 1 }))[0]!.id, 'ok-4');
      assert.equal((await engine.listWorkflows({ status: ['SUCCESS', 'ERROR'], createdAfter: t0 })).length, 6);
      assert.equal((await engine.listWorkflows({ createdBefore: t0 })).length, 0);
    });

    test('a step aborted by close() is not recorded, and recovery runs it again', async () => {
      const store = await target.fresh();
      await (await target.open(store)).close();
      // Like a pool the application owns: the database stays usable after the engine closes.
      const provider = target.provider(store);
      const closeProvider = provider.close.bind(provider);
      provider.close = async () => undefined;
      let runs = 0;
      const body = async (ctx: Context) =>
        ctx.step('slow', async ({ signal }) => {
          runs++;
          await new Promise((resolve, reject) => {
            const t = setTimeout(resolve, runs === 1 ? 60_000 : 1);
            signal.addEventListener('abort', () => (clearTimeout(t), reject(signal.reason as Error)));
          });
          return 'finished';
        });
      const engine = await Engine.open({ database: provider, migrate: false, appVersion: 'v1' });
      await engine.workflow('abandon', body).start(undefined, { id: 'ab-1' });
      await new Promise((r) => setTimeout(r, 30));
      await engine.close({ timeoutMs: 20 });
      await new Promise((r) => setTimeout(r, 30));
      assert.deepEqual(await provider.listSteps('ab-1'), [], 'the shutdown abort was not stored as the step outcome');
      assert.equal((await provider.getWorkflow('ab-1'))!.status, 'PENDING');
      await closeProvider();

      const next = await target.open(store, { appVersion: 'v1' });
      next.workflow('abandon', body);
      const [h] = await next.recover();
      assert.equal(await h!.result(), 'finished');
      assert.equal(runs, 2);
    });

    test('close() waits for workflows in flight', async () => {
      const store = await target.fresh();
      const engine = await Engine.open({ database: store.database, ...(store.schema && { schema: store.schema }) });
      const wf = engine.workflow('tail', async (ctx) => {
        await ctx.step('slow', () => new Promise((r) => setTimeout(r, 100)));
        return ctx.step('last', () => 'finished');
      });
      await wf.start(undefined, { id: 'tail-1' });
      await engine.close();
      const check = await target.open(store);
      assert.equal((await check.getWorkflow('tail-1')).status, 'SUCCESS');
      await assert.rejects(wf.start(undefined), { code: 'ENGINE_CLOSED' });
    });
  });
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function readStatus(target: Target, store: Store, id: string): Promise<string> {
  const e = await target.open(store);
  return (await e.getWorkflow(id)).status;
}
