import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Client, DatabaseConnectionError, Engine, PostgresProvider } from '../src/index.js';
import { defineFaultsSuite } from './faults.js';
import { finished, spawnFixture } from './fixtures/spawn.js';
import { Cluster } from './helpers/cluster.js';
import { ADMIN_URL, postgresTarget } from './helpers/targets.js';

const target = await postgresTarget('faults');
after(() => target.dispose());
defineFaultsSuite(target);

/** Resolves with `promise`'s value, or rejects once `ms` pass. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function withAdmin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

describe('faults on postgres: connections that die or cannot be made', { skip: target.skip }, () => {
  for (const mode of ['claim', 'migrate'] as const) {
    test(`a connection killed while checked out for a ${mode === 'claim' ? 'queue claim' : 'migration'} fails that call, not the process; the next call works`, async () => {
      const store = await target.fresh();
      const provider = target.provider(store);
      await provider.migrate();
      await provider.close();
      const app = `faults_${mode}_${process.pid}`;
      const url = new URL(store.database);
      url.searchParams.set('application_name', app);
      // Holds what the child's call waits for: the queue's claim lock, or the migrations table.
      const holder = new pg.Client({ connectionString: store.database });
      await holder.connect();
      // Another connection watches: inside the holder's transaction, pg_stat_activity would not change.
      const watcher = new pg.Client({ connectionString: store.database });
      await watcher.connect();
      try {
        await holder.query('BEGIN');
        if (mode === 'claim') await holder.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`cairn:${store.schema}:queue:q`]);
        // The migrator takes its advisory lock, then waits here, reading the applied version.
        else await holder.query(`LOCK TABLE "${store.schema}".migrations IN ACCESS EXCLUSIVE MODE`);
        const child = spawnFixture('faults-checkout-child.ts', { database: url.toString(), schema: store.schema! }, { FAULT_MODE: mode });
        const done = finished(child);
        // The child's backend, blocked on the lock inside its checked-out connection.
        let pid: number | undefined;
        for (let i = 0; i < 200 && pid === undefined; i++) {
          const res = await watcher.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
            [app],
          );
          pid = res.rows[0]?.pid;
          if (pid === undefined) await sleep(50);
        }
        assert.ok(pid !== undefined, 'the child never blocked on the lock');
        await watcher.query('SELECT pg_terminate_backend($1)', [pid]);
        await holder.query('COMMIT');
        const { code, signal, stdout } = await within(done, 20_000, 'the child');
        assert.equal(signal, null);
        assert.equal(code, 0, `the child exited with ${code}; it printed:\n${stdout}`);
        const lines = stdout.trim().split('\n');
        assert.equal(lines[0], 'waiting');
        // The call that lost its connection failed: 57P01 (admin shutdown), as such or as the cause.
        assert.match(lines[1]!, mode === 'claim' ? /^failed 57P01$/ : /^failed DATABASE_CONNECTION 57P01$/);
        assert.equal(lines[2], 'ok', 'the next call on the same pool worked');
      } finally {
        await holder.end().catch(() => undefined);
        await watcher.end().catch(() => undefined);
      }
    });
  }

  test('a 48-character schema: different statements on one connection and concurrently on a pool of two all work', async () => {
    const store = await target.fresh();
    const schema = `f${process.pid}_`.padEnd(48, 'x');
    assert.equal(schema.length, 48);
    for (const max of [1, 2]) {
      const provider = new PostgresProvider({ connectionString: store.database, schema, max, groupCommit: false });
      try {
        await provider.migrate();
        const now = Date.now();
        const row = (id: string) => ({ id, name: 'w', input: 'null', executorId: 'e', appVersion: 'v', queue: null, parentId: null, deadlineAt: null, createdAt: now });
        // Pairs of statements whose names share their first characters: list_steps / list_steps_of,
        // insert_workflow / insert_workflows, complete_workflow / complete_workflows.
        await provider.listSteps(`m${max}-a`);
        await provider.listStepsOf([`m${max}-a`]);
        assert.equal(await provider.insertWorkflow(row(`m${max}-a`)), null);
        await Promise.all([
          provider.listSteps(`m${max}-a`),
          provider.listStepsOf([`m${max}-a`, `m${max}-b`]),
          provider.getWorkflow(`m${max}-a`),
          provider.getEvent(`m${max}-a`, 'k'),
          provider.readStream(`m${max}-a`, 'k', 0),
          provider.insertWorkflow(row(`m${max}-b`)),
          provider.resetRecoveryAttempts(`m${max}-a`),
          provider.completeWorkflow(`m${max}-a`, 'SUCCESS', 'null', null, now, 'e'),
        ]);
        assert.equal((await provider.getWorkflow(`m${max}-a`))?.status, 'SUCCESS');
        assert.equal((await provider.getWorkflow(`m${max}-b`))?.status, 'PENDING');
      } finally {
        await provider.close();
      }
    }
  });

  test('nothing listening on the port: DatabaseConnectionError, retryable, naming the URL without its password', async () => {
    await assert.rejects(Engine.open({ database: 'postgres://postgres:s3cret-pw@127.0.0.1:5499/test' }), (err: unknown) => {
      assert.ok(err instanceof DatabaseConnectionError, `got ${String(err)}`);
      assert.equal(err.code, 'DATABASE_CONNECTION');
      assert.equal(err.retryable, true);
      assert.match(err.message, /postgres:\*\*\*@127\.0\.0\.1:5499\/test/);
      assert.doesNotMatch(err.message, /s3cret-pw/);
      assert.match(String((err.cause as { code?: string }).code), /ECONNREFUSED/);
      return true;
    });
  });

  test('a server that accepts the connection but never answers: DatabaseConnectionError after connectTimeoutMs, not a hang', async () => {
    // A listener on loopback that takes the TCP connection and says nothing, as a host that stopped answering does.
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      const began = Date.now();
      const provider = new PostgresProvider({ connectionString: `postgres://postgres@127.0.0.1:${port}/test`, connectTimeoutMs: 300 });
      await assert.rejects(Engine.open({ database: provider }), (err: unknown) => {
        assert.ok(err instanceof DatabaseConnectionError, `got ${String(err)}`);
        assert.equal(err.retryable, true);
        assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
        return true;
      });
      assert.ok(Date.now() - began < 5_000, `open gave up after ${Date.now() - began} ms`);
      assert.throws(() => new PostgresProvider({ connectionString: 'postgres://x@127.0.0.1/x', connectTimeoutMs: 0 }), { code: 'INVALID_ARGUMENT' });
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test('an unknown database: DatabaseConnectionError, not retryable, cause 3D000', async () => {
    const url = new URL(ADMIN_URL);
    url.pathname = '/cairn_no_such_database';
    for (const migrate of [true, false]) {
      await assert.rejects(Client.open({ database: url.toString(), migrate }), (err: unknown) => {
        assert.ok(err instanceof DatabaseConnectionError, `got ${String(err)}`);
        assert.equal(err.retryable, false);
        assert.equal((err.cause as { code?: string }).code, '3D000');
        assert.match(err.message, /does not exist/);
        return true;
      });
    }
  });

  test('the provider calls a refused connection and a terminated backend transient, a syntax error not', async () => {
    const provider = new PostgresProvider({ connectionString: ADMIN_URL });
    try {
      const refused = await new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5499/test' }).connect().catch((e: unknown) => e);
      assert.equal(provider.isTransient(refused), true);
      const syntax = await withAdmin(ADMIN_URL, (c) => c.query('SELEC 1').catch((e: unknown) => e));
      assert.equal((syntax as { code?: string }).code, '42601');
      assert.equal(provider.isTransient(syntax), false);
      const victim = new pg.Client({ connectionString: ADMIN_URL });
      victim.on('error', () => undefined);
      await victim.connect();
      const pid = (await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const sleeping = victim.query('SELECT pg_sleep(10)').catch((e: unknown) => e);
      await sleep(100);
      await withAdmin(ADMIN_URL, (c) => c.query('SELECT pg_terminate_backend($1)', [pid]));
      const terminated = await sleeping;
      assert.equal((terminated as { code?: string }).code, '57P01');
      assert.equal(provider.isTransient(terminated), true);
      assert.equal(provider.isTransient(new Error('Connection terminated unexpectedly')), true);
      await victim.end().catch(() => undefined);
    } finally {
      await provider.close();
    }
  });
});

const noCluster = target.skip || Cluster.unavailable();

describe('faults on postgres: a cluster of its own, restarted', { skip: noCluster }, () => {
  const cluster = new Cluster(`cairn_faults_${process.pid}`, 5433);
  before(() => cluster.create());
  after(() => cluster.drop());
  let n = 0;
  const schema = () => `f${++n}`;

  test('a wrong password: DatabaseConnectionError, not retryable, cause 28P01, password not shown', async () => {
    const wrong = 'not-the-password-9f2';
    await assert.rejects(Engine.open({ database: cluster.url('postgres', Cluster.PASSWORD_ROLE, wrong) }), (err: unknown) => {
      assert.ok(err instanceof DatabaseConnectionError, `got ${String(err)}`);
      assert.equal(err.retryable, false);
      assert.equal((err.cause as { code?: string }).code, '28P01');
      assert.match(err.message, new RegExp(`${Cluster.PASSWORD_ROLE}:\\*\\*\\*@127\\.0\\.0\\.1:${cluster.port}`));
      assert.doesNotMatch(err.message, new RegExp(wrong));
      return true;
    });
    // The right one gets in: the test is of the password, not of the role.
    await (await Client.open({ database: cluster.url('postgres', Cluster.PASSWORD_ROLE, Cluster.PASSWORD), schema: schema() })).close();
  });

  test('after a restart, an immediate restart and 4 s stopped, a send wakes a parked recv and a Client result() by notification, with 30 s polls', async () => {
    const s = schema();
    const engine = await Engine.open({ database: cluster.url(), schema: s, pollIntervalMs: 30_000 });
    const client = await Client.open({ database: cluster.url(), schema: s, pollIntervalMs: 30_000 });
    try {
      const parked = engine.workflow('parked', async (ctx) => ctx.recv<string>('go', 120_000));
      // Both LISTEN connections are up before the first restart.
      assert.equal(await client.getEvent('nobody', 'k', 10), null);
      const bounces: Array<[string, () => Promise<void>]> = [
        ['restart', async () => cluster.restart()],
        ['restart -m immediate', async () => cluster.restart('immediate')],
        ['stopped 4 s', async () => {
          cluster.stop();
          await sleep(4_000);
          cluster.start();
        }],
      ];
      for (const [label, bounce] of bounces) {
        const h = await parked.start(undefined, { id: `parked-${label}` });
        await sleep(300);
        await bounce();
        // Within 2 s of the server being back, both processes' LISTEN connections are back.
        await sleep(2_000);
        const result = client.handle<string>(h.id).result();
        await sleep(300);
        const t0 = Date.now();
        await client.send(h.id, `after ${label}`, 'go');
        assert.equal(await within(result, 15_000, `the result after ${label}`), `after ${label}`);
        const took = Date.now() - t0;
        assert.ok(took < 10_000, `after ${label}, the send took ${took} ms to wake the recv and the result; the polls are 30 s`);
      }
    } finally {
      await client.close();
      await engine.close({ timeoutMs: 2_000 });
    }
  });

  test('a wait begun while the server is down does not fail; its LISTEN connection comes up once the server does', async () => {
    const s = schema();
    const engine = await Engine.open({ database: cluster.url(), schema: s, pollIntervalMs: 30_000 });
    // Opened (and migrated) while the server is up, but no wait yet: no LISTEN connection.
    const client = await Client.open({ database: cluster.url(), schema: s, pollIntervalMs: 30_000 });
    try {
      const gate = engine.workflow('gate', async (ctx) => ctx.recv<string>('go', 120_000));
      const h = await gate.start(undefined, { id: 'gate-1' });
      await sleep(300);
      cluster.stop();
      let outcome: string | undefined;
      const result = client.handle<string>(h.id).result();
      result.then((v) => (outcome = `resolved ${v}`), (e: unknown) => (outcome = `rejected ${String(e)}`));
      await sleep(1_500);
      assert.equal(outcome, undefined, 'the wait is still on while the server is down');
      cluster.start();
      await sleep(2_500);
      const t0 = Date.now();
      await engine.send('gate-1', 'open', 'go');
      assert.equal(await within(result, 15_000, 'the result'), 'open');
      assert.ok(Date.now() - t0 < 10_000, `woken ${Date.now() - t0} ms after the send; the polls are 30 s`);
    } finally {
      await client.close();
      await engine.close({ timeoutMs: 2_000 });
    }
  });

  test('handle.result() rides out a 3 s outage while the workflow sleeps, and gets SUCCESS, not ECONNREFUSED', async () => {
    const s = schema();
    const engine = await Engine.open({ database: cluster.url(), schema: s, pollIntervalMs: 30_000 });
    // Polls often, so its checks hit the outage.
    const client = await Client.open({ database: cluster.url(), schema: s, pollIntervalMs: 200 });
    try {
      const sleeper = engine.workflow('sleeper', async (ctx) => {
        await ctx.sleep(5_000);
        return ctx.step('finish', () => 'slept');
      });
      await sleeper.start(undefined, { id: 'sleeper-1' });
      const result = client.handle<string>('sleeper-1').result();
      await sleep(500);
      cluster.stop();
      await sleep(3_000);
      cluster.start();
      assert.equal(await within(result, 15_000, 'the result'), 'slept');
      assert.equal((await client.handle('sleeper-1').status()).status, 'SUCCESS');
    } finally {
      await client.close();
      await engine.close({ timeoutMs: 2_000 });
    }
  });
});
