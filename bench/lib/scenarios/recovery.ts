import { randomUUID } from 'node:crypto';
import { expectResult, openEngine, trivialSteps, withEngine } from '../engine.js';
import { ms, rate } from '../format.js';
import { closedLoop, mapLimit } from '../load.js';
import { withStore, type Row, type Scenario } from '../scenario.js';
import { round } from '../stats.js';

const EXECUTOR = 'bench-recovery';
const APP_VERSION = 'bench-recovery-v1';
const WORKFLOW = 'recover_one';

/**
 * 5. Recovery: N PENDING 1-step workflows left by an engine that closed without finishing them;
 * a fresh engine with the same executor id and app version times `recover()` until every handle's
 * result resolves. The comparison is the same engine running fresh 1-step workflows with C in
 * flight, measured just before recovery (which also warms it up) and just after (target >= 0.5).
 */
export const recovery: Scenario = {
  id: '5',
  name: 'recovery',
  async run(ctx) {
    const { workflows: n, concurrency: c, baseline } = ctx.budgets.recovery;
    const pool = ctx.target.poolLabel(c);

    const m = await withStore(ctx, 'recovery', async (store) => {
      ctx.progress(`parking ${n} workflows as PENDING`);
      const parker = await openEngine(store.provider(c), { executorId: EXECUTOR, appVersion: APP_VERSION });
      try {
        // The same name as the real function, but it waits forever before its step.
        const gate = new Promise<never>(() => undefined);
        const parked = parker.engine.workflow(WORKFLOW, async (wctx) => {
          await gate;
          return wctx.step('step0', () => 0);
        });
        const ids = Array.from({ length: n }, () => randomUUID());
        await mapLimit(ids, c, (id) => parked.start(null, { id }));
        parker.assertClean();
      } finally {
        await parker.engine.close({ timeoutMs: 0 });
      }

      return withEngine(store.provider(c), { executorId: EXECUTOR, appVersion: APP_VERSION }, async ({ engine }) => {
        const wf = trivialSteps(engine, WORKFLOW, 1);
        const pending = await engine.listWorkflows({ status: 'PENDING' });
        if (pending.length !== n) throw new Error(`expected ${n} PENDING workflows before recovery, found ${pending.length}`);
        const fresh = (): Promise<void> => wf.run(null).then((r) => expectResult(r, 1));

        ctx.progress(`comparison before: fresh 1-step workflows, C=${c} in flight`);
        const before = await closedLoop(c, baseline, fresh);

        ctx.progress(`recovering ${n} workflows`);
        const t0 = performance.now();
        const handles = await engine.recover();
        const claimedMs = performance.now() - t0;
        const results = await Promise.all(handles.map((h) => h.result()));
        const totalMs = performance.now() - t0;
        if (handles.length !== n) throw new Error(`recover() returned ${handles.length} handles, expected ${n}`);
        for (const r of results) expectResult(r, 1);

        ctx.progress(`comparison after: fresh 1-step workflows, C=${c} in flight`);
        const after = await closedLoop(c, baseline, fresh);
        return { claimedMs, totalMs, before, after };
      });
    });

    const recoveredPerSecond = n / (m.totalMs / 1000);
    const baselineRate = (m.before.ops + m.after.ops) / (m.before.seconds + m.after.seconds);
    const ratio = recoveredPerSecond / baselineRate;
    return [
      {
        id: '5',
        scenario: 'recovery',
        measure: `fresh 1-step workflows/s, C=${c}`,
        value: rate(baselineRate),
        note: `${pool}; same engine, before ${rate(m.before.perSecond)} and after ${rate(m.after.perSecond)} recovery; workflow p50 ${ms(m.before.latency.p50)}`,
        status: 'measured',
        data: {
          concurrency: c,
          poolSize: ctx.target.kind === 'postgres' ? c : null,
          workflows: m.before.ops + m.after.ops,
          seconds: round(m.before.seconds + m.after.seconds),
          workflowsPerSecond: round(baselineRate, 1),
          beforePerSecond: round(m.before.perSecond, 1),
          afterPerSecond: round(m.after.perSecond, 1),
        },
      },
      {
        id: '5',
        scenario: 'recovery',
        measure: `recover ${n.toLocaleString('en-US')} PENDING: workflows/s`,
        value: rate(recoveredPerSecond),
        ratio: { value: ratio, of: `recovered/s / fresh 1-step workflows/s C=${c}`, target: { op: '>=', value: 0.5 } },
        note: `${pool}; recover() returned in ${ms(m.claimedMs)}, all results in ${ms(m.totalMs)}`,
        status: 'measured',
        data: {
          workflows: n,
          poolSize: ctx.target.kind === 'postgres' ? c : null,
          recoverReturnedMs: round(m.claimedMs),
          allResultsMs: round(m.totalMs),
          workflowsPerSecond: round(recoveredPerSecond, 1),
          ratioToFreshOneStep: round(ratio),
        },
      },
    ] satisfies Row[];
  },
};
