import type { StepRow } from '../providers/provider.js';
import type { Context, StepAttempt, StepOptions } from '../types.js';
import type { EngineCore } from './core.js';
import {
  EngineClosedError,
  ExecutionSupersededError,
  NonDeterminismError,
  WorkflowCancelledError,
  WorkflowNotFoundError,
} from './errors.js';
import { deserialize, deserializeError, roundTrip, serializeError } from './serialization.js';
import { assertNotInStep, runInStep } from './step-scope.js';
import { assertFunction, assertName, assertOptions } from './validate.js';

/**
 * The Context of one execution. Each call takes the next counter value synchronously, so calls
 * started together get ids in call order on every replay. A call whose checkpoint exists returns
 * it; otherwise it runs and writes its checkpoint in one statement.
 */
export class WorkflowContext implements Context {
  private counter = 0;

  constructor(
    private readonly core: EngineCore,
    readonly workflowId: string,
    private replay: Map<number, StepRow> | null,
    private readonly controller: AbortController,
  ) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  async step<T>(name: string, fn: (attempt: StepAttempt) => Promise<T> | T, options?: StepOptions): Promise<T> {
    assertNotInStep(`step('${String(name)}')`);
    assertName('step name', name);
    assertFunction('step function', fn);
    assertOptions('step options', options);
    const stepId = ++this.counter;
    const recorded = this.replay?.get(stepId);
    if (recorded) return this.adopt<T>(stepId, name, recorded);
    if (this.core.closed) throw new EngineClosedError(`step '${name}' of workflow '${this.workflowId}' was not started`);

    const startedAt = Date.now();
    let output: string | null = null;
    let error: string | null = null;
    let value: T | undefined;
    try {
      const raw = await runInStep(this.workflowId, name, () => fn({ signal: this.signal, attempt: 1 }));
      ({ text: output, value } = roundTrip(raw, `the output of step '${name}' in workflow '${this.workflowId}'`));
    } catch (err) {
      error = serializeError(err);
    }
    const step: StepRow = { stepId, name, output, error, childId: null, startedAt, completedAt: Date.now() };
    const outcome = await this.core.provider.recordStep(this.workflowId, step);
    switch (outcome.kind) {
      case 'recorded':
        if (error !== null) throw deserializeError(error);
        return value as T;
      case 'conflict':
        await this.catchUp();
        return this.adopt<T>(stepId, name, outcome.existing);
      case 'not-pending':
        throw this.stopped(outcome.status);
    }
  }

  /** Returns (or rethrows) a recorded checkpoint, after checking it belongs to this call. */
  private adopt<T>(stepId: number, name: string, row: StepRow): T {
    if (row.name !== name) throw new NonDeterminismError(this.workflowId, stepId, row.name, name);
    if (row.error !== null) throw deserializeError(row.error);
    return deserialize<T>(row.output);
  }

  /** Another execution is ahead of this one: load its checkpoints so the next calls replay them. */
  private async catchUp(): Promise<void> {
    const rows = await this.core.provider.listSteps(this.workflowId);
    this.replay = new Map(rows.map((r) => [r.stepId, r]));
  }

  private stopped(status: string | undefined): Error {
    if (status === undefined) return new WorkflowNotFoundError(this.workflowId);
    if (status === 'CANCELLED') return new WorkflowCancelledError(this.workflowId);
    return new ExecutionSupersededError(this.workflowId, status);
  }
}
