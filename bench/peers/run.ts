/**
 * Cairn next to its peers, on the same PostgreSQL in the same run: `npm run bench` here (after
 * `npm install`; the repository's own dependencies must be installed too, as Cairn is imported
 * from its source). Add `--quick` for a short run.
 *
 * - 10-step workflows (ten trivial durable steps each) on Cairn and DBOS Transact: one at a time
 *   (latency) and 64 in flight (steps/s), the two systems measured in alternating blocks.
 * - Queue drain: N trivial jobs preloaded, then drained, on Cairn, graphile-worker and pg-boss,
 *   in alternating order over the rounds.
 *
 * Ratios are Cairn's figure over the peer's, so drift in what the machine is doing lands on both.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ms, rate } from '../lib/format.js';
import { closedLoop, paired, sequential, type LoadResult } from '../lib/load.js';
import type { Row } from '../lib/scenario.js';
import { round, summarize, type Summary } from '../lib/stats.js';
import { renderTable } from '../lib/table.js';
import { createDatabase, dropDatabase, serverInfo, withDatabase } from './lib/postgres.js';
import { STEPS, type DrainOptions, type DrainRun, type TenSteps } from './lib/types.js';
import { cairnDrain, cairnTenSteps } from './systems/cairn.js';
import { dbosTenSteps } from './systems/dbos.js';
import { graphileDrain } from './systems/graphile.js';
import { pgbossDrain, type PgBossTuning } from './systems/pgboss.js';

const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));
/** How long an idle connection of a 10-step pool stays open. */
const IDLE_MS = 250;

interface Budget {
  /** Sequential workflows per system, after `sequentialWarmup`, in `sequentialBlocks` alternating blocks. */
  sequentialSamples: number;
  sequentialWarmup: number;
  sequentialBlocks: number;
  inFlight: number;
  /** Engine pool size for the 10-step workloads (Cairn's pg.Pool max, DBOS's systemDatabasePoolSize). */
  tenStepPool: number;
  paired: { warmupMs: number; measureMs: number; rounds: number };
  drainJobs: number;
  drainRounds: number;
  /** Connections each queue system may use while draining. */
  drainPool: number;
}

const FULL: Budget = {
  sequentialSamples: 400,
  sequentialWarmup: 100,
  sequentialBlocks: 4,
  inFlight: 64,
  tenStepPool: 32,
  paired: { warmupMs: 2_000, measureMs: 12_000, rounds: 4 },
  drainJobs: 10_000,
  drainRounds: 2,
  drainPool: 25,
};

const QUICK: Budget = {
  ...FULL,
  sequentialSamples: 60,
  sequentialWarmup: 10,
  paired: { warmupMs: 1_000, measureMs: 4_000, rounds: 2 },
  drainJobs: 2_000,
  drainRounds: 1,
};

/** pg-boss 10 settings: the fastest of the combinations tried on this machine (see README.md). */
const PGBOSS: PgBossTuning = { batchSize: 1_000, workers: 4 };

type Drainer = (o: DrainOptions) => Promise<DrainRun>;
const DRAINERS: Array<{ name: string; slug: string; run: Drainer }> = [
  { name: 'Cairn', slug: 'cairn', run: cairnDrain },
  { name: 'graphile-worker', slug: 'gw', run: graphileDrain },
  { name: 'pg-boss', slug: 'pgboss', run: (o) => pgbossDrain(o, PGBOSS) },
];

function progress(message: string): void {
  process.stderr.write(`[peers] ${message}\n`);
}

/** Sequential latency of two systems in alternating blocks (A B B A ...). */
async function sequentialPair(a: TenSteps, b: TenSteps, budget: Budget): Promise<[Summary, Summary]> {
  for (const s of [a, b]) for (let i = 0; i < budget.sequentialWarmup; i++) await s.runOne();
  const perBlock = Math.ceil(budget.sequentialSamples / budget.sequentialBlocks);
  const samples = new Map<TenSteps, number[]>([
    [a, []],
    [b, []],
  ]);
  const block = { warmup: 0, samples: perBlock, maxMs: Number.POSITIVE_INFINITY };
  for (let r = 0; r < budget.sequentialBlocks; r++) {
    for (const s of r % 2 === 0 ? [a, b] : [b, a]) {
      const lat: number[] = [];
      await sequential(block, async () => {
        const t0 = performance.now();
        await s.runOne();
        lat.push(performance.now() - t0);
      });
      samples.get(s)!.push(...lat);
    }
  }
  return [summarize(samples.get(a)!), summarize(samples.get(b)!)];
}

/**
 * The pool of one system in the 10-step workloads. Idle connections close after IDLE_MS, so only
 * the system being measured holds connections: the server's max_connections is shared with
 * whatever else runs on the machine, and two pools of this size at once may not fit.
 */
function tenStepPool(url: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, idleTimeoutMillis: IDLE_MS });
  pool.on('error', () => undefined);
  return pool;
}

async function floorRates(url: string, concurrency: number[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query('CREATE TABLE IF NOT EXISTS peers_floor (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload text NOT NULL)');
  await setup.end();
  for (const c of concurrency) {
    const pool = new pg.Pool({ connectionString: url, max: c });
    const insert = { name: 'peers_floor_insert', text: 'INSERT INTO peers_floor (payload) VALUES ($1)', values: ['x'] };
    try {
      const r = await closedLoop(c, { warmupMs: 500, measureMs: 1_500 }, async () => {
        await pool.query(insert);
      });
      out[`C=${c}`] = round(r.perSecond, 1);
    } finally {
      await pool.end();
    }
  }
  return out;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const budget = quick ? QUICK : FULL;
  const started = new Date();
  const t0 = performance.now();
  const loadStart = os.loadavg();
  const database = `cairn_peers_${process.pid}`;
  const dbosDatabase = `${database}_dbos`;
  const url = withDatabase(ADMIN_URL, database);
  await createDatabase(ADMIN_URL, database);
  await dropDatabase(ADMIN_URL, dbosDatabase);
  const rows: Row[] = [];
  const data: Record<string, unknown> = {};
  try {
    const server = await serverInfo(url);
    progress(`floor: bare insert commits/s at C=1 and C=${budget.tenStepPool}`);
    data.floorCommitsPerSecond = await floorRates(url, [1, budget.tenStepPool]);

    // ------------------------------------------------------------------------------------------
    progress(`10-step workflows: Cairn and DBOS (pool ${budget.tenStepPool} each)`);
    const cairnPool = tenStepPool(url, budget.tenStepPool);
    const dbosUrl = withDatabase(ADMIN_URL, dbosDatabase);
    await createDatabase(ADMIN_URL, dbosDatabase);
    const dbosPool = tenStepPool(dbosUrl, budget.tenStepPool);
    const cairn = await cairnTenSteps(cairnPool, 'cairn');
    const dbos = await dbosTenSteps(dbosUrl, dbosPool);
    let seq: [Summary, Summary];
    let load: [LoadResult, LoadResult];
    try {
      progress(`sequential: ${budget.sequentialSamples} workflows each, ${budget.sequentialBlocks} alternating blocks`);
      seq = await sequentialPair(cairn, dbos, budget);
      progress(`${budget.inFlight} in flight: alternating windows, ${budget.paired.measureMs / 1000} s each`);
      load = await paired(budget.inFlight, budget.paired, { op: () => cairn.runOne() }, { op: () => dbos.runOne() });
    } finally {
      await cairn.close();
      await dbos.close();
      await cairnPool.end();
      await dbosPool.end();
    }
    const [seqCairn, seqDbos] = seq;
    const [loadCairn, loadDbos] = load;
    const stepsCairn = loadCairn.perSecond * STEPS;
    const stepsDbos = loadDbos.perSecond * STEPS;
    const latencyRatio = seqCairn.p50 / seqDbos.p50;
    const throughputRatio = stepsCairn / stepsDbos;
    const seqRow = (system: string, s: Summary, ratio?: Row['ratio']): Row => ({
      id: '1',
      scenario: 'sequential 10-step',
      measure: `${system}: workflow latency p50 / p99`,
      value: `${ms(s.p50)} / ${ms(s.p99)}`,
      ...(ratio && { ratio }),
      note: `n=${s.n}; mean ${ms(s.mean)}`,
      status: 'measured',
      data: { system, samples: s.n, p50Ms: round(s.p50), p90Ms: round(s.p90), p99Ms: round(s.p99), meanMs: round(s.mean) },
    });
    rows.push(seqRow('Cairn', seqCairn), seqRow('DBOS', seqDbos, { value: latencyRatio, of: 'Cairn p50 / DBOS p50', target: { op: '<=', value: 0.2 } }));
    const loadRow = (system: string, r: LoadResult, ratio?: Row['ratio']): Row => ({
      id: '2',
      scenario: `10-step, ${budget.inFlight} in flight`,
      measure: `${system}: steps/s, workflows/s`,
      value: `${rate(r.perSecond * STEPS)}, ${rate(r.perSecond)}`,
      ...(ratio && { ratio }),
      note: `${r.ops} workflows in ${r.seconds.toFixed(1)} s; workflow p50 ${ms(r.latency.p50)}, p99 ${ms(r.latency.p99)}`,
      status: 'measured',
      data: { system, workflows: r.ops, seconds: round(r.seconds), stepsPerSecond: round(r.perSecond * STEPS, 1), workflowsPerSecond: round(r.perSecond, 1), p50Ms: round(r.latency.p50), p99Ms: round(r.latency.p99) },
    });
    rows.push(loadRow('Cairn', loadCairn), loadRow('DBOS', loadDbos, { value: throughputRatio, of: 'Cairn steps/s / DBOS steps/s', target: { op: '>=', value: 5 } }));

    // ------------------------------------------------------------------------------------------
    const drains: DrainRun[] = [];
    for (let r = 0; r < budget.drainRounds; r++) {
      const order = r % 2 === 0 ? DRAINERS : [...DRAINERS].reverse();
      for (const d of order) {
        progress(`drain round ${r + 1}/${budget.drainRounds}: ${d.name}, ${budget.drainJobs} jobs`);
        const run = await d.run({ url, schema: `${d.slug}_r${r + 1}`, jobs: budget.drainJobs, pool: budget.drainPool });
        progress(`  ${rate(run.jobs / (run.drainMs / 1000))} (drained in ${ms(run.drainMs)}, preloaded in ${ms(run.preloadMs)})`);
        drains.push(run);
      }
    }
    const drainRate = (system: string): number => {
      const runs = drains.filter((d) => d.system === system);
      return runs.reduce((n, d) => n + d.jobs, 0) / (runs.reduce((s, d) => s + d.drainMs, 0) / 1000);
    };
    const cairnRate = drainRate('Cairn');
    const targets: Record<string, number> = { 'graphile-worker': 1, 'pg-boss': 3 };
    for (const d of DRAINERS) {
      const runs = drains.filter((x) => x.system === d.name);
      const r = drainRate(d.name);
      rows.push({
        id: '3',
        scenario: `queue drain ${budget.drainJobs.toLocaleString('en-US')}`,
        measure: `${d.name}: jobs/s`,
        value: rate(r),
        ...(d.name !== 'Cairn' && { ratio: { value: cairnRate / r, of: `Cairn / ${d.name}`, target: { op: '>=', value: targets[d.name]! } } }),
        note: `${runs.length} drain(s): ${runs.map((x) => ms(x.drainMs)).join(', ')}; pool ${budget.drainPool}; ${JSON.stringify(runs[0]!.settings)}`,
        status: 'measured',
        data: { system: d.name, jobsPerSecond: round(r, 1), runs: runs.map((x) => ({ ...x, drainMs: round(x.drainMs), preloadMs: round(x.preloadMs) })) },
      });
    }

    const wallSeconds = (performance.now() - t0) / 1000;
    const notes = [
      `same PostgreSQL, same process, same run; ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at the end`,
      `floor (bare insert commits/s): ${JSON.stringify(data.floorCommitsPerSecond)}`,
      `10-step: Cairn and DBOS each on a pg.Pool of max ${budget.tenStepPool} (idle connections closed after ${IDLE_MS} ms, so only the system measured holds any); sequential blocks and in-flight windows alternate between the two`,
      `drain: each system gets a schema of its own per round and at most ${budget.drainPool} connections; the clock stops when the last completion has committed`,
    ];
    process.stdout.write(`\n${renderTable(`Cairn and its peers — ${server.version?.split(' ').slice(0, 2).join(' ')}${quick ? ' — quick run' : ''}`, rows, notes)}\n`);
    const report = {
      benchmark: 'cairn-peers',
      mode: quick ? 'quick' : 'full',
      date: started.toISOString(),
      wallSeconds: round(wallSeconds, 1),
      node: process.version,
      machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? null, loadAverage: { start: loadStart, end: os.loadavg() } },
      postgres: server,
      versions: versions(),
      budget,
      settings: { pgBoss: PGBOSS, drains: drains.map((d) => ({ system: d.system, settings: d.settings })) },
      floorCommitsPerSecond: data.floorCommitsPerSecond,
      rows,
    };
    mkdirSync(RESULTS, { recursive: true });
    const out = `${RESULTS}${started.toISOString().replace(/[:.]/g, '-')}.json`;
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`\nJSON: ${out}\nwall time: ${wallSeconds.toFixed(1)} s\n`);
  } finally {
    await dropDatabase(ADMIN_URL, dbosDatabase).catch(() => undefined);
    await dropDatabase(ADMIN_URL, database).catch(() => undefined);
  }
}

function versions(): Record<string, string | null> {
  const read = (path: string): string | null => {
    try {
      return (JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { version?: string }).version ?? null;
    } catch {
      return null;
    }
  };
  return {
    cairn: read('../../package.json'),
    dbos: read('./node_modules/@dbos-inc/dbos-sdk/package.json'),
    graphileWorker: read('./node_modules/graphile-worker/package.json'),
    pgBoss: read('./node_modules/pg-boss/package.json'),
    pgForPeers: read('./node_modules/pg/package.json'),
    pgForCairn: read('../../node_modules/pg/package.json'),
  };
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
