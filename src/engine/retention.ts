/**
 * Automatic clean-up, `Engine.open({ retention })`: every engine that has it runs `gc` on a timer.
 * Several engines doing so cooperate: on PostgreSQL a batch skips rows another one holds, and on
 * SQLite writers take turns. The first run comes at a random point of the first interval, so a
 * fleet started together does not clean up all at once.
 */
import type { GcOptions, GcResult, Logger, RetentionOptions } from '../types.js';
import { InvalidArgumentError } from './errors.js';
import { gcRequest } from './filters.js';
import { assertOptions, assertPositiveInteger } from './validate.js';

/** How often an engine cleans up unless told otherwise. */
export const DEFAULT_RETENTION_INTERVAL_MS = 3_600_000;
/** The longest interval a Node timer can hold. */
const MAX_INTERVAL_MS = 2_147_483_647;

/** Checks `retention` at open, with the same rules as `gc`; undefined when it is not set. */
export function retentionOptions(value: unknown): Required<Pick<RetentionOptions, 'completedOlderThanMs' | 'intervalMs'>> & RetentionOptions | undefined {
  if (value === undefined) return undefined;
  assertOptions('retention', value);
  const r = value as RetentionOptions;
  if (r.completedOlderThanMs === undefined) throw new InvalidArgumentError('retention.completedOlderThanMs', 'retention needs completedOlderThanMs: how long finished workflows are kept, in ms');
  gcRequest({ olderThan: r.completedOlderThanMs, ...(r.statuses && { statuses: r.statuses }), ...(r.batchSize !== undefined && { batchSize: r.batchSize }) }, Date.now());
  const intervalMs = r.intervalMs === undefined ? DEFAULT_RETENTION_INTERVAL_MS : assertPositiveInteger('retention.intervalMs', r.intervalMs, MAX_INTERVAL_MS);
  return { ...r, intervalMs };
}

export class Retention {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly options: NonNullable<ReturnType<typeof retentionOptions>>,
    private readonly gc: (options: GcOptions) => Promise<GcResult>,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.schedule(Math.floor(Math.random() * this.options.intervalMs));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce().finally(() => {
        this.running = undefined;
        this.schedule(this.options.intervalMs);
      });
    }, delay);
    this.timer.unref();
  }

  private async runOnce(): Promise<void> {
    const { completedOlderThanMs, statuses, batchSize } = this.options;
    try {
      const { deleted } = await this.gc({ olderThan: completedOlderThanMs, ...(statuses && { statuses }), ...(batchSize !== undefined && { batchSize }) });
      if (deleted > 0) this.logger.info({ deleted, completedOlderThanMs }, 'retention deleted finished workflows');
    } catch (err) {
      if (!this.stopped) this.logger.warn({ err }, 'retention could not delete finished workflows; it tries again at its next interval');
    }
  }
}
