/**
 * Many tenants in one process: creates N tenants (default 50) in a database of its own, opens an
 * engine per tenant connected as the tenant's role, runs a workflow in each and parks one waiter
 * in each, then reports what a tenant costs (memory, connections, time to create) and counts how
 * many waiters of the other tenants a burst of messages to one tenant woke. Drops everything at
 * the end.
 *
 *   npm run bench:tenants                       (50 tenants on the local server)
 *   npm run bench:tenants -- --tenants 20
 *   DATABASE_URL=postgres://admin@host/db npm run bench:tenants
 *
 * Each engine's pool holds at most one connection, released 100 ms after use, besides the LISTEN
 * connection every engine keeps: N tenants need about N + 2 connections at once.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Engine, PostgresProvider, TenantAdmin, type Context, type Tenant } from '../src/index.js';
import { loadMigrations } from '../src/providers/migrations.js';

const { values } = parseArgs({ options: { tenants: { type: 'string', default: '50' }, messages: { type: 'string', default: '100' } } });
const count = Number(values.tenants);
const messages = Number(values.messages);
const server = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `cairn_bench_tenants_${process.pid}`;
const prefix = `bt${process.pid % 100_000}_`;

const sql = async (url: string, text: string, params: unknown[] = []) => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as Array<Record<string, unknown>>;
  } finally {
    await c.end();
  }
};
const gc = (globalThis as { gc?: () => void }).gc;
const memory = () => {
  gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heap: m.heapUsed + m.external };
};
const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KiB`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

await sql(server, `CREATE DATABASE "${dbName}"`);
const url = new URL(server);
url.pathname = `/${dbName}`;
const database = url.toString();
const admin = await TenantAdmin.open({ database, prefix });
const engines: Engine[] = [];
/** The engines' pools: a provider given a pool leaves it open, so they are ended here. */
const pools: pg.Pool[] = [];
try {
  let t0 = performance.now();
  const tenants: Tenant[] = [];
  for (let i = 0; i < count; i++) tenants.push(await admin.createTenant(`t${i}`));
  const createMs = (performance.now() - t0) / count;

  // Warm up (code loaded, compiled, first pools made) with one engine, closed, so the readings
  // that follow count what the engines themselves hold.
  const warm = await Engine.open({ database: tenants[0]!.url, schema: tenants[0]!.schema!, migrate: false, executorId: 'warm-up' });
  await warm.workflow('hello', async (ctx: Context, n: number) => ctx.step('double', () => n * 2)).run(0);
  await warm.close();
  await sleep(300);
  const before = memory();
  const rechecks = new Array<number>(count).fill(0);
  t0 = performance.now();
  const inboxes = [];
  for (const [i, t] of tenants.entries()) {
    const pool = new pg.Pool({ connectionString: t.url, max: 1, idleTimeoutMillis: 100 });
    pools.push(pool);
    const provider = new PostgresProvider({
      pool,
      schema: t.schema!,
      onStatement: (text) => {
        if (text.includes('consumed_at IS NULL')) rechecks[i]!++;
      },
    });
    const engine = await Engine.open({ database: provider, migrate: false, pollIntervalMs: 600_000, executorId: `bench-${i}` });
    engines.push(engine);
    const hello = engine.workflow('hello', async (ctx: Context, n: number) => ctx.step('double', () => n * 2));
    inboxes.push(engine.workflow('inbox', async (ctx: Context, n: number) => {
      for (let k = 0; k < n; k++) await ctx.recv('go', 120_000);
      return n;
    }));
    await hello.run(i);
  }
  const openMs = (performance.now() - t0) / count;
  const after = memory();

  // One waiter per tenant, all under the same id, so every tenant's notifications name the same key.
  const waiting = await Promise.all(inboxes.map((w, i) => w.start(i === 0 ? messages : 1, { id: 'inbox' })));
  await sleep(500);
  const perRole = await sql(database, 'SELECT usename, count(*)::int AS n FROM pg_stat_activity WHERE starts_with(usename, $1) GROUP BY usename', [prefix]);
  const connections = perRole.map((r) => r.n as number);
  const baseline = [...rechecks];

  t0 = performance.now();
  for (let k = 0; k < messages; k++) await engines[0]!.send('inbox', k, 'go');
  await waiting[0]!.result();
  const sendMs = performance.now() - t0;
  await sleep(500);
  const woken = rechecks.slice(1).reduce((sum, n, i) => sum + n - baseline[i + 1]!, 0);

  const rows: Array<[string, string]> = [
    ['tenants, each with an engine', String(count)],
    [`createTenant (role, schema, grants, ${loadMigrations('postgres').length} migrations as the role)`, `${createMs.toFixed(0)} ms each`],
    ['Engine.open + first workflow, per tenant', `${openMs.toFixed(1)} ms`],
    // rss also moves with what the create phase freed, so it is shown whole, beside the delta.
    ['memory per tenant engine: rss', `${kib((after.rss - before.rss) / count)} (${(before.rss / 2 ** 20).toFixed(0)} → ${(after.rss / 2 ** 20).toFixed(0)} MiB)`],
    ['memory per tenant engine: heap used + external', kib((after.heap - before.heap) / count)],
    ['connections per tenant role, a waiter parked (min / max)', `${Math.min(...connections)} / ${Math.max(...connections)} (${connections.reduce((a, b) => a + b, 0)} in all, ${connections.length} roles)`],
    [`messages sent to tenant 0, received`, `${messages} in ${sendMs.toFixed(0)} ms`],
    [`re-checks by the other ${count - 1} tenants' waiters meanwhile`, String(woken)],
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  console.log(`\n${count} tenants on ${server.replace(/:[^:@/]*@/, ':***@')} (gc ${gc ? 'forced before each reading' : 'not exposed'})\n`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
  for (const [i, w] of waiting.entries()) if (i > 0) await engines[i]!.cancel(w.id);
} catch (err) {
  console.error(`bench:tenants failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await Promise.all(engines.map((e) => e.close({ timeoutMs: 1_000 }).catch(() => undefined)));
  await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  await admin.close().catch(() => undefined);
  // Each clean-up step on its own, so one failing (a server out of connection slots) spares the rest.
  await sql(server, `DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`).catch((err: Error) => console.error(`could not drop ${dbName}: ${err.message}`));
  const roles = await sql(server, 'SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)', [prefix]).catch(() => []);
  for (const r of roles) {
    await sql(server, `DROP ROLE "${r.rolname as string}"`).catch((err: Error) => console.error(`could not drop role ${r.rolname as string}: ${err.message}`));
  }
}
