import type { WorkflowRow } from '../providers/provider.js';
import type { WorkflowHandle, WorkflowInfo } from '../types.js';
import { WorkflowNotFoundError } from './errors.js';
import type { Outcome } from './execution.js';
import { toWorkflowInfo } from './info.js';

/** What a handle needs from the engine (or client) that made it. */
export interface HandleSource {
  /** `local`: the outcome of the execution this process started for the handle, when it did. */
  awaitResult(id: string, local?: Promise<Outcome>): Promise<unknown>;
  getWorkflowRow(id: string): Promise<WorkflowRow | undefined>;
}

/**
 * A handle to one workflow by id. Holding a handle costs nothing; it reads the database only
 * when asked, except that a handle whose workflow this process ran to success answers `result()`
 * from that run.
 */
export class Handle<O> implements WorkflowHandle<O> {
  constructor(
    private readonly source: HandleSource,
    readonly id: string,
    /** Set when this process knows it cannot run the workflow; result() rejects with it. */
    private readonly unrunnable?: Error,
    /**
     * The outcome of the execution this process started when it made the handle: result() reads
     * it even after the execution has ended, instead of reading the database.
     */
    private readonly local?: Promise<Outcome>,
  ) {}

  async result(): Promise<O> {
    if (this.unrunnable) throw this.unrunnable;
    return (await this.source.awaitResult(this.id, this.local)) as O;
  }

  async status(): Promise<WorkflowInfo<unknown, O>> {
    const row = await this.source.getWorkflowRow(this.id);
    if (!row) throw new WorkflowNotFoundError(this.id);
    return toWorkflowInfo<unknown, O>(row);
  }
}
