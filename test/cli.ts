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

/** Runs the real `cairn` process with these arguments; `input` is written to its standard input. */
function cairn(args: string[], env: Record<string, string | undefined> = {}, input?: string): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: { ...process.env, CAIRN_DATABASE_URL: undefined, DATABASE_URL: undefined, ...env },
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (input !== undefined) child.stdin!.end(input);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
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

    test('bulk actions by filter confirm and show progress; fork, delete, queues, schedules and gc', { timeout: 180_000 }, async () => {
      const store = await target.fresh();
      // A workflow parked in MAX_RECOVERY_ATTEMPTS_EXCEEDED: its process stopped twice before it ended.
      const stuck = async (ctx: Context) => {
        await ctx.step('once', () => 1);
        return new Promise<never>(() => undefined);
      };
      for (let i = 0; i < 3; i++) {
        const e = await target.open(store, { appVersion: 'old', executorId: 'gone', maxRecoveryAttempts: 1 });
        const wf = e.workflow('stuck', stuck);
        if (i === 0) await wf.start(undefined, { id: 'stuck-1' });
        else await e.recover();
        await until('stuck-1 checkpointed', async () => (await e.listSteps('stuck-1')).length === 1);
        await e.close({ timeoutMs: 0 });
      }
      const engine = await target.open(store, { executorId: 'worker', leaseMs: 1_000, heartbeatMs: 100 });
      let up = false;
      const charge = engine.workflow('charge', async (ctx: Context, cents: number) => {
        await ctx.step('reserve', () => cents);
        return ctx.step('pay', () => {
          if (!up) throw new Error('payments down');
          return cents;
        });
      });
      const hold = engine.workflow('hold', async (ctx: Context) => ctx.recv('go', 600_000));
      const tick = engine.workflow('tick', async (ctx: Context) => ctx.step('tock', () => 'tock'));
      engine.queue('mail', { concurrency: 1, rateLimit: { limit: 5, periodMs: 60_000 } });
      engine.schedule('nightly', '0 3 * * *', tick);
      await engine.launch();
      for (let i = 0; i < 6; i++) await charge.run(i, { id: `fail-${i}` }).catch(() => undefined);
      for (let i = 0; i < 3; i++) await hold.start(undefined, { id: `hold-${i}` });
      const statusOf = async (prefix: string) => (await engine.listWorkflows({ idPrefix: prefix })).map((w) => w.status);
      await hold.start(undefined, { id: 'later-1', queue: 'mail', delayMs: 3_600_000 });
      assert.equal((await engine.getWorkflow('stuck-1')).status, 'MAX_RECOVERY_ATTEMPTS_EXCEEDED');
      // Every status is listed and filtered.
      const everything = await cairn([...on(store), 'workflows', 'list', '--limit', '100']);
      for (const status of ['PENDING', 'DELAYED', 'ERROR', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED']) assert.match(everything.stdout, new RegExp(`\\s${status}\\s`));
      assert.deepEqual((await json<WorkflowInfo[]>(store, 'workflows', 'list', '--status', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')).map((w) => [w.id, w.appVersion, w.executorId]), [['stuck-1', 'old', 'gone']]);
      assert.deepEqual((await json<WorkflowInfo[]>(store, 'workflows', 'list', '--status', 'DELAYED', '--queue', 'mail')).map((w) => w.id), ['later-1']);
      assert.deepEqual((await json<WorkflowInfo[]>(store, 'workflows', 'list', '--app-version', 'old')).map((w) => w.id), ['stuck-1']);
      assert.equal((await json<WorkflowInfo[]>(store, 'workflows', 'list', '--executor', 'worker', '--id-prefix', 'hold-')).length, 3);

      // A filter without --yes asks first: "n", or no answer at all, does nothing and exits 1.
      const declined = await cairn([...on(store), 'workflows', 'cancel', '--status', 'PENDING', '--name', 'hold'], {}, 'n\n');
      assert.equal(declined.code, 1, declined.stderr);
      assert.match(declined.stderr, /cancel 3 workflows \(status PENDING, name hold\)\? \[y\/N\] /);
      assert.match(declined.stderr, /cairn: not confirmed; nothing was done/);
      assert.equal((await cairn([...on(store), 'workflows', 'cancel', '--name', 'hold'])).code, 1);
      assert.deepEqual(await statusOf('hold-'), ['PENDING', 'PENDING', 'PENDING']);
      const confirmed = await cairn([...on(store), 'workflows', 'cancel', '--status', 'PENDING', '--name', 'hold'], {}, 'y\n');
      assert.equal(confirmed.code, 0, confirmed.stderr);
      assert.match(confirmed.stderr, /cancel \[#{30}\] 3\/3/);
      assert.match(confirmed.stdout, /^cancel: 3 of 3 workflows done$/m);
      assert.deepEqual(await statusOf('hold-'), ['CANCELLED', 'CANCELLED', 'CANCELLED']);

      // retry by filter with --yes: the live engine runs them; one that cannot be retried is reported, exit 1.
      up = true;
      await charge.run(100, { id: 'fail-ok' });
      const retried = await json<{ action: string; matched: number; done: number; failed: unknown[] }>(store, 'workflows', 'retry', '--name', 'charge', '--status', 'ERROR', '--yes');
      assert.deepEqual(retried, { action: 'retry', matched: 6, done: 6, failed: [] });
      await until('the engine ran every retried workflow', async () => (await statusOf('fail-')).every((s) => s === 'SUCCESS'), 30_000);
      const mixed = await cairn([...on(store), '--json', 'workflows', 'resume', 'hold-0', 'fail-ok', 'nope']);
      assert.equal(mixed.code, 1, mixed.stderr);
      const mixedResult = JSON.parse(mixed.stdout) as { done: number; failed: Array<{ id: string; error: string }> };
      assert.equal(mixedResult.done, 2, 'resuming a SUCCESS workflow changes nothing and is no failure');
      assert.deepEqual(mixedResult.failed.map((f) => f.id), ['nope']);
      assert.match(mixedResult.failed[0]!.error, /no workflow with id 'nope' exists/);
      await until('hold-0 adopted again', async () => (await engine.getWorkflow('hold-0')).executorId === 'worker', 20_000);

      // fork: a new workflow handed to the engine, reusing checkpoints before --from-step.
      const fork = await json<{ id: string; forkedFrom: string; status: string }>(store, 'workflows', 'fork', 'fail-ok', '--from-step', '2', '--new-id', 'fail-ok-again');
      assert.deepEqual([fork.id, fork.forkedFrom], ['fail-ok-again', 'fail-ok']);
      assert.equal(await engine.handle('fail-ok-again').result(), 100);

      // queues and schedules
      await hold.start(undefined, { id: 'mail-0', queue: 'mail' });
      await hold.start(undefined, { id: 'mail-1', queue: 'mail' });
      await until('mail-0 running', async () => (await engine.getWorkflow('mail-0')).status === 'PENDING');
      const queues = await cairn([...on(store), 'queues']);
      assert.match(queues.stdout, /^QUEUE\s+ENQUEUED\s+DELAYED\s+RUNNING\s+CONCURRENCY\s+PER WORKER\s+RATE LIMIT\s+PARTITIONED$/m);
      assert.match(queues.stdout, /^mail\s+1\s+1\s+1\s+1\s+-\s+5 per 60000 ms\s+no$/m);
      const listed = await json<Array<{ name: string; paused: boolean; nextTickAt: string }>>(store, 'schedules', 'list');
      assert.deepEqual(listed.map((s) => [s.name, s.paused]), [['nightly', false]]);
      assert.match(listed[0]!.nextTickAt, /T03:00:00\.000Z$/);
      assert.match((await cairn([...on(store), 'schedules', 'pause', 'nightly'])).stdout, /schedule 'nightly' is paused/);
      assert.match((await cairn([...on(store), 'schedules', 'list'])).stdout, /^nightly\s+0 3 \* \* \*\s+UTC\s+tick\s+yes/m);
      assert.match((await cairn([...on(store), 'schedules', 'resume', 'nightly'])).stdout, /schedule 'nightly' is active; next tick \S+ 03:00:00Z/);
      const triggered = await json<{ id: string }>(store, 'schedules', 'trigger', 'nightly');
      assert.match(triggered.id, /^nightly@trigger:/);
      assert.equal(await engine.handle(triggered.id).result(), 'tock');
      const backfill = await json<{ ids: string[] }>(store, 'schedules', 'backfill', 'nightly', '--from', '2026-03-01T00:00:00Z', '--to', '2026-03-03T00:00:00Z');
      assert.deepEqual(backfill.ids, ['nightly@2026-03-01T03:00:00.000Z', 'nightly@2026-03-02T03:00:00.000Z']);
      const missingSchedule = await cairn([...on(store), 'schedules', 'pause', 'weekly']);
      assert.equal(missingSchedule.code, 2);
      assert.match(missingSchedule.stderr, /no schedule named 'weekly' exists/);

      // delete: finished ones go, a running one is refused and kept.
      assert.deepEqual(await json(store, 'workflows', 'delete', 'fail-ok-again'), { id: 'fail-ok-again', status: 'DELETED' });
      const refused = await cairn([...on(store), 'workflows', 'delete', 'hold-0']);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /workflow 'hold-0' is PENDING: only a finished workflow can be deleted; cancel it first/);
      const byFilter = await cairn([...on(store), 'workflows', 'delete', '--id-prefix', 'fail-', '--yes']);
      assert.equal(byFilter.code, 0, byFilter.stderr);
      assert.match(byFilter.stdout, /^delete: 7 of 7 workflows done$/m);
      assert.deepEqual(await statusOf('fail-'), []);

      // gc: asks unless --yes; deletes what finished before the cutoff, never a running workflow.
      const before = (await engine.listWorkflows()).length;
      assert.equal((await cairn([...on(store), 'gc', '--older-than', '1s'])).code, 1);
      assert.equal((await engine.listWorkflows()).length, before);
      await new Promise((r) => setTimeout(r, 1_100));
      const gc = await cairn([...on(store), '--json', 'gc', '--older-than', '1s', '--batch-size', '2', '--yes']);
      assert.equal(gc.code, 0, gc.stderr);
      const collected = JSON.parse(gc.stdout) as { deleted: number };
      assert.ok(collected.deleted >= 5, `gc deleted ${collected.deleted}`);
      assert.match(gc.stderr, /gc: 2 deleted so far/);
      const left = await engine.listWorkflows();
      assert.ok(left.every((w) => ['PENDING', 'ENQUEUED', 'DELAYED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED'].includes(w.status)), left.map((w) => `${w.id} ${w.status}`).join(', '));
      assert.ok(left.some((w) => w.id === 'hold-0'));
      assert.ok(left.some((w) => w.id === 'stuck-1'), 'a parked workflow goes only when its status is named');
      const parkedGc = await json<{ deleted: number }>(store, 'gc', '--older-than', '0s', '--status', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED', '--yes');
      assert.equal(parkedGc.deleted, 1);

      // bad usage
      const usage = async (args: string[], pattern: RegExp) => {
        const run = await cairn([...on(store), ...args]);
        assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
        assert.match(run.stderr, pattern);
      };
      await usage(['workflows', 'cancel'], /cancel needs workflow ids or a filter/);
      await usage(['workflows', 'cancel', 'hold-0', '--name', 'hold'], /name workflow ids or give a filter, not both/);
      await usage(['workflows', 'retry', '--older-than', 'yesterday'], /--older-than must be a duration such as 30m/);
      await usage(['workflows', 'fork', 'hold-0'], /required option '--from-step <n>' not specified/);
      await usage(['gc', '--older-than', '1h', '--status', 'PENDING', '--yes'], /--status cannot include PENDING/);
      await usage(['gc', '--older-than', '2999-01-01T00:00:00Z', '--yes'], /olderThan .* is in the future/);
      await usage(['schedules', 'backfill', 'nightly', '--from', 'then', '--to', '1h'], /--from must be an ISO time/);
      await usage(['queues', 'extra'], /too many arguments/);
    });

    test('cairn dashboard serves on 127.0.0.1 until SIGTERM, read-only when asked', { timeout: 60_000 }, async () => {
      const store = await target.fresh();
      const engine = await target.open(store);
      await engine.workflow('shown', async (ctx: Context) => ctx.step('s', () => 1)).run(undefined, { id: 'shown-1' });
      const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...on(store), '--json', 'dashboard', '--port', '0', '--read-only'], {
        env: { ...process.env, CAIRN_DATABASE_URL: undefined, DATABASE_URL: undefined },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      try {
        await until('the dashboard printed its address', () => stdout.includes('}'), 30_000);
        const { url } = JSON.parse(stdout) as { url: string };
        assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
        const list = await fetch(url);
        assert.equal(list.status, 200);
        const html = await list.text();
        assert.match(html, /shown-1/);
        const page = await (await fetch(`${url}workflows/shown-1`)).text();
        assert.ok(!/<button[^>]*>\s*(Cancel|Retry|Resume|Fork)/i.test(page), 'no action buttons in read-only mode');
        assert.equal((await fetch(`${url}workflows/shown-1/retry`, { method: 'POST' })).status, 403);
      } finally {
        child.kill('SIGTERM');
      }
      assert.equal(await exited, 0, stderr);
      const bad = await cairn([...on(store), 'dashboard', '--port', '70000']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /--port must be a port from 0 to 65535, got '70000'/);
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
