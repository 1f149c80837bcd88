import pg from 'pg';
import { Logger, makeWorkerUtils, run } from 'graphile-worker';
import { Countdown, untilZero } from '../lib/postgres.js';
import type { DrainOptions, DrainRun } from '../lib/types.js';

const quiet = new Logger(() => () => undefined);
const PRELOAD_CHUNK = 1_000;

/**
 * graphile-worker's drain at the settings of its performance page (concurrentJobs 24,
 * maxPoolSize 25, localQueue 500, completeJobBatchDelay 0, failJobBatchDelay 0), with the pool
 * capped at `o.pool` if that is lower. Jobs are added with addJobs before the runner starts; the
 * clock runs from run() until the jobs table is empty (graphile-worker deletes a job once it
 * completes).
 */
export async function graphileDrain(o: DrainOptions): Promise<DrainRun> {
  const maxPoolSize = Math.min(25, o.pool);
  const concurrentJobs = Math.max(1, maxPoolSize - 1);
  const utils = await makeWorkerUtils({ connectionString: o.url, schema: o.schema, logger: quiet });
  let preloadMs: number;
  try {
    await utils.migrate();
    const p0 = performance.now();
    for (let from = 0; from < o.jobs; from += PRELOAD_CHUNK) {
      const specs = Array.from({ length: Math.min(PRELOAD_CHUNK, o.jobs - from) }, (_, k) => ({ identifier: 'trivial', payload: { i: from + k } }));
      await utils.addJobs(specs);
    }
    preloadMs = performance.now() - p0;
  } finally {
    await utils.release();
  }

  const handled = new Countdown(o.jobs);
  const check = new pg.Client({ connectionString: o.url });
  await check.connect();
  try {
    const t0 = performance.now();
    const runner = await run({
      connectionString: o.url,
      schema: o.schema,
      logger: quiet,
      noHandleSignals: true,
      taskList: {
        trivial: async () => {
          handled.mark();
        },
      },
      preset: {
        worker: {
          concurrentJobs,
          maxPoolSize,
          localQueue: { size: 500 },
          completeJobBatchDelay: 0,
          failJobBatchDelay: 0,
        },
      },
    });
    try {
      await handled.done;
      const t1 = await untilZero(check, `SELECT count(*) AS n FROM "${o.schema}".jobs`, []);
      return {
        system: 'graphile-worker',
        jobs: o.jobs,
        preloadMs,
        drainMs: t1 - t0,
        settings: { concurrentJobs, maxPoolSize, localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0, pollInterval: 'default (2000)', preload: `addJobs, ${PRELOAD_CHUNK} per call` },
      };
    } finally {
      await runner.stop();
    }
  } finally {
    await check.end();
  }
}
