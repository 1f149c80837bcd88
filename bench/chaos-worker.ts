import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Engine } from '../src/index.js';

/**
 * One worker of the restart-chaos run: an Engine with a queue, running 5-step workflows whose step
 * bodies each record one row per execution in `chaos_effects` (so re-runs after crashes are
 * counted, not hidden). Opens again and again until the server lets it in; stops on SIGTERM.
 */
const url = process.env.CHAOS_URL!;
const schema = process.env.CHAOS_SCHEMA!;
const name = process.env.CHAOS_WORKER!;
const STEP_MS = Number(process.env.CHAOS_STEP_MS ?? 100);

const effects = new pg.Pool({ connectionString: url, max: 4 });
effects.on('error', () => undefined);

let engine: Engine | undefined;
for (let attempt = 0; !engine; attempt++) {
  try {
    engine = await Engine.open({ database: url, schema, executorId: name, appVersion: 'chaos', pollIntervalMs: 1_000 });
  } catch (err) {
    if (attempt > 100) throw err;
    await sleep(200);
  }
}
engine.queue('chaos', { workerConcurrency: 10 });
engine.workflow('five', async (ctx, n: number) => {
  let acc = n;
  for (let i = 1; i <= 5; i++) {
    acc = await ctx.step(
      `s${i}`,
      async () => {
        await sleep(STEP_MS);
        await effects.query(`INSERT INTO "${schema}".chaos_effects (workflow_id, step, worker) VALUES ($1, $2, $3)`, [ctx.workflowId, i, name]);
        return acc + i;
      },
      { retry: { maxAttempts: 30, minDelayMs: 100, factor: 2, maxDelayMs: 2_000 } },
    );
  }
  return acc;
});
await engine.launch();
console.log('ready');

process.on('SIGTERM', () => {
  void (async () => {
    await engine.close({ timeoutMs: 3_000 });
    await effects.end().catch(() => undefined);
    process.exit(0);
  })();
});
