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
import type { CorruptValueError } from './engine/errors.js';
import type { WorkflowHooks } from './observability/types.js';

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

/** One engine process of the fleet, as returned by `listExecutors()`. */
export interface ExecutorInfo {
  id: string;
  hostname: string;
  pid: number;
  appVersion: string;
  startedAt: Date;
  heartbeatAt: Date;
  /** When it closed (or was found dead on its host); null while it runs. */
  stoppedAt: Date | null;
  /** Not stopped, and heartbeating within its lease. */
  alive: boolean;
  /** Its PENDING workflows. */
  pending: number;
}

/** An app version as returned by `listVersions()`. */
export interface VersionInfo {
  appVersion: string;
  /** Live executors running it. */
  executors: number;
  /** PENDING workflows it recorded (not yet run on to the end by any version). */
  pending: number;
  firstSeenAt: Date;
  lastSeenAt: Date;
}

/**
 * A workflow's history as `exportHistory(id)` returns it: plain JSON, to store as a fixture and
 * replay with `checkReplay` from `cairn/testing`. Inputs and outputs are kept in their stored form.
 */
export interface WorkflowHistory {
  format: 'cairn.history';
  formatVersion: 1;
  workflowId: string;
  name: string;
  status: WorkflowStatus;
  appVersion: string | null;
  /** The stored input (serialized text), null when the workflow has none. */
  input: string | null;
  /** Every checkpoint in counter order, the recorded deadlines of waits (negative ids) included. */
  steps: Array<{ stepId: number; name: string; output: string | null; error: string | null; childId: string | null }>;
  exportedAt: string;
}

/** One history's verdict from `checkReplay`. */
export interface ReplayCheck {
  /** The workflow id of the history. */
  id: string;
  ok: boolean;
  /** Why not, when the code's calls do not match the history. */
  divergence?: ReplayDivergence;
}

export interface ReplayDivergence {
  /** The position, counted as `listSteps` counts it. */
  stepId: number;
  recordedName: string;
  /** The call made there now; `(returned)` when the code returned before reaching it. */
  calledName: string;
  /** `file:line:column` of the call in the workflow's code, when there was a call. */
  callSite: string | undefined;
  message: string;
}

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
  /**
   * Present only when a stored field (input, output or error) could not be read: the field is
   * undefined and this says which value is corrupt and why (the first, when several are).
   */
  problem?: CorruptValueError;
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
  /** Present only when the stored output or error could not be read; that field is then undefined. */
  problem?: CorruptValueError;
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
  /**
   * Deadline from now (for a queued workflow: from when it becomes runnable): past it the workflow
   * ends CANCELLED and result() rejects with WorkflowTimeoutError.
   */
  timeoutMs?: number;
  /** Run through this queue (declared with engine.queue) instead of at once. */
  queue?: string;
  /** Queue order: lower runs first (default 0); FIFO within a priority. */
  priority?: number;
  /** At most one ENQUEUED, DELAYED or PENDING workflow per (queue, dedupId). */
  dedupId?: string;
  /** What a duplicate dedupId does: reject with DuplicateQueueEntryError (default) or return the existing handle. */
  onDuplicate?: 'error' | 'return-existing';
  /** Wait in DELAYED this long before becoming runnable. */
  delayMs?: number;
  /** Required on partitioned queues: the limits apply to each key on its own. */
  partitionKey?: string;
  /**
   * Your own open transaction on Cairn's database: the workflow is inserted by it, so it exists,
   * and runs (or can be claimed from its queue), only once you commit; a rollback leaves nothing.
   * On PostgreSQL a `pg` client on which you ran BEGIN; on SQLite the `better-sqlite3` database on
   * Cairn's file with a transaction open (await the start before you COMMIT).
   */
  transaction?: unknown;
}

/** Options of `client.enqueue`: a queue is required. */
export interface EnqueueOptions extends Omit<StartOptions, 'queue'> {
  queue: string;
}

/** Flow control of a queue. Every limit is optional. */
export interface QueueOptions {
  /** Most workflows of this queue PENDING at once, across all processes (per key when partitioned). */
  concurrency?: number;
  /** Most workflows of this queue running at once in this process. */
  workerConcurrency?: number;
  /** Most starts in any window of `periodMs`, across all processes (per key when partitioned). */
  rateLimit?: { limit: number; periodMs: number };
  /** Each enqueue names a partitionKey, and the limits apply per key. */
  partitioned?: boolean;
}

export interface ScheduleOptions {
  /** IANA time zone the cron is read in (default UTC). */
  timezone?: string;
  /** Enqueue each tick's workflow on this queue instead of running it in the firing process. */
  queue?: string | null;
  /**
   * Ticks that passed while no process was running: `skip` (default) fires only the next tick;
   * `backfill` fires each missed tick once (at most the latest 100).
   */
  missed?: 'skip' | 'backfill';
}

/** What a scheduled workflow receives. */
export interface ScheduledInput {
  /** The tick. */
  scheduledAt: Date;
  /** When a process actually started it. */
  firedAt: Date;
}

export interface ScheduleInfo {
  name: string;
  cron: string;
  workflowName: string;
  timezone: string;
  queue: string | null;
  missed: 'skip' | 'backfill';
  paused: boolean;
  lastTickAt: Date | null;
  /** The next tick, or null when paused or when the stored definition is broken (see `problem`). */
  nextTickAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  /**
   * Present only when the stored cron expression or time zone no longer works (edited by hand,
   * or a time zone the runtime no longer knows): what is wrong. Such a schedule never fires
   * until it is updated; the others are unaffected.
   */
  problem?: string;
}

export interface ScheduleUpdate {
  cron?: string;
  workflow?: Workflow<never, unknown> | string;
  timezone?: string;
  queue?: string | null;
  missed?: 'skip' | 'backfill';
}

export interface DebounceOptions {
  /** Quiet time after the last call before the workflow runs. */
  periodMs: number;
  /**
   * Longest delay after the first call of a burst (default: no limit beyond periodMs after each
   * call). It caps the first delay too when it is below periodMs.
   */
  maxWaitMs?: number;
  priority?: number;
  partitionKey?: string;
}

export interface ForkOptions {
  /** The first step to execute again; checkpoints before it are reused. */
  fromStep: number;
  /** Id of the new workflow (default: a UUID). */
  id?: string;
}

export interface RetryWorkflowOptions {
  /**
   * The first step to run again: checkpoints from it on are dropped. Default: the failed step (the
   * last one whose checkpoint holds an error), or just past the last checkpoint when none does.
   */
  fromStep?: number;
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
   * Runs `fn` inside a transaction of Cairn's own database that also writes this call's
   * checkpoint: its writes to your tables and the checkpoint commit together, so they happen
   * exactly once. A replay returns the recorded result and `fn` does not run. A failing `fn` rolls
   * back and follows `options.retry`. On PostgreSQL `tx` is a `pg` client in the transaction (a
   * serialization failure or deadlock runs it again); on SQLite it is the `better-sqlite3`
   * database, and `fn` must be synchronous.
   *
   * @example
   * await ctx.transaction('reserve', async (tx: pg.PoolClient) => {
   *   await tx.query('UPDATE stock SET held = held + $1 WHERE sku = $2', [qty, sku]);
   * });
   */
  transaction<T, Tx = unknown>(name: string, fn: (tx: Tx) => Promise<T> | T, options?: StepOptions): Promise<T>;
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

  /**
   * Whether this execution takes the code path of patch `patchId`: true for new executions (the
   * marker is recorded as a checkpoint) and for replays of histories that recorded it; false for
   * replays of histories made before the patch, which go on down the old path. Check each patch id
   * once per execution, at one place.
   *
   * @example
   * if (await ctx.patched('fraud-check')) await ctx.step('fraud-check', () => fraud.check(order));
   * await ctx.step('charge', () => payments.charge(order));
   */
  patched(patchId: string): Promise<boolean>;
  /**
   * Marks a patch whose old path is gone: once no history from before `patched(patchId)` is left
   * unfinished, replace the check with this call (and keep only the new path), so histories that
   * recorded the marker still replay. Remove it once those are finished too.
   */
  deprecatePatch(patchId: string): Promise<void>;

  /**
   * Sends a message to a workflow, exactly once: the message is stored in the same transaction as
   * this call's checkpoint. Rejects with WorkflowNotFoundError when no workflow has that id.
   *
   * @example
   * await ctx.send(orderId, { approved: true }, 'approval');
   */
  send(workflowId: string, message: unknown, topic?: string): Promise<void>;
  /**
   * The oldest unconsumed message on `topic` (default: messages sent without a topic), or `null`
   * once `timeoutMs` (default 60,000) passes. The message is consumed in the same transaction as
   * the checkpoint, so it is delivered exactly once; a replay returns the same message or null.
   */
  recv<T = unknown>(topic?: string, timeoutMs?: number): Promise<T | null>;
  /** Publishes a value under `key` for this workflow; the last value wins. */
  setEvent(key: string, value: unknown): Promise<void>;
  /** Waits until `workflowId` has set `key` (or `timeoutMs`, default 60,000, passes: `null`); recorded. */
  getEvent<T = unknown>(workflowId: string, key: string, timeoutMs?: number): Promise<T | null>;
  /** Appends a value to this workflow's stream `key`. */
  writeStream(key: string, value: unknown): Promise<void>;
  /** Closes stream `key`; readers stop after the values written before it. */
  closeStream(key: string): Promise<void>;
  /**
   * Starts a child workflow (id `${parentId}-${stepId}` unless given) and records the start.
   * Cancelling the parent cancels its unfinished children.
   */
  startChild<I, O>(workflow: Workflow<I, O>, input: I, options?: ChildOptions): Promise<WorkflowHandle<O>>;
  /** `startChild`, then waits for the child and records its result (or error) in the parent. */
  runChild<I, O>(workflow: Workflow<I, O>, input: I, options?: ChildOptions): Promise<O>;
  /**
   * Runs thunks that make Context calls, at most `concurrency` at once (default: all), started in
   * order, and resolves with their results in order once every one has settled; if any failed, it
   * rejects then with the error of the first failed thunk by position. Each thunk's calls take
   * step ids of their own, so the ids never depend on which thunk starts or finishes first: a
   * replay finds every checkpoint where it was. While it runs, Context calls may only be made
   * inside its thunks.
   *
   * @example
   * const sizes = await ctx.all(files.map((f) => () => ctx.step(`size:${f}`, () => stat(f))), { concurrency: 5 });
   */
  all<T extends readonly (() => unknown)[] | []>(thunks: T, options?: AllOptions): Promise<AllResults<T>>;
}

/** Options of `ctx.all`. */
export interface AllOptions {
  /** Most thunks running at once (default: every thunk at once). */
  concurrency?: number;
}

/** What `ctx.all` resolves with: each thunk's awaited result, in order. */
export type AllResults<T extends readonly (() => unknown)[]> = { -readonly [K in keyof T]: T[K] extends () => infer R ? Awaited<R> : never };

export interface ChildOptions {
  /** The child's id (default `${parentId}-${stepId}`). */
  id?: string;
  timeoutMs?: number;
  /**
   * Enqueue the child on this queue (declared with `engine.queue`) instead of starting it here:
   * it runs when the queue's limits allow, in whichever process claims it, and keeps its parent
   * link, so cancelling the parent cancels it too.
   */
  queue?: string;
  /** With `queue`: the child's priority (lower runs first, default 0). */
  priority?: number;
  /** With `queue`, on a partitioned queue: the child's partition key. */
  partitionKey?: string;
}

/** How a task of a pipeline ended, as its dependents' triggers see it. */
export type TaskOutcome = 'success' | 'failed' | 'skipped';

/** The built-in trigger rules of pipeline tasks. */
export type TriggerRuleName = 'all_success' | 'all_done' | 'one_success' | 'one_failed' | 'none_failed';

/**
 * When a task with dependencies runs: a built-in rule, or a function of its dependencies'
 * outcomes, called once every dependency has settled (true: run; false: skip). It must be pure:
 * a replay calls it again and must get the same answer.
 */
export type TriggerRule = TriggerRuleName | ((outcomes: Readonly<Record<string, TaskOutcome>>) => boolean);

/** What a pipeline task's function receives. */
export interface TaskArgs<I, D> {
  /** The pipeline run's input. */
  input: I;
  /** The outputs of its dependencies that succeeded, by key. */
  deps: D;
  /** The outcome of each dependency that had settled when the task's trigger held, by key. */
  outcomes: Readonly<Record<string, TaskOutcome>>;
  /** Aborts when the run is cancelled or times out, or when the task's timeoutMs passes. */
  signal: AbortSignal;
  /** 1 on the first attempt. */
  attempt: number;
}

/** Options of one pipeline task (`engine.dag(name).task(key, fn, options)`). */
export interface TaskOptions<D extends string = string> {
  /** Keys of the tasks it runs after (default none: it runs at once). */
  dependsOn?: readonly D[];
  /** When it runs, given its dependencies' outcomes (default `'all_success'`). */
  trigger?: TriggerRule;
  /** Retries of its function, as for a step. */
  retry?: RetryOptions;
  /**
   * Per-attempt limit of its function, in ms (> 0). For an external task, the limit of the wait
   * for its completion instead: past it the task fails with StepTimeoutError.
   */
  timeoutMs?: number;
  /**
   * Its output comes from outside: once its trigger holds, its function runs (to ask for the
   * completion: send the email, register the webhook), then it waits for
   * `engine.completeTask(runId, key, value)`, and `value` is its output.
   */
  external?: boolean;
}

/** Options of a pipeline (`engine.dag(name, options)`). */
export interface DagOptions {
  /** Most task functions running at once in one run (default: no limit). */
  maxParallel?: number;
}

export type DagProblemKind = 'cycle' | 'missing-dependency' | 'duplicate-key' | 'blank-key' | 'invalid-timeout' | 'invalid-trigger';

/** One problem `build()` found in a pipeline; `DagValidationError.problems` lists them all. */
export interface DagProblem {
  kind: DagProblemKind;
  /**
   * The keys concerned: a cycle's keys in order (each runs before the next, and the last before
   * the first); for a missing dependency, the task then the key it names; otherwise the task.
   */
  keys: string[];
  message: string;
}

/** What a pipeline run returns when no task failed. */
export interface DagResult<O> {
  /** The content version of the pipeline's shape the run had (see `DagWorkflow.version`). */
  version: string;
  /** The outputs of the tasks that ran, by key. */
  outputs: Partial<O>;
  /** Keys of the tasks whose trigger could not hold, in declaration order. */
  skipped: string[];
}

/** A pipeline, as `build()` returns it: a registered workflow, plus its shape. */
export interface DagWorkflow<I, O> extends Workflow<I, DagResult<O>> {
  /**
   * A hash of the pipeline's shape (task keys in order, dependencies, triggers, which tasks are
   * external). Each run records it as its first checkpoint, named `cairn.dag:<version>`.
   */
  readonly version: string;
  /** The task keys, in declaration order. */
  readonly tasks: readonly string[];
}

export interface SendOptions {
  /** A message sent again with the same key to the same workflow is delivered once. */
  idempotencyKey?: string;
}

export type WorkflowFunction<I, O> = (ctx: Context, input: I) => Promise<O>;

/** Carries a workflow's input and output types; never present at run time. */
declare const workflowTypes: unique symbol;

/**
 * A workflow's name together with its input and output types, for processes that do not register
 * it: `client.enqueue(ref, input, options)` then checks the input and types the handle. Every
 * `Workflow` is one; a plain object with the name makes another.
 *
 * @example
 * import type { order } from './workflows.js';
 * const processOrder: WorkflowRef<WorkflowInput<typeof order>, WorkflowOutput<typeof order>> = { name: 'process_order' };
 * const handle = await client.enqueue(processOrder, input, { queue: 'orders' }); // WorkflowHandle<Receipt>
 */
export interface WorkflowRef<I = unknown, O = unknown> {
  readonly name: string;
  /** Type information only: no value ever has this property. */
  readonly [workflowTypes]?: { readonly input: (input: I) => void; readonly output: O };
}

/** The input type of a workflow (or reference): `WorkflowInput<typeof order>`. */
export type WorkflowInput<W extends WorkflowRef<never, unknown>> = W extends WorkflowRef<infer I, unknown> ? I : never;

/** The output type of a workflow (or reference): `WorkflowOutput<typeof order>`. */
export type WorkflowOutput<W extends WorkflowRef<never, unknown>> = W extends WorkflowRef<never, infer O> ? O : never;

/**
 * The arguments of `start` and `run`: the input, then options. The input may be left out when the
 * workflow accepts `undefined` (an input typed `void`, `undefined` or `T | undefined`, or none).
 */
export type StartArgs<I> = undefined extends I ? [input?: I, options?: StartOptions] : [input: I, options?: StartOptions];

/** A registered workflow, as returned by `engine.workflow(name, fn)`. */
export interface Workflow<I, O> extends WorkflowRef<I, O> {
  readonly name: string;
  /**
   * Stores the workflow (one write) and starts running it in this process.
   *
   * @example
   * const handle = await order.start(input, { id: 'order-1' });
   * const nightly = await cleanup.start(); // a workflow without input
   */
  start(...args: StartArgs<I>): Promise<WorkflowHandle<O>>;
  /** `start` then `result`. */
  run(...args: StartArgs<I>): Promise<O>;
  /**
   * A handle to the workflow `id`, typed with this workflow's output. It does not check that `id`
   * is a workflow of this name: `status()` tells.
   *
   * @example
   * const receipt = await order.handle('order-1').result();
   */
  handle(id: string): WorkflowHandle<O>;
}

/** pino-compatible logger; Cairn logs little and only at warn/error unless asked. */
export interface Logger {
  debug?(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ClientOptions {
  /**
   * Where checkpoints live: `sqlite:<path>` (relative to the working directory, or absolute),
   * `sqlite::memory:`, `postgres://…` / `postgresql://…`, or a Provider instance.
   */
  database: string | Provider;
  /** Postgres schema holding Cairn's tables (default `cairn`). A lowercase SQL identifier. */
  schema?: string;
  logger?: Logger;
  /** Apply pending migrations at open (default true). */
  migrate?: boolean;
  /**
   * Fallback poll of waits (`result()`, `recv`, `getEvent`, `readStream`, queue dispatch), for lost
   * notifications and, on SQLite, for writers in other processes. Default 5,000 ms on Postgres,
   * 1,000 ms on SQLite.
   */
  pollIntervalMs?: number;
  /**
   * The most bytes (UTF-8, as stored) one value may take: a workflow's input or output, a step's
   * output, a message, an event, a stream value. A bigger one raises SerializationError naming
   * its largest part and its size, and nothing is stored. Default 16 MiB; at most 512 MiB.
   */
  maxPayloadBytes?: number;
  /**
   * OpenTelemetry (default on when `@opentelemetry/api` is installed and a tracer or meter provider
   * is registered before open): spans, metrics, and the caller's trace context stored with each
   * workflow started. `false` turns it off. See docs/observability.md.
   */
  telemetry?: boolean;
}

export interface EngineOptions extends ClientOptions {
  /**
   * This engine's executor id: the owner of the workflows it runs (default
   * `process.env.CAIRN_EXECUTOR_ID`, else `<hostname>:<pid>`, so every process is its own executor).
   * A process restarted under the same id recovers that id's workflows at boot.
   */
  executorId?: string;
  /**
   * How long an executor may go without a heartbeat before the others consider it dead and adopt
   * its unfinished workflows, in ms (default 30,000).
   */
  leaseMs?: number;
  /** How often this engine heartbeats, in ms (default a third of `leaseMs`); must be below `leaseMs`. */
  heartbeatMs?: number;
  /** Version of the application's workflow code (default: a hash of the registered workflow sources). */
  appVersion?: string;
  /** Recoveries without progress after which a workflow is parked in MAX_RECOVERY_ATTEMPTS_EXCEEDED (default 50). */
  maxRecoveryAttempts?: number;
  /** Deletes finished workflows automatically, as `gc` does, on a timer: see RetentionOptions. */
  retention?: RetentionOptions;
  /** Functions called after lifecycle events (workflows started, ended, enqueued, adopted; steps ended and retried): see WorkflowHooks. */
  hooks?: WorkflowHooks;
}

/** `Engine.open({ retention })`: how long finished workflows are kept. */
export interface RetentionOptions {
  /** Finished workflows that completed longer ago than this (ms) are deleted with everything stored under them. */
  completedOlderThanMs: number;
  /** Which finished statuses (default SUCCESS, ERROR and CANCELLED). */
  statuses?: WorkflowStatus[];
  /** How often this engine cleans up, in ms (default an hour; the first time at a random point of the first interval). */
  intervalMs?: number;
  /** Workflows deleted per transaction (default 1,000). */
  batchSize?: number;
}

export interface ListWorkflowsFilter {
  status?: WorkflowStatus | WorkflowStatus[];
  name?: string;
  queue?: string;
  /** Only these ids (at most 1,000). */
  ids?: string[];
  /** Only ids that start with this text. */
  idPrefix?: string;
  /** Only workflows owned by this executor. */
  executorId?: string;
  /** Only workflows recorded by this application version. */
  appVersion?: string;
  /** Only children of this workflow. */
  parentId?: string;
  createdAfter?: Date;
  createdBefore?: Date;
  completedAfter?: Date;
  completedBefore?: Date;
  limit?: number;
  offset?: number;
  order?: 'asc' | 'desc';
  /**
   * Keyset paging: only workflows after this one in the listing's order. Pass the last workflow
   * of the previous page (any object with its `createdAt` and `id`); the next page is found by an
   * index seek, however deep it is, and rows inserted meanwhile neither repeat nor shift pages.
   */
  after?: { createdAt: Date; id: string };
}

/** A queue with its limits and how many of its workflows wait, as `listQueues()` returns it. */
export interface QueueInfo {
  name: string;
  concurrency: number | null;
  workerConcurrency: number | null;
  rateLimit: { limit: number; periodMs: number } | null;
  partitioned: boolean;
  /** Ready to be claimed. */
  enqueued: number;
  /** Waiting for their `delayMs`. */
  delayed: number;
  /** Claimed and not finished (PENDING). */
  running: number;
}

export interface GcOptions {
  /** Deletes finished workflows completed before this instant, or this many ms ago. */
  olderThan: Date | number;
  /** Which finished statuses to delete (default SUCCESS, ERROR and CANCELLED; a parked MAX_RECOVERY_ATTEMPTS_EXCEEDED one only when named). */
  statuses?: WorkflowStatus[];
  /** Workflows deleted per transaction (default 1,000). */
  batchSize?: number;
  /** Called after each batch with the total deleted so far. */
  onProgress?: (deleted: number) => void;
}

export interface GcResult {
  deleted: number;
}

export interface CloseOptions {
  /** How long to wait for workflows in flight before leaving them PENDING (default 10,000 ms). */
  timeoutMs?: number;
}

/**
 * Where a {@link TenantAdmin} keeps tenants: `database`, an admin `postgres://` URL (a schema and a
 * login role per tenant), or `directory`, a folder of SQLite files (one file per tenant).
 */
export interface TenantAdminOptions {
  /** PostgreSQL: a URL whose user may create roles and schemas (a superuser, say). */
  database?: string;
  /** SQLite: the directory holding `<name>.db` for each tenant; created if missing. */
  directory?: string;
  /**
   * PostgreSQL: the start of each tenant's schema and role name, `<prefix><name>` (default
   * `tenant_`): 1 to 8 characters of a-z, 0-9 and _, starting with a letter. Roles belong to the
   * whole server, so databases of one server that both hold tenants need different prefixes.
   */
  prefix?: string;
  /** PostgreSQL: the schema of the registry table `tenants` (default `cairn_tenants`). */
  registry?: string;
}

/** A tenant: what `createTenant` made, or what `listTenants` found. */
export interface Tenant {
  name: string;
  /** Its Postgres schema (pass it as `schema` to `Engine.open`); null on SQLite. */
  schema: string | null;
  /** Its Postgres login role; null on SQLite. */
  role: string | null;
  /**
   * How to open an engine for it: on Postgres the admin URL with the tenant's role as user, and,
   * from `createTenant` only, its generated password (never stored in the clear, so never listed
   * again); on SQLite `sqlite:<path>`.
   */
  url: string;
  createdAt: Date;
}

export interface DropTenantOptions {
  /**
   * Drop even while executors of the tenant are alive (default false): on Postgres their
   * connections are terminated first.
   */
  force?: boolean;
}
