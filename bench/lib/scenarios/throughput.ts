import { expectResult, trivialSteps, withEngine } from '../engine.js';
import { ms, rate } from '../format.js';
import { Meter, paired, type LoadResult } from '../load.js';
import { withPair, withStore, type Row, type Scenario, type ScenarioContext } from '../scenario.js';
import { round } from '../stats.js';
import type { ProviderTuning } from '../targets.js';

/** C workflows in flight on a fresh store, alternating with floor commits on the same connections. */
async function measure(ctx: ScenarioContext, c: number, tuning: ProviderTuning, label: string): Promise<[LoadResult, LoadResult]> {
  const steps = ctx.budgets.workflowSteps;
  return withStore(ctx, label, (store) =>
    withPair(
      store,
      c,
      (pair) =>
        withEngine(pair.provider, {}, async ({ engine }) => {
          const meter = new Meter();
          const wf = trivialSteps(engine, 'throughput', steps, meter);
          return paired(c, ctx.budgets.paired, { op: async () => expectResult(await wf.run(null), steps), meter }, { op: pair.floor.insert });
        }),
      tuning,
    ),
  );
}

/**
 * 3. Throughput: C workflows of 10 trivial steps kept in flight, in steps/s and workflows/s, against
 * the floor's commits/s at the same C (target >= 0.7). The engine and the floor share one pool of
 * max = C (Postgres) or one file (SQLite), and are measured in alternating windows so that what the
 * rest of the machine does lands on both alike. Steps are counted as their checkpoints commit, and
 * workflows/s is steps/s divided by the steps per workflow (completions alone arrive in bursts).
 * Group commit is on (the providers' default); the highest C is measured once more with it off, so
 * the difference it makes shows in the same run.
 */
export const throughput: Scenario = {
  id: '3',
  name: 'throughput 10-step',
  async run(ctx) {
    const steps = ctx.budgets.workflowSteps;
    const rows: Row[] = [];
    const row = (c: number, wfs: LoadResult, floor: LoadResult, groupCommit: boolean, extraNote = ''): Row => {
      const stepsPerSecond = wfs.unitsPerSecond;
      const workflowsPerSecond = stepsPerSecond / steps;
      const ratio = stepsPerSecond / floor.perSecond;
      const scenario1 = ctx.shared.floorRate.get(c);
      return {
        id: '3',
        scenario: 'throughput 10-step',
        measure: `C=${c}${groupCommit ? '' : ', group commit off'}: steps/s, workflows/s`,
        value: `${rate(stepsPerSecond)}, ${rate(workflowsPerSecond)}`,
        ratio: { value: ratio, of: `steps/s / floor commits/s C=${c}`, target: { op: '>=', value: 0.7 } },
        note: `${ctx.target.poolLabel(c)}; floor ${rate(floor.perSecond)} interleaved; workflow p50 ${ms(wfs.latency.p50)}, p99 ${ms(wfs.latency.p99)}${extraNote}`,
        status: 'measured',
        data: {
          concurrency: c,
          groupCommit,
          poolSize: ctx.target.kind === 'postgres' ? c : null,
          steps,
          stepsCommitted: wfs.units,
          seconds: round(wfs.seconds),
          stepsPerSecond: round(stepsPerSecond, 1),
          workflowsPerSecond: round(workflowsPerSecond, 1),
          workflowsCompleted: wfs.ops,
          workflowP50Ms: round(wfs.latency.p50),
          workflowP99Ms: round(wfs.latency.p99),
          floorInterleaved: { commits: floor.ops, seconds: round(floor.seconds), commitsPerSecond: round(floor.perSecond, 1) },
          ratioStepsToFloorCommits: round(ratio),
          scenario1FloorCommitsPerSecond: scenario1 === undefined ? null : round(scenario1, 1),
          ratioToScenario1Floor: scenario1 === undefined ? null : round(stepsPerSecond / scenario1),
        },
      };
    };

    let top: { c: number; wfs: LoadResult; floor: LoadResult } | undefined;
    for (const c of ctx.budgets.concurrency) {
      ctx.progress(`${steps}-step workflows and floor commits, C=${c} in flight, alternating`);
      const [wfs, floor] = await measure(ctx, c, {}, `throughput c${c}`);
      rows.push(row(c, wfs, floor, true));
      if (!top || c > top.c) top = { c, wfs, floor };
    }

    if (top) {
      const { c } = top;
      ctx.progress(`${steps}-step workflows and floor commits, C=${c} in flight, group commit off`);
      const [wfs, floor] = await measure(ctx, c, { groupCommit: false }, `throughput c${c} no group commit`);
      // Each side divided by its own interleaved floor, so drift between the two runs cancels out.
      const gain = top.wfs.unitsPerSecond / top.floor.perSecond / (wfs.unitsPerSecond / floor.perSecond);
      const off = row(c, wfs, floor, false, `; group commit on / off at C=${c}: ${gain.toFixed(2)}x (each over its own floor)`);
      off.data = { ...off.data, groupCommitGain: round(gain), groupCommitGainRaw: round(top.wfs.unitsPerSecond / wfs.unitsPerSecond) };
      rows.push(off);
    }
    return rows;
  },
};
