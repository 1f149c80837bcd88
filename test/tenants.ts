import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import type { Context } from '../src/index.js';
import { cairnError } from './helpers/assertions.js';
import type { TenantHarness } from './fixtures/tenant-harness.js';

/** Names that must be refused, with what the message says about each. */
export const BAD_NAMES: Array<[unknown, RegExp]> = [
  ["acme'; DROP ROLE postgres; --", /contains "'"/],
  ['acme;drop', /contains ";"/],
  ['a"b', /contains "\\""/],
  ['Acme', /contains "A"/],
  ['a-b', /contains "-"/],
  ['a b', /contains " "/],
  ['café', /contains "é"/],
  ['1acme', /does not start with a letter/],
  ['_acme', /does not start with a letter/],
  ['x'.repeat(41), /is 41 characters, more than 40/],
  ['y'.repeat(64), /is 64 characters, more than 40/],
  ['', /tenant name is empty/],
  [42, /must be a string, got number/],
  [null, /must be a string, got null/],
  [undefined, /must be a string, got undefined/],
];

/** Create, list, drop and the isolation an engine sees, on every database. */
export function defineTenantsSuite(h: TenantHarness): void {
  describe(`tenants on ${h.kind}`, { skip: h.skip }, () => {
    afterEach(() => h.closeEngines());
    after(() => h.dispose());

    test('bad tenant names are refused with a clear INVALID_ARGUMENT, and nothing is made', async () => {
      const admin = await h.admin();
      const before = await h.leftovers();
      for (const [name, message] of BAD_NAMES) {
        await assert.rejects(admin.createTenant(name as string), cairnError('INVALID_ARGUMENT', message, { argument: 'name' }), `create ${String(name)}`);
        await assert.rejects(admin.dropTenant(name as string), cairnError('INVALID_ARGUMENT', message, { argument: 'name' }), `drop ${String(name)}`);
      }
      assert.deepEqual(await admin.listTenants(), []);
      assert.deepEqual(await h.leftovers(), before, 'no role, schema or file was made');
      // 40 characters is the longest name: accepted.
      const long = await admin.createTenant('z'.repeat(40));
      assert.equal(long.name, 'z'.repeat(40));
      await admin.dropTenant(long.name);
      assert.deepEqual(await h.leftovers(), before);
    });

    test('creating an existing tenant and dropping an unknown one are clear errors; list shows each tenant once', async () => {
      const admin = await h.admin();
      const before = await h.leftovers();
      const dup = await admin.createTenant('dup');
      const made = await h.leftovers();
      await assert.rejects(admin.createTenant('dup'), cairnError('INVALID_ARGUMENT', /^tenant 'dup' already exists/, { argument: 'name' }));
      assert.deepEqual(await h.leftovers(), made, 'the second create changed nothing');
      await assert.rejects(admin.dropTenant('ghost'), cairnError('INVALID_ARGUMENT', /there is no tenant named 'ghost'/, { argument: 'name' }));
      const other = await admin.createTenant('another');
      const listed = await admin.listTenants();
      assert.deepEqual(listed.map((t) => t.name), ['another', 'dup']);
      assert.equal(listed[1]!.schema, dup.schema);
      assert.equal(listed[1]!.role, dup.role);
      if (h.kind === 'sqlite') {
        assert.equal(dup.schema, null);
        assert.equal(dup.role, null);
        assert.equal(listed[1]!.url, dup.url);
      } else {
        assert.equal(dup.schema, `${h.prefix}dup`);
        assert.equal(dup.role, `${h.prefix}dup`);
        assert.match(dup.url, new RegExp(`^postgres://${h.prefix}dup:[A-Za-z0-9_-]{43}@`), 'the URL carries the generated password');
        assert.equal(listed[1]!.url, dup.url.replace(/:[A-Za-z0-9_-]{43}@/, '@'), 'a listed URL carries none');
      }
      // A second admin on the same place sees the same tenants.
      assert.deepEqual((await (await h.admin()).listTenants()).map((t) => t.name), ['another', 'dup']);
      await admin.dropTenant('dup');
      await admin.dropTenant(other.name);
      await assert.rejects(admin.dropTenant('dup'), cairnError('INVALID_ARGUMENT', /there is no tenant named 'dup'/));
      assert.deepEqual(await admin.listTenants(), []);
      assert.deepEqual(await h.leftovers(), before);
    });

    test("a tenant's engine never sees another tenant's workflows, messages, queues or schedules", async () => {
      const admin = await h.admin();
      const a = await admin.createTenant('iso_a');
      const b = await admin.createTenant('iso_b');
      const engineA = await h.engine(a, { executorId: 'exec-a' });
      const engineB = await h.engine(b, { executorId: 'exec-b', migrate: false });
      const inbox = (ctx: Context, topic: string) => ctx.recv<string>(topic, 300);
      const waitA = engineA.workflow('inbox', inbox);
      const waitB = engineB.workflow('inbox', inbox);
      engineB.workflow('hold', async () => 'held');
      engineB.queue('b_jobs', { concurrency: 1 });
      await engineB.launch();
      await engineB.schedules.create('b_nightly', '0 3 * * *', 'hold');

      // B: a message waiting for 'shared-1' on topic 'x', and a queued workflow, delayed.
      const heldB = await waitB.start('never', { id: 'shared-1' });
      await engineB.send('shared-1', 'for B only', 'x');
      await engineB.enqueue('hold', undefined, { queue: 'b_jobs', id: 'b-queued', delayMs: 600_000 });

      assert.deepEqual((await engineA.listWorkflows()).map((w) => w.id), []);
      assert.deepEqual(await engineA.listQueues(), []);
      assert.deepEqual(await engineA.schedules.list(), []);
      await assert.rejects(engineA.getWorkflow('shared-1'), cairnError('WORKFLOW_NOT_FOUND', /no workflow with id 'shared-1'/));
      await assert.rejects(engineA.send('shared-1', 'from A', 'x'), cairnError('WORKFLOW_NOT_FOUND', /no workflow with id 'shared-1'/));
      // A workflow of A under B's id reads A's messages only: B's is not there.
      assert.equal(await waitA.run('x', { id: 'shared-1' }), null);

      assert.deepEqual((await engineB.listWorkflows({ order: 'asc' })).map((w) => w.id).sort(), ['b-queued', 'shared-1']);
      assert.deepEqual((await engineB.listQueues()).map((q) => [q.name, q.delayed]), [['b_jobs', 1]]);
      assert.deepEqual((await engineB.schedules.list()).map((s) => s.name), ['b_nightly']);
      assert.equal(await waitB.run('x', { id: 'shared-2' }), null);
      await engineB.cancel(heldB.id);
      await h.closeEngines();
      await admin.dropTenant('iso_a');
      await admin.dropTenant('iso_b');
    });

    test('dropTenant refuses while an executor of the tenant is alive, unless forced', async () => {
      const admin = await h.admin();
      const t = await admin.createTenant('busy');
      const engine = await h.engine(t, { executorId: 'busy-1' });
      const echo = engine.workflow('echo', async (ctx: Context, n: number) => ctx.step('n', () => n));
      assert.equal(await echo.run(7), 7);
      await assert.rejects(admin.dropTenant('busy'), cairnError('INVALID_ARGUMENT', /tenant 'busy' has 1 live executor \('busy-1'\); close its engines first, or pass \{ force: true \}/, { argument: 'force' }));
      assert.ok((await admin.listTenants()).some((x) => x.name === 'busy'), 'a refused drop changes nothing');
      await engine.close();
      // A closed engine's executor is stopped: no force needed.
      const again = await h.engine(t, { executorId: 'busy-2', migrate: false });
      await assert.rejects(admin.dropTenant('busy'), cairnError('INVALID_ARGUMENT', /1 live executor \('busy-2'\)/));
      await admin.dropTenant('busy', { force: true });
      assert.ok(!(await admin.listTenants()).some((x) => x.name === 'busy'));
      await again.close({ timeoutMs: 500 }).catch(() => undefined);
      const t2 = await admin.createTenant('calm');
      const calm = await h.engine(t2);
      await calm.close();
      await admin.dropTenant('calm');
      assert.ok(!(await admin.listTenants()).some((x) => x.name === 'calm'));
    });

    test('TenantAdmin.open refuses options it cannot use', async () => {
      const { TenantAdmin } = await import('../src/index.js');
      await assert.rejects(TenantAdmin.open({} as never), cairnError('INVALID_ARGUMENT', /exactly one of database .* and directory/));
      await assert.rejects(TenantAdmin.open({ database: 'sqlite:./x.db' }), cairnError('INVALID_ARGUMENT', /postgres:\/\/ or postgresql:\/\/ URL, got 'sqlite:…'; for SQLite pass \{ directory \}/));
      await assert.rejects(TenantAdmin.open({ database: 'postgres://x', prefix: 'Bad' }), cairnError('INVALID_ARGUMENT', /tenant prefix "Bad" is not allowed/));
      await assert.rejects(TenantAdmin.open({ database: 'postgres://x', prefix: 'toolong12' }), cairnError('INVALID_ARGUMENT', /1 to 8 characters/));
      const admin = await h.admin();
      await admin.close();
      await assert.rejects(admin.listTenants(), cairnError('INVALID_ARGUMENT', /this TenantAdmin is closed/));
    });
  });
}
