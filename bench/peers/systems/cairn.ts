import pg from 'pg';
import { Engine, PostgresProvider } from '../../../src/index.js';
import { mapLimit } from '../../lib/load.js';
import { Countdown } from '../lib/postgres.js';
import { STEPS, type DrainOptions, type DrainRun, type TenSteps } from '../lib/types.js';

const QUIET = { info() {}, warn() {}, error(obj: object, msg?: string) { process.stderr.write(`cairn: ${msg ?? ''} ${JSON.stringify(obj)}\n`); } };

type PoolOption = NonNullable<ConstructorParameters<typeof PostgresProvider>[0]['pool']>;

/**
 * Cairn, imported from this repository's source: ten `ctx.step` calls per workflow, on `pool` (a
 * pg.Pool the caller owns and ends).
 */
export async function cairnTenSteps(pool: pg.Pool, schema: string): Promise<TenSteps> {
  // The same pg release as the repository's; the cast only bridges two copies of its types.
  const provider = new PostgresProvider({ pool: pool as unknown as PoolOption, schema });
  const engine = await Engine.open({ database: provider, executorId: 'peers', appVersion: 'peers', logger: QUIET });
  const names = Array.from({ length: STEPS }, (_, i) => `step${i}`);
  const wf = engine.workflow('ten_steps', async (ctx) => {
    for (let i = 0; i < STEPS; i++) await ctx.step(names[i]!, () => i);
    return STEPS;
  });
  return {
    system: 'Cairn',
    settings: { schema, poolMax: pool.options.max, groupCommit: 'on (default)' },
    async runOne() {
      const r = await wf.run(null);
      if (r !== STEPS) throw new Error(`Cairn workflow returned ${r}`);
    },
    close: () => engine.close(),
  };
}

/**
 * Cairn's queue drain: workflows with no steps enqueued with `start(i, { queue })` before
 * `launch()`; the clock runs from `launch()` until the last completion has committed (seen as
 * the provider's completeWorkflow call resolving).
 */
export async function cairnDrain(o: DrainOptions): Promise<DrainRun> {
  const provider = new PostgresProvider({ connectionString: o.url, schema: o.schema, max: o.pool });
  const completions = new Countdown(o.jobs);
  const complete = provider.completeWorkflow.bind(provider);
  provider.completeWorkflow = async (...args) => {
    const r = await complete(...args);
    if (r === null) completions.mark();
    return r;
  };
  const engine = await Engine.open({ database: provider, executorId: 'peers', appVersion: 'peers', logger: QUIET });
  try {
    const wf = engine.workflow('trivial', async (_ctx, i: number) => i);
    engine.queue('drain');
    const p0 = performance.now();
    await mapLimit(
      Array.from({ length: o.jobs }, (_, i) => i),
      o.pool,
      (i) => wf.start(i, { queue: 'drain' }),
    );
    const preloadMs = performance.now() - p0;
    const t0 = performance.now();
    await engine.launch();
    await completions.done;
    const drainMs = performance.now() - t0;
    const check = new pg.Client({ connectionString: o.url });
    await check.connect();
    try {
      const n = Number((await check.query<{ n: string }>(`SELECT count(*) AS n FROM "${o.schema}".workflows WHERE status = 'SUCCESS'`)).rows[0]!.n);
      if (n !== o.jobs) throw new Error(`Cairn drain: ${n} workflows SUCCESS, expected ${o.jobs}`);
    } finally {
      await check.end();
    }
    return {
      system: 'Cairn',
      jobs: o.jobs,
      preloadMs,
      drainMs,
      settings: { poolMax: o.pool, queue: 'no limits', workflow: 'no steps', enqueue: `workflow.start(i, { queue }), ${o.pool} in flight` },
    };
  } finally {
    await engine.close();
  }
}
