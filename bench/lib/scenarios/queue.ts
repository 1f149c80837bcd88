import { InFlight, observeCalls, withEngine } from '../engine.js';
import { ms, rate } from '../format.js';
import { closedLoop, mapLimit } from '../load.js';
import { withPair, withStore, type Row, type Scenario } from '../scenario.js';
import { latencyData, round, summarize } from '../stats.js';

const QUEUE = 'drain';
/**
 * Before each latency sample, the dispatcher's claims (the one after the previous workflow's
 * completion among them) must have been over for this long, so that the enqueue lands on a
 * dispatcher parked in its wait.
 */
const IDLE_MS = 5;

/**
 * 4. Queue drain. N trivial workflows (no steps: the body returns its input) are enqueued with
 * `workflow.start(i, { queue })` on a queue with no limits before `engine.launch()`; the clock runs
 * from `launch()` until the last completion has committed. Each drained workflow costs a share of a
 * claim transaction (up to 1,000 claimed per transaction) and one completion commit of its own, so
 * the floor is the same driver's insert commits/s at C = the pool size, on the same pool, timed
 * just before and just after the drain.
 *
 * Then enqueue-to-start latency at idle: one workflow at a time is enqueued into the launched,
 * idle engine; the time runs from just before `start(…, { queue })` to the first line of the
 * workflow body, against the floor's single-commit latency timed between the samples.
 */
export const queueDrain: Scenario = {
  id: '4',
  name: 'queue drain',
  async run(ctx) {
    const { workflows: n, poolSize, floor: floorBudget, latency: latencyBudget } = ctx.budgets.queue;
    const pool = ctx.target.poolLabel(poolSize);

    const m = await withStore(ctx, 'queue drain', (store) =>
      withPair(store, poolSize, async (pair) => {
        // Completions committed, counted as completeWorkflow resolves (null: it moved the row).
        let completed = 0;
        let expected = Number.POSITIVE_INFINITY;
        let allCompleted: () => void = () => undefined;
        observeCalls<unknown>(pair.provider, 'completeWorkflow', (result) => {
          if (result === null && ++completed === expected) allCompleted();
        });
        const claims = new InFlight(pair.provider, 'claimQueued');

        return withEngine(pair.provider, {}, async ({ engine }) => {
          let onStart: (i: number) => void = () => undefined;
          const wf = engine.workflow('trivial', async (_wctx, i: number) => {
            onStart(i);
            return i;
          });
          engine.queue(QUEUE);

          ctx.progress(`floor before: insert commits/s at C=${poolSize}`);
          const floorBefore = await closedLoop(poolSize, floorBudget, pair.floor.insert);

          ctx.progress(`enqueueing ${n} workflows (C=${poolSize} in flight), engine not launched`);
          const e0 = performance.now();
          await mapLimit(
            Array.from({ length: n }, (_, i) => i),
            poolSize,
            (i) => wf.start(i, { queue: QUEUE }),
          );
          const enqueueMs = performance.now() - e0;

          ctx.progress(`draining ${n} workflows`);
          let started = 0;
          onStart = () => void started++;
          completed = 0;
          expected = n;
          const drained = new Promise<void>((resolve) => (allCompleted = resolve));
          const t0 = performance.now();
          await engine.launch();
          await drained;
          const drainMs = performance.now() - t0;
          if (started !== n) throw new Error(`${started} workflow bodies ran, expected ${n}`);
          const left = await engine.listWorkflows({ queue: QUEUE, status: ['ENQUEUED', 'PENDING', 'ERROR'], limit: 1 });
          if (left.length > 0) throw new Error(`workflow ${left[0]!.id} is ${left[0]!.status} after the drain`);
          const succeeded = await engine.listWorkflows({ queue: QUEUE, status: 'SUCCESS' });
          if (succeeded.length !== n) throw new Error(`${succeeded.length} workflows SUCCESS after the drain, expected ${n}`);

          ctx.progress(`floor after: insert commits/s at C=${poolSize}`);
          const floorAfter = await closedLoop(poolSize, floorBudget, pair.floor.insert);

          ctx.progress(`enqueue -> start latency at idle, up to ${latencyBudget.samples} samples`);
          const latencies: number[] = [];
          const floorLatencies: number[] = [];
          const end = performance.now() + latencyBudget.maxMs;
          for (let k = 0; k < latencyBudget.warmup + latencyBudget.samples; k++) {
            if (k >= latencyBudget.warmup + 20 && performance.now() > end) break;
            await claims.quiet(IDLE_MS);
            let bodyAt = 0;
            const bodyStarted = new Promise<void>((resolve) => {
              onStart = () => {
                bodyAt = performance.now();
                resolve();
              };
            });
            const s0 = performance.now();
            const handle = await wf.start(n + k, { queue: QUEUE });
            await bodyStarted;
            const result = await handle.result();
            if (result !== n + k) throw new Error(`workflow returned ${JSON.stringify(result)}, expected ${n + k}`);
            if (k < latencyBudget.warmup) continue;
            latencies.push(bodyAt - s0);
            for (let f = 0; f < latencyBudget.floorPerSample; f++) {
              const f0 = performance.now();
              await pair.floor.insert();
              floorLatencies.push(performance.now() - f0);
            }
          }
          return { floorBefore, floorAfter, enqueueMs, drainMs, latency: summarize(latencies), floorLatency: summarize(floorLatencies) };
        });
      }),
    );

    const drainRate = n / (m.drainMs / 1000);
    const floorRate = (m.floorBefore.ops + m.floorAfter.ops) / (m.floorBefore.seconds + m.floorAfter.seconds);
    const ratio = drainRate / floorRate;
    const scenario1C1 = ctx.shared.floorRate.get(1);
    const enqueueRate = n / (m.enqueueMs / 1000);
    const latencyRatio = m.latency.p50 / m.floorLatency.p50;
    return [
      {
        id: '4',
        scenario: 'queue drain',
        measure: `drain ${n.toLocaleString('en-US')} preloaded: workflows/s`,
        value: rate(drainRate),
        ratio: { value: ratio, of: `workflows/s / floor commits/s C=${poolSize}` },
        note:
          `${pool}; no queue limits; 0-step workflows (a share of a claim + 1 completion commit each); ` +
          `drained in ${ms(m.drainMs)}; floor ${rate(m.floorBefore.perSecond)} before, ${rate(m.floorAfter.perSecond)} after; enqueued at ${rate(enqueueRate)}`,
        status: 'measured',
        data: {
          workflows: n,
          poolSize: ctx.target.kind === 'postgres' ? poolSize : null,
          drainMs: round(m.drainMs),
          workflowsPerSecond: round(drainRate, 1),
          floorCommitsPerSecond: round(floorRate, 1),
          floorBeforePerSecond: round(m.floorBefore.perSecond, 1),
          floorAfterPerSecond: round(m.floorAfter.perSecond, 1),
          ratioToFloorAtPoolSize: round(ratio),
          scenario1FloorC1CommitsPerSecond: scenario1C1 === undefined ? null : round(scenario1C1, 1),
          ratioToScenario1FloorC1: scenario1C1 === undefined ? null : round(drainRate / scenario1C1),
          enqueueMs: round(m.enqueueMs),
          enqueuedPerSecond: round(enqueueRate, 1),
          enqueueConcurrency: poolSize,
        },
      },
      {
        id: '4',
        scenario: 'queue drain',
        measure: 'enqueue -> start latency p50 / p99 (idle)',
        value: `${ms(m.latency.p50)} / ${ms(m.latency.p99)}`,
        ratio: { value: latencyRatio, of: 'p50 / floor commit p50' },
        note: `n=${m.latency.n}, ${pool}; enqueue commit + notification + claim transaction; floor p50 ${ms(m.floorLatency.p50)} interleaved (n=${m.floorLatency.n}); each after ${IDLE_MS} ms without a claim in flight`,
        status: 'measured',
        data: {
          samples: m.latency.n,
          ...latencyData(m.latency),
          floorInterleaved: { commits: m.floorLatency.n, p50Ms: round(m.floorLatency.p50), p99Ms: round(m.floorLatency.p99) },
          ratioP50ToFloorP50: round(latencyRatio),
          quietMsWithoutClaimBeforeEach: IDLE_MS,
        },
      },
    ] satisfies Row[];
  },
};
