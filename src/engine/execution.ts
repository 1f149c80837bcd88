import type { StepRow, WorkflowRow } from '../providers/provider.js';
import type { WorkflowFunction } from '../types.js';
import { WorkflowContext } from './context.js';
import type { EngineCore } from './core.js';
import { EngineClosedError, WorkflowTimeoutError } from './errors.js';
import { persist } from './persist.js';
import { deserializeError, roundTrip, serializeError } from './serialization.js';
import { runOutsideStep } from './step-scope.js';
import { callAt } from './timers.js';

/** How an execution ended: it wrote the outcome itself, found one already stored, or was abandoned at close. */
export type Outcome =
  | { kind: 'ended'; status: 'SUCCESS'; value: unknown }
  | { kind: 'ended'; status: 'ERROR'; error: unknown }
  | { kind: 'stored'; row: WorkflowRow }
  | { kind: 'abandoned'; reason: unknown; retry?: boolean };

export interface ExecutionSpec {
  id: string;
  name: string;
  fn: WorkflowFunction<unknown, unknown>;
  input: unknown;
  /** Epoch ms past which the workflow is cancelled with WorkflowTimeoutError. */
  deadlineAt: number | null;
  /** Recoveries counted on the workflow so far (0 for a fresh start). */
  recoveryAttempts: number;
  /** Checkpoints to replay; null for a fresh execution, which reads nothing before its steps. */
  replay: StepRow[] | null;
}

/** One attempt at running a workflow function to completion in this process. */
export class Execution {
  readonly id: string;
  readonly done: Promise<Outcome>;
  private readonly controller = new AbortController();

  constructor(
    private readonly core: EngineCore,
    spec: ExecutionSpec,
  ) {
    this.id = spec.id;
    this.done = runOutsideStep(() => this.run(spec));
  }

  /** Aborts `ctx.signal`; the execution stops at its next Context call. */
  abort(reason: unknown): void {
    this.controller.abort(reason);
  }

  private async run(spec: ExecutionSpec): Promise<Outcome> {
    const disarm = spec.deadlineAt === null ? undefined : callAt(spec.deadlineAt, () => void this.timeOut(spec.id));
    try {
      return await this.execute(spec);
    } finally {
      disarm?.();
    }
  }

  /** The deadline passed: the database says CANCELLED first, then the function's signal aborts. */
  private async timeOut(id: string): Promise<void> {
    const reason = new WorkflowTimeoutError(id);
    try {
      await this.core.provider.cancelWorkflow(id, serializeError(reason), Date.now());
    } catch (err) {
      if (!this.core.closed) this.core.logger.error({ err, workflowId: id }, 'could not record a workflow timeout');
      return;
    }
    this.abort(reason);
  }

  private async execute(spec: ExecutionSpec): Promise<Outcome> {
    const replay = spec.replay && new Map(spec.replay.map((r) => [r.stepId, r]));
    const ctx = new WorkflowContext(this.core, spec.id, replay, this.controller, spec.recoveryAttempts);
    let status: 'SUCCESS' | 'ERROR';
    let output: string | null = null;
    let error: string | null = null;
    let value: unknown;
    try {
      // A microtask first, so a synchronous throw in the function is recorded like any other failure.
      await Promise.resolve();
      const returned = await spec.fn(ctx, spec.input).finally(() => ctx.finish());
      ({ text: output, value } = roundTrip(returned, `the output of workflow '${spec.id}'`));
      status = 'SUCCESS';
    } catch (err) {
      if (err instanceof EngineClosedError) return { kind: 'abandoned', reason: err };
      status = 'ERROR';
      error = serializeError(err);
      value = deserializeError(error);
    }
    // Past the close deadline, or after the database kept failing, the outcome is not the workflow's own.
    if (this.core.closed) return { kind: 'abandoned', reason: new EngineClosedError(`workflow '${spec.id}' was abandoned`) };
    if (ctx.interrupted) return { kind: 'abandoned', reason: ctx.interrupted, retry: true };
    try {
      const completedAt = Date.now();
      const stored = await persist(
        () => this.core.provider.completeWorkflow(spec.id, status, output, error, completedAt),
        `recording the end of workflow '${spec.id}'`,
        this.core.logger,
        () => this.core.closed,
      );
      if (stored) return { kind: 'stored', row: stored };
      if (stored === undefined) return { kind: 'abandoned', reason: new Error(`workflow '${spec.id}' disappeared`) };
    } catch (err) {
      if (this.core.closed) return { kind: 'abandoned', reason: err };
      this.core.logger.error({ err, workflowId: spec.id }, 'could not record the end of a workflow; it stays PENDING and runs again');
      return { kind: 'abandoned', reason: err, retry: true };
    }
    return status === 'SUCCESS' ? { kind: 'ended', status, value } : { kind: 'ended', status, error: value };
  }
}
