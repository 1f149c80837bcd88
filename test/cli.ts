import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, afterEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Context, ExecutorInfo, VersionInfo, WorkflowHistory, WorkflowInfo } from '../src/index.js';
import type { Store, Target } from './helpers/targets.js';
import { until } from './helpers/worker.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `cairn` process with these arguments. */
function cairn(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: { ...process.env, CAIRN_DATABASE_URL: undefined, DATABASE_URL: undefined, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The `cairn` command run as a real process against a database holding workflows in several statuses. */
export function defineCliSuite(target: Target): void {
  describe(`the cairn command on ${target.kind}`, { skip: target.skip }, () => {
    afterEach(() => target.closeAll());
    after(() => target.dispose());

    const on = (store: Store) => ['--database', store.database, ...(store.schema ? ['--schema', store.schema] : [])];
    const json = async <T>(store: Store, ...args: string[]): Promise<T> => {
      const run = await cairn([...on(store), '--json', ...args]);
      assert.equal(run.code, 0, `cairn ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
      return JSON.parse(run.stdout) as T;
    };

    test('lists, shows and steers workflows; --json for scripts; exit codes 0, 1 and 2', { timeout: 120_000 }, async () => {
      const store = await target.fresh();
      const engine = await target.open(store, { appVersion: 'v1', executorId: 'worker', leaseMs: 1_000, heartbeatMs: 100 });
      let up = false;
      const charge = engine.workflow('charge', async (ctx: Context, cents: number) => {
        await ctx.step('reserve', () => cents);
        return ctx.step('pay', () => {
          if (!up) throw new Error('payments down');
          return { paid: cents, note: 'red \u001b[31malert\u001b[0m' };
        });
      });
      const wait = engine.workflow('wait', async (ctx: Context) => ctx.recv('go', 600_000));
      await charge.run(5, { id: 'c-failed' }).catch(() => undefined);
      up = true;
      await charge.run(7, { id: 'c-paid' });
      up = false;
      await assert.rejects(charge.run(9, { id: 'c-err' }), /payments down/);
      await wait.start(undefined, { id: 'w-parked' });
      await wait.start(undefined, { id: 'w-cancel' });

      // list, with filters
      const human = await cairn([...on(store), 'workflows', 'list']);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout.split('\n')[0]!, /^ID\s+NAME\s+STATUS\s+QUEUE\s+EXECUTOR\s+VERSION\s+CREATED$/);
      for (const id of ['c-failed', 'c-paid', 'c-err', 'w-parked', 'w-cancel']) assert.match(human.stdout, new RegExp(`^${id}\\s`, 'm'));
      const all = await json<WorkflowInfo[]>(store, 'workflows', 'list');
      assert.equal(all.length, 5);
      assert.deepEqual((await json<WorkflowInfo[]>(store, 'workflows', 'list', '--status', 'ERROR')).map((w) => w.id).sort(), ['c-err', 'c-failed']);
      assert.deepEqual((await json<WorkflowInfo[]>(store, 'workflows', 'list', '--name', 'wait', '--order', 'asc')).map((w) => w.id), ['w-parked', 'w-cancel']);
      assert.equal((await json<WorkflowInfo[]>(store, 'workflows', 'list', '--limit', '2')).length, 2);
      assert.equal((await json<WorkflowInfo[]>(store, 'workflows', 'list', '--created-after', '1h')).length, 5);
      assert.equal((await json<WorkflowInfo[]>(store, 'workflows', 'list', '--created-before', '2000-01-01T00:00:00Z')).length, 0);

      // get and steps; stored text cannot drive the terminal
      const got = await cairn([...on(store), 'workflows', 'get', 'c-paid']);
      assert.equal(got.code, 0, got.stderr);
      assert.match(got.stdout, /^status:\s+SUCCESS$/m);
      assert.match(got.stdout, /red \\u001b\[31malert\\u001b\[0m/);
      assert.ok(!got.stdout.includes('\u001b'), 'no raw escape character reaches the terminal');
      const info = await json<WorkflowInfo>(store, 'workflows', 'get', 'c-err');
      assert.equal(info.status, 'ERROR');
      assert.deepEqual(info.error, { name: 'Error', message: 'payments down' });
      const steps = await cairn([...on(store), 'workflows', 'steps', 'c-err']);
      assert.match(steps.stdout, /^1\s+reserve\s+1\s+\d+\s+9$/m);
      assert.match(steps.stdout, /^2\s+pay\s+1\s+\d+\s+error Error: payments down$/m);

      // cancel, retry and resume: the live engine adopts what the command hands over
      assert.deepEqual(await json(store, 'workflows', 'cancel', 'w-cancel'), { id: 'w-cancel', status: 'CANCELLED' });
      up = true;
      const retried = await cairn([...on(store), 'workflows', 'retry', 'c-err']);
      assert.equal(retried.code, 0, retried.stderr);
      assert.match(retried.stdout, /workflow 'c-err' is PENDING/);
      await until('the engine has run the retried workflow', async () => (await engine.getWorkflow('c-err')).status === 'SUCCESS', 20_000);
      assert.deepEqual((await engine.getWorkflow('c-err')).output, { paid: 9, note: 'red \u001b[31malert\u001b[0m' });
      assert.equal((await json<{ status: string }>(store, 'workflows', 'resume', 'w-cancel')).status, 'PENDING');
      await until('the engine has adopted the resumed workflow', async () => (await engine.getWorkflow('w-cancel')).executorId === 'worker', 20_000);
      await engine.send('w-cancel', 'now', 'go');
      assert.equal(await engine.handle('w-cancel').result(), 'now');

      // the fleet, versions and histories
      const executors = await json<ExecutorInfo[]>(store, 'executors');
      assert.deepEqual(executors.map((e) => [e.id, e.alive, e.appVersion]), [['worker', true, 'v1']]);
      assert.match((await cairn([...on(store), 'executors'])).stdout, /^worker\s+\S+\s+\d+\s+v1\s+yes\s+\d+s ago\s+1$/m);
      const versions = await json<VersionInfo[]>(store, 'versions');
      assert.deepEqual(versions.map((v) => [v.appVersion, v.executors, v.pending]), [['v1', 1, 1]]);
      const history = JSON.parse((await cairn([...on(store), 'export', 'c-paid'])).stdout) as WorkflowHistory;
      assert.deepEqual([history.format, history.workflowId, history.steps.map((s) => s.name)], ['cairn.history', 'c-paid', ['reserve', 'pay']]);

      // exit codes
      const usage = async (args: string[], pattern: RegExp, env?: Record<string, string>) => {
        const run = await cairn(args, env);
        assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
        assert.match(run.stderr, pattern);
      };
      await usage([...on(store), 'workflows', 'lst'], /unknown command 'lst'/);
      await usage([...on(store), 'frobnicate'], /unknown command 'frobnicate'/);
      await usage([...on(store), 'workflows', 'list', '--status', 'DONE'], /argument 'DONE' is invalid/);
      await usage([...on(store), 'workflows', 'list', '--limit', '0'], /--limit must be a positive whole number, got '0'/);
      await usage([...on(store), 'workflows', 'list', '--created-after', 'yesterday'], /--created-after must be an ISO time/);
      await usage([...on(store), 'workflows', 'retry', 'c-paid', '--from-step', 'x'], /--from-step must be a positive whole number/);
      await usage([...on(store), 'workflows', 'retry', 'c-paid'], /INVALID_ARGUMENT: workflow 'c-paid' is SUCCESS/);
      await usage([...on(store), 'workflows', 'get'], /missing required argument 'id'/);
      await usage(['executors'], /no database: pass --database/);
      const missing = await cairn([...on(store), 'workflows', 'get', 'nope']);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^cairn: WORKFLOW_NOT_FOUND: no workflow with id 'nope' exists/);
      const fromEnv = await cairn(['--json', ...(store.schema ? ['--schema', store.schema] : []), 'workflows', 'list', '--limit', '1'], { CAIRN_DATABASE_URL: store.database });
      assert.equal(fromEnv.code, 0, fromEnv.stderr);
      assert.equal((JSON.parse(fromEnv.stdout) as unknown[]).length, 1);
      const help = await cairn(['--help']);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /Usage: cairn/);
    });

    test('a database the command cannot use: unreachable or never migrated exits 1, a bad location 2', async () => {
      const store = await target.fresh();
      if (target.kind === 'postgres') {
        const run = await cairn(['--database', 'postgres://postgres@127.0.0.1:1/none', 'workflows', 'list']);
        assert.equal(run.code, 1, run.stderr);
        assert.match(run.stderr, /^cairn: DATABASE_CONNECTION: /);
      } else {
        const run = await cairn(['--database', 'sqlite:/nonexistent-dir/x/y.db', 'workflows', 'list']);
        assert.equal(run.code, 2, run.stderr);
        assert.match(run.stderr, /^cairn: INVALID_ARGUMENT: cannot open SQLite database '\/nonexistent-dir\/x\/y\.db'/);
      }
      const unmigrated = target.kind === 'postgres' ? ['--database', store.database, '--schema', 'never_migrated'] : ['--database', store.database];
      const run = await cairn([...unmigrated, 'versions']);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /^cairn: MIGRATION: .*migrate/);
      const migrated = await cairn([...unmigrated, 'migrate']);
      assert.equal(migrated.code, 0, migrated.stderr);
      assert.equal((await cairn([...unmigrated, 'versions'])).code, 0);
    });
  });
}
