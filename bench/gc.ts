/**
 * Clean-up under load: `npm run bench:gc` (add `-- --rows 100000` for a shorter run, `--only
 * postgres|sqlite` for one database).
 *
 * Fills a fresh store with 1,000,000 finished workflows of 5 steps each (set-based SQL), then
 * keeps 64 workflows of 5 steps in flight on an engine and measures their throughput: before gc,
 * while `gc` deletes every filled workflow in batches from a second connection (a Client), and
 * after. The figure is the throughput during gc over the mean of the two around it, measured in
 * the same run; the budget is 0.8.
 */
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Client, Engine, migrate } from '../src/index.js';
import { expectResult, trivialSteps } from './lib/engine.js';
import { fillSteps, fillWorkflows, type Fill } from './lib/fill.js';
import { withScratchPostgres, withScratchSqlite } from './lib/scratch.js';
import { closedLoop, type LoadResult } from './lib/load.js';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, only: { type: 'string' }, window: { type: 'string', default: '5000' } } });
const ROWS = Number(values.rows);
const WINDOW_MS = Number(values.window);
const IN_FLIGHT = 64;
const STEPS = 5;
const DAY = 86_400_000;

async function measure(label: string, database: string, fill: (f: Fill) => Promise<void>, kind: Fill['kind']): Promise<void> {
  await migrate({ database });
  const t = performance.now();
  await fill({ kind, prefix: kind === 'postgres' ? 'cairn.' : 'cairn_', rows: ROWS, now: Date.now(), ageMs: 2 * DAY });
  console.log(`${label}: filled ${ROWS.toLocaleString('en-US')} finished workflows with ${STEPS} steps each in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const engine = await Engine.open({ database, appVersion: 'bench-gc', migrate: false });
  const cleaner = await Client.open({ database, migrate: false });
  try {
    const wf = trivialSteps(engine, 'load', STEPS);
    const op = async () => expectResult(await wf.run(null), STEPS);
    const window = () => closedLoop(IN_FLIGHT, { warmupMs: 1_000, measureMs: WINDOW_MS }, op);
    const before = await window();
    let done = false;
    const started = performance.now();
    const gc = cleaner.gc({ olderThan: DAY, batchSize: 1_000 }).finally(() => (done = true));
    const during: LoadResult[] = [];
    while (!done) {
      const r = await window();
      // Only windows that ended while gc was still deleting count as "during".
      if (!done) during.push(r);
    }
    const { deleted } = await gc;
    const gcSeconds = (performance.now() - started) / 1000;
    const after = await window();
    const rate = (rs: LoadResult[]) => rs.reduce((n, r) => n + r.ops, 0) / rs.reduce((s, r) => s + r.seconds, 0);
    const baseline = (before.perSecond + after.perSecond) / 2;
    const underGc = during.length > 0 ? rate(during) : Number.NaN;
    console.log(`${label}: gc deleted ${deleted.toLocaleString('en-US')} workflows (${(deleted * (STEPS + 1)).toLocaleString('en-US')} rows) in ${gcSeconds.toFixed(1)} s, ${Math.round(deleted / gcSeconds).toLocaleString('en-US')} workflows/s`);
    console.log(`${label}: ${IN_FLIGHT} in flight, workflows/s: before ${before.perSecond.toFixed(0)}, during gc ${underGc.toFixed(0)} (${during.length} windows), after ${after.perSecond.toFixed(0)}`);
    const ratio = underGc / baseline;
    console.log(`${label}: throughput during gc / without = ${ratio.toFixed(2)} ${during.length === 0 ? '(gc ended before a whole window: use more rows)' : ratio >= 0.8 ? '(ok, budget 0.8)' : '(UNDER the 0.8 budget)'}`);
    if (deleted !== ROWS) throw new Error(`gc deleted ${deleted} workflows, expected ${ROWS}`);
  } finally {
    await cleaner.close();
    await engine.close();
  }
}

async function postgres(): Promise<void> {
  await withScratchPostgres('gc', (url) =>
    measure('PostgreSQL', url, async (f) => {
      const db = new pg.Client({ connectionString: url });
      await db.connect();
      try {
        await db.query(fillWorkflows(f));
        await db.query(fillSteps(f, STEPS));
        await db.query('VACUUM ANALYZE cairn.workflows');
        await db.query('VACUUM ANALYZE cairn.steps');
      } finally {
        await db.end();
      }
    }, 'postgres'),
  );
}

async function sqlite(): Promise<void> {
  await withScratchSqlite('gc', (path) =>
    measure('SQLite', `sqlite:${path}`, async (f) => {
      const db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.exec(fillWorkflows(f));
      db.exec(fillSteps(f, STEPS));
      db.exec('ANALYZE');
      db.close();
    }, 'sqlite'),
  );
}

if (values.only !== 'sqlite') await postgres();
if (values.only !== 'postgres') await sqlite();
