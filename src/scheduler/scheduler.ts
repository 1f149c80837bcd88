import type { Provider, ScheduleRow } from '../providers/provider.js';
import type { Logger } from '../types.js';
import type { Waits } from '../engine/waits.js';
import { latestTicks, nextTick, ticksBetween } from './cron.js';

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
      next.set(row.name, row);
      const before = this.rows.get(row.name);
      if (before && before.updatedAt === row.updatedAt) continue;
      // New to this process, or redefined: ticks up to now are settled here and now.
      if (!before && !row.paused && row.missed === 'backfill') {
        for (const tick of latestTicks(row.cron, row.timezone, row.lastTickAt ?? row.createdAt, now, MAX_BACKFILL_ON_START)) owed.push([row, tick]);
      }
      // A redefined schedule that kept running keeps its position, so a tick already due still fires;
      // a new or just-resumed one starts from now (the pause period never fires).
      const kept = before && !before.paused && !row.paused ? this.cursors.get(row.name) : undefined;
      this.cursors.set(row.name, kept ?? Math.max(now, row.lastTickAt ?? 0));
    }
    for (const name of this.cursors.keys()) if (!next.has(name)) this.cursors.delete(name);
    this.rows = next;
    if (owed.length > 0) await this.fireAll(owed);
    this.arm();
  }

  private arm(): void {
    clearTimeout(this.timer);
    if (this.stopper.signal.aborted) return;
    let nearest = Number.POSITIVE_INFINITY;
    for (const row of this.rows.values()) {
      if (row.paused) continue;
      try {
        nearest = Math.min(nearest, nextTick(row.cron, row.timezone, this.cursors.get(row.name) ?? Date.now()));
      } catch (err) {
        this.host.logger.error({ err, schedule: row.name }, 'could not compute the next tick of a schedule');
      }
    }
    if (nearest === Number.POSITIVE_INFINITY) return;
    this.timer = setTimeout(() => this.onTimer(), Math.min(Math.max(0, nearest - Date.now()), MAX_TIMER_MS));
  }

  private onTimer(): void {
    const now = Date.now();
    const due: Array<[ScheduleRow, number]> = [];
    for (const row of this.rows.values()) {
      if (row.paused) continue;
      const cursor = this.cursors.get(row.name) ?? now;
      const ticks = ticksBetween(row.cron, row.timezone, cursor, now, MAX_DUE_PER_WAKE);
      if (ticks.length === 0) continue;
      for (const tick of ticks) due.push([row, tick]);
      this.cursors.set(row.name, ticks[ticks.length - 1]!);
    }
    this.firing = this.firing.then(() => this.fireAll(due)).finally(() => this.arm());
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
