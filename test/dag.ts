import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, type Engine, type ScheduledInput, type StepInfo, type TriggerRuleName } from '../src/index.js';
import { checkReplay } from '../src/testing/index.js';
import { cairnError } from './helpers/assertions.js';
import type { Store, Target } from './helpers/targets.js';

/** A promise with its resolve, to hold a task until the test lets it go. */
function gate(): { open: () => void; wait: Promise<void> } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { open, wait };
}

const byName = (steps: StepInfo[]) => new Map(steps.map((s) => [s.name, s]));
const clientOf = (store: Store) => Client.open({ database: store.database, ...(store.schema && { schema: store.schema }) });

/** Combinations of dependency outcomes: S succeeded, F failed, K skipped. */
const COMBOS = ['S', 'F', 'K', 'SF', 'SK', 'FK', 'SFK'] as const;
/** What each built-in rule does for each combination, in COMBOS order: r runs, s is skipped. */
const EXPECTED: Record<TriggerRuleName, string> = {
  all_success: 'rssssss',
  all_done: 'rrrrrrr',
  one_success: 'rssrrsr',
  one_failed: 'srsrsrr',
  none_failed: 'rsrsrss',
};
const DEP_OF = { S: 'ok', F: 'bad', K: 'skp' } as const;

/** Pipelines on every provider: parallelism, triggers, external tasks, and the workflow they are. */
export function defineDagSuite(target: Target): void {
  describe(`pipelines on ${target.kind}`, { skip: target.skip }, () => {
    afterEach(() => target.closeAll());
    after(() => target.dispose());

    test('three independent 200 ms tasks run in parallel: the run spans less than 400 ms', async () => {
      const engine = await target.open(await target.fresh());
      const nap = (out: string) => async () => (await sleep(200), out);
      const dag = engine.dag('parallel').task('a', nap('A')).task('b', nap('B')).task('c', nap('C')).build();
      const result = await dag.run(undefined, { id: 'par-1' });
      assert.deepEqual(result.outputs, { a: 'A', b: 'B', c: 'C' });
      const steps = (await engine.listSteps('par-1')).filter((s) => ['a', 'b', 'c'].includes(s.name));
      const first = Math.min(...steps.map((s) => s.startedAt.getTime()));
      const last = Math.max(...steps.map((s) => s.completedAt.getTime()));
      assert.ok(last - first < 400, `the three tasks spanned ${last - first} ms`);
      assert.ok(Math.max(...steps.map((s) => s.startedAt.getTime())) < Math.min(...steps.map((s) => s.completedAt.getTime())), 'all three were running at once');
    });

    test('maxParallel: 1 runs them one at a time, in declaration order', async () => {
      const engine = await target.open(await target.fresh());
      const spans: Record<string, [number, number]> = {};
      const nap = (key: string) => async () => {
        const start = performance.now();
        await sleep(60);
        spans[key] = [start, performance.now()];
      };
      const dag = engine.dag('serial', { maxParallel: 1 }).task('a', nap('a')).task('b', nap('b')).task('c', nap('c')).build();
      await dag.run(undefined, { id: 'ser-1' });
      const steps = (await engine.listSteps('ser-1')).filter((s) => ['a', 'b', 'c'].includes(s.name)).sort((x, y) => x.startedAt.getTime() - y.startedAt.getTime());
      assert.deepEqual(steps.map((s) => s.name), ['a', 'b', 'c']);
      for (let i = 1; i < steps.length; i++) {
        assert.ok(steps[i]!.startedAt >= steps[i - 1]!.completedAt, `${steps[i]!.name} was recorded starting before ${steps[i - 1]!.name} ended`);
        const [prev, next] = [spans[steps[i - 1]!.name]!, spans[steps[i]!.name]!];
        assert.ok(next[0] >= prev[1], `the body of ${steps[i]!.name} started ${prev[1] - next[0]} ms before the body of ${steps[i - 1]!.name} ended`);
      }
    });

    test('a task starts when its own dependencies are done, not when a slower branch is', async () => {
      const engine = await target.open(await target.fresh());
      const dag = engine
        .dag('branches')
        .task('quick', () => sleep(20).then(() => 1))
        .task('slow', () => sleep(300).then(() => 2))
        .task('next', ({ deps }) => deps.quick + 1, { dependsOn: ['quick'] })
        .build();
      const { outputs } = await dag.run(undefined, { id: 'br-1' });
      assert.deepEqual(outputs, { quick: 1, slow: 2, next: 2 });
      const steps = byName(await engine.listSteps('br-1'));
      assert.ok(steps.get('next')!.completedAt < steps.get('slow')!.completedAt, 'next ran while slow was still running');
    });

    test('trigger rules: every built-in rule and trigger functions, over successes, failures and skips', async () => {
      const store = await target.fresh();
      const engine = await target.open(store);
      const report = ({ deps, outcomes }: { deps: object; outcomes: object }) => ({ deps: Object.keys(deps).sort(), outcomes });
      let builder = engine
        .dag('triggers')
        .task('ok', () => 'fine')
        .task('bad', () => {
          throw Object.assign(new Error('bad broke'), { code: 'E_BAD' });
        })
        .task('skp', () => 'never', { dependsOn: ['bad'] });
      for (const rule of Object.keys(EXPECTED) as TriggerRuleName[]) {
        for (const combo of COMBOS) {
          builder = builder.task(`${rule}:${combo}`, report, { dependsOn: [...combo].map((c) => DEP_OF[c as keyof typeof DEP_OF]), trigger: rule });
        }
      }
      const dag = builder
        .task('fn:mixed', report, { dependsOn: ['ok', 'bad'], trigger: (o) => o.ok === 'success' && o.bad === 'failed' })
        .task('fn:no', report, { dependsOn: ['ok', 'skp'], trigger: (o) => o.skp === 'success' })
        .task('fn:all-settled', report, { dependsOn: ['ok', 'bad', 'skp'], trigger: (o) => Object.keys(o).length === 3 })
        .task('fn:throws', report, {
          dependsOn: ['ok'],
          trigger: () => {
            throw new Error('rule broke');
          },
        })
        .build();
      await assert.rejects(dag.run(undefined, { id: 'trig-1' }), (err: Error & { code?: string }) => err.message === 'bad broke' && err.code === 'E_BAD');
      const steps = byName(await engine.listSteps('trig-1'));
      const verdict = (key: string) => (steps.has(`cairn.skipped:${key}`) ? 's' : steps.get(key)?.error === undefined ? 'r' : 'failed');
      for (const rule of Object.keys(EXPECTED) as TriggerRuleName[]) {
        assert.equal(COMBOS.map((c) => verdict(`${rule}:${c}`)).join(''), EXPECTED[rule], `rule ${rule} over ${COMBOS.join(' ')}`);
      }
      assert.equal(verdict('skp'), 's');
      assert.deepEqual(steps.get('cairn.skipped:all_success:FK')!.output, { trigger: 'all_success', dependencies: { bad: 'failed' } });
      assert.deepEqual(steps.get('all_done:SFK')!.output, { deps: ['ok'], outcomes: { ok: 'success', bad: 'failed', skp: 'skipped' } });
      assert.deepEqual(
        [verdict('fn:mixed'), verdict('fn:no'), verdict('fn:all-settled'), verdict('fn:throws')],
        ['r', 's', 'r', 'failed'],
      );
      assert.deepEqual(steps.get('cairn.skipped:fn:no')!.output, { trigger: 'function', dependencies: { ok: 'success', skp: 'skipped' } });
      assert.equal((steps.get('fn:throws')!.error as Error).message, 'rule broke');
      // A second engine on the same store reads the same verdicts.
      const client = await clientOf(store);
      assert.equal((await client.getWorkflow('trig-1')).status, 'ERROR');
      await client.close();
    });

    test('retries, per-task timeouts, and the run failing with the first failed task once the rest settled', async () => {
      const engine = await target.open(await target.fresh());
      let tries = 0;
      const dag = engine
        .dag('failing')
        .task('flaky', ({ attempt }) => (tries++, attempt < 3 ? Promise.reject(new Error(`try ${attempt}`)) : 'third time'), {
          retry: { maxAttempts: 3, minDelayMs: 1 },
        })
        .task('slow', ({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error))), { timeoutMs: 50 })
        .task('after-slow', () => 'unreachable', { dependsOn: ['slow'] })
        .task('late-failure', () => sleep(100).then(() => Promise.reject(new Error('later'))))
        .task('cleanup', ({ outcomes }) => outcomes, { dependsOn: ['slow', 'after-slow', 'late-failure'], trigger: 'all_done' })
        .build();
      await assert.rejects(dag.run(undefined, { id: 'fail-1' }), cairnError('STEP_TIMEOUT', /step 'slow'.*50 ms/));
      const steps = byName(await engine.listSteps('fail-1'));
      assert.equal(steps.get('flaky')!.attempts, 3);
      assert.equal(steps.get('flaky')!.output, 'third time');
      assert.equal(tries, 3);
      assert.ok(steps.has('cairn.skipped:after-slow'));
      assert.equal((steps.get('late-failure')!.error as Error).message, 'later');
      assert.deepEqual(steps.get('cleanup')!.output, { slow: 'failed', 'after-slow': 'skipped', 'late-failure': 'failed' });
    });

    test('an external task waits for completeTask from another connection, taken once; bad completions are refused', async () => {
      const store = await target.fresh();
      const engine = await target.open(store);
      const prepared = gate();
      const published = gate();
      let publishRuns = 0;
      const dag = engine
        .dag<{ doc: string }>('approval')
        .task('prepare', async ({ input }) => (await prepared.wait, input.doc.length))
        .task('approve', ({ deps }) => `asked about ${deps.prepare} pages`, { dependsOn: ['prepare'], external: true })
        .task('publish', async ({ deps }) => (publishRuns++, await published.wait, { approved: deps.approve }), { dependsOn: ['approve'] })
        .build();
      const plain = engine.workflow('plain', async (ctx) => ctx.step('s', () => 1));
      await plain.run(undefined, { id: 'plain-1' });
      const handle = await dag.start({ doc: 'hello' }, { id: 'appr-1' });
      const client = await clientOf(store);
      try {
        await assert.rejects(client.completeTask('appr-1', 'approve', 1), cairnError('TASK_NOT_WAITING', /has not reached it yet/, { reason: 'not-reached', key: 'approve' }));
        prepared.open();
        assert.equal(await client.getEvent('appr-1', 'cairn.task:approve', 10_000), 'waiting');
        await assert.rejects(client.completeTask('nope', 'approve', 1), cairnError('WORKFLOW_NOT_FOUND', /'nope'/));
        await assert.rejects(client.completeTask('appr-1', 'nope', 1), cairnError('INVALID_ARGUMENT', /has no task 'nope'; its external tasks are 'approve'/, { argument: 'key' }));
        await assert.rejects(client.completeTask('appr-1', 'prepare', 1), cairnError('INVALID_ARGUMENT', /task 'prepare' .* is not external/, { argument: 'key' }));
        await assert.rejects(client.completeTask('plain-1', 'approve', 1), cairnError('INVALID_ARGUMENT', /'plain-1' \('plain'\) is not a pipeline run/));
        await assert.rejects(client.completeTask('', 'approve'), cairnError('INVALID_ARGUMENT', /workflow id must be a non-empty string/));
        await assert.rejects(client.completeTask('appr-1', 'a\u0000b'), cairnError('INVALID_ARGUMENT', /task key must not contain a NUL/));
        await assert.rejects(client.completeTask('appr-1', 42 as unknown as string), cairnError('INVALID_ARGUMENT', /task key must be a non-empty string, got 42/));
        await assert.rejects(client.completeTask('appr-1', 'approve', () => 1), cairnError('SERIALIZATION', /completion of task 'approve'/));
        await client.completeTask('appr-1', 'approve', { by: 'ada' });
        await assert.rejects(client.completeTask('appr-1', 'approve', { by: 'bob' }), cairnError('TASK_NOT_WAITING', /already completed/, { reason: 'completed' }));
        published.open();
        const result = await handle.result();
        assert.deepEqual(result.outputs, { prepare: 5, approve: { by: 'ada' }, publish: { approved: { by: 'ada' } } });
        assert.equal(publishRuns, 1);
        assert.equal((await engine.listSteps('appr-1')).find((s) => s.name === 'approve')!.output, 'asked about 5 pages');
        await assert.rejects(engine.completeTask('appr-1', 'approve', 2), cairnError('TASK_NOT_WAITING', /run has ended/, { reason: 'ended' }));
      } finally {
        await client.close();
      }
    });

    test('an external task times out, and one whose trigger cannot hold is skipped: completions to them are refused', async () => {
      const engine = await target.open(await target.fresh());
      const cleanup = gate();
      const dag = engine
        .dag('external-failures')
        .task('broken', () => Promise.reject(new Error('broken')))
        .task('never', () => 'asked', { dependsOn: ['broken'], external: true })
        .task('wait', () => 'asked', { external: true, timeoutMs: 100 })
        .task('cleanup', async ({ outcomes }) => (await cleanup.wait, outcomes), { dependsOn: ['never', 'wait'], trigger: 'all_done' })
        .build();
      const handle = await dag.start(undefined, { id: 'ext-1' });
      assert.equal(await engine.getEvent('ext-1', 'cairn.task:never', 10_000), 'skipped');
      await assert.rejects(engine.completeTask('ext-1', 'never', 1), cairnError('TASK_NOT_WAITING', /skipped/, { reason: 'skipped' }));
      for (let i = 0; (await engine.getEvent('ext-1', 'cairn.task:wait', 0)) !== 'timed-out'; i++) {
        assert.ok(i < 200, 'the external task never timed out');
        await sleep(25);
      }
      await assert.rejects(engine.completeTask('ext-1', 'wait', 1), cairnError('TASK_NOT_WAITING', /timed out/, { reason: 'timed-out' }));
      cleanup.open();
      await assert.rejects(handle.result(), /broken/);
      const steps = byName(await engine.listSteps('ext-1'));
      assert.deepEqual(steps.get('cleanup')!.output, { never: 'skipped', wait: 'failed' });
    });

    test('cancelling a run stops it: no trigger takes the cancellation for a failure', async () => {
      const engine = await target.open(await target.fresh());
      let cleanups = 0;
      const dag = engine
        .dag('cancelled')
        .task('long', ({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))))
        .task('cleanup', () => void cleanups++, { dependsOn: ['long'], trigger: 'all_done' })
        .task('alert', () => void cleanups++, { dependsOn: ['long'], trigger: 'one_failed' })
        .build();
      const handle = await dag.start(undefined, { id: 'cancel-1' });
      while ((await engine.listSteps('cancel-1')).length === 0) await sleep(10);
      await engine.cancel('cancel-1');
      await assert.rejects(handle.result(), cairnError('WORKFLOW_CANCELLED', /'cancel-1' was cancelled/));
      await sleep(50);
      assert.equal(cleanups, 0);
      assert.deepEqual((await engine.listSteps('cancel-1')).map((s) => s.name), [`cairn.dag:${dag.version}`]);
    });

    test('a run waiting for its external task is released at close, and a new engine resumes it', async () => {
      const store = await target.fresh();
      const build = (engine: Engine, asked: () => void) =>
        engine
          .dag('release')
          .task('ask', () => (asked(), 'asked'), { external: true })
          .task('use', ({ deps }) => ({ got: deps.ask }), { dependsOn: ['ask'] })
          .build();
      const first = await target.open(store, { executorId: 'release-exec', appVersion: 'r1' });
      let asks = 0;
      await build(first, () => asks++).start(undefined, { id: 'rel-1' });
      assert.equal(await first.getEvent('rel-1', 'cairn.task:ask', 10_000), 'waiting');
      while (asks === 0) await sleep(10);
      const closing = Date.now();
      await first.close({ timeoutMs: 5_000 });
      assert.ok(Date.now() - closing < 2_000, 'close() released the parked run without waiting out its deadline');
      const second = await target.open(store, { executorId: 'release-exec', appVersion: 'r1' });
      build(second, () => asks++);
      const [handle] = await second.recover();
      await second.completeTask('rel-1', 'ask', 'yes');
      assert.deepEqual(((await handle!.result()) as { outputs: unknown }).outputs, { ask: 'yes', use: { got: 'yes' } });
      assert.equal(asks, 1, 'the function of the external task ran once');
    });

    test('a pipeline is a workflow: queued, run as a child, scheduled, and listed with its version', async () => {
      const engine = await target.open(await target.fresh());
      const double = engine
        .dag<number>('double')
        .task('x2', ({ input }) => input * 2)
        .task('plus1', ({ deps }) => deps.x2 + 1, { dependsOn: ['x2'] })
        .build();
      const ticks = engine.dag<ScheduledInput>('ticks').task('at', ({ input }) => input.scheduledAt.getTime() > 0).build();
      const parent = engine.workflow('parent', async (ctx, n: number) => (await ctx.runChild(double, n)).outputs.plus1);
      engine.queue('pipelines', { concurrency: 2 });
      engine.schedule('nightly', '0 3 * * *', ticks);
      await engine.launch();
      assert.deepEqual((await (await double.start(4, { queue: 'pipelines', id: 'q-1' })).result()).outputs, { x2: 8, plus1: 9 });
      assert.equal(await parent.run(10, { id: 'p-1' }), 21);
      const scheduled = await engine.schedules.trigger('nightly');
      assert.deepEqual(((await scheduled.result()) as { outputs: unknown }).outputs, { at: true });
      assert.match(double.version, /^[0-9a-f]{16}$/);
      assert.deepEqual(double.tasks, ['x2', 'plus1']);
      for (const run of await engine.listWorkflows({ name: 'double' })) {
        assert.equal((run.output as { version: string }).version, double.version, `run ${run.id} lists its version`);
        const [first] = await engine.listSteps(run.id);
        assert.equal(first!.name, `cairn.dag:${double.version}`);
        assert.deepEqual(first!.output, {
          name: 'double',
          version: double.version,
          tasks: [
            { key: 'x2', dependsOn: [], trigger: 'all_success', external: false },
            { key: 'plus1', dependsOn: ['x2'], trigger: 'all_success', external: false },
          ],
        });
      }
      assert.equal((await engine.listWorkflows({ name: 'double' })).length, 2);
    });

    test('a run recorded under another shape diverges at its first step; the same shape replays', async () => {
      const engine = await target.open(await target.fresh());
      const v1 = engine.dag('shaped').task('a', () => 1).task('b', ({ deps }) => deps.a + 1, { dependsOn: ['a'] }).build();
      await v1.run(undefined, { id: 'shape-1' });
      const history = await engine.exportHistory('shape-1');
      assert.deepEqual(await checkReplay(v1, [history]), [{ id: 'shape-1', ok: true }]);
      const other = await target.open(await target.fresh());
      const v2 = other.dag('shaped').task('a', () => 1).task('b', ({ deps }) => deps.a + 1, { dependsOn: ['a'], trigger: 'all_done' }).build();
      assert.notEqual(v2.version, v1.version);
      const [check] = await checkReplay(v2, [history]);
      assert.equal(check!.ok, false);
      assert.deepEqual([check!.divergence!.stepId, check!.divergence!.recordedName, check!.divergence!.calledName], [1, `cairn.dag:${v1.version}`, `cairn.dag:${v2.version}`]);
    });
  });
}
