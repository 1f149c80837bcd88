import { randomUUID } from 'node:crypto';
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
import { assertNotInStep } from './step-scope.js';
import { runStep, stepPolicy, type StepResult } from './step-runner.js';
import { waitUntil } from './timers.js';
import { assertDate, assertDuration, assertFunction, assertName } from './validate.js';

/**
 * The Context of one execution. Each call takes the next counter value synchronously, so calls
 * started together get ids in call order on every replay. A call whose checkpoint exists returns
 * it; otherwise it runs and writes its checkpoint in one statement, which also tells it whether
 * the workflow was cancelled meanwhile.
 */
export class WorkflowContext implements Context {
  private counter = 0;

  constructor(
    private readonly core: EngineCore,
    readonly workflowId: string,
    private replay: Map<number, StepRow> | null,
    private readonly controller: AbortController,
    /** The workflow's recovery count when this execution began; progress resets it. */
    private recoveriesWithoutProgress = 0,
  ) {}

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  step<T>(name: string, fn: (attempt: StepAttempt) => Promise<T> | T, options?: StepOptions): Promise<T> {
    assertNotInStep(`step('${String(name)}')`);
    assertName('step name', name);
    assertFunction('step function', fn);
    const policy = stepPolicy(options);
    return this.checkpoint(name, () => runStep(this.workflowId, name, fn, policy, this.signal));
  }

  async sleep(ms: number): Promise<void> {
    assertNotInStep('sleep');
    assertDuration('sleep duration', ms);
    const wakeAt = await this.checkpoint('cairn.sleep', async () => ({ ok: true, value: Date.now() + ms, attempts: 1 }));
    await waitUntil(wakeAt, this.signal);
  }

  async sleepUntil(date: Date): Promise<void> {
    assertNotInStep('sleepUntil');
    const at = assertDate('sleepUntil date', date);
    const wakeAt = await this.checkpoint('cairn.sleep', async () => ({ ok: true, value: at, attempts: 1 }));
    await waitUntil(wakeAt, this.signal);
  }

  now(): Promise<Date> {
    assertNotInStep('now');
    return this.checkpoint('cairn.now', async () => ({ ok: true, value: new Date(), attempts: 1 }));
  }

  random(): Promise<number> {
    assertNotInStep('random');
    return this.checkpoint('cairn.random', async () => ({ ok: true, value: Math.random(), attempts: 1 }));
  }

  uuid(): Promise<string> {
    assertNotInStep('uuid');
    return this.checkpoint('cairn.uuid', async () => ({ ok: true, value: randomUUID(), attempts: 1 }));
  }

  /**
   * The one path every Context call takes: next counter value, replay if recorded, else run and
   * record. The counter advances before the first await.
   */
  private async checkpoint<T>(name: string, run: () => Promise<StepResult<T>>): Promise<T> {
    const stepId = ++this.counter;
    const recorded = this.replay?.get(stepId);
    if (recorded) return this.adopt<T>(stepId, name, recorded);
    if (this.signal.aborted) throw this.signal.reason;
    if (this.core.closed) throw new EngineClosedError(`step '${name}' of workflow '${this.workflowId}' was not started`);

    const startedAt = Date.now();
    const result = await run();
    // Past the close deadline the step was abandoned, possibly aborted by the shutdown itself:
    // that outcome is not the step's, so it must not become its checkpoint.
    if (this.core.closed) throw new EngineClosedError(`step '${name}' of workflow '${this.workflowId}' was abandoned`);
    let output: string | null = null;
    let error: string | null = null;
    let value: T | undefined;
    if (result.ok) {
      try {
        ({ text: output, value } = roundTrip(result.value, `the output of step '${name}' in workflow '${this.workflowId}'`));
      } catch (err) {
        error = serializeError(err);
      }
    } else {
      error = serializeError(result.error);
    }
    const step: StepRow = { stepId, name, output, error, childId: null, attempts: result.attempts, startedAt, completedAt: Date.now() };
    const outcome = await this.core.provider.recordStep(this.workflowId, step);
    switch (outcome.kind) {
      case 'recorded':
        if (this.recoveriesWithoutProgress > 0) await this.madeProgress();
        if (error !== null) throw deserializeError(error);
        return value as T;
      case 'conflict':
        await this.catchUp();
        return this.adopt<T>(stepId, name, outcome.existing);
      case 'not-pending':
        throw await this.stopped(outcome.status);
    }
  }

  /**
   * The recovery cap is about crash loops: a recovered execution that records a new checkpoint is
   * making progress, so its count starts again (one statement, once per recovery).
   */
  private async madeProgress(): Promise<void> {
    this.recoveriesWithoutProgress = 0;
    await this.core.provider.resetRecoveryAttempts(this.workflowId);
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

  /** Why the workflow is no longer PENDING, as the error its function sees. */
  private async stopped(status: string | undefined): Promise<unknown> {
    if (status === undefined) return new WorkflowNotFoundError(this.workflowId);
    if (status === 'CANCELLED') {
      const row = await this.core.provider.getWorkflow(this.workflowId);
      const reason = row?.error ? deserializeError(row.error) : new WorkflowCancelledError(this.workflowId);
      if (!this.controller.signal.aborted) this.controller.abort(reason);
      return reason;
    }
    return new ExecutionSupersededError(this.workflowId, status);
  }
}
