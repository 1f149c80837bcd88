import type * as Api from '@opentelemetry/api';
import type { Logger } from '../types.js';
import { ATTR, type Telemetry } from './otel.js';
import type { WorkflowAdoptedEvent, WorkflowEnqueuedEvent, WorkflowHooks } from './types.js';

/** What the engine tells the observer about an execution as it begins. */
export interface RunStart {
  id: string;
  name: string;
  queue: string | null;
  /** True when the workflow ran before (recovery, adoption, resume, a reclaimed queue entry). */
  resumed: boolean;
  recoveryAttempts: number;
  /** The caller's trace context stored with the workflow (W3C traceparent), or null. */
  traceContext: string | null;
}

/** Called when an attempt of a step failed and another follows after `delayMs`. */
export type RetryListener = (attempt: number, delayMs: number, error: unknown) => void;

/** The outcome of a step as the observer needs it. */
export interface StepOutcome {
  ok: boolean;
  error?: unknown;
  attempts: number;
}

/**
 * What the engine calls into for hooks, spans and metrics. An engine with no hooks and no
 * OpenTelemetry has none, and its executions check that one field and do nothing more.
 */
export class Observer {
  private constructor(
    private readonly hooks: WorkflowHooks,
    readonly telemetry: Telemetry | undefined,
    private readonly logger: Logger,
    readonly executorId: string,
    readonly appVersion: () => string | null,
  ) {}

  /** An observer when there is something to report to; undefined otherwise. */
  static create(hooks: WorkflowHooks | undefined, telemetry: Telemetry | undefined, logger: Logger, executorId: string, appVersion: () => string | null): Observer | undefined {
    const given = hooks ?? {};
    if (!telemetry && Object.values(given).every((h) => h === undefined)) return undefined;
    return new Observer(given, telemetry, logger, executorId, appVersion);
  }

  /** An execution begins: its workflow span opens, and `workflowStarted` is called. */
  begin(run: RunStart): RunObserver {
    const observed = new RunObserver(this, run, Date.now());
    this.emit('workflowStarted', () => ({
      workflowId: run.id, name: run.name, queue: run.queue, executorId: this.executorId, appVersion: this.appVersion(),
      resumed: run.resumed, recoveryAttempts: run.recoveryAttempts, startedAt: observed.startedAt,
    }));
    return observed;
  }

  enqueued(event: WorkflowEnqueuedEvent): void {
    this.emit('workflowEnqueued', () => event);
  }

  adopted(rows: Array<{ id: string; name: string; queue: string | null; recoveryAttempts: number }>): void {
    for (const row of rows) {
      this.emit('workflowAdopted', (): WorkflowAdoptedEvent => ({
        workflowId: row.id, name: row.name, queue: row.queue, executorId: this.executorId, appVersion: this.appVersion(), recoveryAttempts: row.recoveryAttempts,
      }));
    }
  }

  /**
   * Calls a hook a turn later, off the workflow's path: hooks run in the order of their events,
   * and one that throws or rejects is logged at warn.
   */
  emit<K extends keyof WorkflowHooks>(hook: K, event: () => Parameters<NonNullable<WorkflowHooks[K]>>[0]): void {
    const fn = this.hooks[hook] as ((e: unknown) => unknown) | undefined;
    if (!fn) return;
    const value = event();
    setImmediate(() => {
      try {
        const returned = fn(value);
        if (returned instanceof Promise) returned.catch((err: unknown) => this.hookFailed(hook, err));
      } catch (err) {
        this.hookFailed(hook, err);
      }
    });
  }

  private hookFailed(hook: string, err: unknown): void {
    this.logger.warn({ err, hook }, `the ${hook} hook threw; the workflow is not affected`);
  }
}

/** One execution as observed: its workflow span, and the hooks and metrics of its steps and end. */
export class RunObserver {
  private readonly span: Api.Span | undefined;
  private readonly context: Api.Context | undefined;

  constructor(
    private readonly observer: Observer,
    private readonly run: RunStart,
    readonly startedAt: number,
  ) {
    const t = observer.telemetry;
    if (t?.tracer) {
      const parent = t.parentOf(run.traceContext);
      this.span = t.tracer.startSpan(`cairn.workflow ${run.name}`, { startTime: startedAt, attributes: this.attributes() }, parent);
      if (run.resumed) this.span.addEvent('resumed', { 'cairn.recovery_attempts': run.recoveryAttempts });
      this.context = t.api.trace.setSpan(parent, this.span);
    }
  }

  private attributes(): Api.Attributes {
    const a: Api.Attributes = {
      [ATTR.workflowId]: this.run.id,
      [ATTR.workflowName]: this.run.name,
      [ATTR.executorId]: this.observer.executorId,
    };
    const version = this.observer.appVersion();
    if (version !== null) a[ATTR.appVersion] = version;
    if (this.run.queue !== null) a[ATTR.queue] = this.run.queue;
    return a;
  }

  /** Runs the workflow function with its span active, so spans the code makes, and children it starts, are under it. */
  within<T>(fn: () => T): T {
    const t = this.observer.telemetry;
    return this.context && t ? t.api.context.with(this.context, fn) : fn();
  }

  /** Runs a step body under a `cairn.step` span, reporting its retries and end. */
  async step<R extends StepOutcome>(stepId: number, name: string, body: (retried: RetryListener) => Promise<R>): Promise<R> {
    const t = this.observer.telemetry;
    const startedAt = Date.now();
    let span: Api.Span | undefined;
    let stepContext: Api.Context | undefined;
    if (t?.tracer && this.context) {
      span = t.tracer.startSpan(`cairn.step ${name}`, { startTime: startedAt, attributes: { ...this.attributes(), [ATTR.stepId]: stepId, [ATTR.stepName]: name } }, this.context);
      stepContext = t.api.trace.setSpan(this.context, span);
    }
    const retried: RetryListener = (attempt, delayMs, error) => {
      span?.addEvent('retry', { 'cairn.step.attempt': attempt, 'cairn.retry.delay_ms': delayMs, 'exception.message': error instanceof Error ? error.message : String(error) });
      this.observer.emit('stepRetried', () => ({ workflowId: this.run.id, workflowName: this.run.name, stepId, stepName: name, attempt, delayMs, error }));
    };
    const result = stepContext && t ? await t.api.context.with(stepContext, () => body(retried)) : await body(retried);
    const durationMs = Date.now() - startedAt;
    const status = result.ok ? 'SUCCESS' : 'ERROR';
    if (span && t) {
      span.setAttribute(ATTR.attempts, result.attempts);
      if (!result.ok) t.failed(span, result.error);
      span.end();
    }
    t?.stepDuration?.record(durationMs, { [ATTR.workflowName]: this.run.name, [ATTR.stepName]: name, [ATTR.status]: status });
    this.observer.emit('stepEnded', () => ({
      workflowId: this.run.id, workflowName: this.run.name, stepId, stepName: name, status, attempts: result.attempts, durationMs,
      ...(!result.ok && { error: result.error }),
    }));
    return result;
  }

  /** The workflow's outcome is stored: its span ends and `workflowEnded` is called. */
  ended(status: 'SUCCESS' | 'ERROR' | 'CANCELLED', error: unknown): void {
    const t = this.observer.telemetry;
    if (this.span && t) {
      this.span.setAttribute(ATTR.status, status);
      if (status === 'ERROR') t.failed(this.span, error);
      if (status === 'CANCELLED') this.span.addEvent('cancelled', { 'exception.message': error instanceof Error ? error.message : String(error) });
      this.span.end();
    }
    t?.workflows?.add(1, { [ATTR.workflowName]: this.run.name, [ATTR.status]: status });
    this.observer.emit('workflowEnded', () => ({
      workflowId: this.run.id, name: this.run.name, queue: this.run.queue, executorId: this.observer.executorId, appVersion: this.observer.appVersion(),
      status, durationMs: Date.now() - this.startedAt, ...(status !== 'SUCCESS' && { error }),
    }));
  }

  /** The execution stopped without an outcome of its own (abandoned at close, superseded, diverged): its span ends. */
  abandoned(reason: unknown): void {
    if (!this.span) return;
    this.span.addEvent('abandoned', { 'exception.message': reason instanceof Error ? reason.message : String(reason) });
    this.span.end();
  }
}
