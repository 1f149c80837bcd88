import { expectResult, trivialSteps, withEngine } from '../engine.js';
import { ms } from '../format.js';
import { sequentialPaired } from '../load.js';
import { withPair, withStore, type Row, type Scenario } from '../scenario.js';
import { latencyData, round } from '../stats.js';

/** Commits a workflow of n steps makes on the happy path: its start, one per step, its completion. */
const commitsPerWorkflow = (steps: number): number => steps + 2;

/**
 * 2. Latency of one 10-step workflow at a time (start + result), against the floor's single-commit
 * latency: p50 / floor p50 (target <= 14) and the engine's own cost per step. The floor commits are
 * timed between the workflows, on the same connection, so both come from the same stretch of time.
 */
export const sequentialWorkflow: Scenario = {
  id: '2',
  name: 'sequential 10-step',
  async run(ctx) {
    const steps = ctx.budgets.workflowSteps;
    const budget = ctx.budgets.sequentialWorkflows;
    const { floorPerSample } = budget;
    ctx.progress(`up to ${budget.samples} workflows of ${steps} steps, one at a time, each followed by ${floorPerSample} floor commits`);
    const [lat, floor] = await withStore(ctx, 'sequential', (store) =>
      withPair(store, 1, (pair) =>
        withEngine(pair.provider, {}, async ({ engine }) => {
          const wf = trivialSteps(engine, 'sequential', steps);
          return sequentialPaired(budget, floorPerSample, async () => expectResult(await wf.run(null), steps), pair.floor.insert);
        }),
      ),
    );

    const commits = commitsPerWorkflow(steps);
    const ratio = lat.p50 / floor.p50;
    const overhead = (lat.p50 - floor.p50 * commits) / steps;
    const scenario1 = ctx.shared.floorSequential?.p50;
    return [
      {
        id: '2',
        scenario: 'sequential 10-step',
        measure: 'workflow latency p50 / p99',
        value: `${ms(lat.p50)} / ${ms(lat.p99)}`,
        ratio: { value: ratio, of: 'p50 / floor commit p50', target: { op: '<=', value: 14 } },
        note: `n=${lat.n}, ${ctx.target.poolLabel(1)}; floor p50 ${ms(floor.p50)} interleaved (n=${floor.n}); ${commits} commits each`,
        status: 'measured',
        data: {
          steps,
          workflows: lat.n,
          ...latencyData(lat),
          floorInterleaved: { commits: floor.n, p50Ms: round(floor.p50), p99Ms: round(floor.p99) },
          ratioP50ToFloorP50: round(ratio),
          scenario1FloorP50Ms: scenario1 === undefined ? null : round(scenario1),
          ratioP50ToScenario1FloorP50: scenario1 === undefined ? null : round(lat.p50 / scenario1),
          poolSize: ctx.target.kind === 'postgres' ? 1 : null,
        },
      },
      {
        id: '2',
        scenario: 'sequential 10-step',
        measure: 'per-step overhead',
        value: ms(overhead),
        note: `(p50 - ${commits} x floor p50) / ${steps}`,
        status: 'measured',
        data: { perStepOverheadMs: round(overhead, 4) },
      },
    ] satisfies Row[];
  },
};
