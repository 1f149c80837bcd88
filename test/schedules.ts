import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, afterEach, describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CairnError, InvalidArgumentError, type Engine, type ScheduledInput, type ScheduleInfo, type Workflow, type WorkflowInfo } from '../src/index.js';
import {
  APP_VERSION,
  CONFIG_ENV,
  openTickLog,
  registerBeat,
  type BeatOutput,
  type DeclaredSchedule,
  type ReadyEvent,
  type TickLog,
  type TickRow,
  type WorkerConfig,
} from './fixtures/schedule-worker.js';
import { spawnFixture } from './fixtures/spawn.js';
import type { Store, Target } from './helpers/targets.js';

/**
 * Cron schedules with real processes: several schedulers sharing per-second schedules (each tick
 * starts exactly one workflow, which runs once), ticks missed while every process was stopped
 * (backfilled or skipped), run-time management from one process seen by a running worker in
 * another, trigger and backfill, and bad input.
 *
 * Ticks are read back two ways: the workflows (ids `<schedule>@<ISO tick>`, their status and
 * output) and the tick log of test/fixtures/schedule-worker.ts, one row per run of the step body.
 */

const SECOND = 1_000;
/** The fallback poll of SQLite workers: the only way they see another process's change. */
const SQLITE_POLL_MS = 200;
const EVERY_SECOND = '* * * * * *';

const iso = (ms: number): string => new Date(ms).toISOString();
const tickOf = (id: string): number => Date.parse(id.slice(id.indexOf('@') + 1));
const ceilSecond = (ms: number): number => Math.ceil(ms / SECOND) * SECOND;

/** Every whole second from `from` to `to`, both included, `step` seconds apart. */
function seconds(from: number, to: number, step = 1): number[] {
  const out: number[] = [];
  for (let t = from; t <= to; t += step * SECOND) out.push(t);
  return out;
}

async function sleepUntil(at: number): Promise<void> {
  const ms = at - Date.now();
  if (ms > 0) await sleep(ms);
}

function assertInvalid(err: unknown, pattern: RegExp): true {
  assert.ok(err instanceof CairnError, `expected a CairnError, got ${String(err)}`);
  assert.ok(err instanceof InvalidArgumentError, `expected an InvalidArgumentError, got ${err.name}`);
  assert.equal(err.code, 'INVALID_ARGUMENT');
  assert.match(err.message, pattern);
  return true;
}

interface WorkerProcess {
  readonly child: ChildProcess;
  readonly executorId: string;
  /** Resolves once the worker has launched. */
  readonly ready: Promise<ReadyEvent>;
  /** SIGTERM, then waits for a clean exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
}

/** Schedule definitions stripped of what changes with the clock, for before/after comparisons. */
const stored = (list: ScheduleInfo[]) => list.map(({ nextTickAt: _next, ...rest }) => rest);

export function defineScheduleSuite(target: Target): void {
  const pg = target.kind === 'postgres';
  /** Scheduler processes sharing a schedule: several on Postgres, one on SQLite. */
  const processes = pg ? 3 : 1;
  /**
   * How long a change made in one process may take to reach a running worker in another: a
   * notification on Postgres (the default fallback poll is 5 s, so this bound needs it), the
   * fallback poll plus slack on SQLite.
   */
  const reactMs = pg ? 800 : SQLITE_POLL_MS + 700;
  const workerPoll = pg ? {} : { pollIntervalMs: SQLITE_POLL_MS };

  describe(`schedules across processes on ${target.kind}`, { skip: target.skip }, () => {
    const children = new Set<ChildProcess>();
    const logs: TickLog[] = [];

    afterEach(async () => {
      await Promise.all(
        [...children].map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              child.once('exit', () => resolve());
              child.kill('SIGKILL');
            }),
        ),
      );
      children.clear();
      await Promise.all(logs.splice(0).map((l) => l.close()));
      await target.closeAll();
    });
    after(() => target.dispose());

    function startWorker(store: Store, executorId: string, config: WorkerConfig): WorkerProcess {
      const child = spawnFixture('./schedule-worker.ts', store, { CAIRN_EXECUTOR_ID: executorId, [CONFIG_ENV]: JSON.stringify(config) });
      children.add(child);
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.once('exit', (code, signal) => resolve({ code, signal })),
      );
      const ready = new Promise<ReadyEvent>((resolve, reject) => {
        let buf = '';
        child.stdout!.setEncoding('utf8');
        child.stdout!.on('data', (d: string) => {
          buf += d;
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + 1);
            try {
              const ev = JSON.parse(line) as { ev?: string };
              if (ev.ev === 'ready') resolve(ev as ReadyEvent);
            } catch {
              // not an event line
            }
          }
        });
        void exited.then(({ code, signal }) => reject(new Error(`worker ${executorId} exited (${code ?? signal}) before it was ready`)));
        setTimeout(() => reject(new Error(`worker ${executorId} was not ready within 30 s`)), 30_000).unref();
      });
      ready.catch(() => undefined);
      return {
        child,
        executorId,
        ready,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
          const { code, signal } = await exited;
          clearTimeout(force);
          assert.equal(code, 0, `worker ${executorId} stopped cleanly (exit ${code ?? signal})`);
        },
      };
    }

    /** An engine in the test process (never launched: its scheduler does not run) and the tick log. */
    async function observer(store: Store): Promise<{ engine: Engine; log: TickLog; beat: Workflow<ScheduledInput, BeatOutput> }> {
      const engine = await target.open(store, { executorId: 'schedules-test', appVersion: APP_VERSION });
      const log = await openTickLog(store, { create: true });
      logs.push(log);
      return { engine, log, beat: registerBeat(engine, log) };
    }

    /** The tick workflows of a schedule (triggers excluded), in tick order. */
    async function tickWorkflows(engine: Engine, schedule: string): Promise<WorkflowInfo<unknown, BeatOutput>[]> {
      const all = (await engine.listWorkflows({ name: 'beat' })) as WorkflowInfo<unknown, BeatOutput>[];
      return all.filter((w) => w.id.startsWith(`${schedule}@`) && !w.id.startsWith(`${schedule}@trigger:`)).sort((a, b) => tickOf(a.id) - tickOf(b.id));
    }

    /** Each workflow ended SUCCESS with its tick as output, and its step body ran exactly once. */
    function assertRanOnce(workflows: WorkflowInfo<unknown, BeatOutput>[], rows: TickRow[]): void {
      const runs = new Map<string, TickRow[]>();
      for (const r of rows) runs.set(r.workflowId, [...(runs.get(r.workflowId) ?? []), r]);
      for (const w of workflows) {
        assert.equal(w.status, 'SUCCESS', `${w.id} ended SUCCESS`);
        assert.equal(w.output!.scheduledAt, iso(tickOf(w.id)), `${w.id} received its tick`);
        const ran = runs.get(w.id) ?? [];
        assert.equal(ran.length, 1, `${w.id} ran ${ran.length} times`);
        assert.equal(ran[0]!.tick, tickOf(w.id));
        assert.equal(ran[0]!.pid, w.output!.pid);
      }
    }

    test(`${processes} process(es) share a per-second schedule: every tick starts one workflow that runs once`, async (t: TestContext) => {
      const windowMs = pg ? 10 * SECOND : 6 * SECOND;
      const store = await target.fresh();
      const { engine, log } = await observer(store);
      const declared: DeclaredSchedule[] = [{ name: 'every-second', cron: EVERY_SECOND }];
      const workers = Array.from({ length: processes }, (_, i) => startWorker(store, `scheduler-${i}`, { schedules: declared, ...workerPoll }));
      const ready = await Promise.all(workers.map((w) => w.ready));
      // The window starts at the first whole second after every process is up, and is fully covered.
      const from = ceilSecond(Math.max(...ready.map((r) => r.at))) + SECOND;
      const to = from + windowMs;
      await sleepUntil(to + 1_500);
      await Promise.all(workers.map((w) => w.stop()));

      const workflows = await tickWorkflows(engine, 'every-second');
      const ticks = workflows.map((w) => tickOf(w.id));
      assert.deepEqual(
        ticks.filter((tick) => tick >= from && tick <= to).map(iso),
        seconds(from, to).map(iso),
        'every tick of the window has exactly one workflow',
      );
      // From the first process up to the window's end no tick is missing either.
      const upToEnd = ticks.filter((tick) => tick <= to);
      assert.deepEqual(upToEnd.map(iso), seconds(upToEnd[0]!, to).map(iso), 'the ticks before the window are contiguous too');
      assert.ok(ticks.every((tick) => tick % SECOND === 0));
      assertRanOnce(workflows, await log.rows());
      const rows = await log.rows();
      assert.equal(rows.length, workflows.length, 'the tick log holds one run per workflow and nothing else');

      const byPid = new Map<number, number>();
      for (const w of workflows) byPid.set(w.output!.pid, (byPid.get(w.output!.pid) ?? 0) + 1);
      t.diagnostic(`${workflows.length} ticks, ${seconds(from, to).length} in the window; runs per process: ${JSON.stringify(Object.fromEntries(byPid))}`);
    });

    test('after every process stopped for 5 s: missed ticks run once each with backfill, not at all with skip; a pause outlives the restart', async (t: TestContext) => {
      const store = await target.fresh();
      const { engine, log } = await observer(store);
      const declared: DeclaredSchedule[] = [
        { name: 'catch-up', cron: EVERY_SECOND, missed: 'backfill' },
        { name: 'skip-ahead', cron: EVERY_SECOND, missed: 'skip' },
      ];
      const run = async (held: DeclaredSchedule): Promise<number[]> => {
        const schedules = [...declared, held];
        const workers = Array.from({ length: processes }, (_, i) => startWorker(store, `scheduler-${i}`, { schedules, ...workerPoll }));
        const ready = (await Promise.all(workers.map((w) => w.ready))).map((r) => r.at);
        await sleepUntil(Math.max(...ready) + 3_200);
        await Promise.all(workers.map((w) => w.stop()));
        return ready;
      };

      await run({ name: 'held', cron: EVERY_SECOND, missed: 'backfill' });
      const stoppedAt = Date.now();
      // Paused while no process runs; the next processes declare it with another cron.
      await engine.schedules.pause('held');
      const lastTick = async (name: string) => Math.max(...(await tickWorkflows(engine, name)).map((w) => tickOf(w.id)));
      const lastCatchUp = await lastTick('catch-up');
      const lastSkip = await lastTick('skip-ahead');
      assert.ok(lastCatchUp <= stoppedAt && lastSkip <= stoppedAt);

      await sleep(5_000);
      const restartAt = Date.now();
      const ready = await run({ name: 'held', cron: '*/2 * * * * *', missed: 'backfill' });
      const firstReady = Math.min(...ready);

      // backfill: the ticks of the stop ran once each, after the restart; overall not one is missing.
      const catchUp = await tickWorkflows(engine, 'catch-up');
      const caught = catchUp.map((w) => tickOf(w.id));
      assert.deepEqual(caught.map(iso), seconds(caught[0]!, caught[caught.length - 1]!).map(iso), 'backfill leaves no tick out');
      const missed = catchUp.filter((w) => tickOf(w.id) > lastCatchUp && tickOf(w.id) <= restartAt);
      assert.ok(missed.length >= 5, `the stop of ${restartAt - stoppedAt} ms missed ${missed.length} ticks`);
      for (const w of missed) assert.ok(Date.parse(w.output!.firedAt) >= restartAt, `${w.id} was fired after the restart`);
      assert.ok(caught[caught.length - 1]! >= ceilSecond(firstReady) + 2 * SECOND, 'and it carried on after catching up');

      // skip: nothing between the last tick before the stop and the restart; every tick after it.
      const skipped = (await tickWorkflows(engine, 'skip-ahead')).map((w) => tickOf(w.id));
      const firstAfter = skipped.find((tick) => tick > lastSkip);
      assert.ok(firstAfter !== undefined, 'skip-ahead fired after the restart');
      assert.ok(firstAfter > restartAt, `the first tick after the restart (${iso(firstAfter)}) is after the restart (${iso(restartAt)})`);
      assert.ok(firstAfter <= firstReady + 2 * SECOND, `the first tick after the restart (${iso(firstAfter)}) is the next one once up (${iso(firstReady)})`);
      const expected = [...seconds(skipped[0]!, lastSkip), ...seconds(firstAfter, skipped[skipped.length - 1]!)];
      assert.deepEqual(skipped.map(iso), expected.map(iso), 'skip runs the ticks before the stop and from the restart on, none in between');
      assert.ok((firstAfter - lastSkip) / SECOND - 1 >= 5, 'at least 5 ticks were skipped');

      // The redeclared schedule took the new cron, stayed paused and fired nothing after the restart.
      const held = (await engine.schedules.get('held'))!;
      assert.equal(held.cron, '*/2 * * * * *', 'launch stored the new definition');
      assert.equal(held.paused, true, 'launch kept the pause');
      const heldTicks = (await tickWorkflows(engine, 'held')).map((w) => tickOf(w.id));
      assert.ok(heldTicks.length >= 2, 'held fired before its pause');
      assert.deepEqual(heldTicks.filter((tick) => tick > stoppedAt).map(iso), [], 'a paused schedule fires nothing, and backfills nothing');

      assertRanOnce([...catchUp, ...(await tickWorkflows(engine, 'skip-ahead')), ...(await tickWorkflows(engine, 'held'))], await log.rows());
      t.diagnostic(`backfilled ${missed.length} ticks; skipped ${(firstAfter - lastSkip) / SECOND - 1}`);
    });

    test('create, pause, resume, update and delete from this process reach a running worker in another', async (t: TestContext) => {
      const store = await target.fresh();
      const { engine, log } = await observer(store);
      const worker = startWorker(store, 'scheduler-live', { schedules: [], ...workerPoll });
      await worker.ready;
      const ticksNow = async () => tickWorkflows(engine, 'live');
      const tickSet = async () => new Set((await ticksNow()).map((w) => tickOf(w.id)));
      /**
       * Each change is made `reactMs` before a whole second S: the worker must have acted on it by
       * S. (With only the 5 s fallback poll, Postgres workers would mostly miss that.)
       */
      const changeBefore = async (change: () => Promise<unknown>, odd = false): Promise<number> => {
        let at: number;
        do {
          at = ceilSecond(Date.now() + reactMs + 50);
          if (odd && (at / SECOND) % 2 === 0) at += SECOND;
          await sleepUntil(at - reactMs);
        } while (Date.now() > at - reactMs + 100); // overslept (a busy machine): take the next second
        await change();
        assert.ok(Date.now() < at - reactMs / 2, 'the change was made in time');
        return at;
      };
      /** The tick just before a change may fire or not, by a hair; the others are exact. */
      const fuzzy = new Set<number>();

      // create: the worker starts firing without a restart, from the next tick on.
      let created: ScheduleInfo | undefined;
      const createTick = await changeBefore(async () => (created = await engine.schedules.create('live', EVERY_SECOND, 'beat')));
      assert.equal(created!.workflowName, 'beat');
      assert.equal(created!.paused, false);
      await sleepUntil(createTick + 2_300);
      const first = (await ticksNow())[0];
      assert.equal(first && tickOf(first.id), createTick, 'the first tick is the first whole second after create');
      assert.equal(first!.executorId, 'scheduler-live', 'the worker fired it');

      // pause: the next tick does not fire.
      const pauseTick = await changeBefore(async () => assert.equal((await engine.schedules.pause('live')).paused, true));
      fuzzy.add(pauseTick - SECOND);
      await sleepUntil(pauseTick + 2_500);
      assert.equal((await engine.schedules.get('live'))!.nextTickAt, null, 'a paused schedule has no next tick');
      assert.deepEqual([...(await tickSet())].filter((tick) => tick >= pauseTick).map(iso), [], 'nothing fired once paused');

      // resume: fires again from the next tick, and never the ticks of the pause.
      const resumeTick = await changeBefore(async () => assert.equal((await engine.schedules.resume('live')).paused, false));
      await sleepUntil(resumeTick + 1_300);
      assert.ok((await tickSet()).has(resumeTick), 'the first tick after resume fired');

      // trigger runs the workflow once now, here; backfill over ticks the worker ran starts nothing.
      const triggered = await engine.schedules.trigger('live');
      assert.match(triggered.id, /^live@trigger:\d{4}-\d\d-\d\dT/);
      const out = (await triggered.result()) as BeatOutput;
      assert.equal(out.pid, process.pid, 'trigger runs the workflow in the calling process');
      assert.ok(Math.abs(Date.parse(out.scheduledAt) - Date.now()) < 5 * SECOND);
      const ranBefore = await ticksNow();
      const overlap = await engine.schedules.backfill('live', new Date(createTick), new Date(createTick + 3 * SECOND));
      assert.deepEqual(
        overlap.map((h) => h.id),
        seconds(createTick, createTick + 2 * SECOND).map((tick) => `live@${iso(tick)}`),
      );
      await Promise.all(overlap.map((h) => h.result()));
      const ranAfter = await ticksNow();
      for (const h of overlap) {
        const was = ranBefore.find((w) => w.id === h.id)!;
        assert.deepEqual(
          ranAfter.find((w) => w.id === h.id),
          was,
          `${h.id}, run by the worker, was left alone`,
        );
        assert.notEqual(was.output!.pid, process.pid);
      }

      // update: from the next tick on, the new cron (every even second) applies.
      let updated: ScheduleInfo | undefined;
      const updateTick = await changeBefore(async () => (updated = await engine.schedules.update('live', { cron: '*/2 * * * * *' })), true);
      assert.equal(updated!.cron, '*/2 * * * * *');
      assert.equal(updated!.paused, false);
      fuzzy.add(updateTick - SECOND);
      await sleepUntil(updateTick + 4_300);

      // delete: the next tick does not fire.
      let deleteTick = await changeBefore(async () => engine.schedules.delete('live'));
      assert.equal(await engine.schedules.get('live'), undefined);
      assert.deepEqual(await engine.schedules.list(), []);
      if ((deleteTick / SECOND) % 2 === 1) deleteTick += SECOND; // the next tick it would have fired
      fuzzy.add(deleteTick - 2 * SECOND);
      await sleepUntil(deleteTick + 2_500);
      await worker.stop();

      const all = await ticksNow();
      const expected = [
        ...seconds(createTick, pauseTick - SECOND),
        ...seconds(resumeTick, updateTick - SECOND),
        ...seconds(updateTick + SECOND, deleteTick - 2 * SECOND, 2),
      ];
      const exact = (ticks: number[]) => ticks.filter((tick) => !fuzzy.has(tick)).map(iso);
      assert.deepEqual(exact(all.map((w) => tickOf(w.id))), exact(expected), 'each change applied from the first tick after it');
      assertRanOnce(all, await log.rows());
      t.diagnostic(`${all.length} ticks; ticks at a change that fired: ${[...fuzzy].filter((tick) => all.some((w) => tickOf(w.id) === tick)).length} of ${fuzzy.size}`);
    });

    test('trigger runs once now; backfill fires each tick of [from, to) once, and again starts nothing', async () => {
      const store = await target.fresh();
      const { engine, log } = await observer(store);
      await engine.schedules.create('hourly', '0 * * * *', 'beat');

      const from = Date.parse('2024-01-01T00:00:00.000Z');
      const to = Date.parse('2024-01-01T05:00:00.000Z');
      const handles = await engine.schedules.backfill('hourly', new Date(from), new Date(to));
      const expectedIds = [0, 1, 2, 3, 4].map((h) => `hourly@${iso(from + h * 3_600_000)}`);
      assert.deepEqual(
        handles.map((h) => h.id),
        expectedIds,
        'from is included, to is not',
      );
      const outputs = (await Promise.all(handles.map((h) => h.result()))) as BeatOutput[];
      assert.deepEqual(
        outputs.map((o) => o.scheduledAt),
        expectedIds.map((id) => id.slice('hourly@'.length)),
      );
      const workflows = await tickWorkflows(engine, 'hourly');
      assert.deepEqual(workflows.map((w) => w.id), expectedIds);

      const again = await engine.schedules.backfill('hourly', new Date(from), new Date(to));
      assert.deepEqual(again.map((h) => h.id), expectedIds);
      await Promise.all(again.map((h) => h.result()));
      assert.deepEqual(await tickWorkflows(engine, 'hourly'), workflows, 'the second backfill started nothing and changed nothing');
      // A range between two ticks holds none; an empty range holds none.
      assert.deepEqual(await engine.schedules.backfill('hourly', new Date(from + 60_000), new Date(from + 3_000_000)), []);
      assert.deepEqual(await engine.schedules.backfill('hourly', new Date(from), new Date(from)), []);

      const before = Date.now();
      const h = await engine.schedules.trigger('hourly');
      const out = (await h.result()) as BeatOutput;
      assert.match(h.id, /^hourly@trigger:/);
      assert.ok(Date.parse(out.scheduledAt) >= before && Date.parse(out.scheduledAt) <= Date.now());
      assert.equal((await engine.getWorkflow(h.id)).status, 'SUCCESS');

      const rows = await log.rows();
      assert.deepEqual(
        rows.map((r) => r.workflowId).sort(),
        [...expectedIds, h.id].sort(),
        'each backfilled tick and the trigger ran exactly once',
      );
      assertRanOnce(workflows, rows);
      const info = (await engine.schedules.get('hourly'))!;
      assert.equal(info.lastTickAt, null, 'backfill and trigger do not move the schedule');
    });

    test('each trigger call starts its own run, even several within one millisecond', async () => {
      const store = await target.fresh();
      const { engine, log } = await observer(store);
      await engine.schedules.create('manual', '0 0 1 1 *', 'beat');
      const sequential = [];
      for (let i = 0; i < 10; i++) sequential.push(await engine.schedules.trigger('manual'));
      const concurrent = await Promise.all(Array.from({ length: 40 }, () => engine.schedules.trigger('manual')));
      const handles = [...sequential, ...concurrent];
      await Promise.all(handles.map((h) => h.result()));
      const ids = new Set(handles.map((h) => h.id));
      const runs = (await log.rows()).filter((r) => r.schedule === 'manual');
      assert.equal(ids.size, 50, `50 trigger calls got ${ids.size} distinct workflows: ${[...ids].join(', ')}`);
      assert.equal(runs.length, 50, `50 trigger calls ran the workflow ${runs.length} times`);
    });

    test('a launch refused for a conflicting declaration stores none of its declarations', async () => {
      const store = await target.fresh();
      const { engine } = await observer(store);
      engine.workflow('other', async () => 'other');
      await engine.schedules.create('taken', '0 2 * * *', 'beat');
      await engine.schedules.create('shared', '0 3 * * *', 'other');
      const snapshot = stored(await engine.schedules.list());
      const second = await target.open(store, { executorId: 'schedules-other', appVersion: APP_VERSION });
      const other = second.workflow('other', async () => 'other');
      second.schedule('fresh', '0 4 * * *', other);
      second.schedule('shared', '*/5 * * * *', other);
      second.schedule('taken', '0 5 * * *', other);
      await assert.rejects(second.launch(), (e) => assertInvalid(e, /schedule 'taken' already exists for workflow 'beat'.*'other'/));
      assert.deepEqual(
        stored(await engine.schedules.list()),
        snapshot,
        'the refused launch neither added schedule fresh nor redefined schedule shared',
      );
    });

    test('bad input is refused with INVALID_ARGUMENT naming the problem, and changes nothing stored', async () => {
      const store = await target.fresh();
      const { engine, beat } = await observer(store);
      engine.workflow('other', async () => 'other');
      await engine.schedules.create('nightly', '0 2 * * *', 'beat', { timezone: 'Europe/Paris', missed: 'backfill' });
      await engine.schedules.pause('nightly');
      const snapshot = stored(await engine.schedules.list());
      const workflowsBefore = await engine.listWorkflows();
      const unchanged = async (what: string) => {
        assert.deepEqual(stored(await engine.schedules.list()), snapshot, `${what} changed no schedule`);
        assert.deepEqual(await engine.listWorkflows(), workflowsBefore, `${what} started nothing`);
      };

      // Invalid cron: create, update and a declaration.
      for (const cron of ['61 * * * *', 'every day', '* * *', '* * * * 9', '']) {
        await assert.rejects(engine.schedules.create('broken', cron, 'beat'), (e) => assertInvalid(e, cron === '' ? /cron/ : new RegExp(`cron expression '${cron.replace(/\*/g, '\\*')}'`)));
      }
      await assert.rejects(engine.schedules.update('nightly', { cron: '0 25 * * *' }), (e) => assertInvalid(e, /cron expression '0 25 \* \* \*' is invalid/));
      assert.throws(() => engine.schedule('broken', '*/0 * * * *', beat), (e) => assertInvalid(e, /cron expression '\*\/0 \* \* \* \*'/));
      await unchanged('an invalid cron');

      // Unknown time zone.
      await assert.rejects(engine.schedules.create('zoned', '0 9 * * *', 'beat', { timezone: 'Mars/Olympus_Mons' }), (e) => assertInvalid(e, /time zone 'Mars\/Olympus_Mons' is unknown/));
      await assert.rejects(engine.schedules.update('nightly', { timezone: 'Europe/Atlantis' }), (e) => assertInvalid(e, /time zone 'Europe\/Atlantis' is unknown/));
      await unchanged('an unknown time zone');

      // A name that belongs to another workflow: at run time, and declared in code then launched.
      await assert.rejects(engine.schedules.create('nightly', '0 3 * * *', 'other'), (e) => assertInvalid(e, /schedule 'nightly' already exists for workflow 'beat'.*'other'/));
      await assert.rejects(engine.schedules.create('nightly', '0 3 * * *', 'beat'), (e) => assertInvalid(e, /schedule 'nightly' already exists/));
      await unchanged('a duplicate name');
      const second = await target.open(store, { executorId: 'schedules-other', appVersion: APP_VERSION });
      const other = second.workflow('other', async () => 'other');
      second.schedule('nightly', '*/5 * * * *', other);
      await assert.rejects(second.launch(), (e) => assertInvalid(e, /schedule 'nightly' already exists for workflow 'beat'.*'other'/));
      await unchanged('a conflicting declaration');
      assert.throws(() => second.schedule('nightly', '0 4 * * *', other), (e) => assertInvalid(e, /'nightly' is already declared/));

      // Other malformed definitions.
      await assert.rejects(engine.schedules.create('late', '0 9 * * *', 'beat', { missed: 'catch-up' as 'skip' }), (e) => assertInvalid(e, /missed must be 'skip' or 'backfill'/));
      await assert.rejects(engine.schedules.create('', '0 9 * * *', 'beat'), (e) => assertInvalid(e, /schedule name must be a non-empty string/));
      await unchanged('a malformed definition');

      // A reversed backfill range, and one too long for one call.
      await assert.rejects(
        engine.schedules.backfill('nightly', new Date('2024-02-01T00:00:00Z'), new Date('2024-01-01T00:00:00Z')),
        (e) => assertInvalid(e, /backfill range is reversed/),
      );
      await engine.schedules.create('secondly', EVERY_SECOND, 'beat');
      await assert.rejects(
        engine.schedules.backfill('secondly', new Date('2024-01-01T00:00:00Z'), new Date('2024-01-01T01:00:00Z')),
        (e) => assertInvalid(e, /covers more than 1000 ticks/),
      );
      await engine.schedules.delete('secondly');
      await unchanged('a refused backfill');

      // An unknown schedule name, for every call that needs one.
      const unknown = /no schedule named 'ghost' exists/;
      await assert.rejects(engine.schedules.pause('ghost'), (e) => assertInvalid(e, unknown));
      await assert.rejects(engine.schedules.resume('ghost'), (e) => assertInvalid(e, unknown));
      await assert.rejects(engine.schedules.delete('ghost'), (e) => assertInvalid(e, unknown));
      await assert.rejects(engine.schedules.update('ghost', { cron: '0 * * * *' }), (e) => assertInvalid(e, unknown));
      await assert.rejects(engine.schedules.trigger('ghost'), (e) => assertInvalid(e, unknown));
      await assert.rejects(engine.schedules.backfill('ghost', new Date('2024-01-01T00:00:00Z'), new Date('2024-01-02T00:00:00Z')), (e) => assertInvalid(e, unknown));
      assert.equal(await engine.schedules.get('ghost'), undefined);
      await unchanged('an unknown name');
    });
  });
}
