/**
 * Listing at scale: `npm run bench:list` (add `-- --rows 100000` for a shorter run).
 *
 * Fills a fresh Postgres database and a fresh SQLite file with 1,000,000 finished workflows
 * (written by set-based SQL, not by running them), then times what an operator's screens ask
 * for: the dashboard's list page served by `dashboardHandler` (server time, from the request to
 * the last byte), and the `listWorkflows` calls behind it: the newest page, a status, a name, a
 * page 20,000 rows deep by keyset, an id prefix. Each is reported as a median and p95 of its
 * runs and as a ratio to the database's own floor in the same run: a primary-key lookup of one
 * row through the same driver.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { Client, migrate, type ListWorkflowsFilter } from '../src/index.js';
import { dashboardHandler } from '../src/dashboard/index.js';
import { fillWorkflows } from './lib/fill.js';
import { withScratchPostgres, withScratchSqlite } from './lib/scratch.js';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, runs: { type: 'string', default: '40' }, only: { type: 'string' } } });
const ROWS = Number(values.rows);
const RUNS = Number(values.runs);
const BUDGET_MS = 300;

interface Measured {
  what: string;
  median: number;
  p95: number;
  rows: number;
}

async function time(what: string, runs: number, fn: () => Promise<number>): Promise<Measured> {
  let rows = 0;
  for (let i = 0; i < 3; i++) rows = await fn();
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    rows = await fn();
    samples.push(performance.now() - t);
  }
  samples.sort((a, b) => a - b);
  return { what, median: samples[Math.floor(samples.length / 2)]!, p95: samples[Math.min(samples.length - 1, Math.ceil(samples.length * 0.95) - 1)]!, rows };
}

async function serve(client: Client): Promise<{ server: Server; url: string }> {
  const handler = dashboardHandler({ client, basePath: '/admin/cairn' });
  const server = createServer((req, res) => void handler(req, res));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/admin/cairn` };
}

async function measure(label: string, database: string, floor: () => Promise<unknown>, schema?: string): Promise<void> {
  const client = await Client.open({ database, ...(schema && { schema }), migrate: false });
  const { server, url } = await serve(client);
  try {
    const floorTime = await time('floor: primary-key lookup', RUNS * 5, async () => (await floor(), 1));
    const newest = await client.listWorkflows({ order: 'desc', limit: 50 });
    const deep = (await client.listWorkflows({ order: 'desc', limit: 1, offset: 20_000 }))[0]!;
    const list = (filter: ListWorkflowsFilter) => async () => (await client.listWorkflows({ order: 'desc', limit: 50, ...filter })).length;
    const page = (query: string) => async () => {
      const res = await fetch(`${url}/${query}`);
      const body = await res.text();
      if (res.status !== 200) throw new Error(`GET ${query} → ${res.status}: ${body.slice(0, 200)}`);
      return body.length;
    };
    const results = [
      floorTime,
      await time('dashboard list page (HTML)', RUNS, page('')),
      await time('dashboard list page, status ERROR', RUNS, page('?status=ERROR')),
      await time('dashboard list page, name + id prefix', RUNS, page('?name=refund&id=wf-0001')),
      await time('listWorkflows newest 50', RUNS, list({})),
      await time('listWorkflows status ERROR', RUNS, list({ status: 'ERROR' })),
      await time('listWorkflows name charge', RUNS, list({ name: 'charge' })),
      await time('listWorkflows 20,000 deep by keyset', RUNS, list({ after: deep })),
      await time('listWorkflows id prefix wf-00012', RUNS, list({ idPrefix: 'wf-00012' })),
    ];
    if (newest.length !== 50) throw new Error(`expected 50 rows on the first page, got ${newest.length}`);
    console.log(`\n${label}: ${ROWS.toLocaleString('en-US')} finished workflows`);
    console.log(`${'what'.padEnd(44)} ${'median ms'.padStart(10)} ${'p95 ms'.padStart(8)} ${'x floor'.padStart(8)}  result`);
    for (const r of results) {
      const verdict = r === floorTime ? '' : r.p95 < BUDGET_MS ? `ok (< ${BUDGET_MS} ms)` : `OVER ${BUDGET_MS} ms`;
      console.log(`${r.what.padEnd(44)} ${r.median.toFixed(2).padStart(10)} ${r.p95.toFixed(2).padStart(8)} ${(r.median / floorTime.median).toFixed(1).padStart(8)}  ${verdict}`);
    }
  } finally {
    server.close();
    await client.close();
  }
}

async function postgres(): Promise<void> {
  await withScratchPostgres('list', async (database) => {
    await migrate({ database });
    const db = new pg.Client({ connectionString: database });
    await db.connect();
    try {
      const t = performance.now();
      await db.query(fillWorkflows({ kind: 'postgres', prefix: 'cairn.', rows: ROWS, now: Date.now() }));
      await db.query('VACUUM ANALYZE cairn.workflows');
      console.log(`postgres: filled ${ROWS.toLocaleString('en-US')} rows in ${((performance.now() - t) / 1000).toFixed(1)} s`);
      await measure('PostgreSQL', database, () => db.query({ name: 'floor', text: 'SELECT id, status FROM cairn.workflows WHERE id = $1', values: ['wf-00000042'] }));
    } finally {
      await db.end();
    }
  });
}

async function sqlite(): Promise<void> {
  await withScratchSqlite('list', async (path) => {
    await migrate({ database: `sqlite:${path}` });
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    const t = performance.now();
    db.exec(fillWorkflows({ kind: 'sqlite', prefix: 'cairn_', rows: ROWS, now: Date.now() }));
    db.exec('ANALYZE');
    console.log(`sqlite: filled ${ROWS.toLocaleString('en-US')} rows in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const lookup = db.prepare('SELECT id, status FROM cairn_workflows WHERE id = ?');
    try {
      await measure('SQLite', `sqlite:${path}`, async () => lookup.get('wf-00000042'));
    } finally {
      db.close();
    }
  });
}

if (values.only !== 'sqlite') await postgres();
if (values.only !== 'postgres') await sqlite();
