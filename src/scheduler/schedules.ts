import { randomUUID } from 'node:crypto';
import type { Provider, ScheduleRow } from '../providers/provider.js';
import type { ScheduleInfo, ScheduleOptions, ScheduleUpdate, Workflow, WorkflowHandle } from '../types.js';
import { InvalidArgumentError } from '../engine/errors.js';
import { assertDate, assertName, assertOptions, describe } from '../engine/validate.js';
import { assertCron, assertTimezone, nextTick, scheduleProblem, ticksBetween } from './cron.js';

/** Most ticks one `backfill(name, from, to)` call may start. */
export const MAX_BACKFILL_TICKS = 1_000;

export interface SchedulesHost {
  readonly provider: Provider;
  /**
   * Refuses a schedule no process could fire: its workflow is not registered in this engine and
   * it names no queue to enqueue on (a queue's workers may register it).
   */
  assertFirable(row: ScheduleRow): void;
  /** Starts the workflow of `row` for `tick` under the given id (deterministic for ticks). */
  start(row: ScheduleRow, tick: number, id: string): Promise<WorkflowHandle>;
}

/** The deterministic id of a tick's workflow: any process firing the same tick gets the same id. */
export function tickId(schedule: string, tick: number): string {
  return `${schedule}@${new Date(tick).toISOString()}`;
}

/** Checks a schedule's definition and returns its row (times left to the caller). */
export function scheduleRow(name: unknown, cron: unknown, workflow: unknown, options: unknown, now: number): ScheduleRow {
  const scheduleName = assertName('schedule name', name);
  assertOptions('schedule options', options);
  const o = (options ?? {}) as ScheduleOptions;
  const missed = o.missed ?? 'skip';
  if (missed !== 'skip' && missed !== 'backfill') {
    throw new InvalidArgumentError('missed', `missed must be 'skip' or 'backfill', got ${describe(missed)}`);
  }
  return {
    name: scheduleName,
    cron: assertCron(cron),
    workflowName: workflowNameOf(workflow),
    timezone: assertTimezone(o.timezone ?? 'UTC'),
    queue: o.queue === undefined || o.queue === null ? null : assertName('queue', o.queue),
    missed,
    paused: false,
    lastTickAt: null,
    createdAt: now,
    updatedAt: now,
  };
}

function workflowNameOf(workflow: unknown): string {
  if (typeof workflow === 'string') return assertName('workflow', workflow);
  if (typeof workflow === 'object' && workflow !== null && typeof (workflow as Workflow<unknown, unknown>).name === 'string') {
    return (workflow as Workflow<unknown, unknown>).name;
  }
  throw new InvalidArgumentError('workflow', `workflow must be a registered workflow or its name, got ${describe(workflow)}`);
}

/**
 * The public shape of a stored schedule. A row whose cron or time zone no longer works (edited by
 * hand) is still returned, with `nextTickAt: null` and `problem` saying what is wrong.
 */
export function toScheduleInfo(row: ScheduleRow): ScheduleInfo {
  let next: Date | null = null;
  let problem = scheduleProblem(row.cron, row.timezone);
  if (problem === undefined && !row.paused) {
    try {
      next = new Date(nextTick(row.cron, row.timezone, Math.max(Date.now(), row.lastTickAt ?? 0)));
    } catch (err) {
      problem = (err as Error).message;
    }
  }
  const info: ScheduleInfo = {
    name: row.name,
    cron: row.cron,
    workflowName: row.workflowName,
    timezone: row.timezone,
    queue: row.queue,
    missed: row.missed,
    paused: row.paused,
    lastTickAt: row.lastTickAt === null ? null : new Date(row.lastTickAt),
    nextTickAt: next,
    createdAt: new Date(row.createdAt),
    updatedAt: new Date(row.updatedAt),
  };
  if (problem !== undefined) info.problem = problem;
  return info;
}

/**
 * Schedules stored in the database, managed at run time from any process; every running engine
 * picks a change up on its next reload (a notification on Postgres, the fallback poll otherwise).
 *
 * @example
 * await engine.schedules.create('nightly-report', '0 2 * * *', report, { timezone: 'Europe/Paris' });
 * await engine.schedules.pause('nightly-report');
 */
export class Schedules {
  constructor(private readonly host: SchedulesHost) {}

  /** Creates a schedule; a name already in use is refused. */
  async create(name: string, cron: string, workflow: Workflow<never, unknown> | string, options?: ScheduleOptions): Promise<ScheduleInfo> {
    const row = scheduleRow(name, cron, workflow, options, Date.now());
    this.host.assertFirable(row);
    if (!(await this.host.provider.insertSchedule(row))) {
      const existing = await this.host.provider.getSchedule(row.name);
      throw new InvalidArgumentError(
        'name',
        existing && existing.workflowName !== row.workflowName
          ? `schedule '${row.name}' already exists for workflow '${existing.workflowName}', so it cannot schedule '${row.workflowName}'`
          : `schedule '${row.name}' already exists; update it instead`,
      );
    }
    return toScheduleInfo(row);
  }

  async list(): Promise<ScheduleInfo[]> {
    return (await this.host.provider.listSchedules()).map(toScheduleInfo);
  }

  /** The schedule, or undefined when there is none. */
  async get(name: string): Promise<ScheduleInfo | undefined> {
    const row = await this.host.provider.getSchedule(assertName('schedule name', name));
    return row && toScheduleInfo(row);
  }

  /** Changes a schedule's cron, workflow, time zone, queue or missed-tick policy. */
  async update(name: string, changes: ScheduleUpdate): Promise<ScheduleInfo> {
    assertOptions('schedule changes', changes);
    const row = await this.require(name);
    const merged = scheduleRow(
      row.name,
      changes.cron ?? row.cron,
      changes.workflow ?? row.workflowName,
      {
        timezone: changes.timezone ?? row.timezone,
        queue: changes.queue === undefined ? row.queue : changes.queue,
        missed: changes.missed ?? row.missed,
      },
      row.createdAt,
    );
    if (changes.workflow !== undefined || changes.queue !== undefined) this.host.assertFirable(merged);
    return this.save({ ...merged, paused: row.paused, lastTickAt: row.lastTickAt, createdAt: row.createdAt, updatedAt: Date.now() });
  }

  /** Stops firing until resumed; ticks while paused never fire. */
  async pause(name: string): Promise<ScheduleInfo> {
    const row = await this.require(name);
    return this.save({ ...row, paused: true, updatedAt: Date.now() });
  }

  /** Fires again from the next tick on. */
  async resume(name: string): Promise<ScheduleInfo> {
    const row = await this.require(name);
    const now = Date.now();
    return this.save({ ...row, paused: false, lastTickAt: Math.max(now, row.lastTickAt ?? 0), updatedAt: now });
  }

  async delete(name: string): Promise<void> {
    if (!(await this.host.provider.deleteSchedule(assertName('schedule name', name)))) throw notFound(name);
  }

  /** Runs the schedule's workflow once now, besides its ticks. */
  async trigger(name: string): Promise<WorkflowHandle> {
    const row = await this.require(name);
    const now = Date.now();
    return this.host.start(row, now, `${row.name}@trigger:${new Date(now).toISOString()}:${randomUUID()}`);
  }

  /**
   * Fires every tick in [from, to) that has not run yet (ticks that ran keep their workflow: the
   * ids are the same), at most MAX_BACKFILL_TICKS of them. Returns the handles in tick order.
   */
  async backfill(name: string, from: Date, to: Date): Promise<WorkflowHandle[]> {
    const start = assertDate('from', from);
    const end = assertDate('to', to);
    if (end < start) throw new InvalidArgumentError('to', `backfill range is reversed: to (${to.toISOString()}) is before from (${from.toISOString()})`);
    const row = await this.require(name);
    assertWorking(row);
    const ticks = ticksBetween(row.cron, row.timezone, start - 1, end - 1, MAX_BACKFILL_TICKS + 1);
    if (ticks.length > MAX_BACKFILL_TICKS) {
      throw new InvalidArgumentError('to', `backfill of '${row.name}' from ${from.toISOString()} to ${to.toISOString()} covers more than ${MAX_BACKFILL_TICKS} ticks; split the range`);
    }
    const handles: WorkflowHandle[] = [];
    for (const tick of ticks) handles.push(await this.host.start(row, tick, tickId(row.name, tick)));
    return handles;
  }

  /**
   * @internal Stores code-declared schedules: new ones are inserted, changed ones updated keeping
   * their pause state and last tick. Every declaration is checked against the database first, so a
   * conflict refuses the whole set and writes nothing.
   */
  async storeDeclared(rows: ScheduleRow[]): Promise<void> {
    const existing = new Map((await this.host.provider.listSchedules()).map((r) => [r.name, r]));
    for (const row of rows) {
      const stored = existing.get(row.name);
      if (stored && stored.workflowName !== row.workflowName) {
        throw new InvalidArgumentError(
          'name',
          `schedule '${row.name}' already exists for workflow '${stored.workflowName}', so this engine cannot declare it for '${row.workflowName}'`,
        );
      }
    }
    for (const row of rows) {
      const stored = existing.get(row.name);
      if (!stored) {
        if (!(await this.host.provider.insertSchedule(row))) await this.storeDeclared([row]);
        continue;
      }
      const same = stored.cron === row.cron && stored.timezone === row.timezone && stored.queue === row.queue && stored.missed === row.missed;
      if (!same) await this.host.provider.updateSchedule({ ...row, paused: stored.paused, lastTickAt: stored.lastTickAt, createdAt: stored.createdAt });
    }
  }

  private async require(name: string): Promise<ScheduleRow> {
    const row = await this.host.provider.getSchedule(assertName('schedule name', name));
    if (!row) throw notFound(name);
    return row;
  }

  private async save(row: ScheduleRow): Promise<ScheduleInfo> {
    if (!(await this.host.provider.updateSchedule(row))) throw notFound(row.name);
    return toScheduleInfo(row);
  }
}

/** Refuses to act on a schedule whose stored definition no longer works. */
function assertWorking(row: ScheduleRow): void {
  const problem = scheduleProblem(row.cron, row.timezone);
  if (problem !== undefined) {
    throw new InvalidArgumentError('name', `schedule '${row.name}' is broken (${problem}); fix it with schedules.update('${row.name}', { cron, timezone })`);
  }
}

function notFound(name: string): InvalidArgumentError {
  return new InvalidArgumentError('name', `no schedule named '${name}' exists`);
}
