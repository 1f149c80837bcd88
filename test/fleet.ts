import assert from 'node:assert/strict';
import { after, afterEach, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, type EnqueueOptions, type WorkflowInfo } from '../src/index.js';
import { cairnError } from './helpers/assertions.js';
import type { Store, Target } from './helpers/targets.js';
import { openEffects, STEPS, type Effects, type FleetConfig, type JobInput, type JobOutput, type StepOutput } from './fixtures/fleet-shared.js';
import { until, Worker } from './helpers/worker.js';

/** One worker process of this suite (test/fixtures/fleet-worker.ts). */
const fleetWorker = (store: Store, config: FleetConfig): Worker => new Worker('./fleet-worker.ts', store, { FLEET_CONFIG: JSON.stringify(config) });

const count = <T>(xs: T[], f: (x: T) => boolean): number => xs.reduce((n, x) => n + (f(x) ? 1 : 0), 0);

/** Enqueues `total` workflows, 50 at a time. */
async function enqueueAll(client: Client, total: number, make: (n: number) => [string, JobInput, EnqueueOptions]): Promise<void> {
  for (let n = 0; n < total; n += 50) {
    await Promise.all(Array.from({ length: Math.min(50, total - n) }, (_, i) => client.enqueue(...make(n + i))));
  }
}

/** Every workflow SUCCESS, with the output of the executor that owns it, and exactly its five checkpoints. */
async function assertFinishedOnce(client: Client, workflows: WorkflowInfo[]): Promise<void> {
  for (const w of workflows) {
    assert.equal(w.status, 'SUCCESS', `${w.id} is ${w.status}`);
    assert.equal((w.output as JobOutput).executorId, w.executorId, `${w.id} was finished by its owner`);
  }
  for (const w of workflows) {
    const steps = await client.listSteps(w.id);
    const names = steps.filter((s) => s.name.startsWith('s')).map((s) => s.name);
    assert.deepEqual(names, Array.from({ length: STEPS }, (_, i) => `s${i + 1}`), `${w.id} has each checkpoint once`);
  }
}

/** Step bodies that ran more than once, by (workflow, step). */
function ranTwice(rows: Array<{ workflowId: string; step: number }>): Map<string, number> {
  const runs = new Map<string, number>();
  for (const r of rows) runs.set(`${r.workflowId}#${r.step}`, (runs.get(`${r.workflowId}#${r.step}`) ?? 0) + 1);
  return new Map([...runs].filter(([, n]) => n > 1));
}

/** Fleet: heartbeats, leases, adoption of dead executors' work, fencing; real processes killed and paused. */
export function defineFleetSuite(target: Target): void {
  describe(`fleet on ${target.kind}`, { skip: target.skip }, () => {
    const workers: Worker[] = [];
    const closers: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const w of workers.splice(0)) w.dispose();
      for (const close of closers.splice(0)) await close().catch(() => undefined);
      await target.closeAll();
    });
    after(() => target.dispose());

    async function setUp(): Promise<{ store: Store; client: Client; effects: Effects }> {
      const store = await target.fresh();
      const client = await Client.open({ database: store.database, ...(store.schema && { schema: store.schema }) });
      closers.push(() => client.close());
      const effects = await openEffects(store.database, store.schema, true);
      closers.push(() => effects.close());
      return { store, client, effects };
    }

    function worker(store: Store, config: FleetConfig): Worker {
      const w = fleetWorker(store, config);
      workers.push(w);
      return w;
    }

    test('bad lease options are refused', async () => {
      const store = await target.fresh();
      const open = (o: { leaseMs?: number; heartbeatMs?: number }) => target.open(store, o);
      for (const leaseMs of [0, -1, 1.5, Number.NaN, 2 ** 31]) await assert.rejects(open({ leaseMs }), cairnError('INVALID_ARGUMENT', /leaseMs/, { argument: 'leaseMs' }));
      for (const heartbeatMs of [0, 2.5, Number.POSITIVE_INFINITY]) await assert.rejects(open({ heartbeatMs }), cairnError('INVALID_ARGUMENT', /heartbeatMs/, { argument: 'heartbeatMs' }));
      await assert.rejects(open({ leaseMs: 1_000, heartbeatMs: 1_000 }), cairnError('INVALID_ARGUMENT', /heartbeatMs \(1000\) must be below leaseMs \(1000\)/));
      await assert.rejects(open({ leaseMs: 1_000, heartbeatMs: 5_000 }), cairnError('INVALID_ARGUMENT', /must be below leaseMs/));
    });

    test('listExecutors shows each engine alive with its pending work, and stopped once closed', async () => {
      const store = await target.fresh();
      const a = await target.open(store, { executorId: 'exec-a', appVersion: 'v1', leaseMs: 3_000 });
      const b = await target.open(store, { executorId: 'exec-b', appVersion: 'v1' });
      const parked = a.workflow('parked', async (ctx) => ctx.recv('go', 60_000));
      b.workflow('parked', async (ctx) => ctx.recv('go', 60_000));
      await parked.start(undefined, { id: 'p1' });
      await parked.start(undefined, { id: 'p2' });
      const byId = async () => new Map((await b.listExecutors()).map((e) => [e.id, e]));
      let executors = await byId();
      assert.equal(executors.get('exec-a')?.alive, true);
      assert.equal(executors.get('exec-a')?.pending, 2);
      assert.equal(executors.get('exec-a')?.pid, process.pid);
      assert.equal(executors.get('exec-b')?.pending, 0);
      assert.equal(executors.get('exec-a')?.stoppedAt, null);
      await a.close({ timeoutMs: 100 });
      executors = await byId();
      assert.equal(executors.get('exec-a')?.alive, false);
      assert.ok(executors.get('exec-a')?.stoppedAt instanceof Date);
      // Closed, so its parked work is adopted at once by the executor that recovers.
      const handles = await b.recover();
      assert.deepEqual(handles.map((h) => h.id).sort(), ['p1', 'p2']);
      assert.equal((await byId()).get('exec-b')?.pending, 2);
      await b.send('p1', 'now', 'go');
      assert.equal(await b.handle('p1').result(), 'now');
    });

    test('a queue held at its concurrency limit by the workflows of a dead executor drains once they are adopted', async () => {
      const store = await target.fresh();
      const stuck = await target.open(store, { executorId: 'gone', appVersion: 'v1', leaseMs: 3_000 });
      const hang = new Promise<never>(() => undefined);
      stuck.queue('tight', { concurrency: 2 });
      const hanging = stuck.workflow('work', async (ctx, n: number) => ctx.step('do', async () => (n < 2 ? hang : n)));
      await stuck.launch();
      for (const n of [0, 1]) await hanging.start(n, { queue: 'tight', id: `held-${n}` });
      await until('both are running in the executor that will die', async () => (await stuck.listWorkflows({ queue: 'tight', status: 'PENDING' })).length === 2);
      // It dies with both in flight (a close that abandons them stands in for the crash, and marks it stopped).
      await stuck.close({ timeoutMs: 50 });

      const live = await target.open(store, { executorId: 'alive', appVersion: 'v1', leaseMs: 3_000 });
      live.queue('tight', { concurrency: 2 });
      const work = live.workflow('work', async (ctx, n: number) => ctx.step('do', async () => n));
      await live.launch();
      const third = await work.start(2, { queue: 'tight', id: 'behind' });
      // Before adoption the queue is full: nothing else may start.
      assert.equal((await live.getWorkflow('behind')).status, 'ENQUEUED');
      await live.recover();
      assert.equal(await third.result(), 2);
      for (const n of [0, 1]) assert.equal(await live.handle(`held-${n}`).result(), n);
      for (const n of [0, 1]) assert.equal((await live.getWorkflow(`held-${n}`)).executorId, 'alive');
    });

    test('a process SIGKILLed and started again with default options recovers its work at boot, without waiting for the lease', { timeout: 120_000 }, async () => {
      const { store, client } = await setUp();
      const first = worker(store, { stepMs: 1, queues: [], direct: { count: 5, prefix: 'boot' } });
      const ready = await first.next('ready');
      await first.next('started');
      first.signal('SIGKILL');
      await first.exited;
      const restartedAt = Date.now();
      // Default lease: 30 s. The replacement has another pid, hence another default executor id.
      const second = worker(store, { stepMs: 1, queues: [] });
      const again = await second.next('ready');
      assert.notEqual(again.executorId, ready.executorId);
      assert.deepEqual([...again.recovered!].sort(), ['boot-0', 'boot-1', 'boot-2', 'boot-3', 'boot-4']);
      for (const w of again.recovered!) await client.send(w, 'go', 'go');
      const done = await until('the recovered workflows finish', async () => (await client.listWorkflows({ status: 'SUCCESS' })).length === 5, 20_000);
      assert.ok(done - restartedAt < 20_000, `recovered and finished ${done - restartedAt} ms after the restart`);
      const finished = await client.listWorkflows({});
      await assertFinishedOnce(client, finished);
      assert.ok(finished.every((w) => w.executorId === again.executorId));
      await second.stop();
    });

    if (target.kind === 'postgres') {
      test('SIGKILL of one of three workers for good: its work finishes on the others within the lease, spread across them, queue limits held', { timeout: 300_000 }, async (t: TestContext) => {
        const { store, client, effects } = await setUp();
        const leaseMs = 2_000;
        const heartbeatMs = 667;
        const queues = [
          { name: 'bulk', options: { workerConcurrency: 8 } },
          { name: 'limited', options: { concurrency: 4 } },
        ];
        const base = { leaseMs, heartbeatMs, stepMs: 2, queues };
        // The backlog is there before the workers start, so the kill lands mid-run.
        const producer = await target.open(store, { executorId: 'producer', appVersion: 'fleet-v1' });
        for (const q of queues) producer.queue(q.name, q.options);
        await producer.launch();
        const TOTAL = 2_000;
        const LIMITED = 40;
        await enqueueAll(producer, TOTAL, (n) => ['job', { n } satisfies JobInput, { queue: 'bulk', id: `bulk-${n}` }]);
        await enqueueAll(producer, LIMITED, (n) => ['job', { n, stepMs: 60 } satisfies JobInput, { queue: 'limited', id: `limited-${n}` }]);
        const victim = worker(store, { ...base, executorId: 'victim', direct: { count: 30, prefix: 'direct' } });
        const survivors = [worker(store, { ...base, executorId: 'survivor-1' }), worker(store, { ...base, executorId: 'survivor-2' })];
        for (const w of [victim, ...survivors]) await w.next('ready');
        await victim.next('started');

        // The limited queue never has more than 4 running, before, during and after the adoption.
        let sampling = true;
        let maxLimited = 0;
        let samples = 0;
        const sampler = (async () => {
          while (sampling) {
            const running = (await client.listWorkflows({ queue: 'limited', status: 'PENDING' })).length;
            maxLimited = Math.max(maxLimited, running);
            samples++;
            await sleep(50);
          }
        })();

        await until('the victim is mid-run', async () => count(await effects.rows(), (r) => r.pid === victim.pid) >= 300, 120_000);
        victim.signal('SIGKILL');
        const killedAt = Date.now();
        await victim.exited;
        const stranded = (await client.listWorkflows({ status: 'PENDING' })).filter((w) => w.executorId === 'victim');
        assert.ok(stranded.length > 0, 'the kill left workflows behind');
        const strandedIds = new Set(stranded.map((w) => w.id));
        const effectsAtKill = await effects.rows();

        const adoptedAt = await until('no workflow belongs to the dead worker', async () => {
          const rows = await client.listWorkflows({ status: ['PENDING', 'ENQUEUED'] });
          return !rows.some((w) => w.executorId === 'victim');
        });
        // Its own workflows waited for a message all along: they were parked in it at the kill.
        for (let i = 0; i < 30; i++) await client.send(`direct-${i}`, 'go', 'go');
        const finishedAt = await until('every workflow left behind has finished', async () => {
          const rows = await client.listWorkflows({ status: 'SUCCESS' });
          const done = new Set(rows.map((w) => w.id));
          return [...strandedIds].every((id) => done.has(id));
        }, 120_000);
        await until('all work is done', async () => (await client.listWorkflows({ status: 'SUCCESS' })).length === TOTAL + LIMITED + 30, 180_000);
        sampling = false;
        await sampler;
        for (const w of survivors) await w.stop();

        const all = await client.listWorkflows({});
        await assertFinishedOnce(client, all);
        const twice = ranTwice(await effects.rows());
        // Only step bodies in flight at the kill (a body whose effect committed, not its checkpoint) run again.
        for (const key of twice.keys()) assert.ok(strandedIds.has(key.split('#')[0]!), `${key} ran twice but was not in flight at the kill`);
        assert.ok(twice.size <= stranded.length, `${twice.size} step bodies ran twice, more than the ${stranded.length} in flight`);
        const direct = all.filter((w) => w.id.startsWith('direct-'));
        const owners = new Set(direct.map((w) => w.executorId));
        assert.deepEqual([...owners].sort(), ['survivor-1', 'survivor-2'], "the dead worker's own workflows were spread across both survivors");
        assert.ok(maxLimited <= 4, `the limited queue had ${maxLimited} workflows running at once`);
        assert.ok(adoptedAt - killedAt <= leaseMs + 2 * heartbeatMs, `adopted ${adoptedAt - killedAt} ms after the kill`);
        t.diagnostic(
          `stranded ${stranded.length} (${count(stranded, (w) => w.queue !== null)} queued), adopted ${adoptedAt - killedAt} ms and finished ` +
            `${finishedAt - killedAt} ms after the kill (lease ${leaseMs} ms, heartbeat ${heartbeatMs} ms); step bodies run twice: ${twice.size}; ` +
            `direct workflows per survivor: ${[...owners].map((o) => `${o}=${count(direct, (w) => w.executorId === o)}`).join(', ')}; ` +
            `limited queue max ${maxLimited} running over ${samples} samples; effects at the kill ${effectsAtKill.length}`,
        );
      });

      test('a worker paused by SIGSTOP past its lease is fenced: adopted work records nothing more from it, and it serves new work once resumed', { timeout: 300_000 }, async (t: TestContext) => {
        const { store, client, effects } = await setUp();
        const leaseMs = 2_000;
        const heartbeatMs = 500;
        const queues = [{ name: 'bulk', options: { workerConcurrency: 6 } }];
        const base = { leaseMs, heartbeatMs, stepMs: 30, queues };
        const paused = worker(store, { ...base, executorId: 'paused', only: 'paused' });
        const others = [worker(store, { ...base, executorId: 'other-1' }), worker(store, { ...base, executorId: 'other-2' })];
        for (const w of [paused, ...others]) await w.next('ready');
        const producer = await target.open(store, { executorId: 'producer', appVersion: 'fleet-v1' });
        const TOTAL = 300;
        await enqueueAll(producer, TOTAL, (n) => ['job', { n } satisfies JobInput, { queue: 'bulk', id: `job-${n}` }]);

        await until('the paused worker is busy', async () => count(await effects.rows(), (r) => r.pid === paused.pid) >= 40, 120_000);
        paused.signal('SIGSTOP');
        const stoppedAt = Date.now();
        const inFlight = (await client.listWorkflows({ status: 'PENDING' })).filter((w) => w.executorId === 'paused');
        assert.ok(inFlight.length > 0, 'the pause caught workflows in flight');
        const adoptedAt = await until('its work is adopted', async () => {
          const rows = await client.listWorkflows({ status: ['PENDING', 'ENQUEUED'] });
          return !rows.some((w) => w.executorId === 'paused');
        });
        await until('the adopted work has finished', async () => {
          const done = new Set((await client.listWorkflows({ status: 'SUCCESS' })).map((w) => w.id));
          return inFlight.every((w) => done.has(w.id));
        }, 120_000);
        paused.signal('SIGCONT');
        const resumedAt = Date.now();
        await until('it logs that it was superseded', () => paused.logs(/execution superseded/).length > 0, 20_000);
        // New work only it runs: it kept serving.
        const mine = [];
        for (let n = 0; n < 5; n++) mine.push(await producer.enqueue('only-paused', { n } satisfies JobInput, { queue: 'bulk', id: `mine-${n}` }));
        for (const h of mine) assert.equal(((await h.result()) as JobOutput).executorId, 'paused');
        await until('all work is done', async () => (await client.listWorkflows({ status: 'SUCCESS' })).length === TOTAL + 5, 180_000);
        for (const w of [paused, ...others]) await w.stop();

        const all = await client.listWorkflows({});
        await assertFinishedOnce(client, all);
        // Fenced: whatever the paused process recorded for a workflow it lost, it recorded before the pause.
        let late = 0;
        for (const w of inFlight) {
          for (const s of await client.listSteps(w.id)) {
            if ((s.output as StepOutput | undefined)?.pid === paused.pid && s.completedAt.getTime() > stoppedAt) late++;
          }
          assert.notEqual((await client.getWorkflow(w.id)).executorId, 'paused', `${w.id} was finished by its adopter`);
        }
        assert.equal(late, 0, 'checkpoints recorded by the paused process after its pause');
        const executors = new Map((await client.listExecutors()).map((e) => [e.id, e]));
        assert.ok(executors.get('paused')?.stoppedAt instanceof Date, 'the paused worker closed normally at the end');
        t.diagnostic(
          `paused with ${inFlight.length} in flight; adopted ${adoptedAt - stoppedAt} ms after the pause (lease ${leaseMs} ms); resumed at +${resumedAt - stoppedAt} ms; ` +
            `superseded log lines: ${paused.logs(/execution superseded/).length}; step bodies run twice: ${ranTwice(await effects.rows()).size}`,
        );
      });
    }

    if (target.kind === 'sqlite') {
      test('three processes on one file, one SIGKILLed for good: its work finishes on the others', { timeout: 300_000 }, async (t: TestContext) => {
        const { store, client, effects } = await setUp();
        const base = { leaseMs: 3_000, stepMs: 2, queues: [{ name: 'bulk', options: { workerConcurrency: 5 } }] };
        const victim = worker(store, { ...base, executorId: 'victim', direct: { count: 10, prefix: 'direct' } });
        const survivors = [worker(store, { ...base, executorId: 'survivor-1' }), worker(store, { ...base, executorId: 'survivor-2' })];
        for (const w of [victim, ...survivors]) await w.next('ready');
        await victim.next('started');
        const producer = await target.open(store, { executorId: 'producer', appVersion: 'fleet-v1' });
        const TOTAL = 300;
        await enqueueAll(producer, TOTAL, (n) => ['job', { n } satisfies JobInput, { queue: 'bulk', id: `bulk-${n}` }]);
        await until('the victim is mid-run', async () => count(await effects.rows(), (r) => r.pid === victim.pid) >= 100, 120_000);
        victim.signal('SIGKILL');
        const killedAt = Date.now();
        await victim.exited;
        const stranded = (await client.listWorkflows({ status: 'PENDING' })).filter((w) => w.executorId === 'victim');
        const adoptedAt = await until('no workflow belongs to the dead worker', async () => {
          const rows = await client.listWorkflows({ status: ['PENDING', 'ENQUEUED'] });
          return !rows.some((w) => w.executorId === 'victim');
        });
        for (let i = 0; i < 10; i++) await client.send(`direct-${i}`, 'go', 'go');
        await until('all work is done', async () => (await client.listWorkflows({ status: 'SUCCESS' })).length === TOTAL + 10, 180_000);
        for (const w of survivors) await w.stop();
        const all = await client.listWorkflows({});
        await assertFinishedOnce(client, all);
        const strandedIds = new Set(stranded.map((w) => w.id));
        const twice = ranTwice(await effects.rows());
        for (const key of twice.keys()) assert.ok(strandedIds.has(key.split('#')[0]!), `${key} ran twice but was not in flight at the kill`);
        assert.ok(all.filter((w) => w.id.startsWith('direct-')).every((w) => w.executorId !== 'victim'));
        t.diagnostic(`stranded ${stranded.length}; adopted ${adoptedAt - killedAt} ms after the kill; step bodies run twice: ${twice.size}`);
      });
    }
  });
}
