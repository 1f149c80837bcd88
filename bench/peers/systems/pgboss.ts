import pg from 'pg';
import PgBoss from 'pg-boss';
import { Countdown, untilZero } from '../lib/postgres.js';
import type { DrainOptions, DrainRun } from '../lib/types.js';

const QUEUE = 'drain';
const PRELOAD_CHUNK = 1_000;

export interface PgBossTuning {
  /** Jobs fetched (and completed) per worker loop. */
  batchSize: number;
  /** work() subscriptions: pg-boss 10's way to run several fetch loops at once (teamSize is gone). */
  workers: number;
}

/**
 * pg-boss 10 (the last major whose engines allow Node 20): jobs inserted with insert() before the
 * workers start; `workers` work() loops, each fetching `batchSize` jobs per poll at the shortest
 * polling interval (0.5 s). pg-boss keeps completed jobs (state 'completed') until it archives
 * them, so the clock runs from the first work() call until no job of the queue is in another state.
 */
export async function pgbossDrain(o: DrainOptions, tuning: PgBossTuning): Promise<DrainRun> {
  const boss = new PgBoss({ connectionString: o.url, schema: o.schema, max: o.pool });
  const errors: unknown[] = [];
  boss.on('error', (err) => errors.push(err));
  await boss.start();
  const check = new pg.Client({ connectionString: o.url });
  await check.connect();
  try {
    await boss.createQueue(QUEUE);
    const p0 = performance.now();
    for (let from = 0; from < o.jobs; from += PRELOAD_CHUNK) {
      await boss.insert(Array.from({ length: Math.min(PRELOAD_CHUNK, o.jobs - from) }, (_, k) => ({ name: QUEUE, data: { i: from + k } })));
    }
    const preloadMs = performance.now() - p0;

    const handled = new Countdown(o.jobs);
    const t0 = performance.now();
    for (let w = 0; w < tuning.workers; w++) {
      await boss.work(QUEUE, { batchSize: tuning.batchSize, pollingIntervalSeconds: 0.5 }, async (jobs) => {
        handled.mark(jobs.length);
      });
    }
    await handled.done;
    const t1 = await untilZero(check, `SELECT count(*) AS n FROM "${o.schema}".job WHERE name = $1 AND state <> 'completed'`, [QUEUE]);
    if (errors.length > 0) throw new Error(`pg-boss reported ${errors.length} error(s); first: ${String(errors[0])}`);
    return {
      system: 'pg-boss',
      jobs: o.jobs,
      preloadMs,
      drainMs: t1 - t0,
      settings: { ...tuning, pollingIntervalSeconds: 0.5, max: o.pool, preload: `insert(), ${PRELOAD_CHUNK} per call` },
    };
  } finally {
    await check.end();
    await boss.stop({ graceful: false, wait: true, timeout: 5_000 });
  }
}
