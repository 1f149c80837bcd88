import { ms, rate } from '../format.js';
import { closedLoop, sequential } from '../load.js';
import { withStore, type Row, type Scenario } from '../scenario.js';
import { round } from '../stats.js';

/**
 * 1. The database floor: the same driver and connection settings Cairn uses, doing bare
 * single-row insert commits into a plain table, measured alone. Scenarios 2 and 3 divide by the
 * same floor timed again, interleaved with their workflows; this one shows it on its own.
 */
export const floor: Scenario = {
  id: '1',
  name: 'floor',
  async run(ctx) {
    const rows: Row[] = [];
    const budget = ctx.budgets.floorSequential;

    ctx.progress(`sequential commit latency, up to ${budget.samples} commits`);
    const seq = await withStore(ctx, 'floor sequential', async (store) => {
      const driver = await store.floor(1);
      try {
        return await sequential(budget, () => driver.insert());
      } finally {
        await driver.close();
      }
    });
    ctx.shared.floorSequential = seq;
    rows.push({
      id: '1',
      scenario: 'floor',
      measure: 'commit latency p50 / p99',
      value: `${ms(seq.p50)} / ${ms(seq.p99)}`,
      note: `n=${seq.n}, ${ctx.target.poolLabel(1)}`,
      status: 'measured',
      data: { samples: seq.n, p50Ms: round(seq.p50), p90Ms: round(seq.p90), p99Ms: round(seq.p99), meanMs: round(seq.mean), poolSize: 1 },
    });

    for (const c of ctx.budgets.concurrency) {
      ctx.progress(`insert commits/s at C=${c}`);
      const res = await withStore(ctx, `floor c${c}`, async (store) => {
        const driver = await store.floor(c);
        try {
          return await closedLoop(c, ctx.budgets.load, () => driver.insert());
        } finally {
          await driver.close();
        }
      });
      ctx.shared.floorRate.set(c, res.perSecond);
      rows.push({
        id: '1',
        scenario: 'floor',
        measure: `insert commits/s, C=${c}`,
        value: rate(res.perSecond),
        note: `${ctx.target.poolLabel(c)}; commit p50 ${ms(res.latency.p50)}, p99 ${ms(res.latency.p99)}`,
        status: 'measured',
        data: {
          concurrency: c,
          poolSize: ctx.target.kind === 'postgres' ? c : null,
          commitsPerSecond: round(res.perSecond, 1),
          commits: res.ops,
          seconds: round(res.seconds),
          p50Ms: round(res.latency.p50),
          p99Ms: round(res.latency.p99),
        },
      });
    }
    return rows;
  },
};
