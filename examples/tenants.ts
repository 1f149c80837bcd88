/**
 * Tenants: an admin provisions two tenants (a schema and a login role each), and one process runs
 * an engine per tenant, connected as that tenant's role. Each runs a workflow; neither sees the
 * other's, and the database itself refuses a cross-tenant read. The tenants are dropped at the end.
 *
 *   npm run demo:tenants                              (the local server, postgres://postgres@127.0.0.1:5432/postgres)
 *   DATABASE_URL=postgres://admin@host/db npm run demo:tenants
 *
 * The URL's user must be able to create roles and schemas (a superuser, say).
 */
import pg from 'pg';
import { Engine, TenantAdmin, type Context, type Tenant } from '../src/index.js';

const database = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const admin = await TenantAdmin.open({ database, prefix: 'demo_', registry: 'cairn_demo_tenants' });
// A previous run that was interrupted may have left its tenants: start clean.
for (const t of await admin.listTenants()) await admin.dropTenant(t.name, { force: true });

const engines: Engine[] = [];
try {
  const acme = await admin.createTenant('acme');
  const globex = await admin.createTenant('globex');
  for (const t of [acme, globex]) console.log(`created ${t.name}: schema ${t.schema}, role ${t.role}`);

  /** An engine for one tenant: its URL (its own role and password) and its schema. */
  const openFor = async (tenant: Tenant) => {
    const engine = await Engine.open({ database: tenant.url, schema: tenant.schema!, executorId: `worker-${tenant.name}` });
    engines.push(engine);
    const invoice = engine.workflow('invoice', async (ctx: Context, order: { id: string; cents: number }) => {
      const total = await ctx.step('total', () => Math.round(order.cents * 1.2));
      await ctx.step('email', () => console.log(`  [${tenant.name}] invoice ${order.id}: ${(total / 100).toFixed(2)}`));
      return total;
    });
    return { engine, invoice };
  };
  const a = await openFor(acme);
  const g = await openFor(globex);

  // The same workflow id in both tenants: two different workflows that never meet.
  const [ta, tg] = await Promise.all([
    a.invoice.run({ id: 'inv-1', cents: 10_000 }, { id: 'inv-1' }),
    g.invoice.run({ id: 'inv-1', cents: 25_000 }, { id: 'inv-1' }),
  ]);
  console.log(`acme's inv-1 = ${ta}, globex's inv-1 = ${tg}`);
  console.log(`acme's engine lists ${(await a.engine.listWorkflows()).length} workflow, globex's ${(await g.engine.listWorkflows()).length}`);

  // Connected as acme, globex's tables are out of reach.
  const asAcme = new pg.Client({ connectionString: acme.url });
  await asAcme.connect();
  try {
    await asAcme.query(`SELECT output FROM "${globex.schema}".workflows`);
    throw new Error('acme read globex: isolation is broken');
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== '42501') throw err;
    console.log(`acme reading globex's workflows: ${(err as Error).message} (SQLSTATE ${code})`);
  } finally {
    await asAcme.end();
  }
} finally {
  await Promise.all(engines.map((e) => e.close()));
  for (const t of await admin.listTenants()) await admin.dropTenant(t.name);
  console.log(`dropped the tenants; ${(await admin.listTenants()).length} left`);
  await admin.close();
  // The registry is a schema of its own: the demo removes it too.
  const c = new pg.Client({ connectionString: database });
  await c.connect();
  await c.query('DROP SCHEMA IF EXISTS cairn_demo_tenants CASCADE');
  await c.end();
}
