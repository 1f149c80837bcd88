import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client, Engine, type Context, type WorkflowHistory, type WorkflowInfo } from '../src/index.js';
import { checkReplay } from '../src/testing/index.js';
import { cairnError } from './helpers/assertions.js';
import type { Store, Target } from './helpers/targets.js';
import { until, Worker, type WorkerEvent } from './helpers/worker.js';
import { finished } from './fixtures/spawn.js';
import type { OrderOutput, VersionCode } from './fixtures/versions-worker.js';

const ORDERS = 20;
const repo = fileURLToPath(new URL('..', import.meta.url));
const ids = (prefix: string, n = ORDERS) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const forever = () => new Promise<never>(() => undefined);

/** A deploy: one process running `code` as app version `appVersion` (test/fixtures/versions-worker.ts). */
const deploy = (store: Store, code: VersionCode, appVersion: string, start?: string): Worker =>
  new Worker('./versions-worker.ts', store, { VERSION_CODE: code, VERSION_APP: appVersion, ...(start && { VERSION_START: start }) });

const effects = (w: Worker, id?: string): WorkerEvent[] => w.events.filter((e) => e.ev === 'effect' && (id === undefined || (e as { id?: string }).id === id));
const divergenceWarnings = (w: Worker): WorkerEvent[] => w.events.filter((e) => e.ev === 'log' && e.level === 'warn' && /diverged/.test(e.msg ?? ''));

/**
 * Deploys across code changes, written once and run on every provider: workflows in flight are
 * finished by new code whose replay matches them, left untouched (PENDING, under their version)
 * for old code when it does not, and patches let new code take both paths.
 */
export function defineVersionsSuite(target: Target): void {
  describe(`versions and safe upgrades on ${target.kind}`, { skip: target.skip }, () => {
    const workers: Worker[] = [];
    const clients: Client[] = [];
    afterEach(async () => {
      for (const w of workers.splice(0)) w.dispose();
      await Promise.all(clients.splice(0).map((c) => c.close()));
      await target.closeAll();
    });
    after(() => target.dispose());

    const start = (w: Worker): Worker => (workers.push(w), w);
    const client = async (store: Store): Promise<Client> => {
      const c = await Client.open({ database: store.database, ...(store.schema && { schema: store.schema }) });
      clients.push(c);
      return c;
    };
    /** v1 starts the orders, which park in their recv; then v1 stops. */
    const parkOnV1 = async (store: Store, c: Client, prefix: string): Promise<void> => {
      const v1 = start(deploy(store, 'v1', 'v1', `${prefix}:${ORDERS}`));
      await v1.next('started');
      await until('every order is parked in its recv', async () => {
        const histories = await Promise.all(ids(prefix).map((id) => c.exportHistory(id)));
        return histories.every((h) => h.steps.some((s) => s.stepId === -2 && s.name === 'cairn.recv.deadline'));
      });
      await v1.stop();
    };
    const sendGo = (c: Client, list: string[]) => Promise.all(list.map((id) => c.send(id, `go ${id}`, 'go')));
    const all = async (c: Client, list: string[]): Promise<WorkflowInfo<unknown, OrderOutput>[]> =>
      Promise.all(list.map((id) => c.getWorkflow(id) as Promise<WorkflowInfo<unknown, OrderOutput>>));

    test('a step appended after the recv: v2 finishes all the orders v1 left parked', { timeout: 120_000 }, async () => {
      const store = await target.fresh();
      const c = await client(store);
      await parkOnV1(store, c, 'a');
      const v2 = start(deploy(store, 'v2-append', 'v2'));
      await v2.next('ready');
      await sendGo(c, ids('a'));
      await until('every order has finished', async () => (await all(c, ids('a'))).every((w) => w.status === 'SUCCESS'));
      for (const [i, w] of (await all(c, ids('a'))).entries()) {
        assert.deepEqual(w.output, { code: 'v2-append', charged: 100 + i, go: `go a-${i}` });
        assert.equal(w.appVersion, 'v2');
        assert.deepEqual((await c.listSteps(w.id)).map((s) => s.name), ['charge', 'cairn.recv', 'email']);
        // The charge v1 recorded was replayed, not run again: v2 ran only the appended step.
        assert.deepEqual(effects(v2, w.id).map((e) => (e as { step?: string }).step), ['email']);
      }
      assert.deepEqual(divergenceWarnings(v2), []);
      await v2.stop();
    });

    test('a step inserted without a patch: nothing runs, every order stays PENDING under v1 with one warning, and v1 finishes them', { timeout: 120_000 }, async () => {
      const store = await target.fresh();
      const c = await client(store);
      await parkOnV1(store, c, 'b');
      const v2 = start(deploy(store, 'v2-insert', 'v2'));
      await v2.next('ready');
      await until('v2 has handed every order back', async () => (await all(c, ids('b'))).every((w) => w.executorId === null));
      await sendGo(c, ids('b'));
      // Several heartbeats later v2 has still not taken any of them again.
      await sleep(1_500);
      for (const w of await all(c, ids('b'))) {
        assert.equal(w.status, 'PENDING');
        assert.equal(w.appVersion, 'v1');
        assert.equal(w.executorId, null);
        assert.deepEqual((await c.listSteps(w.id)).map((s) => s.name), ['charge']);
      }
      assert.deepEqual(await c.listWorkflows({ status: 'ERROR' }), []);
      assert.deepEqual(effects(v2), [], 'v2 ran no step body');
      const warnings = divergenceWarnings(v2);
      assert.deepEqual(warnings.map((w) => w.fields!.workflowId).sort(), ids('b').sort(), 'one warning per order');
      for (const w of warnings) {
        const f = w.fields!;
        assert.deepEqual([f.stepId, f.recordedName, f.calledName, f.recordedVersion, f.appVersion], [1, 'charge', 'reserve', 'v1', 'v2']);
        assert.match(f.callSite as string, /versions-worker\.ts:\d+:\d+$/);
      }
      const versions = await c.listVersions();
      assert.deepEqual(versions.map((v) => [v.appVersion, v.executors, v.pending]), [['v1', 0, ORDERS], ['v2', 1, 0]]);

      // An old process, started while v2 still runs, finishes them on the path they began.
      const v1 = start(deploy(store, 'v1', 'v1'));
      await until('every order has finished', async () => (await all(c, ids('b'))).every((w) => w.status === 'SUCCESS'));
      for (const [i, w] of (await all(c, ids('b'))).entries()) {
        assert.deepEqual(w.output, { code: 'v1', charged: 100 + i, go: `go b-${i}` });
        assert.deepEqual((await c.listSteps(w.id)).map((s) => s.name), ['charge', 'cairn.recv']);
      }
      assert.deepEqual(effects(v1), [], 'the recorded charges were replayed');
      assert.equal(divergenceWarnings(v2).length, ORDERS);
      await Promise.all([v1.stop(), v2.stop()]);
    });

    test("the insertion behind ctx.patched('reserve'): v2 finishes every order on the old path, and new orders take the patched one", { timeout: 120_000 }, async () => {
      const store = await target.fresh();
      const c = await client(store);
      await parkOnV1(store, c, 'p');
      const v2 = start(deploy(store, 'v2-patched', 'v2', 'n:3'));
      await v2.next('started');
      await sendGo(c, [...ids('p'), ...ids('n', 3)]);
      await until('every order has finished', async () => (await all(c, [...ids('p'), ...ids('n', 3)])).every((w) => w.status === 'SUCCESS'));
      for (const [i, w] of (await all(c, ids('p'))).entries()) {
        assert.deepEqual(w.output, { code: 'v2-patched', charged: 100 + i, go: `go p-${i}`, patched: false });
        assert.equal(w.appVersion, 'v2');
        assert.deepEqual((await c.listSteps(w.id)).map((s) => s.name), ['charge', 'cairn.recv']);
        assert.deepEqual(effects(v2, w.id), []);
      }
      for (const [i, w] of (await all(c, ids('n', 3))).entries()) {
        assert.deepEqual(w.output, { code: 'v2-patched', charged: 100 + i, go: `go n-${i}`, patched: true });
        assert.deepEqual((await c.listSteps(w.id)).map((s) => s.name), ['cairn.patch:reserve', 'reserve', 'charge', 'cairn.recv']);
        assert.deepEqual(effects(v2, w.id).map((e) => (e as { step?: string }).step), ['reserve', 'charge']);
      }
      assert.deepEqual(divergenceWarnings(v2), []);
      await v2.stop();
    });

    test('one workflow file under tsx and compiled by tsc: whichever runner started a workflow, the other finishes it', { timeout: 180_000 }, async (t) => {
      const store = await target.fresh();
      const out = mkdtempSync(join(tmpdir(), 'cairn-tsc-'));
      try {
        // Compile the fixture (and the library sources it imports) as a user's build would.
        const tsconfig = join(out, 'tsconfig.json');
        writeFileSync(
          tsconfig,
          JSON.stringify({
            extends: join(repo, 'tsconfig.json'),
            compilerOptions: { noEmit: false, outDir: out, rootDir: repo, typeRoots: [join(repo, 'node_modules/@types')] },
            files: [join(repo, 'test/fixtures/runner-order.ts')],
            include: [],
          }),
        );
        await promisify(execFile)(process.execPath, [join(repo, 'node_modules/typescript/bin/tsc'), '-p', tsconfig]);
        writeFileSync(join(out, 'package.json'), '{"type":"module"}');
        symlinkSync(join(repo, 'node_modules'), join(out, 'node_modules'));
        symlinkSync(join(repo, 'migrations'), join(out, 'migrations'));
        const runners = {
          tsx: ['--import', 'tsx', join(repo, 'test/fixtures/runner-order.ts')],
          tsc: [join(out, 'test/fixtures/runner-order.js')],
        };
        const run = async (runner: keyof typeof runners, mode: 'start' | 'finish', id: string): Promise<Array<Record<string, unknown>>> => {
          const env: Record<string, string | undefined> = {
            ...process.env, CAIRN_DATABASE: store.database, CAIRN_SCHEMA: store.schema ?? '', RUNNER_MODE: mode, RUNNER_ID: id,
          };
          delete env.CAIRN_APP_VERSION;
          const child = spawn(process.execPath, runners[runner], { env, stdio: ['ignore', 'pipe', 'inherit'] });
          const res = await finished(child);
          assert.equal(res.code, 0, `${runner} ${mode} exited with ${res.code ?? res.signal}`);
          return res.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
        };
        for (const [first, second] of [['tsx', 'tsc'], ['tsc', 'tsx']] as const) {
          const id = `from-${first}`;
          const started = await run(first, 'start', id);
          const ended = await run(second, 'finish', id);
          const parked = started.find((e) => e.ev === 'parked')!;
          const done = ended.find((e) => e.ev === 'finished')!;
          t.diagnostic(`${first} app version ${String(parked.appVersion)}, ${second} app version ${String(done.appVersion)}`);
          assert.deepEqual(done.recovered, [id], `the ${second} build recovered what the ${first} run left`);
          assert.deepEqual(done.result, { charged: 250, go: 'go!' });
          assert.equal(done.stored, done.appVersion, 'the workflow now belongs to the version that finished it');
          assert.equal(started.filter((e) => e.ev === 'effect').length, 1);
          assert.equal(ended.filter((e) => e.ev === 'effect').length, 0, 'the charge was not run again');
        }
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });

    test('CAIRN_APP_VERSION sets the app version when Engine.open is given none, and is checked', async () => {
      const store = await target.fresh();
      const before = process.env.CAIRN_APP_VERSION;
      try {
        process.env.CAIRN_APP_VERSION = 'release-7';
        const engine = await target.open(store);
        assert.equal(engine.appVersion, 'release-7');
        const given = await target.open(store, { appVersion: 'given' });
        assert.equal(given.appVersion, 'given');
        process.env.CAIRN_APP_VERSION = '';
        await assert.rejects(target.open(store), cairnError('INVALID_ARGUMENT', /CAIRN_APP_VERSION must be a non-empty string/));
      } finally {
        if (before === undefined) delete process.env.CAIRN_APP_VERSION;
        else process.env.CAIRN_APP_VERSION = before;
      }
    });

    test('patch markers are checkpoints: replays take the recorded path, and deprecatePatch steps over a marker', async () => {
      const store = await target.fresh();
      const ran: string[] = [];
      const v1 = await target.open(store, { appVersion: 'v1', executorId: 'x1' });
      const patchedCode = async (ctx: Context) => {
        const p = await ctx.patched('audit');
        if (p) await ctx.step('audit', () => void ran.push('audit'));
        await ctx.step('pay', () => void ran.push('pay'));
        await forever();
      };
      const wf = v1.workflow('pay', patchedCode);
      await wf.start(undefined, { id: 'with-marker' });
      await until('it has paid', async () => (await v1.listSteps('with-marker')).length === 3);
      await v1.close({ timeoutMs: 0 });
      assert.deepEqual(ran, ['audit', 'pay']);

      // The next version keeps only the new path and deprecates the patch.
      ran.length = 0;
      const v2 = await target.open(store, { appVersion: 'v2', executorId: 'x2' });
      let reached = 0;
      v2.workflow('pay', async (ctx: Context) => {
        await ctx.deprecatePatch('audit');
        await ctx.step('audit', () => void ran.push('audit'));
        await ctx.step('pay', () => void ran.push('pay'));
        reached++;
        return ctx.step('ship', () => 'shipped');
      });
      const [h] = await v2.recover();
      assert.equal(await h!.result(), 'shipped');
      assert.equal(reached, 1);
      assert.deepEqual(ran, []);
      assert.deepEqual((await v2.listSteps('with-marker')).map((s) => s.name), ['cairn.patch:audit', 'audit', 'pay', 'ship']);
      // A new execution under deprecatePatch records no marker.
      await v2.workflow('pay-new', async (ctx: Context) => {
        await ctx.deprecatePatch('audit');
        return ctx.step('audit', () => 'a');
      }).run(undefined, { id: 'fresh' });
      assert.deepEqual((await v2.listSteps('fresh')).map((s) => s.name), ['audit']);
    });

    test('checkReplay: a compatible change replays ok, an incompatible one names the step, both names and the call site here', async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { appVersion: 'v1' });
      const v1 = engine.workflow('ship', async (ctx: Context, n: number) => {
        const a = await ctx.step('pack', () => n);
        await ctx.sleep(1);
        const b = await ctx.step('label', () => a + 1);
        if (n > 1) await ctx.recv('go', 600_000);
        return b;
      });
      await v1.run(1, { id: 'done' });
      await v1.start(2, { id: 'waiting' });
      await until('it waits', async () => (await engine.exportHistory('waiting')).steps.some((s) => s.stepId === -4));
      // Histories go through JSON, as fixture files do.
      const histories = (await Promise.all(['done', 'waiting'].map((id) => engine.exportHistory(id)))).map(
        (h) => JSON.parse(JSON.stringify(h)) as WorkflowHistory,
      );
      assert.equal(histories[0]!.format, 'cairn.history');
      assert.deepEqual(histories[1]!.steps.map((s) => [s.stepId, s.name]), [[-4, 'cairn.recv.deadline'], [1, 'pack'], [2, 'cairn.sleep'], [3, 'label']]);

      const ran: string[] = [];
      const offline = await Engine.open({ database: 'sqlite::memory:' });
      try {
        const body = (name: string) => () => void ran.push(name);
        const compatible = offline.workflow('ship', async (ctx: Context, n: number) => {
          if (await ctx.patched('weigh')) await ctx.step('weigh', body('weigh'));
          await ctx.step('pack', body('pack'));
          await ctx.sleep(60_000);
          await ctx.step('label', body('label'));
          if (n > 1) await ctx.recv('go', 600_000);
          await ctx.step('notify', body('notify'));
        });
        assert.deepEqual(await checkReplay(compatible, histories), [{ id: 'done', ok: true }, { id: 'waiting', ok: true }]);

        const other = await Engine.open({ database: 'sqlite::memory:' });
        try {
          other.workflow('ship', async (ctx: Context) => {
            await ctx.step('pack', body('pack'));
            await ctx.step('weigh', body('weigh')); // inserted without a patch
            await ctx.step('label', body('label'));
          });
          const [done, waiting] = await checkReplay(other, histories);
          for (const r of [done!, waiting!]) {
            assert.equal(r.ok, false);
            assert.deepEqual([r.divergence!.stepId, r.divergence!.recordedName, r.divergence!.calledName], [2, 'cairn.sleep', 'weigh']);
            assert.match(r.divergence!.callSite!, /test\/versions\.ts:\d+:\d+$/);
            assert.match(r.divergence!.message, /step 2 was recorded as 'cairn.sleep' but this code called 'weigh' there/);
          }
        } finally {
          await other.close();
        }

        const third = await Engine.open({ database: 'sqlite::memory:' });
        try {
          third.workflow('ship', async (ctx: Context) => ctx.step('pack', body('pack'))); // drops the rest
          const [done] = await checkReplay(third, histories[0]!);
          assert.deepEqual([done!.divergence!.stepId, done!.divergence!.recordedName, done!.divergence!.calledName], [2, 'cairn.sleep', '(returned)']);
        } finally {
          await third.close();
        }
        assert.deepEqual(ran, [], 'no step body ran');

        await assert.rejects(checkReplay(compatible, [{ format: 'nope' } as never]), cairnError('INVALID_ARGUMENT', /history 0 given to checkReplay has format "nope"/));
        await assert.rejects(checkReplay(compatible, [{ ...histories[0]!, name: 'other' }]), cairnError('INVALID_ARGUMENT', /workflow 'other' was given to checkReplay with workflow 'ship'/));
        await assert.rejects(checkReplay({} as never, histories), cairnError('INVALID_ARGUMENT', /checkReplay needs a workflow/));
      } finally {
        await offline.close();
      }
    });

    test('listVersions counts live executors and PENDING workflows per version; exportHistory refuses unknown ids', async () => {
      const store = await target.fresh();
      const v1 = await target.open(store, { appVersion: 'v1', executorId: 'e1' });
      await v1.workflow('w', async () => forever()).start(undefined, { id: 'p1' });
      const v2 = await target.open(store, { appVersion: 'v2', executorId: 'e2' });
      v2.workflow('w', async () => forever());
      const versions = await v2.listVersions();
      assert.deepEqual(versions.map((v) => [v.appVersion, v.executors, v.pending]), [['v1', 1, 1], ['v2', 1, 0]]);
      for (const v of versions) assert.ok(v.firstSeenAt instanceof Date && v.lastSeenAt >= v.firstSeenAt);
      await v1.close({ timeoutMs: 0 });
      assert.deepEqual((await v2.listVersions()).map((v) => [v.appVersion, v.executors, v.pending]), [['v1', 0, 1], ['v2', 1, 0]]);
      await assert.rejects(v2.exportHistory('nope'), cairnError('WORKFLOW_NOT_FOUND', /nope/));
      await assert.rejects(v2.exportHistory(''), cairnError('INVALID_ARGUMENT', /workflow id/));
    });

    test('a heartbeat counts the unowned workflows its executor could adopt: of its names, less those it handed back', async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { appVersion: 'v1', executorId: 'owner' });
      const park = async (ctx: Context) => ctx.recv('go', 600_000);
      const x = engine.workflow('x', park);
      const y = engine.workflow('y', park);
      await Promise.all([x.start(undefined, { id: 'x-1' }), x.start(undefined, { id: 'x-2' }), y.start(undefined, { id: 'y-1' })]);
      const provider = target.provider(store);
      try {
        for (const id of ['x-1', 'x-2', 'y-1']) assert.equal(await provider.releaseWorkflow(id, 'owner', 'v1'), true);
        const beat = async (names: string[], exclude: string[]) => (await provider.heartbeat('probe', 'probe-host', null, { names, exclude })).unowned;
        assert.equal(await beat(['x', 'y'], []), 3);
        assert.equal(await beat(['x'], []), 2);
        assert.equal(await beat(['x', 'y'], ['x-1']), 2);
        assert.equal(await beat(['y'], ['x-1', 'x-2']), 1);
        assert.equal(await beat(['x'], ['x-1', 'x-2']), 0);
        assert.equal(await beat([], []), 0);
      } finally {
        await provider.close();
      }
    });

    test('retry runs a failed workflow again under its id: steps before the failed one are not run again', async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { appVersion: 'v1' });
      const runs: Record<string, number> = {};
      let mailUp = false;
      const count = (name: string) => (runs[name] = (runs[name] ?? 0) + 1);
      const order = engine.workflow('order', async (ctx: Context, cents: number) => {
        const reserved = await ctx.step('reserve', () => (count('reserve'), true));
        const charged = await ctx.step('charge', () => (count('charge'), cents));
        const mailed = await ctx.step('email', () => {
          count('email');
          if (!mailUp) throw new Error('mail server down');
          return 'sent';
        });
        return { reserved, charged, mailed };
      });
      await assert.rejects(order.run(40, { id: 'order-D1' }), /mail server down/);
      assert.equal((await engine.getWorkflow('order-D1')).status, 'ERROR');

      mailUp = true;
      const h = await engine.retry('order-D1');
      assert.equal(h.id, 'order-D1');
      assert.deepEqual(await h.result(), { reserved: true, charged: 40, mailed: 'sent' });
      assert.equal((await engine.getWorkflow('order-D1')).status, 'SUCCESS');
      assert.deepEqual({ ...runs }, { reserve: 1, charge: 1, email: 2 });
      assert.deepEqual((await engine.listSteps('order-D1')).map((s) => [s.stepId, s.name, s.output]), [[1, 'reserve', true], [2, 'charge', 40], [3, 'email', 'sent']]);
      assert.equal((await engine.listWorkflows()).length, 1, 'no new workflow');

      // Bad input, and workflows that may not be retried.
      await assert.rejects(engine.retry('order-D1'), cairnError('INVALID_ARGUMENT', /workflow 'order-D1' is SUCCESS; retry runs a workflow that ended ERROR, CANCELLED/));
      await assert.rejects(engine.retry('missing'), cairnError('WORKFLOW_NOT_FOUND', /missing/));
      await assert.rejects(engine.retry(''), cairnError('INVALID_ARGUMENT', /workflow id/));
      await assert.rejects(engine.retry(7 as never), cairnError('INVALID_ARGUMENT', /workflow id/));
      const parked = engine.workflow('parked', async (ctx: Context) => {
        await ctx.step('one', () => 1);
        await ctx.setEvent('stage', await ctx.step('stage', () => count('stage')));
        return ctx.recv('go', 600_000);
      });
      await parked.start(undefined, { id: 'running' });
      await until('it waits', async () => (await engine.listSteps('running')).length === 3);
      await assert.rejects(engine.retry('running'), cairnError('INVALID_ARGUMENT', /workflow 'running' is PENDING; .*cancel a running one first/));
      await engine.cancel('running');
      for (const fromStep of [0, -1, 1.5, '2', null]) {
        await assert.rejects(engine.retry('running', { fromStep } as never), cairnError('INVALID_ARGUMENT', /fromStep/), String(fromStep));
      }
      await assert.rejects(engine.retry('running', { fromStep: 6 }), cairnError('INVALID_ARGUMENT', /fromStep 6 is past the end of workflow 'running': it has checkpoints up to step 3, so fromStep may be 1 to 4/));
      await assert.rejects(engine.retry('running', 'x' as never), cairnError('INVALID_ARGUMENT', /retry options/));
      assert.equal((await engine.getWorkflow('running')).status, 'CANCELLED', 'bad input changed nothing');
      assert.equal(await engine.getEvent('running', 'stage'), 1);

      // A cancelled workflow retried from step 2: the event its step 3 set is set again, with the new value.
      const again = await engine.retry('running', { fromStep: 2 });
      await until('it waits again', async () => (await engine.getWorkflow('running')).status === 'PENDING' && (await engine.listSteps('running')).length === 3);
      assert.equal(runs.stage, 2);
      assert.equal(await engine.getEvent('running', 'stage'), 2);
      await engine.send('running', 'now', 'go');
      assert.equal(await again.result(), 'now');
    });

    test('a Client resumes and retries without the workflow code: a live engine that registers it adopts and runs it', async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { appVersion: 'v1', executorId: 'worker', leaseMs: 1_000, heartbeatMs: 100 });
      let up = false;
      const runs = { a: 0, b: 0 };
      const flaky = engine.workflow('flaky', async (ctx: Context) => {
        await ctx.step('a', () => ++runs.a);
        return ctx.step('b', () => {
          runs.b++;
          if (!up) throw new Error('dependency down');
          return 'done';
        });
      });
      const waiter = engine.workflow('waiter', async (ctx: Context) => ctx.recv('go', 600_000));
      await assert.rejects(flaky.run(undefined, { id: 'f-1' }), /dependency down/);
      await waiter.start(undefined, { id: 'w-1' });
      await engine.cancel('w-1');
      const c = await client(store);

      up = true;
      const retried = await c.retry('f-1');
      assert.equal(retried.id, 'f-1');
      assert.equal(await retried.result(), 'done');
      assert.deepEqual({ ...runs }, { a: 1, b: 2 });
      assert.equal((await c.getWorkflow('f-1')).executorId, 'worker');

      const resumed = await c.resume('w-1');
      await until('the engine has adopted it', async () => (await c.getWorkflow('w-1')).executorId === 'worker');
      await c.send('w-1', 'now', 'go');
      assert.equal(await resumed.result(), 'now');

      await assert.rejects(c.retry('f-1'), cairnError('INVALID_ARGUMENT', /workflow 'f-1' is SUCCESS/));
      await assert.rejects(c.retry('nope'), cairnError('WORKFLOW_NOT_FOUND', /nope/));
      await assert.rejects(c.resume('nope'), cairnError('WORKFLOW_NOT_FOUND', /nope/));
      await assert.rejects(c.retry('f-1', { fromStep: 0 }), cairnError('INVALID_ARGUMENT', /fromStep/));
      // Resuming a finished workflow changes nothing.
      await c.resume('f-1');
      assert.equal((await c.getWorkflow('f-1')).status, 'SUCCESS');
    });

    test('patch ids: blank or not strings, or reused at two places in one execution, are refused', async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { appVersion: 'v1' });
      const bad = ([
        ['blank', '', /patch id must be a non-empty string/],
        ['not a string', 42, /patch id must be a non-empty string, got 42/],
        ['too long', 'x'.repeat(300), /patch id must be at most 255 characters/],
      ] as const).map(([label, id, pattern]) => [label, engine.workflow(`bad-${label}`, async (ctx: Context) => ctx.patched(id as never)), pattern] as const);
      const twice = engine.workflow('twice', async (ctx: Context) => {
        await ctx.patched('a');
        await ctx.step('s', () => 1);
        await ctx.patched('a');
      });
      await assert.rejects(twice.run(undefined, { id: 'tw' }), cairnError('INVALID_ARGUMENT', /patch 'a' was already checked at step 1 of workflow 'tw'/));
      const deprecatedTwice = engine.workflow('dep-twice', async (ctx: Context) => {
        await ctx.deprecatePatch('b');
        await ctx.patched('b');
      });
      for (const [label, wf, pattern] of bad) await assert.rejects(wf.run(undefined), cairnError('INVALID_ARGUMENT', pattern), label);
      await assert.rejects(deprecatedTwice.run(undefined), cairnError('INVALID_ARGUMENT', /patch 'b' was already checked/));
      // Nothing it had recorded is lost: the failure is the workflow's outcome.
      assert.deepEqual((await engine.listSteps('tw')).map((s) => s.name), ['cairn.patch:a', 's']);
    });
  });
}
