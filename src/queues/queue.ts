import type { QueueDefinition } from '../providers/provider.js';
import type { DebounceOptions, QueueOptions, Workflow, WorkflowHandle } from '../types.js';
import { InvalidArgumentError } from '../engine/errors.js';
import { assertDuration, assertInt32, assertName, assertOptions, assertPositiveInteger, describe } from '../engine/validate.js';

/** Checks a queue's options and returns its definition. */
export function queueDefinition(name: unknown, options: unknown): QueueDefinition {
  const queueName = assertName('queue name', name);
  assertOptions('queue options', options);
  const o = (options ?? {}) as QueueOptions;
  let rateLimit: QueueDefinition['rateLimit'] = null;
  if (o.rateLimit !== undefined) {
    assertOptions('rateLimit', o.rateLimit);
    const periodMs = o.rateLimit.periodMs;
    if (typeof periodMs !== 'number' || !Number.isFinite(periodMs) || periodMs <= 0) {
      throw new InvalidArgumentError('rateLimit.periodMs', `rateLimit.periodMs must be a finite number of milliseconds > 0, got ${describe(periodMs)}`);
    }
    // Stored as whole milliseconds: a fraction is rounded up.
    rateLimit = { limit: assertPositiveInteger('rateLimit.limit', o.rateLimit.limit), periodMs: assertDuration('rateLimit.periodMs', periodMs) };
  }
  if (o.partitioned !== undefined && typeof o.partitioned !== 'boolean') {
    throw new InvalidArgumentError('partitioned', `partitioned must be a boolean, got ${describe(o.partitioned)}`);
  }
  return {
    name: queueName,
    concurrency: o.concurrency === undefined ? null : assertPositiveInteger('concurrency', o.concurrency),
    workerConcurrency: o.workerConcurrency === undefined ? null : assertPositiveInteger('workerConcurrency', o.workerConcurrency),
    rateLimit,
    partitioned: o.partitioned ?? false,
  };
}

export type Debouncer = <I, O>(queue: QueueDefinition, workflow: Workflow<I, O>, key: string, input: I, options: DebounceOptions) => Promise<WorkflowHandle<O>>;

/**
 * A declared queue. Workflows join it through `workflow.start(input, { queue: name })` or
 * `client.enqueue`; the engine's dispatcher for it runs them once `engine.launch()` was called.
 *
 * @example
 * const emails = engine.queue('emails', { concurrency: 10, rateLimit: { limit: 100, periodMs: 60_000 } });
 * await sendEmail.start({ to }, { queue: emails.name });
 */
export class Queue {
  constructor(
    readonly definition: QueueDefinition,
    private readonly debouncer: Debouncer,
  ) {}

  get name(): string {
    return this.definition.name;
  }

  /**
   * Coalesces a burst of calls with the same key into one run with the latest input: the workflow
   * waits in DELAYED until `periodMs` passes without another call (or `maxWaitMs` after the first).
   *
   * @example
   * await search.debounce(reindex, `user:${userId}`, { userId }, { periodMs: 2_000, maxWaitMs: 30_000 });
   */
  async debounce<I, O>(workflow: Workflow<I, O>, key: string, input: I, options: DebounceOptions): Promise<WorkflowHandle<O>> {
    assertName('debounce key', key);
    assertOptions('debounce options', options);
    if (options !== undefined) {
      // Checked here as well as by the engine: these go straight into integer and text columns.
      if (options.priority !== undefined) assertInt32('priority', options.priority);
      if (options.partitionKey !== undefined) {
        assertName('partitionKey', options.partitionKey);
        if (!this.definition.partitioned) {
          throw new InvalidArgumentError('partitionKey', `queue '${this.name}' is not partitioned, so it takes no partitionKey`);
        }
      }
    }
    return this.debouncer(this.definition, workflow, key, input, options);
  }
}
