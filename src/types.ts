/**
 * Public types of Cairn.
 *
 * Glossary
 * - workflow: a registered async function `(ctx, input) => output` whose side effects go through
 *   its Context. One run of it, under one id, is also called a workflow.
 * - step: one Context call (`ctx.step`, and later `sleep`, `recv`, ...). Each gets the next value of
 *   a per-execution counter, its step id, at the moment it is called.
 * - checkpoint: the stored outcome of a step (its output or its error), keyed by (workflow id, step id).
 *   A replay returns the checkpoint instead of running the step again.
 * - execution: one attempt at running a workflow function. A crash ends an execution; recovery starts
 *   another, which replays the checkpoints and carries on from the first missing one.
 * - executor: a process (or group of processes) that owns PENDING workflows, named by `executorId`.
 *   `recover()` resumes the workflows of its own executor id and application version.
 * - queue: a named, durable line of workflows waiting to run under flow-control limits.
 * - schedule: a cron expression that starts a workflow once per tick.
 */

import type { Provider } from './providers/provider.js';

/** Life-cycle states of a workflow. */
export type WorkflowStatus =
  | 'PENDING'
  | 'ENQUEUED'
  | 'DELAYED'
  | 'SUCCESS'
  | 'ERROR'
  | 'CANCELLED'
  | 'MAX_RECOVERY_ATTEMPTS_EXCEEDED';

export const WORKFLOW_STATUSES: readonly WorkflowStatus[] = [
  'PENDING',
  'ENQUEUED',
  'DELAYED',
  'SUCCESS',
  'ERROR',
  'CANCELLED',
  'MAX_RECOVERY_ATTEMPTS_EXCEEDED',
];

/** A stored workflow, as returned by `engine.getWorkflow`, `listWorkflows` and `handle.status()`. */
export interface WorkflowInfo<I = unknown, O = unknown> {
  id: string;
  name: string;
  status: WorkflowStatus;
  input: I;
  /** The output when status is SUCCESS. */
  output: O | undefined;
  /** The error when status is ERROR (or why it was cancelled). */
  error: unknown;
  queue: string | null;
  executorId: string | null;
  appVersion: string | null;
  parentId: string | null;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  recoveryAttempts: number;
}

/** A recorded step, as returned by `engine.listSteps`, in counter order. */
export interface StepInfo {
  stepId: number;
  name: string;
  output: unknown;
  error: unknown;
  childId: string | null;
  /** How many times the step body ran (retries included). */
  attempts: number;
  startedAt: Date;
  completedAt: Date;
}

/** What a step function receives. */
export interface StepAttempt {
  /** Aborts when the workflow is cancelled or times out. */
  signal: AbortSignal;
  /** 1 on the first attempt. */
  attempt: number;
}

/**
 * How a failing step is retried. Delays grow from `minDelayMs` by `factor` up to `maxDelayMs`.
 * An error with `nonRetryable: true`, a TypeError, or one for which `retryIf` returns false stops
 * the retries at once and becomes the step's recorded error.
 */
export interface RetryOptions {
  /** Attempts in all, the first included (>= 1). */
  maxAttempts: number;
  /** Delay before the first retry (default 100 ms). */
  minDelayMs?: number;
  /** Growth of the delay per retry (default 2). */
  factor?: number;
  /** Longest delay between attempts (default 60,000 ms). */
  maxDelayMs?: number;
  retryIf?: (error: unknown) => boolean;
}

export interface StepOptions {
  retry?: RetryOptions;
  /** Per-attempt limit: the attempt's signal aborts and the attempt fails with StepTimeoutError. */
  timeoutMs?: number;
}

export interface StartOptions {
  /** The workflow id; generated (a UUID) when omitted. Starting an existing id returns its handle. */
  id?: string;
  /** Deadline from now: past it the workflow ends CANCELLED and result() rejects with WorkflowTimeoutError. */
  timeoutMs?: number;
}

export interface ForkOptions {
  /** The first step to execute again; checkpoints before it are reused. */
  fromStep: number;
  /** Id of the new workflow (default: a UUID). */
  id?: string;
}

/** The handle to one workflow, wherever it runs. */
export interface WorkflowHandle<O = unknown> {
  readonly id: string;
  /** Resolves with the output once the workflow ends; rejects with its error, or a Cairn error for CANCELLED and parked workflows. */
  result(): Promise<O>;
  /** The stored workflow; rejects with WorkflowNotFoundError when there is none. */
  status(): Promise<WorkflowInfo<unknown, O>>;
}

/** What a workflow function receives. Only these calls are durable. */
export interface Context {
  readonly workflowId: string;
  /** Aborts when the workflow is cancelled or times out. */
  readonly signal: AbortSignal;
  /**
   * Runs `fn` once and checkpoints its output (or error). A replay returns the checkpoint instead.
   *
   * @example
   * const charge = await ctx.step('charge', ({ signal }) => payments.charge(order, { signal }));
   */
  step<T>(name: string, fn: (attempt: StepAttempt) => Promise<T> | T, options?: StepOptions): Promise<T>;
  /**
   * Waits `ms` durably: the wake-up instant is recorded, so after a crash only the rest is waited.
   *
   * @example
   * await ctx.sleep(24 * 3600_000); // a day, even across restarts
   */
  sleep(ms: number): Promise<void>;
  /** Waits until `date` durably. */
  sleepUntil(date: Date): Promise<void>;
  /** The current time, recorded so a replay sees the same instant. */
  now(): Promise<Date>;
  /** Math.random(), recorded. */
  random(): Promise<number>;
  /** A random UUID, recorded. */
  uuid(): Promise<string>;
}

export type WorkflowFunction<I, O> = (ctx: Context, input: I) => Promise<O>;

/** A registered workflow. */
export interface Workflow<I, O> {
  readonly name: string;
  /** Stores the workflow (one write) and starts running it in this process. */
  start(input: I, options?: StartOptions): Promise<WorkflowHandle<O>>;
  /** `start` then `result`. */
  run(input: I, options?: StartOptions): Promise<O>;
}

/** pino-compatible logger; Cairn logs little and only at warn/error unless asked. */
export interface Logger {
  debug?(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface EngineOptions {
  /**
   * Where checkpoints live: `sqlite:<path>` (relative to the working directory, or absolute),
   * `sqlite::memory:`, `postgres://…` / `postgresql://…`, or a Provider instance.
   */
  database: string | Provider;
  /** Postgres schema holding Cairn's tables (default `cairn`). A lowercase SQL identifier. */
  schema?: string;
  /** Owner of this process's workflows (default `process.env.CAIRN_EXECUTOR_ID ?? 'local'`). */
  executorId?: string;
  /** Version of the application's workflow code (default: a hash of the registered workflow sources). */
  appVersion?: string;
  logger?: Logger;
  /** Apply pending migrations at open (default true). */
  migrate?: boolean;
  /** Recoveries after which a workflow is parked in MAX_RECOVERY_ATTEMPTS_EXCEEDED (default 50). */
  maxRecoveryAttempts?: number;
}

export interface ListWorkflowsFilter {
  status?: WorkflowStatus | WorkflowStatus[];
  name?: string;
  queue?: string;
  createdAfter?: Date;
  createdBefore?: Date;
  limit?: number;
  offset?: number;
  order?: 'asc' | 'desc';
}

export interface CloseOptions {
  /** How long to wait for workflows in flight before leaving them PENDING (default 10,000 ms). */
  timeoutMs?: number;
}
