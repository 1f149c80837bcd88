import type { WorkflowStatus } from '../types.js';

/**
 * The seam between the engine and a database. Each operation is one named method, and each
 * provider keeps its SQL in its own `statements.ts`. The engine never looks at which database
 * it talks to; what differs is described by {@link ProviderCapabilities}.
 *
 * Rows carry stored values as superjson text and instants as epoch milliseconds.
 */

export interface WorkflowRow {
  id: string;
  name: string;
  status: WorkflowStatus;
  input: string | null;
  output: string | null;
  error: string | null;
  queue: string | null;
  executorId: string | null;
  appVersion: string | null;
  parentId: string | null;
  recoveryAttempts: number;
  deadlineAt: number | null;
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
  priority: number;
  dedupId: string | null;
  partitionKey: string | null;
  availableAt: number | null;
  /** The caller's trace context (a W3C traceparent) when it was started with a span active; see docs/observability.md. */
  traceContext: string | null;
}

export interface NewWorkflow {
  id: string;
  name: string;
  input: string;
  /** Null for queued workflows: the claiming executor sets both. */
  executorId: string | null;
  appVersion: string | null;
  queue: string | null;
  parentId: string | null;
  deadlineAt: number | null;
  createdAt: number;
  /** PENDING (runs now, here), ENQUEUED or DELAYED (waits for a queue's dispatcher). Default PENDING. */
  status?: 'PENDING' | 'ENQUEUED' | 'DELAYED';
  priority?: number;
  dedupId?: string | null;
  partitionKey?: string | null;
  /** For DELAYED workflows: when they become runnable. */
  availableAt?: number | null;
  /** The caller's trace context (W3C traceparent), or null. */
  traceContext?: string | null;
}

/** Why a workflow was not inserted: its id is taken, or its queue holds an unfinished one with its dedupId. */
export interface InsertConflict {
  reason: 'id' | 'dedup';
  row: WorkflowRow;
}

export interface QueueDefinition {
  name: string;
  concurrency: number | null;
  workerConcurrency: number | null;
  rateLimit: { limit: number; periodMs: number } | null;
  partitioned: boolean;
}

/** What the function of a transactional step threw (or the checkpoint made of its result): the transaction was rolled back. */
export class TransactionBodyError extends Error {
  constructor(readonly error: unknown) {
    super('the function of a transactional step failed', { cause: error });
    this.name = 'TransactionBodyError';
  }
}

export interface QueueRow extends QueueDefinition {
  enqueued: number;
  delayed: number;
  running: number;
}

export interface ClaimRequest {
  queue: QueueDefinition;
  executorId: string;
  appVersion: string;
  /** Only workflows this process can run are claimed. */
  names: string[];
  /** Most workflows to claim now (this process's free slots). */
  slots: number;
}

/**
 * What a claim returns of each workflow it moved to PENDING: what it takes to run it. A workflow
 * with recovery attempts was run before (its executor died and it went back to its queue), so it
 * has checkpoints to replay, and `appVersion` is the version that recorded them.
 */
export type ClaimedWorkflow = Pick<WorkflowRow, 'id' | 'name' | 'input' | 'queue' | 'appVersion' | 'deadlineAt' | 'recoveryAttempts' | 'traceContext'>;

export interface ClaimResult {
  claimed: ClaimedWorkflow[];
  /** When a DELAYED workflow becomes runnable or the rate-limit window frees a start, if known. */
  nextAt: number | null;
}

export interface ScheduleRow {
  name: string;
  cron: string;
  workflowName: string;
  timezone: string;
  queue: string | null;
  missed: 'skip' | 'backfill';
  paused: boolean;
  lastTickAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface DebounceRequest {
  row: NewWorkflow & { queue: string };
  key: string;
  periodMs: number;
  maxWaitMs: number;
}

export interface StepRow {
  stepId: number;
  name: string;
  output: string | null;
  error: string | null;
  childId: string | null;
  /** How many times the step body ran before this outcome (retries). */
  attempts: number;
  startedAt: number;
  completedAt: number;
}

/**
 * Outcome of writing a checkpoint. The write itself checks that the workflow is still PENDING
 * and that no checkpoint holds the counter, so the happy path is one statement.
 */
export type CheckpointOutcome =
  | { kind: 'recorded' }
  | { kind: 'conflict'; existing: StepRow }
  | { kind: 'not-pending'; status: WorkflowStatus | undefined }
  /** The workflow is PENDING under another executor: it was adopted, and this execution is fenced off. */
  | { kind: 'superseded'; owner: string | null };

/**
 * A change a waiter may be waiting for: `w:<id>` (workflow status), `m:<id>` (message for a
 * workflow), `e:<id>:<key>` (event), `s:<id>:<key>` (stream entry), or `*` (anything may have
 * changed, after notifications were lost).
 */
export type ChangeListener = (key: string) => void;

/** What a checkpoint writes besides itself, in the same transaction. */
export type StepEffect =
  | { kind: 'send'; destinationId: string; topic: string; body: string }
  | { kind: 'set-event'; key: string; value: string }
  | { kind: 'stream'; key: string; value: string | null; closed: boolean };

export interface StreamEntry {
  offset: number;
  value: string | null;
  closed: boolean;
}

export interface CancelResult {
  /** The workflow after the call; undefined when there is none. */
  row: WorkflowRow | undefined;
  /** Every workflow this call cancelled: the workflow itself and its unfinished descendants. */
  cancelled: string[];
}

/** Why a checkpoint was not written. */
export type CheckpointMiss = Exclude<CheckpointOutcome, { kind: 'recorded' }>;

/** One engine process as stored: who it is, where it runs, and its lease. */
export interface ExecutorRow {
  id: string;
  hostname: string;
  /** The host and its process-id namespace; executors with the same key can check each other's pids. */
  hostKey: string;
  pid: number;
  appVersion: string;
  leaseMs: number;
  startedAt: number;
  heartbeatAt: number;
  stoppedAt: number | null;
}

/** Which unowned workflows an executor could adopt: those of these names, less those ids. */
export interface Adoptable {
  names: string[];
  exclude: string[];
}

/** What one heartbeat learns about the fleet. */
export interface HeartbeatResult {
  /** False when this executor's row was gone (deleted by hand): it must register again. */
  registered: boolean;
  /** Live executors, this one included. */
  live: number;
  /** Dead executors (lease expired, or stopped) that still own PENDING workflows. */
  dead: string[];
  /** Executors on this host (same host key) that have not stopped, with their pids. */
  neighbours: Array<{ id: string; pid: number; startedAt: number }>;
  /**
   * PENDING workflows no executor owns (handed back after their replay diverged somewhere) that this
   * executor could adopt: of the names it registers, less the ones it handed back itself.
   */
  unowned: number;
}

/** An app version as `listVersions` reports it. */
export interface VersionRow {
  appVersion: string;
  /** Live executors running it. */
  executors: number;
  /** PENDING workflows recorded by it. */
  pending: number;
  firstSeenAt: number;
  lastSeenAt: number;
}

export interface AdoptRequest {
  executorId: string;
  names: string[];
  /** The dead executors to adopt from (unowned workflows are adopted too). */
  from: string[];
  /** Workflows not to adopt: those whose replay already diverged here. */
  exclude: string[];
  /** Live executors sharing the work: this call adopts about 1/live of what is adoptable. */
  live: number;
  maxAttempts: number;
}

export interface AdoptResult {
  /** Workflows now owned by this executor, attempts counted (PENDING), or parked past the cap. */
  claimed: WorkflowRow[];
  parked: WorkflowRow[];
  /** Queued workflows put back on their queues (ENQUEUED), to be claimed under the queues' limits. */
  requeued: number;
}

export interface RecoveryClaim {
  /** PENDING workflows of this executor and version with a registered name, attempts counted. */
  claimed: WorkflowRow[];
  /** Those that passed the cap in this claim and were parked. */
  parked: WorkflowRow[];
  /** PENDING workflows of this executor and version whose name is not registered; left untouched. */
  unknown: WorkflowRow[];
}

export interface ListFilter {
  statuses?: WorkflowStatus[];
  name?: string;
  queue?: string;
  ids?: string[];
  idPrefix?: string;
  executorId?: string;
  appVersion?: string;
  parentId?: string;
  createdAfter?: number;
  createdBefore?: number;
  completedAfter?: number;
  completedBefore?: number;
  /** Keyset paging: rows after this one in the listing's order. */
  after?: { createdAt: number; id: string };
  limit?: number;
  offset?: number;
  order: 'asc' | 'desc';
}

export interface ProviderCapabilities {
  /** Several processes may share the database (Postgres), or only the processes of one machine (SQLite). */
  readonly multiHost: boolean;
  /** Changes made by other processes are notified (Postgres), or only found by polling (SQLite). */
  readonly crossProcessNotifications: boolean;
}

/** Where a database stands against the migrations this version of Cairn ships. */
export interface SchemaVersion {
  /** The highest migration applied (0 when none is: the database was never migrated). */
  applied: number;
  /** The highest migration this code knows. */
  expected: number;
  /** The database in words, for messages (no password). */
  where: string;
}

/** Called for every statement a provider sends, before it is sent. */
export type StatementObserver = (sql: string) => void;

export interface Provider {
  readonly kind: string;
  readonly capabilities: ProviderCapabilities;

  /** Applies pending migrations; safe when several processes do it at once. */
  migrate(): Promise<void>;
  /**
   * Reads which migrations the database has, in one cheap query (it also proves the connection
   * works). Opening with `migrate: false` checks it. Failing to connect is a DatabaseConnectionError.
   */
  schemaVersion?(): Promise<SchemaVersion>;
  /**
   * Whether a failure of one of this provider's calls may pass by itself (a dropped or refused
   * connection, a server restarting, a lock held by another process), so the same call can be
   * made again later. Waits ride such failures out instead of failing.
   */
  isTransient?(err: unknown): boolean;
  close(): Promise<void>;

  /** Inserts a workflow. Returns null when inserted, or what prevented it. */
  insertWorkflow(row: NewWorkflow): Promise<InsertConflict | null>;
  getWorkflow(id: string): Promise<WorkflowRow | undefined>;
  listWorkflows(filter: ListFilter): Promise<WorkflowRow[]>;
  /**
   * Ends a workflow PENDING under executor `owner`. Returns null when this call ended it, or the
   * stored row when it was not (cancelled, ended by a racing execution, or adopted by another executor).
   */
  completeWorkflow(
    id: string,
    status: 'SUCCESS' | 'ERROR',
    output: string | null,
    error: string | null,
    completedAt: number,
    owner: string,
  ): Promise<WorkflowRow | undefined | null>;

  /**
   * Moves a PENDING, ENQUEUED or DELAYED workflow, and its unfinished descendants, to CANCELLED.
   * The workflow itself gets `error` as the reason; descendants get none.
   */
  cancelWorkflow(id: string, error: string, now: number): Promise<CancelResult>;
  /**
   * Moves a CANCELLED, ERROR or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow back to PENDING under this
   * executor (null: unowned, for a live executor to adopt), clearing its outcome, deadline and
   * recovery count; a workflow with no app version takes `appVersion`. Returns the row after the call.
   */
  resumeWorkflow(id: string, executorId: string | null, appVersion: string | null, now: number): Promise<WorkflowRow | undefined>;
  /**
   * Like resumeWorkflow, and in the same transaction drops the checkpoints from `fromStep` on (wait
   * deadlines under negated ids too), with the events and stream entries those steps wrote, so the
   * workflow runs again from that step under its own id. Returns the row after the call, or
   * undefined when the workflow was not CANCELLED, ERROR or MAX_RECOVERY_ATTEMPTS_EXCEEDED.
   */
  retryWorkflow(id: string, fromStep: number, executorId: string | null, appVersion: string | null, now: number): Promise<WorkflowRow | undefined>;
  /**
   * Inserts `row` as a new PENDING workflow and copies the checkpoints of `sourceId` below
   * `fromStep`, in one transaction. Returns null when inserted, or the row already under that id.
   */
  forkWorkflow(row: NewWorkflow, sourceId: string, fromStep: number): Promise<InsertConflict | null>;

  /** Stores (or updates) a queue's definition. */
  upsertQueue(queue: QueueDefinition, now: number): Promise<void>;
  getQueue(name: string): Promise<QueueDefinition | undefined>;
  /**
   * A transactional step: runs `body` inside a database transaction and records the checkpoint
   * `finish` makes from its result in the same transaction, fenced like `recordStep`. Both commit
   * or neither: a checkpoint that misses rolls the body's writes back and returns the miss. An
   * error of `body` or `finish` rolls back and is thrown wrapped in a TransactionBodyError; any
   * other error is the database's. On PostgreSQL `body` receives a pg client in the transaction,
   * and a serialization failure or deadlock runs the whole transaction again; on SQLite it receives
   * the better-sqlite3 database and must be synchronous.
   */
  transactionStep(workflowId: string, owner: string, body: (tx: unknown) => unknown, finish: (value: unknown) => StepRow): Promise<CheckpointOutcome>;
  /**
   * Inserts a workflow through the caller's own open transaction `tx` on this database (a pg
   * client on PostgreSQL, a better-sqlite3 database on SQLite): it exists only once the caller
   * commits, and on PostgreSQL its notification is sent only then. On SQLite the insert is made
   * before this returns. A `tx` of the wrong kind, or not in a transaction, is refused.
   */
  insertWorkflowWithin(tx: unknown, row: NewWorkflow): Promise<InsertConflict | null>;
  /** Resolves once the caller's transaction `tx` has ended, where that can be seen (SQLite); undefined where it cannot (PostgreSQL). */
  transactionEnded(tx: unknown): Promise<void> | undefined;
  /** Takes an unowned PENDING workflow for `executorId`: the row, or undefined when it is not there (not committed yet) or not unowned. */
  claimUnowned(id: string, executorId: string, appVersion: string, now: number): Promise<WorkflowRow | undefined>;
  /** Every declared queue with how many of its workflows are ENQUEUED, DELAYED and PENDING. */
  listQueues(): Promise<QueueRow[]>;
  /**
   * Deletes up to `limit` finished workflows with a status in `statuses` completed before
   * `cutoff`, oldest first, with their steps, events, streams and messages, in one transaction.
   * A parent with a child still to run is kept. Returns the ids deleted.
   */
  gcBatch(cutoff: number, statuses: WorkflowStatus[], limit: number): Promise<string[]>;
  /** Deletes one finished workflow (with no child still to run) and what is stored under its id; false when it was not deletable. */
  deleteWorkflow(id: string): Promise<boolean>;
  /**
   * In one transaction, serialized with other claims on the same queue: makes due DELAYED workflows
   * ENQUEUED, then moves the next runnable ones to PENDING under this executor, within the queue's
   * global concurrency and rate limit (per partition key when partitioned), in (priority, enqueue) order.
   * The time it stamps and counts the rate window from is read once the queue's lock is held.
   */
  claimQueued(request: ClaimRequest): Promise<ClaimResult>;
  /**
   * Inserts a DELAYED workflow for a debounce key, or, when one is still waiting, gives it the new
   * input and pushes its start back by periodMs (never past maxWaitMs after the first call). Returns its id.
   */
  debounce(request: DebounceRequest): Promise<string>;

  /** Sets a workflow's recovery count back to 0 (its execution made progress). */
  resetRecoveryAttempts(id: string): Promise<void>;

  /**
   * Writes the checkpoint of a step whose body completed after its workflow was cancelled, so the
   * effect is on record and a resume does not run the body again. False when the workflow is not
   * CANCELLED or the step is already recorded.
   */
  recordCancelledStep(workflowId: string, step: StepRow): Promise<boolean>;
  /**
   * Writes one checkpoint for a workflow that is PENDING under executor `owner` (fencing: an
   * execution whose workflow was adopted by another executor records nothing more).
   */
  recordStep(workflowId: string, step: StepRow, owner: string): Promise<CheckpointOutcome>;
  /** Writes a checkpoint and its effect in one transaction; `no-destination` when a send's target does not exist. */
  recordStepWithEffect(workflowId: string, step: StepRow, effect: StepEffect, owner: string): Promise<CheckpointOutcome | { kind: 'no-destination' }>;
  /**
   * Consumes the oldest unconsumed message on `topic` for the workflow and records it as the
   * checkpoint (output = the message body), in one transaction. `empty` when there is none.
   */
  recordRecv(
    workflowId: string,
    step: Pick<StepRow, 'stepId' | 'name' | 'startedAt' | 'completedAt'>,
    topic: string,
    owner: string,
  ): Promise<CheckpointMiss | { kind: 'received'; body: string } | { kind: 'empty' }>;
  /** A message from outside any workflow; a repeated idempotency key for the same destination is dropped. */
  sendMessage(destinationId: string, topic: string, body: string, idempotencyKey: string | null, now: number): Promise<'sent' | 'duplicate' | 'no-destination'>;
  getEvent(workflowId: string, key: string): Promise<string | undefined>;
  /** Stream entries after `afterOffset`, in order. */
  readStream(workflowId: string, key: string, afterOffset: number): Promise<StreamEntry[]>;
  listSchedules(): Promise<ScheduleRow[]>;
  getSchedule(name: string): Promise<ScheduleRow | undefined>;
  /** Inserts a schedule; false when the name is taken. */
  insertSchedule(row: ScheduleRow): Promise<boolean>;
  /** Replaces a schedule's definition (not its creation time); false when there is none. */
  updateSchedule(row: ScheduleRow): Promise<boolean>;
  deleteSchedule(name: string): Promise<boolean>;
  /** Records that `tick` fired, unless a later tick already did. */
  markScheduleTick(name: string, tick: number): Promise<void>;

  /** Listens for changes (`sch` when schedules change); the returned function stops listening. */
  subscribe(listener: ChangeListener): Promise<() => Promise<void>>;
  /**
   * For a database whose other processes cannot notify (SQLite): whether another connection has
   * committed since the last call. Cheap enough to call every fallback-poll interval; the engine
   * then wakes every waiter once (`*`) instead of each waiter polling on its own.
   */
  committedElsewhere?(): boolean;

  /** All checkpoints of a workflow in counter order, in one query. */
  listSteps(workflowId: string): Promise<StepRow[]>;
  /** The checkpoints of many workflows (recovery), in counter order per workflow, in one query. */
  listStepsOf(workflowIds: string[]): Promise<Map<string, StepRow[]>>;

  /**
   * Counts one more recovery attempt on every PENDING workflow of this executor, of any app
   * version, whose name is in `names` and id not in `exclude` (parking those past `maxAttempts`),
   * in one statement.
   */
  claimForRecovery(executorId: string, names: string[], exclude: string[], maxAttempts: number): Promise<RecoveryClaim>;
  /**
   * Hands a PENDING workflow this executor owns back, unowned and under `appVersion` (the version
   * that recorded it), without counting the recovery that claimed it: its replay diverged here.
   * False when it was not this executor's PENDING workflow any more.
   */
  releaseWorkflow(id: string, owner: string, appVersion: string | null): Promise<boolean>;
  /** Stamps a PENDING workflow this executor owns with `appVersion` (its replay on this code passed). */
  setAppVersion(id: string, appVersion: string, owner: string): Promise<void>;
  /** Every app version seen: by executors, or on PENDING workflows. Oldest first. */
  listVersions(): Promise<VersionRow[]>;

  /** Stores this executor's row (again, after a restart under the same id), alive from now. */
  registerExecutor(executor: Omit<ExecutorRow, 'heartbeatAt' | 'stoppedAt'>): Promise<void>;
  /** One statement per heartbeat: renews this executor's lease and reports the fleet (see HeartbeatResult). */
  heartbeat(executorId: string, hostKey: string, appVersion: string | null, adoptable: Adoptable): Promise<HeartbeatResult>;
  /** Marks executors stopped, so their unfinished workflows can be adopted at once. */
  stopExecutors(ids: string[]): Promise<void>;
  /** Every executor with its count of PENDING workflows, and the database's clock now. */
  listExecutors(): Promise<{ now: number; executors: Array<ExecutorRow & { pending: number }> }>;
  /**
   * In one transaction: puts the dead executors' queued PENDING workflows back on their queues,
   * and takes a share of their other PENDING workflows, and of unowned ones, with a registered name
   * (any app version), leaving out `exclude`.
   */
  adoptWorkflows(request: AdoptRequest): Promise<AdoptResult>;
}
