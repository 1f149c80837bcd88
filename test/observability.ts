import assert from 'node:assert/strict';
import { afterEach, after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { Histogram } from '@opentelemetry/sdk-metrics';
import { InvalidArgumentError, type Engine, type Logger, type WorkflowHooks } from '../src/index.js';
import { points, registerOtel, spanJson, type SpanJson } from './fixtures/observability-otel.js';
import { finished, printed, spawnFixture } from './fixtures/spawn.js';
import type { Target } from './helpers/targets.js';

const otel = registerOtel();

type Logged = { level: 'info' | 'warn' | 'error'; fields: Record<string, unknown>; msg: string };

function recordingLogger(): { logger: Logger; logs: Logged[] } {
  const logs: Logged[] = [];
  const at = (level: Logged['level']) => (fields: object, msg?: string) => void logs.push({ level, fields: fields as Record<string, unknown>, msg: msg ?? '' });
  return { logger: { info: at('info'), warn: at('warn'), error: at('error') }, logs };
}

type Fired = { hook: string; event: Record<string, unknown> };

/** Hooks that record every event, in the order they are called. */
function recordingHooks(): { hooks: WorkflowHooks; fired: Fired[] } {
  const fired: Fired[] = [];
  const record = (hook: string) => (event: object) => void fired.push({ hook, event: event as Record<string, unknown> });
  const hooks: WorkflowHooks = {
    workflowStarted: record('workflowStarted'),
    workflowEnded: record('workflowEnded'),
    stepEnded: record('stepEnded'),
    stepRetried: record('stepRetried'),
    workflowEnqueued: record('workflowEnqueued'),
    workflowAdopted: record('workflowAdopted'),
  };
  return { hooks, fired };
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** The exported spans of one workflow id (workflow and step spans), as JSON. */
function spansOf(workflowId: string): SpanJson[] {
  return otel.spans.getFinishedSpans().map(spanJson).filter((s) => s.attributes['cairn.workflow.id'] === workflowId);
}

/** A workflow of three steps whose second fails once and is retried. */
function registerThreeSteps(engine: Engine, name: string) {
  return engine.workflow(name, async (ctx, n: number) => {
    const a = await ctx.step('reserve', () => n + 1);
    const b = await ctx.step('charge', ({ attempt }) => {
      if (attempt === 1) throw new Error('card declined, once');
      return a * 2;
    }, { retry: { maxAttempts: 3, minDelayMs: 5 } });
    return ctx.step('ship', () => `shipped ${b}`);
  });
}

export function defineObservabilitySuite(target: Target): void {
  describe(`observability (${target.kind})`, { skip: target.skip }, () => {
    afterEach(() => target.closeAll());
    after(() => target.dispose());

    test('every hook fires after the fact, in order, with its documented fields', async () => {
      const { hooks, fired } = recordingHooks();
      const engine = await target.open(await target.fresh(), { hooks, telemetry: false, appVersion: 'v-hooks', executorId: 'exec-hooks' });
      const order = registerThreeSteps(engine, 'hooked');
      assert.equal(await order.run(1, { id: 'hooked-1' }), 'shipped 4');
      await until('workflowEnded', () => fired.some((f) => f.hook === 'workflowEnded'));
      const base = { workflowId: 'hooked-1', name: 'hooked', queue: null, executorId: 'exec-hooks', appVersion: 'v-hooks' };
      assert.deepEqual(fired.map((f) => f.hook), ['workflowStarted', 'stepEnded', 'stepRetried', 'stepEnded', 'stepEnded', 'workflowEnded']);
      const [started, reserve, retried, charge, ship, ended] = fired.map((f) => f.event);
      assert.deepEqual({ ...started, startedAt: 0 }, { ...base, resumed: false, recoveryAttempts: 0, startedAt: 0 });
      assert.equal(typeof started!.startedAt, 'number');
      const step = { workflowId: 'hooked-1', workflowName: 'hooked' };
      assert.deepEqual({ ...reserve, durationMs: 0 }, { ...step, stepId: 1, stepName: 'reserve', status: 'SUCCESS', attempts: 1, durationMs: 0 });
      assert.deepEqual({ ...retried, error: null }, { ...step, stepId: 2, stepName: 'charge', attempt: 1, delayMs: 5, error: null });
      assert.equal((retried!.error as Error).message, 'card declined, once');
      assert.deepEqual({ ...charge, durationMs: 0 }, { ...step, stepId: 2, stepName: 'charge', status: 'SUCCESS', attempts: 2, durationMs: 0 });
      assert.ok((charge!.durationMs as number) >= 5, 'the retried step took at least its retry delay');
      assert.equal(ship!.stepName, 'ship');
      assert.deepEqual({ ...ended, durationMs: 0 }, { ...base, status: 'SUCCESS', durationMs: 0 });

      const failing = engine.workflow('hooked_failing', async (ctx) => {
        await ctx.step('boom', () => {
          throw new Error('out of stock');
        });
      });
      await assert.rejects(failing.run(undefined, { id: 'hooked-2' }), /out of stock/);
      await until('the failure', () => fired.some((f) => f.hook === 'workflowEnded' && f.event.workflowId === 'hooked-2'));
      const failed = fired.filter((f) => f.event.workflowId === 'hooked-2');
      assert.deepEqual(failed.map((f) => [f.hook, f.event.status]), [['workflowStarted', undefined], ['stepEnded', 'ERROR'], ['workflowEnded', 'ERROR']]);
      assert.equal((failed[2]!.event.error as Error).message, 'out of stock');

      // Cancelled while it waits, or past its deadline: workflowEnded says CANCELLED, with the reason.
      const waiting = engine.workflow('hooked_waiting', async (ctx) => ctx.recv('never', 60_000));
      const cancelled = await waiting.start(undefined, { id: 'hooked-3' });
      await until('hooked-3 started', () => fired.some((f) => f.hook === 'workflowStarted' && f.event.workflowId === 'hooked-3'));
      await engine.cancel('hooked-3');
      await assert.rejects(cancelled.result(), /hooked-3/);
      await waiting.start(undefined, { id: 'hooked-4', timeoutMs: 50 });
      await until('both ended', () => fired.filter((f) => f.hook === 'workflowEnded' && ['hooked-3', 'hooked-4'].includes(f.event.workflowId as string)).length === 2);
      const ends = fired.filter((f) => f.hook === 'workflowEnded' && ['hooked-3', 'hooked-4'].includes(f.event.workflowId as string));
      assert.deepEqual(ends.map((f) => [f.event.workflowId, f.event.status, (f.event.error as Error).name]).sort(), [
        ['hooked-3', 'CANCELLED', 'WorkflowCancelledError'],
        ['hooked-4', 'CANCELLED', 'WorkflowTimeoutError'],
      ]);
    });

    test('a queued workflow reports workflowEnqueued, then its start and end on the worker', async () => {
      const { hooks, fired } = recordingHooks();
      const engine = await target.open(await target.fresh(), { hooks, telemetry: false });
      engine.queue('mail', { concurrency: 1 });
      const send = engine.workflow('hooked_mail', async (ctx, to: string) => ctx.step('send', () => `sent to ${to}`));
      await engine.launch();
      const handle = await send.start('ada', { queue: 'mail', id: 'mail-1', priority: 3 });
      assert.equal(await handle.result(), 'sent to ada');
      await until('workflowEnded', () => fired.some((f) => f.hook === 'workflowEnded'));
      assert.deepEqual(fired.map((f) => f.hook), ['workflowEnqueued', 'workflowStarted', 'stepEnded', 'workflowEnded']);
      assert.deepEqual(
        { ...fired[0]!.event, appVersion: null },
        { workflowId: 'mail-1', name: 'hooked_mail', queue: 'mail', executorId: engine.executorId, appVersion: null, priority: 3, partitionKey: null, status: 'ENQUEUED' },
      );
      assert.equal(fired[1]!.event.queue, 'mail');
      assert.equal(fired[3]!.event.queue, 'mail');
    });

    test('a workflow left by a stopped executor is adopted: workflowAdopted, a resumed start, and the caller trace kept', async () => {
      const store = await target.fresh();
      const first = await target.open(store, { executorId: 'exec-gone' });
      const napping = (engine: Engine) =>
        engine.workflow('napping', async (ctx) => {
          await ctx.step('before', () => 1);
          await ctx.sleep(300);
          return ctx.step('after', () => 'woke');
        });
      const wf = napping(first);
      const caller = trace.getTracer('test');
      const traceId = await caller.startActiveSpan('caller', async (span) => {
        await wf.start(undefined, { id: 'nap-1' });
        span.end();
        return span.spanContext().traceId;
      });
      await until('the first step', async () => (await first.listSteps('nap-1')).length >= 1);
      await first.close({ timeoutMs: 0 });

      const { hooks, fired } = recordingHooks();
      const { logger, logs } = recordingLogger();
      const second = await target.open(store, { executorId: 'exec-adopter', hooks, logger, leaseMs: 400, heartbeatMs: 50 });
      napping(second);
      const handles = await second.recover();
      assert.equal(handles.length, 1);
      assert.equal(await second.handle('nap-1').result(), 'woke');
      await until('workflowEnded', () => fired.some((f) => f.hook === 'workflowEnded'));
      assert.deepEqual(fired.map((f) => f.hook), ['workflowAdopted', 'workflowStarted', 'stepEnded', 'workflowEnded']);
      assert.equal(fired[0]!.event.workflowId, 'nap-1');
      assert.equal(fired[0]!.event.executorId, 'exec-adopter');
      assert.equal(fired[1]!.event.resumed, true);
      assert.ok(logs.some((l) => l.level === 'info' && /adopted/.test(l.msg) && (l.fields.workflows as string[] | undefined)?.includes('nap-1') === true), 'the adoption is logged at info');

      const spans = spansOf('nap-1');
      const workflowSpans = spans.filter((s) => s.name === 'cairn.workflow napping');
      assert.equal(workflowSpans.length, 2, 'one workflow span per execution');
      for (const s of spans) assert.equal(s.traceId, traceId, `${s.name} is in the caller's trace`);
      assert.deepEqual(spans.filter((s) => s.name.startsWith('cairn.step')).map((s) => s.name).sort(), ['cairn.step after', 'cairn.step before']);
    });

    test('a workflow killed by SIGKILL and recovered in another process continues the caller trace', async () => {
      const store = await target.fresh();
      await (await target.open(store)).close();
      const first = spawnFixture('./observability-child.ts', store, { OBS_MODE: 'start' });
      const firstDone = finished(first);
      await printed(first, 'IN_TWO');
      first.kill('SIGKILL');
      const killed = await firstDone;
      assert.equal(killed.signal, 'SIGKILL');
      const [, traceId, callerSpanId] = /^CALLER (\w+) (\w+)$/m.exec(killed.stdout)!;
      const second = await finished(spawnFixture('./observability-child.ts', store, { OBS_MODE: 'recover' }));
      assert.equal(second.code, 0);
      assert.match(second.stdout, /^DONE 50$/m);
      const spansIn = (out: string) => out.split('\n').filter((l) => l.startsWith('SPAN ')).map((l) => JSON.parse(l.slice(5)) as SpanJson);
      const before = spansIn(killed.stdout);
      const afterCrash = spansIn(second.stdout);
      assert.deepEqual(before.map((s) => s.name).sort(), ['cairn.step one', 'caller'], 'the workflow span of the killed execution never ended');
      assert.deepEqual(afterCrash.map((s) => s.name), ['cairn.step two', 'cairn.workflow traced_crash']);
      for (const s of [...before, ...afterCrash]) assert.equal(s.traceId, traceId, `${s.name} is in the caller's trace`);
      const recovered = afterCrash[1]!;
      assert.equal(recovered.parentSpanId, callerSpanId, 'the recovered execution is a child of the caller span');
      assert.deepEqual(recovered.events, ['resumed']);
      assert.equal(afterCrash[0]!.parentSpanId, recovered.spanId);
    });

    test('workflows of a dead executor that no live executor registers are reported stranded, at warn', async () => {
      const store = await target.fresh();
      const first = await target.open(store, { executorId: 'exec-orphaned' });
      const orphan = first.workflow('orphan', async (ctx) => {
        await ctx.step('before', () => 1);
        await ctx.sleep(60_000);
      });
      await orphan.start(undefined, { id: 'orphan-1' });
      await until('the first step', async () => (await first.listSteps('orphan-1')).length >= 1);
      await first.close({ timeoutMs: 0 });
      const { logger, logs } = recordingLogger();
      const second = await target.open(store, { executorId: 'exec-alone', logger, leaseMs: 400, heartbeatMs: 50 });
      second.workflow('something_else', async () => 1);
      await second.recover();
      await until('the stranded warning', () => logs.some((l) => /stranded/.test(l.msg)));
      const warned = logs.filter((l) => /stranded/.test(l.msg));
      assert.equal(warned[0]!.level, 'warn');
      assert.deepEqual(warned[0]!.fields.stranded, [{ executorId: 'exec-orphaned', pending: 1 }]);
      assert.deepEqual(warned[0]!.fields.registered, ['something_else']);
      await sleep(200);
      assert.equal(logs.filter((l) => /stranded/.test(l.msg)).length, 1, 'said once while nothing changes');
    });

    test('a hook that throws is logged and changes nothing; a slow hook delays nothing', async () => {
      const { logger, logs } = recordingLogger();
      const hooks: WorkflowHooks = {
        stepEnded: () => {
          throw new Error('hook bug');
        },
        workflowStarted: async () => sleep(1_000),
        workflowEnded: async () => {
          await sleep(1_000);
          throw new Error('late hook bug');
        },
      };
      const engine = await target.open(await target.fresh(), { hooks, logger, telemetry: false });
      const quick = engine.workflow('quick', async (ctx) => ctx.step('one', () => 'done'));
      const began = performance.now();
      const handle = await quick.start(undefined, { id: 'quick-1' });
      assert.equal(await handle.result(), 'done');
      const took = performance.now() - began;
      assert.ok(took < 500, `the result came in ${took.toFixed(0)} ms, not after the 1 s hooks`);
      assert.equal((await engine.getWorkflow('quick-1')).status, 'SUCCESS');
      await until('the hook failures are logged', () => logs.filter((l) => l.fields.hook !== undefined).length === 2, 5_000);
      const failures = logs.filter((l) => l.fields.hook !== undefined);
      assert.deepEqual(failures.map((l) => [l.level, l.fields.hook, (l.fields.err as Error).message]), [
        ['warn', 'stepEnded', 'hook bug'],
        ['warn', 'workflowEnded', 'late hook bug'],
      ]);
    });

    test('hooks and telemetry are checked at open', async () => {
      const store = await target.fresh();
      const rejected = async (options: object, argument: string) =>
        assert.rejects(target.open(store, options as never), (err: unknown) => err instanceof InvalidArgumentError && err.argument === argument);
      await rejected({ hooks: { workflowFinished: () => undefined } }, 'hooks.workflowFinished');
      await rejected({ hooks: { stepEnded: 'log it' } }, 'hooks.stepEnded');
      await rejected({ hooks: 'all' }, 'hooks');
      await rejected({ telemetry: 'yes' }, 'telemetry');
    });

    test('a workflow ending ERROR is logged at warn with its id, name and error', async () => {
      const { logger, logs } = recordingLogger();
      const engine = await target.open(await target.fresh(), { logger, telemetry: false });
      const broken = engine.workflow('broken', async () => {
        throw new TypeError('no such sku');
      });
      await assert.rejects(broken.run(undefined, { id: 'broken-1' }), /no such sku/);
      const warned = logs.find((l) => l.level === 'warn' && l.fields.workflowId === 'broken-1');
      assert.ok(warned, 'logged at warn');
      assert.equal(warned.fields.name, 'broken');
      assert.equal((warned.fields.err as Error).message, 'no such sku');
      assert.match(warned.msg, /broken.*ended ERROR.*no such sku/);
    });

    test('spans: one workflow span with its three steps as children and the retry as an event', async () => {
      const engine = await target.open(await target.fresh(), { appVersion: 'v-spans', executorId: 'exec-spans' });
      const order = registerThreeSteps(engine, 'traced');
      await order.run(1, { id: 'traced-1' });
      const spans = spansOf('traced-1');
      const workflow = spans.filter((s) => s.name === 'cairn.workflow traced');
      assert.equal(workflow.length, 1);
      const root = workflow[0]!;
      assert.equal(root.parentSpanId, undefined, 'no caller span: the workflow span is a root');
      assert.deepEqual(root.attributes, {
        'cairn.workflow.id': 'traced-1', 'cairn.workflow.name': 'traced', 'cairn.executor.id': 'exec-spans', 'cairn.app_version': 'v-spans', 'cairn.status': 'SUCCESS',
      });
      const steps = spans.filter((s) => s.name.startsWith('cairn.step '));
      assert.deepEqual(steps.map((s) => s.name), ['cairn.step reserve', 'cairn.step charge', 'cairn.step ship']);
      for (const s of steps) {
        assert.equal(s.parentSpanId, root.spanId);
        assert.equal(s.traceId, root.traceId);
      }
      assert.deepEqual(steps.map((s) => [s.attributes['cairn.step.id'], s.attributes['cairn.step.attempts'], s.events]), [[1, 1, []], [2, 2, ['retry']], [3, 1, []]]);

      const failing = engine.workflow('traced_failing', async (ctx) => ctx.step('boom', () => Promise.reject(new Error('declined'))));
      await assert.rejects(failing.run(undefined, { id: 'traced-2' }), /declined/);
      const failed = spansOf('traced-2');
      assert.deepEqual(failed.map((s) => [s.name, s.status, s.events]), [
        ['cairn.step boom', SpanStatusCode.ERROR, ['exception']],
        ['cairn.workflow traced_failing', SpanStatusCode.ERROR, ['exception']],
      ]);
    });

    test('spans: a child workflow and a queued workflow are in the caller trace', async () => {
      const engine = await target.open(await target.fresh());
      engine.queue('work');
      const leaf = engine.workflow('leaf', async (ctx, n: number) => ctx.step('double', () => n * 2));
      const parent = engine.workflow('parent', async (ctx, n: number) => ctx.runChild(leaf, n, { id: 'leaf-of-parent' }));
      await engine.launch();
      const tracer = trace.getTracer('test');
      const caller = await tracer.startActiveSpan('http POST /orders', async (span) => {
        assert.equal(await parent.run(2, { id: 'parent-1' }), 4);
        const queued = await leaf.start(5, { queue: 'work', id: 'queued-1' });
        assert.equal(await queued.result(), 10);
        span.end();
        return span.spanContext();
      });
      const parentSpan = spansOf('parent-1').find((s) => s.name === 'cairn.workflow parent')!;
      assert.equal(parentSpan.traceId, caller.traceId);
      assert.equal(parentSpan.parentSpanId, caller.spanId);
      const child = spansOf('leaf-of-parent').find((s) => s.name === 'cairn.workflow leaf')!;
      assert.equal(child.traceId, caller.traceId);
      assert.equal(child.parentSpanId, parentSpan.spanId, "the child's span is under its parent's");
      const queued = spansOf('queued-1').find((s) => s.name === 'cairn.workflow leaf')!;
      assert.equal(queued.traceId, caller.traceId);
      assert.equal(queued.parentSpanId, caller.spanId);
      assert.equal(queued.attributes['cairn.queue'], 'work');
    });

    test('metrics: workflows by name and status, step durations, queue depth from the database', async () => {
      const engine = await target.open(await target.fresh());
      const name = `metered_${target.kind}`;
      const metered = engine.workflow(name, async (ctx, fail: boolean | 'wait') => {
        await ctx.step('work', () => sleep(20));
        if (fail === 'wait') await ctx.recv('never', 60_000);
        if (fail) throw new Error('failed on purpose');
        return 'ok';
      });
      for (const fail of [false, false, true]) await metered.run(fail).catch(() => undefined);
      await metered.run('wait', { timeoutMs: 200 }).catch(() => undefined);
      const counts = (await points(otel.reader, 'cairn.workflows')).filter((p) => p.attributes['cairn.workflow.name'] === name);
      assert.deepEqual(counts.map((p) => [p.attributes['cairn.status'], p.value]).sort(), [['CANCELLED', 1], ['ERROR', 1], ['SUCCESS', 2]]);
      const durations = (await points(otel.reader, 'cairn.step.duration')).filter((p) => p.attributes['cairn.workflow.name'] === name);
      assert.equal(durations.length, 1);
      const histogram = durations[0]!.value as Histogram;
      assert.equal(histogram.count, 4);
      assert.ok(histogram.min! >= 19, `each step slept 20 ms; the shortest took ${histogram.min} ms`);

      const queueName = `held_${target.kind}`;
      engine.queue(queueName);
      await engine.launch();
      for (let i = 0; i < 3; i++) await engine.enqueue('nobody_runs_this', i, { queue: queueName });
      const depth = (await points(otel.reader, 'cairn.queue.depth')).filter((p) => p.attributes['cairn.queue'] === queueName);
      const stored = (await engine.listQueues()).find((q) => q.name === queueName)!.enqueued;
      assert.equal(stored, 3);
      assert.deepEqual(depth.map((p) => p.value), [stored]);
    });
  });
}
