import { DBOS } from '@dbos-inc/dbos-sdk';
import type pg from 'pg';
import { STEPS, type TenSteps } from '../lib/types.js';

/**
 * DBOS Transact: the same workflow, ten `DBOS.runStep` calls, with its system database in a
 * database of its own (migrated by DBOS at launch) reached through `pool` (a pg.Pool the caller
 * owns and ends). DBOS is one per process, so this is called once.
 */
export async function dbosTenSteps(systemDatabaseUrl: string, pool: pg.Pool): Promise<TenSteps> {
  DBOS.setConfig({
    name: 'cairn_peers',
    systemDatabaseUrl,
    systemDatabasePool: pool,
    logLevel: 'error',
    applicationVersion: 'peers',
  });
  const names = Array.from({ length: STEPS }, (_, i) => `step${i}`);
  const tenSteps = DBOS.registerWorkflow(
    async () => {
      for (let i = 0; i < STEPS; i++) await DBOS.runStep(async () => i, { name: names[i]! });
      return STEPS;
    },
    { name: 'ten_steps' },
  );
  await DBOS.launch();
  return {
    system: 'DBOS',
    settings: { systemDatabase: new URL(systemDatabaseUrl).pathname.slice(1), systemDatabasePool: `pg.Pool max ${pool.options.max}`, useListenNotify: 'default (true)' },
    async runOne() {
      const r = await tenSteps();
      if (r !== STEPS) throw new Error(`DBOS workflow returned ${r}`);
    },
    close: () => DBOS.shutdown(),
  };
}
