import type { RunObserver } from '../observability/observer.js';
import type { StepRow, WorkflowRow } from '../providers/provider.js';
import type { WorkflowFunction } from '../types.js';
import { WorkflowContext, type ReplayOptions } from './context.js';
import type { EngineCore } from './core.js';
import { CairnError, EngineClosedError, ExecutionSupersededError, type NonDeterminismError, WorkflowCancelledError, WorkflowTimeoutError } from './errors.js';
import { persist } from './persist.js';
import { deserialize, deserializeError, roundTrip, serializeError } from './serialization.js';
import { runOutsideStep } from './step-scope.js';
import { callAt, type CancelWatcher, type Cancellation } from './timers.js';

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
  /** The input as a value (a fresh start, which already parsed it)... */
  input?: unknown;
  /** ...or as stored, parsed when the execution begins, so a corrupt one fails only this workflow. */
  storedInput?: string | null;
  /** Epoch ms past which the workflow is cancelled with WorkflowTimeoutError. */
  deadlineAt: number | null;
  /** Recoveries counted on the workflow so far (0 for a fresh start). */
  recoveryAttempts: number;
  /** Checkpoints to replay; null for a fresh execution, which reads nothing before its steps. */
  replay: StepRow[] | null;
  /** The app version that recorded the workflow, when it is not this engine's (a replay across versions). */
  recordedVersion?: string | null;
  /** This engine's app version, stamped on the workflow once a replay across versions holds. */
  claimVersion?: string;
  /** The caller's trace context stored with the workflow (W3C traceparent), or null. */
  traceContext?: string | null;
}

/** One attempt at running a workflow function to completion in this process. */
export class Execution {
  readonly id: string;
  readonly done: Promise<Outcome>;
  private readonly cancellation = new ExecutionSignal();
  private ctx: WorkflowContext | undefined;
  private releasing: unknown;

  constructor(
    private readonly core: EngineCore,
    spec: ExecutionSpec,
    queue: string | null,
  ) {
    this.id = spec.id;
    const observer = core.observer;
    this.done = runOutsideStep(() => (observer ? this.observed(spec, queue) : this.run(spec, undefined)));
  }

  /** Runs with hooks, spans and metrics: the execution's span encloses the function, and its outcome is reported. */
  private async observed(spec: ExecutionSpec, queue: string | null): Promise<Outcome> {
    const observed = this.core.observer!.begin({
      id: spec.id, name: spec.name, queue, resumed: spec.replay !== null, recoveryAttempts: spec.recoveryAttempts, traceContext: spec.traceContext ?? null,
    });
    const outcome = await this.run(spec, observed);
    if (outcome.kind === 'ended') observed.ended(outcome.status, outcome.status === 'ERROR' ? outcome.error : undefined);
    // Cancelled (or timed out) while it ran: its own end found the workflow CANCELLED.
    else if (outcome.kind === 'stored' && outcome.row.status === 'CANCELLED') observed.ended('CANCELLED', cancelReason(outcome.row));
    else observed.abandoned(outcome.kind === 'abandoned' ? outcome.reason : `workflow '${spec.id}' had already ended`);
    return outcome;
  }

  /** Another execution finished or adopted the workflow: this one ends without writing anything. */
  private superseded(err: ExecutionSupersededError): Outcome {
    this.core.logger.warn({ workflowId: this.id, status: err.status, adoptedBy: err.adoptedBy }, `execution superseded: ${err.message}`);
    return { kind: 'abandoned', reason: err };
  }

  /**
   * The code's calls did not match the workflow's history: nothing was run or recorded past the
   * divergence, and the workflow is handed back, PENDING under the version that recorded it, for
   * code that matches it (an older process, or a fixed deploy).
   */
  private async diverged(spec: ExecutionSpec, err: NonDeterminismError): Promise<Outcome> {
    await this.core.diverged(spec.id, err, spec.recordedVersion);
    return { kind: 'abandoned', reason: err };
  }

  /** Aborts `ctx.signal`; the execution stops at its next Context call. */
  abort(reason: unknown): void {
    this.cancellation.abort(reason);
  }

  /** Stops the execution with `reason` once it is parked in a sleep or wait (see WorkflowContext.release). */
  release(reason: unknown): void {
    this.releasing = reason;
    this.ctx?.release(reason);
  }

  private run(spec: ExecutionSpec, observed: RunObserver | undefined): Promise<Outcome> {
    if (spec.deadlineAt === null) return this.execute(spec, observed);
    const disarm = callAt(spec.deadlineAt, () => void this.timeOut(spec.id));
    const done = this.execute(spec, observed);
    void done.then(disarm, disarm);
    return done;
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

  private async execute(spec: ExecutionSpec, observed: RunObserver | undefined): Promise<Outcome> {
    const replay = spec.replay && new Map(spec.replay.map((r) => [r.stepId, r]));
    const options: ReplayOptions = spec.claimVersion === undefined ? {} : { claimVersion: spec.claimVersion };
    if (observed) options.observed = observed;
    const ctx = new WorkflowContext(this.core, spec.id, replay, this.cancellation, spec.recoveryAttempts, options);
    this.ctx = ctx;
    if (this.releasing !== undefined) ctx.release(this.releasing);
    let status: 'SUCCESS' | 'ERROR';
    let output: string | null = null;
    let error: string | null = null;
    let value: unknown;
    let failedOwn = false;
    try {
      // A microtask first, so a synchronous throw in the function is recorded like any other failure.
      await Promise.resolve();
      let returned: unknown;
      try {
        const input = spec.storedInput === undefined ? spec.input : deserialize(spec.storedInput, `the input of workflow '${spec.id}'`);
        returned = await (observed ? observed.within(() => spec.fn(ctx, input)) : spec.fn(ctx, input));
      } finally {
        ctx.finish();
      }
      ({ text: output, value } = roundTrip(returned, `the output of workflow '${spec.id}'`, this.core.maxPayloadBytes));
      status = 'SUCCESS';
    } catch (err) {
      if (ctx.diverged) return this.diverged(spec, ctx.diverged);
      if (err instanceof EngineClosedError) return { kind: 'abandoned', reason: err };
      if (err instanceof ExecutionSupersededError) return this.superseded(err);
      status = 'ERROR';
      error = serializeError(err);
      value = deserializeError(error);
      failedOwn = err instanceof CairnError;
    }
    // Code that ended, returning or throwing an error of its own, before reaching checkpoints its
    // history holds diverged from it. A failure of Cairn's own (a corrupt checkpoint, a bad
    // argument) is the outcome as it is.
    const diverged = failedOwn ? undefined : ctx.divergence();
    if (diverged) return this.diverged(spec, diverged);
    // Past the close deadline, or after the database kept failing, the outcome is not the workflow's own.
    if (this.core.closed) return { kind: 'abandoned', reason: new EngineClosedError(`workflow '${spec.id}' was abandoned`) };
    if (ctx.interrupted) return { kind: 'abandoned', reason: ctx.interrupted, retry: true };
    try {
      const completedAt = Date.now();
      const stored = await persist(
        () => this.core.provider.completeWorkflow(spec.id, status, output, error, completedAt, this.core.executorId),
        `recording the end of workflow '${spec.id}'`,
        this.core.logger,
        () => this.core.closed,
      );
      // Still PENDING, under another executor: adopted while this process's lease had lapsed.
      if (stored?.status === 'PENDING') return this.superseded(new ExecutionSupersededError(spec.id, 'PENDING', stored.executorId));
      if (stored) return { kind: 'stored', row: stored };
      if (stored === undefined) return { kind: 'abandoned', reason: new Error(`workflow '${spec.id}' disappeared`) };
    } catch (err) {
      if (this.core.closed) return { kind: 'abandoned', reason: err };
      this.core.logger.error({ err, workflowId: spec.id }, 'could not record the end of a workflow; it stays PENDING and runs again');
      return { kind: 'abandoned', reason: err, retry: true };
    }
    if (status === 'SUCCESS') return { kind: 'ended', status, value };
    this.core.logger.warn({ workflowId: spec.id, name: spec.name, err: value }, `workflow '${spec.name}' (${spec.id}) ended ERROR: ${describeError(value)}`);
    return { kind: 'ended', status, error: value };
  }
}

/** Why a workflow was cancelled, as stored (a corrupt reason reads as the plain cancellation). */
function cancelReason(row: WorkflowRow): unknown {
  try {
    return row.error === null ? new WorkflowCancelledError(row.id) : deserializeError(row.error, `the cancellation reason of workflow '${row.id}'`);
  } catch {
    return new WorkflowCancelledError(row.id);
  }
}

function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/**
 * The cancellation of one execution (`ctx.signal`). Most executions never abort and never read
 * `ctx.signal`, so the AbortController behind it is made on first read, already aborted with the
 * same reason when the abort came first; parked waits are told directly, without a listener each.
 */
export class ExecutionSignal implements Cancellation {
  private controller: AbortController | undefined;
  private abortedWith: { reason: unknown } | undefined;
  /** One watcher, the usual case, or several (waits started together). */
  private watchers: CancelWatcher | Set<CancelWatcher> | undefined;

  get aborted(): boolean {
    return this.abortedWith !== undefined;
  }

  get reason(): unknown {
    return this.abortedWith?.reason;
  }

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abortedWith) this.controller.abort(this.abortedWith.reason);
    }
    return this.controller.signal;
  }

  /** Like AbortController.abort: the first call wins, and no reason means an AbortError DOMException. */
  abort(reason: unknown): void {
    if (this.abortedWith) return;
    if (reason === undefined) {
      const defaulted = new AbortController();
      defaulted.abort();
      reason = defaulted.signal.reason;
    }
    this.abortedWith = { reason };
    this.controller?.abort(reason);
    const watchers = this.watchers;
    this.watchers = undefined;
    if (watchers instanceof Set) for (const w of watchers) w.cancelled(reason);
    else watchers?.cancelled(reason);
  }

  watch(watcher: CancelWatcher): void {
    if (this.abortedWith) return;
    const current = this.watchers;
    if (current === undefined) this.watchers = watcher;
    else if (current instanceof Set) current.add(watcher);
    else if (current !== watcher) this.watchers = new Set([current, watcher]);
  }

  unwatch(watcher: CancelWatcher): void {
    const current = this.watchers;
    if (current === watcher) this.watchers = undefined;
    else if (current instanceof Set) {
      current.delete(watcher);
      if (current.size === 0) this.watchers = undefined;
    }
  }
}
