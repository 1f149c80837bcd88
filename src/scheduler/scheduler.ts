import type { Provider, ScheduleRow } from '../providers/provider.js';
import type { Logger } from '../types.js';
import type { Waits } from '../engine/waits.js';
import { latestTicks, nextTick, scheduleProblem, ticksBetween } from './cron.js';

/** Most missed ticks a `backfill` schedule fires when an engine first sees it: the latest ones. */
export const MAX_BACKFILL_ON_START = 100;
/** Most due ticks of one schedule fired in one wake-up (after a stall of the process). */
const MAX_DUE_PER_WAKE = 10;
const MAX_TIMER_MS = 2_147_483_647;

export interface SchedulerHost {
  readonly provider: Provider;
  readonly waits: Waits;
  readonly logger: Logger;
  /** Whether this process can act on the schedule: its workflow is registered here, or it goes to a queue. */
  canFire(row: ScheduleRow): boolean;
  /** Starts the tick's workflow under its deterministic id and records the tick. */
  fire(row: ScheduleRow, tick: number): Promise<void>;
}

/**
 * Fires every schedule of the database from this process. Any number of processes may run one:
 * a tick's workflow id is derived from the schedule and the tick, so only one start per tick
 * succeeds. One timer serves all schedules (the nearest tick); between ticks the only database
 * work is the reload on a change notification or on the slow poll.
 */
export class Scheduler {
  private rows = new Map<string, ScheduleRow>();
  /** The last tick this process dealt with, per schedule. */
  private readonly cursors = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private readonly stopper = new AbortController();
  private loop: Promise<void> | undefined;
  private firing: Promise<void> = Promise.resolve();
  /**
   * Schedules whose stored cron or time zone does not work, with what is wrong. They are skipped
   * until their row changes; each is reported once per version of its row.
   */
  private readonly broken = new Map<string, { row: ScheduleRow; problem: string }>();

  constructor(private readonly host: SchedulerHost) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    clearTimeout(this.timer);
    await this.loop;
    await this.firing;
  }

  private async run(): Promise<void> {
    while (!this.stopper.signal.aborted) {
      try {
        await this.reload();
      } catch (err) {
        if (!this.stopper.signal.aborted) this.host.logger.error({ err }, 'could not load schedules; trying again');
      }
      try {
        await this.host.waits.until(['sch'], async (attempt) => (attempt > 0 ? true : undefined), {
          deadline: Date.now() + this.host.waits.pollMs,
          signal: this.stopper.signal,
        });
      } catch {
        return;
      }
    }
  }

  /** Loads the schedules, owes the missed ticks of those seen for the first time, and re-arms. */
  async reload(): Promise<void> {
    const rows = await this.host.provider.listSchedules();
    const now = Date.now();
    const owed: Array<[ScheduleRow, number]> = [];
    const next = new Map<string, ScheduleRow>();
    for (const row of rows) {
      const before = this.rows.get(row.name);
      if (before && sameDefinition(before, row)) {
        next.set(row.name, row);
        continue;
      }
      // New or changed: checked once per version of the row.
      if (!this.usable(row)) continue;
      next.set(row.name, row);
      // New to this process, or redefined: ticks up to now are settled here and now.
      if (!before && !row.paused && row.missed === 'backfill') {
        try {
          for (const tick of latestTicks(row.cron, row.timezone, row.lastTickAt ?? row.createdAt, now, MAX_BACKFILL_ON_START)) owed.push([row, tick]);
        } catch (err) {
          this.markBroken(row, err);
          next.delete(row.name);
          continue;
        }
      }
      // A redefined schedule that kept running keeps its position, so a tick already due still fires;
      // a new or just-resumed one starts from now (the pause period never fires).
      const kept = before && !before.paused && !row.paused ? this.cursors.get(row.name) : undefined;
      this.cursors.set(row.name, kept ?? Math.max(now, row.lastTickAt ?? 0));
    }
    for (const name of this.cursors.keys()) if (!next.has(name)) this.cursors.delete(name);
    const present = new Set(rows.map((r) => r.name));
    for (const name of this.broken.keys()) if (!present.has(name)) this.broken.delete(name);
    this.rows = next;
    if (owed.length > 0) await this.fireAll(owed);
    this.arm();
  }

  private arm(): void {
    clearTimeout(this.timer);
    if (this.stopper.signal.aborted) return;
    let nearest = Number.POSITIVE_INFINITY;
    for (const row of this.rows.values()) {
      if (row.paused || this.broken.has(row.name)) continue;
      try {
        nearest = Math.min(nearest, nextTick(row.cron, row.timezone, this.cursors.get(row.name) ?? Date.now()));
      } catch (err) {
        this.markBroken(row, err);
      }
    }
    if (nearest === Number.POSITIVE_INFINITY) return;
    this.timer = setTimeout(() => this.onTimer(), Math.min(Math.max(0, nearest - Date.now()), MAX_TIMER_MS));
  }

  private onTimer(): void {
    const now = Date.now();
    const due: Array<[ScheduleRow, number]> = [];
    for (const row of this.rows.values()) {
      if (row.paused || this.broken.has(row.name)) continue;
      const cursor = this.cursors.get(row.name) ?? now;
      let ticks: number[];
      try {
        ticks = ticksBetween(row.cron, row.timezone, cursor, now, MAX_DUE_PER_WAKE);
      } catch (err) {
        this.markBroken(row, err);
        continue;
      }
      if (ticks.length === 0) continue;
      for (const tick of ticks) due.push([row, tick]);
      this.cursors.set(row.name, ticks[ticks.length - 1]!);
    }
    this.firing = this.firing.then(() => this.fireAll(due)).finally(() => this.arm());
  }

  /**
   * Whether a stored schedule can be acted on. A broken one (its cron or time zone no longer
   * works) is reported once per version of its row and left out; the others carry on.
   */
  private usable(row: ScheduleRow): boolean {
    const known = this.broken.get(row.name);
    if (known && sameDefinition(known.row, row)) return false;
    this.broken.delete(row.name);
    const problem = scheduleProblem(row.cron, row.timezone);
    if (problem === undefined) return true;
    this.markBroken(row, problem);
    return false;
  }

  private markBroken(row: ScheduleRow, err: unknown): void {
    const known = this.broken.get(row.name);
    if (known && sameDefinition(known.row, row)) return;
    const problem = typeof err === 'string' ? err : err instanceof Error ? err.message : String(err);
    this.broken.set(row.name, { row, problem });
    this.host.logger.error(
      { schedule: row.name, cron: row.cron, timezone: row.timezone, problem },
      `schedule '${row.name}' cannot fire: ${problem}; it is skipped until it is updated`,
    );
  }

  private async fireAll(due: Array<[ScheduleRow, number]>): Promise<void> {
    for (const [row, tick] of due) {
      if (this.stopper.signal.aborted) return;
      if (!this.host.canFire(row)) continue;
      try {
        await this.host.fire(row, tick);
      } catch (err) {
        if (!this.stopper.signal.aborted) this.host.logger.error({ err, schedule: row.name, tick: new Date(tick) }, 'could not fire a scheduled tick');
      }
    }
  }
}

/** Whether two versions of a schedule's row define the same thing (a hand edit may keep updatedAt). */
function sameDefinition(a: ScheduleRow, b: ScheduleRow): boolean {
  return a.updatedAt === b.updatedAt && a.cron === b.cron && a.timezone === b.timezone && a.paused === b.paused;
}
