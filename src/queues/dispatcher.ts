import type { ClaimedWorkflow, ClaimResult, QueueDefinition } from '../providers/provider.js';
import type { Logger } from '../types.js';
import type { Waits } from '../engine/waits.js';

export interface DispatcherHost {
  readonly waits: Waits;
  readonly logger: Logger;
  /** Stores the queue's definition, so clients and SQL callers can find it. */
  register(queue: QueueDefinition): Promise<void>;
  claim(queue: QueueDefinition, slots: number): Promise<ClaimResult>;
  /** Starts running what a claim took, in this process. */
  run(rows: ClaimedWorkflow[]): void;
  /** Workflows of the queue running in this process now. */
  running(queue: string): number;
}

/**
 * Most workflows claimed in one transaction. Claims are the queue's serial path, so large ones
 * drain a backlog fastest; `workerConcurrency` bounds what one process takes.
 */
const BATCH = 1000;

/**
 * Runs one queue in this process: claims what the limits allow, then sleeps until something may
 * have changed — a workflow enqueued or finished (`q:<queue>`), the next DELAYED workflow due or
 * rate-limit slot freed, or the fallback poll. It listens for the queue's wake-ups for its whole
 * life, so one that arrives during a claim is not lost. No transaction stays open while work runs.
 */
export class Dispatcher {
  private readonly stopper = new AbortController();
  private loop: Promise<void> | undefined;
  /** A wake-up arrived since the last claim began. */
  private pending = false;
  private wake: (() => void) | undefined;

  constructor(
    readonly queue: QueueDefinition,
    private readonly host: DispatcherHost,
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const stopListening = this.host.waits.listen(`q:${this.queue.name}`, () => {
      this.pending = true;
      this.wake?.();
    });
    try {
      await this.dispatch();
    } finally {
      stopListening();
    }
  }

  private async dispatch(): Promise<void> {
    const { queue, host } = this;
    let failures = 0;
    let registered = false;
    while (!this.stopper.signal.aborted) {
      this.pending = false;
      let nextAt: number | null = null;
      let more = false;
      try {
        if (!registered) {
          await host.waits.ready();
          await host.register(queue);
          registered = true;
        }
        const free = (queue.workerConcurrency ?? Number.POSITIVE_INFINITY) - host.running(queue.name);
        const slots = Math.max(0, Math.min(free, BATCH));
        if (slots > 0) {
          const result = await host.claim(queue, slots);
          host.run(result.claimed);
          nextAt = result.nextAt;
          more = result.claimed.length === slots;
        }
        failures = 0;
      } catch (err) {
        if (this.stopper.signal.aborted) return;
        failures++;
        host.logger.error({ err, queue: queue.name }, 'queue dispatch failed; retrying');
        nextAt = Date.now() + Math.min(30_000, 100 * 2 ** failures);
      }
      if (more || this.pending) continue;
      const wokenUp = new Promise<void>((resolve) => (this.wake = resolve));
      const ms = Math.min(host.waits.pollMs, nextAt === null ? Number.POSITIVE_INFINITY : nextAt - Date.now());
      try {
        await host.waits.pause(wokenUp, ms, this.stopper.signal);
      } catch {
        return;
      } finally {
        this.wake = undefined;
      }
    }
  }
}
