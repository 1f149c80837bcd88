import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Client } from '../src/index.js';
import { Cluster } from '../test/helpers/cluster.js';

/**
 * Restart chaos (`npm run chaos`): a PostgreSQL cluster of its own (port CHAOS_PORT, default 5434),
 * 3 worker processes running a queue, 2,000 queued 5-step workflows, and the server restarted every
 * 5-10 s (fast, immediate, stopped for 4 s, then at random) until every workflow is done or the
 * time bound passes. Checks: every workflow SUCCESS, 5 checkpoints per workflow with no gap or
 * duplicate, every step body's effect recorded (re-runs counted), no worker crashed, and every
 * worker's LISTEN connection back within 2 s of each restart. Drops its cluster at the end.
 */
const PORT = Number(process.env.CHAOS_PORT ?? 5434);
const WORKFLOWS = Number(process.env.CHAOS_WORKFLOWS ?? 2_000);
const WORKERS = 3;
const BOUND_MS = Number(process.env.CHAOS_BOUND_MS ?? 15 * 60_000);
const SCHEMA = 'chaos';
const LISTEN_BACK_MS = 2_000;

const cluster = new Cluster('cairn_chaos', PORT);
const url = (app: string) => `${cluster.url()}?application_name=${app}`;
const failures: string[] = [];
const workers: Array<{ name: string; child: ChildProcess; exit?: { code: number | null; signal: NodeJS.Signals | null }; stopping: boolean }> = [];

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url('chaos_admin') });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Ms from now until every worker has a LISTEN backend again (polled every 25 ms), or undefined past 10 s. */
async function listenersBack(): Promise<number | undefined> {
  const t0 = Date.now();
  while (Date.now() - t0 < 10_000) {
    try {
      const n = await admin(async (c) => {
        const res = await c.query<{ n: string }>(
          `SELECT count(DISTINCT application_name) AS n FROM pg_stat_activity WHERE application_name LIKE 'chaos_w%' AND query LIKE 'LISTEN%'`,
        );
        return Number(res.rows[0]!.n);
      });
      if (n === WORKERS) return Date.now() - t0;
    } catch {
      // Still starting up.
    }
    await sleep(25);
  }
  return undefined;
}

async function counts(): Promise<Record<string, number>> {
  return admin(async (c) => {
    const res = await c.query<{ status: string; n: string }>(`SELECT status, count(*) AS n FROM "${SCHEMA}".workflows GROUP BY status`);
    return Object.fromEntries(res.rows.map((r) => [r.status, Number(r.n)]));
  });
}

async function main(): Promise<void> {
  const unavailable = Cluster.unavailable();
  if (unavailable) throw new Error(unavailable);
  const started = Date.now();
  cluster.create();
  console.log(`cluster cairn_chaos on port ${PORT}`);

  const workerFile = fileURLToPath(new URL('./chaos-worker.ts', import.meta.url));
  for (let i = 1; i <= WORKERS; i++) {
    const name = `chaos_w${i}`;
    const child = spawn(process.execPath, ['--import', 'tsx', workerFile], {
      env: { ...process.env, CHAOS_URL: url(name), CHAOS_SCHEMA: SCHEMA, CHAOS_WORKER: name },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const w: (typeof workers)[number] = { name, child, stopping: false };
    child.on('exit', (code, signal) => {
      w.exit = { code, signal };
      if (!w.stopping) failures.push(`worker ${name} exited during the run (code ${code}, signal ${signal})`);
    });
    workers.push(w);
  }
  const client = await Client.open({ database: url('chaos_admin'), schema: SCHEMA });
  await admin((c) => c.query(`CREATE TABLE "${SCHEMA}".chaos_effects (workflow_id text NOT NULL, step integer NOT NULL, worker text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`));
  // The workers declare the queue when they launch; enqueueing waits for that.
  for (let tries = 0; ; tries++) {
    try {
      await client.enqueue('five', 0, { queue: 'chaos', id: 'c-0' });
      break;
    } catch (err) {
      if ((err as { code?: string }).code !== 'INVALID_ARGUMENT' || tries > 300) throw err;
      await sleep(100);
    }
  }
  const t0 = Date.now();
  for (let i = 0; i < WORKFLOWS; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, WORKFLOWS - i) }, (_, k) => client.enqueue('five', i + k, { queue: 'chaos', id: `c-${i + k}` })));
  }
  await client.close();
  console.log(`enqueued ${WORKFLOWS} workflows in ${Date.now() - t0} ms`);

  const work = Date.now();

  const plan: Array<'fast' | 'immediate' | 'stopped'> = ['fast', 'immediate', 'stopped'];
  const restarts: Array<{ kind: string; at: number; downMs: number; listenBackMs: number | undefined }> = [];
  let done = 0;
  while (Date.now() - started < BOUND_MS) {
    const pause = 5_000 + Math.random() * 5_000;
    const until = Date.now() + pause;
    while (Date.now() < until) {
      await sleep(500);
      done = (await counts().catch(() => ({}) as Record<string, number>)).SUCCESS ?? done;
      if (done >= WORKFLOWS) break;
    }
    if (done >= WORKFLOWS) break;
    const kind = plan[restarts.length] ?? (['fast', 'immediate', 'stopped'] as const)[Math.floor(Math.random() * 3)]!;
    const down = Date.now();
    if (kind === 'fast') cluster.restart('fast');
    else if (kind === 'immediate') cluster.restart('immediate');
    else {
      cluster.stop('fast');
      await sleep(4_000);
      cluster.start();
    }
    // pg_ctlcluster returns once the server accepts connections: the 2 s count from here.
    const downMs = Date.now() - down;
    const listenBackMs = await listenersBack();
    restarts.push({ kind, at: Math.round((down - work) / 1000), downMs, listenBackMs });
    console.log(`restart ${restarts.length} (${kind}) at ${Math.round((down - work) / 1000)} s: server back after ${downMs} ms, all LISTEN connections back ${listenBackMs ?? 'NEVER'} ms later; ${done} done`);
  }
  const workMs = Date.now() - work;

  for (const w of workers) {
    w.stopping = true;
    if (w.exit === undefined) w.child.kill('SIGTERM');
  }
  await Promise.all(workers.map((w) => (w.exit !== undefined ? Promise.resolve() : new Promise((resolve) => w.child.once('exit', resolve)))));
  const crashed = workers.filter((w) => w.exit?.code !== 0);

  const report = await admin(async (c) => {
    const q = async (sql: string) => Number((await c.query<{ n: string }>(sql)).rows[0]!.n);
    return {
      statuses: await counts(),
      checkpoints: await q(`SELECT count(*) AS n FROM "${SCHEMA}".steps`),
      duplicateCheckpoints: await q(`SELECT count(*) AS n FROM (SELECT workflow_id, name FROM "${SCHEMA}".steps GROUP BY 1, 2 HAVING count(*) > 1) d`),
      workflowsWithGaps: await q(
        `SELECT count(*) AS n FROM (SELECT w.id FROM "${SCHEMA}".workflows w LEFT JOIN "${SCHEMA}".steps s ON s.workflow_id = w.id
         GROUP BY w.id HAVING count(s.step_id) <> 5 OR min(s.step_id) <> 1 OR max(s.step_id) <> 5) g`,
      ),
      executions: await q(`SELECT count(*) AS n FROM "${SCHEMA}".chaos_effects`),
      stepsWithoutEffect: await q(
        `SELECT count(*) AS n FROM "${SCHEMA}".steps s WHERE NOT EXISTS (SELECT 1 FROM "${SCHEMA}".chaos_effects e WHERE e.workflow_id = s.workflow_id AND 's' || e.step = s.name)`,
      ),
      stepsRunMoreThanOnce: await q(`SELECT count(*) AS n FROM (SELECT 1 FROM "${SCHEMA}".chaos_effects GROUP BY workflow_id, step HAVING count(*) > 1) r`),
    };
  });

  const success = report.statuses.SUCCESS ?? 0;
  if (success !== WORKFLOWS) failures.push(`${success} of ${WORKFLOWS} workflows SUCCESS (${JSON.stringify(report.statuses)})`);
  if (report.duplicateCheckpoints !== 0) failures.push(`${report.duplicateCheckpoints} duplicate checkpoints`);
  if (report.workflowsWithGaps !== 0) failures.push(`${report.workflowsWithGaps} workflows without exactly steps 1..5`);
  if (report.stepsWithoutEffect !== 0) failures.push(`${report.stepsWithoutEffect} checkpoints whose step body left no effect`);
  if (crashed.length > 0) failures.push(`${crashed.length} workers crashed: ${crashed.map((w) => `${w.name} ${JSON.stringify(w.exit)}`).join(', ')}`);
  if (restarts.length < 3) failures.push(`only ${restarts.length} restarts happened; the run needs at least 3`);
  for (const r of restarts) {
    if (r.listenBackMs === undefined || r.listenBackMs > LISTEN_BACK_MS) failures.push(`after a ${r.kind} restart, LISTEN connections back in ${r.listenBackMs ?? 'never'} ms`);
  }

  const worst = Math.max(...restarts.map((r) => r.listenBackMs ?? Number.POSITIVE_INFINITY));
  console.log('\n=== restart chaos ===');
  console.log(`workflows           ${WORKFLOWS} (5 steps each), ${WORKERS} workers, done in ${(workMs / 1000).toFixed(1)} s`);
  console.log(`restarts            ${restarts.length} (${restarts.map((r) => r.kind).join(', ')})`);
  console.log(`LISTEN back after   ${restarts.map((r) => `${r.listenBackMs ?? 'never'} ms`).join(', ')} (worst ${worst} ms; limit ${LISTEN_BACK_MS} ms)`);
  console.log(`statuses            ${JSON.stringify(report.statuses)}`);
  console.log(`checkpoints         ${report.checkpoints} (expected ${WORKFLOWS * 5}); duplicates ${report.duplicateCheckpoints}; workflows with gaps ${report.workflowsWithGaps}`);
  console.log(`step executions     ${report.executions}; re-runs ${report.executions - report.checkpoints} over ${report.stepsRunMoreThanOnce} steps (at-least-once bodies, re-run after a lost checkpoint)`);
  console.log(`checkpoints w/o effect ${report.stepsWithoutEffect}`);
  console.log(`workers crashed     ${crashed.length} (exit codes ${workers.map((w) => w.exit?.code).join(', ')})`);
  console.log(failures.length === 0 ? 'PASS' : `FAIL:\n  ${failures.join('\n  ')}`);
  if (failures.length > 0) process.exitCode = 1;
}

try {
  await main();
} catch (err) {
  console.error('chaos run failed:', err);
  process.exitCode = 1;
} finally {
  for (const w of workers) if (w.exit === undefined) w.child.kill('SIGKILL');
  cluster.drop();
  console.log('cluster dropped');
}
