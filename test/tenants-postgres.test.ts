import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Engine, PostgresProvider, type Context, type Tenant } from '../src/index.js';
import { scramVerifier } from '../src/tenants/password.js';
import { cairnError } from './helpers/assertions.js';
import { postgresTenants } from './fixtures/tenant-harness.js';
import { defineTenantsSuite } from './tenants.js';

defineTenantsSuite(await postgresTenants('pg'));

const h = await postgresTenants('is');

/** Runs `body` with a connection made with `url` (a tenant's), then closes it. */
async function connectedAs<T>(url: string, body: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await body(c);
  } finally {
    await c.end();
  }
}

/** The SQLSTATE a statement fails with, or 'ok'. */
async function sqlstate(c: pg.Client, text: string, values: unknown[] = []): Promise<string> {
  try {
    await c.query(text, values);
    return 'ok';
  } catch (err) {
    return String((err as { code?: unknown }).code);
  }
}

describe('tenants on postgres: roles, grants and notifications', { skip: h.skip }, () => {
  afterEach(() => h.closeEngines());
  after(() => h.dispose());

  test("with tenant A's URL, reading or writing tenant B's tables fails with permission denied (42501)", async () => {
    const admin = await h.admin();
    const a = await admin.createTenant('perm_a');
    const b = await admin.createTenant('perm_b');
    const engineB = await h.engine(b);
    const secret = engineB.workflow('secret', async (ctx: Context) => ctx.step('s', () => 'top secret'));
    await secret.run(undefined, { id: 'b-secret' });
    const B = `"${b.schema}"`;
    await connectedAs(a.url, async (c) => {
      const who = await c.query<{ u: string }>('SELECT current_user AS u');
      assert.equal(who.rows[0]!.u, a.role, "connected as A's role");
      assert.equal(await sqlstate(c, `SELECT count(*) FROM "${a.schema}".workflows`), 'ok', 'A reads its own tables');
      const denied: Array<[string, string, unknown[]?]> = [
        ['read workflows', `SELECT output FROM ${B}.workflows`],
        ['read steps', `SELECT output FROM ${B}.steps`],
        ['read messages', `SELECT body FROM ${B}.messages`],
        ['write messages', `INSERT INTO ${B}.messages (destination_id, topic, body, created_at) VALUES ('b-secret', 't', '1', 0)`],
        ['update workflows', `UPDATE ${B}.workflows SET status = 'CANCELLED'`],
        ['delete steps', `DELETE FROM ${B}.steps`],
        ['enqueue through B', `SELECT ${B}.enqueue_workflow('secret', 'q')`],
        ["use B's sequence", `SELECT nextval('${B}.enqueue_seq')`],
        ['create in B', `CREATE TABLE ${B}.planted (x int)`],
        ['drop B', `DROP TABLE ${B}.workflows`],
        ['read the registry', 'SELECT * FROM cairn_tenants.tenants'],
        ['create a schema', `CREATE SCHEMA "${h.prefix}squat"`],
        ['create in public', 'CREATE TABLE public.planted (x int)'],
      ];
      for (const [what, text, values] of denied) assert.equal(await sqlstate(c, text, values), '42501', what);
      // Not even B's table names through a grant: the schema itself is closed.
      const usage = await c.query<{ ok: boolean }>('SELECT has_schema_privilege($1, \'USAGE\') AS ok', [b.schema]);
      assert.equal(usage.rows[0]!.ok, false);
    });
    // B's own role is unaffected: it still reads its row.
    await connectedAs(b.url, async (c) => {
      const res = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${B}.workflows WHERE id = 'b-secret'`);
      assert.equal(res.rows[0]!.n, 1);
    });
  });

  test("a wait in tenant A is not woken by tenant B's notifications, counted; A's own message does wake it", async (t) => {
    const admin = await h.admin();
    const a = await admin.createTenant('wake_a');
    const b = await admin.createTenant('wake_b');
    // Counts the re-checks of A's recv: each runs the statement that takes a message.
    let rechecks = 0;
    const provider = new PostgresProvider({
      connectionString: a.url,
      schema: a.schema!,
      onStatement: (text) => {
        if (text.includes('consumed_at IS NULL')) rechecks++;
      },
    });
    // A fallback poll far beyond the test, so every re-check is a wake-up.
    const engineA = await Engine.open({ database: provider, pollIntervalMs: 600_000 });
    const engineB = await h.engine(b, { pollIntervalMs: 600_000 });
    const inbox = async (ctx: Context, count: number) => {
      const got: string[] = [];
      for (let i = 0; i < count; i++) got.push((await ctx.recv<string>('go', 60_000))!);
      return got;
    };
    const waitA = engineA.workflow('inbox', inbox);
    const waitB = engineB.workflow('inbox', inbox);
    const others = engineB.workflow('other', async (ctx: Context) => ctx.step('x', () => 1));
    try {
      // The same workflow id in both tenants: B's notifications name exactly the key A waits on.
      const handleA = await waitA.start(1, { id: 'shared-inbox' });
      for (let i = 0; i < 200 && rechecks === 0; i++) await sleep(10);
      await sleep(100);
      const baseline = rechecks;
      assert.ok(baseline >= 1, 'A checked for its message once before parking');

      const burst = 120;
      const handleB = await waitB.start(burst, { id: 'shared-inbox' });
      for (let i = 0; i < burst; i++) await engineB.send('shared-inbox', `b${i}`, 'go');
      await Promise.all(Array.from({ length: 20 }, (_, i) => others.run(undefined, { id: `b-other-${i}` })));
      assert.equal((await handleB.result()).length, burst, 'B received all its messages: its notifications went out');
      await sleep(300);
      t.diagnostic(`A's re-checks: ${baseline} before, ${rechecks} after B's ${burst} messages and 20 workflows`);
      assert.equal(rechecks, baseline, `A re-checked ${rechecks - baseline} times during B's ${burst + 20}+ notifying operations`);

      // The counter does see wake-ups: a message of A's on another topic wakes A's waiter to look.
      await engineA.send('shared-inbox', 'not this one', 'other-topic');
      for (let i = 0; i < 300 && rechecks === baseline; i++) await sleep(10);
      assert.ok(rechecks > baseline, "A's own notification woke its waiter");
      await engineA.send('shared-inbox', 'hello A', 'go');
      assert.deepEqual(await handleA.result(), ['hello A']);
    } finally {
      await engineA.close();
    }
  });

  test('any role may LISTEN on another tenant\'s channel: it hears ids and keys, never values (documented limit)', async () => {
    const admin = await h.admin();
    const a = await admin.createTenant('ear_a');
    const b = await admin.createTenant('ear_b');
    const engineB = await h.engine(b);
    const heard: string[] = [];
    await connectedAs(a.url, async (c) => {
      c.on('notification', (n) => heard.push(n.payload ?? ''));
      await c.query(`LISTEN "cairn_${b.schema}"`);
      const wf = engineB.workflow('pay', async (ctx: Context) => ctx.recv<string>('card', 10_000));
      const handle = await wf.start(undefined, { id: 'order-7' });
      await engineB.send('order-7', '4111 1111 1111 1111', 'card');
      await handle.result();
      await sleep(200);
    });
    assert.ok(heard.includes('m:order-7'), `heard ${JSON.stringify(heard)}`);
    assert.ok(heard.every((p) => !p.includes('4111')), 'no message body on the channel');
  });

  test('the password is stored as the SCRAM-SHA-256 verifier PostgreSQL itself computes', async () => {
    const admin = await h.admin();
    const t = await admin.createTenant('scram');
    const password = decodeURIComponent(new URL(t.url).password);
    assert.equal(password.length, 43);
    await connectedAs(h.database, async (c) => {
      const stored = (await c.query<{ p: string }>('SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1', [t.role])).rows[0]!.p;
      const salt = Buffer.from(stored.split('$')[1]!.split(':')[1]!, 'base64');
      assert.equal(scramVerifier(password, salt), stored, 'our verifier for this password and salt');
      // The same password hashed by the server, with the same salt, matches too.
      await c.query('SET password_encryption = \'scram-sha-256\'');
      await c.query(`CREATE ROLE "${h.prefix}probe" PASSWORD '${password}'`);
      const server = (await c.query<{ p: string }>('SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1', [`${h.prefix}probe`])).rows[0]!.p;
      await c.query(`DROP ROLE "${h.prefix}probe"`);
      const serverSalt = Buffer.from(server.split('$')[1]!.split(':')[1]!, 'base64');
      assert.equal(scramVerifier(password, serverSalt), server);
    });
    await admin.dropTenant('scram');
  });

  test('a create that meets a role or schema it does not own fails and leaves nothing of its own behind', async () => {
    const admin = await h.admin();
    const before = await h.leftovers();
    const tenants = await admin.listTenants();
    await connectedAs(h.database, async (c) => {
      await c.query(`CREATE ROLE "${h.prefix}squat"`);
      await c.query(`CREATE SCHEMA "${h.prefix}taken"`);
    });
    await assert.rejects(admin.createTenant('squat'), cairnError('INVALID_ARGUMENT', new RegExp(`a role named '${h.prefix}squat' already exists and is not a tenant`)));
    await assert.rejects(admin.createTenant('taken'), cairnError('INVALID_ARGUMENT', new RegExp(`a schema named '${h.prefix}taken' already exists and is not a tenant`)));
    assert.deepEqual(await admin.listTenants(), tenants);
    assert.deepEqual(await h.leftovers(), [...before, `role ${h.prefix}squat`, `schema ${h.prefix}taken`].sort(), 'only the squatters: no role taken, no schema made');
    await assert.rejects(admin.dropTenant('squat'), cairnError('INVALID_ARGUMENT', /there is no tenant named 'squat'/));
    await connectedAs(h.database, async (c) => {
      await c.query(`DROP SCHEMA "${h.prefix}taken"`);
      await c.query(`DROP ROLE "${h.prefix}squat"`);
    });
  });

  test('a tenant half made is not listed and can be dropped; a live one behind on migrations is still refused', async () => {
    const admin = await h.admin();
    const half = await admin.createTenant('half');
    const old = await admin.createTenant('old');
    const engine = await h.engine(old, { executorId: 'old-1' });
    await connectedAs(h.database, async (c) => {
      // As a createTenant cut short between its transaction and its migrations would leave it.
      await c.query(`UPDATE cairn_tenants.tenants SET ready = false WHERE name = 'half'`);
      await c.query(`DROP TABLE "${half.schema}".migrations`);
      // As if this code were newer than the schema the live engine runs on.
      await c.query(`DELETE FROM "${old.schema}".migrations WHERE version = (SELECT max(version) FROM "${old.schema}".migrations)`);
    });
    assert.deepEqual((await admin.listTenants()).map((t) => t.name).filter((n) => n === 'half' || n === 'old'), ['old']);
    await assert.rejects(admin.createTenant('half'), cairnError('INVALID_ARGUMENT', /tenant 'half' already exists, half made by a createTenant that did not finish; dropTenant\('half'\) removes it/));
    await admin.dropTenant('half');
    await assert.rejects(admin.dropTenant('old'), cairnError('INVALID_ARGUMENT', /tenant 'old' has 1 live executor \('old-1'\)/));
    await engine.close();
    await admin.dropTenant('old');
    assert.ok(!(await h.leftovers()).some((x) => x.endsWith(`${h.prefix}half`) || x.endsWith(`${h.prefix}old`)));
  });

  test("a forced drop ends the tenant's connections and removes its role and schema", async () => {
    const admin = await h.admin();
    const t: Tenant = await admin.createTenant('gone');
    const engine = await h.engine(t, { executorId: 'gone-1' });
    engine.workflow('w', async () => 1);
    await engine.launch();
    const count = async () =>
      connectedAs(h.database, async (c) => (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1', [t.role])).rows[0]!.n);
    assert.ok((await count()) >= 1, 'the engine is connected as the tenant');
    await admin.dropTenant('gone', { force: true });
    for (let i = 0; i < 100 && (await count()) > 0; i++) await sleep(20);
    assert.equal(await count(), 0);
    assert.ok(!(await h.leftovers()).some((x) => x.endsWith(`${h.prefix}gone`)));
    await assert.rejects(connectedAs(t.url, async () => undefined), /role .* does not exist/);
  });
});
