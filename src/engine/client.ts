import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { deliverCompletion } from '../dag/complete.js';
import type { Completion } from '../dag/protocol.js';
import type { Observer } from '../observability/observer.js';
import { Telemetry } from '../observability/otel.js';
import { assertMigrated } from '../providers/migrations.js';
import { providerFromUrl } from '../providers/open.js';
import type { InsertConflict, NewWorkflow, Provider, QueueDefinition, ScheduleRow, StepRow, WorkflowRow } from '../providers/provider.js';
import { Schedules } from '../scheduler/schedules.js';
import { assertSchemaName } from '../providers/schema-name.js';
import type {
  ClientOptions,
  EnqueueOptions,
  ExecutorInfo,
  ForkOptions,
  GcOptions,
  GcResult,
  ListWorkflowsFilter,
  Logger,
  QueueInfo,
  RetryWorkflowOptions,
  ScheduledInput,
  SendOptions,
  StepInfo,
  VersionInfo,
  WorkflowHandle,
  WorkflowHistory,
  WorkflowInfo,
  WorkflowRef,
  WorkflowStatus,
} from '../types.js';
import {
  DuplicateQueueEntryError,
  EngineClosedError,
  InvalidArgumentError,
  WorkflowCancelledError,
  WorkflowConflictError,
  WorkflowNotFoundError,
} from './errors.js';
import { DEFAULT_WAIT_MS } from './context.js';
import { gcRequest, listFilter } from './filters.js';
import { Handle, type HandleSource } from './handle.js';
import { newWorkflowId } from './ids.js';
import { isTerminal, resultOf, toStepInfo, toWorkflowInfo } from './info.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, deserialize, MAX_PAYLOAD_BYTES, serialize, serializeError } from './serialization.js';
import {
  assertDuration,
  assertInt32,
  assertName,
  assertOptions,
  assertPositiveInteger,
  describe,
} from './validate.js';
import { Waits } from './waits.js';

/** How long gc rests after each batch, as a multiple of the time the batch took. */
const GC_REST_RATIO = 9;

const QUIET: Logger = { info() {}, warn() {}, error() {} };

/** The statuses `resume` and `retry` take a workflow from. */
export const RESUMABLE: ReadonlySet<WorkflowStatus> = new Set(['CANCELLED', 'ERROR', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED']);

/** The step a retry starts from by default: the last one that recorded an error, else the one after the last checkpoint. */
function failedStep(steps: StepRow[], last: number): number {
  let failed = 0;
  for (const s of steps) if (s.stepId > failed && s.error !== null) failed = s.stepId;
  return failed > 0 ? failed : last + 1;
}

function notRetryable(id: string, status: WorkflowStatus): InvalidArgumentError {
  return new InvalidArgumentError(
    'id',
    `workflow '${id}' is ${status}; retry runs a workflow that ended ERROR, CANCELLED or MAX_RECOVERY_ATTEMPTS_EXCEEDED (cancel a running one first)`,
  );
}

export interface Opened {
  provider: Provider;
  logger: Logger;
  pollIntervalMs: number;
  maxPayloadBytes: number;
  /** @internal `@opentelemetry/api` when installed with a provider registered (and not turned off); else undefined. */
  telemetry: Telemetry | undefined;
}

/**
 * Checks the options every opener shares, then builds the provider and migrates it. Options are
 * checked before the database is touched.
 */
export async function openDatabase(options: ClientOptions, caller: string): Promise<Opened> {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options', `${caller} needs an options object, got ${describe(options)}`);
  }
  if (options.schema !== undefined) assertSchemaName(options.schema);
  if (options.logger !== undefined) assertLogger(options.logger);
  if (options.pollIntervalMs !== undefined) assertPositiveInteger('pollIntervalMs', options.pollIntervalMs);
  if (options.telemetry !== undefined && typeof options.telemetry !== 'boolean') {
    throw new InvalidArgumentError('telemetry', `telemetry must be true or false, got ${describe(options.telemetry)}`);
  }
  const maxPayloadBytes = options.maxPayloadBytes === undefined ? DEFAULT_MAX_PAYLOAD_BYTES : assertPositiveInteger('maxPayloadBytes', options.maxPayloadBytes, MAX_PAYLOAD_BYTES);
  let provider: Provider;
  if (typeof options.database === 'object' && options.database !== null) {
    if (options.schema !== undefined) {
      throw new InvalidArgumentError('schema', 'schema applies to a database URL; with a Provider instance, set the schema on the provider');
    }
    if (typeof (options.database as Provider).recordStep !== 'function') {
      throw new InvalidArgumentError('database', 'database must be a URL string or a Provider instance');
    }
    provider = options.database;
  } else {
    provider = providerFromUrl(options.database, options.schema === undefined ? {} : { schema: options.schema });
  }
  // Migrating, or with `migrate: false` reading the schema version, is also the first round trip:
  // a database that cannot be reached fails here, as a DatabaseConnectionError.
  try {
    if (options.migrate !== false) await provider.migrate();
    else {
      const version = await provider.schemaVersion?.();
      if (version) assertMigrated(version);
    }
  } catch (err) {
    await provider.close().catch(() => undefined);
    throw err;
  }
  const pollIntervalMs = options.pollIntervalMs ?? (provider.capabilities.crossProcessNotifications ? 5_000 : 1_000);
  const telemetry = await Telemetry.load(options.telemetry);
  return { provider, logger: options.logger ?? QUIET, pollIntervalMs, maxPayloadBytes, telemetry };
}

function assertLogger(logger: unknown): void {
  const l = logger as Record<string, unknown> | null;
  if (typeof l !== 'object' || l === null || !['info', 'warn', 'error'].every((m) => typeof l[m] === 'function')) {
    throw new InvalidArgumentError('logger', `logger must be an object with info, warn and error methods (pino-compatible), got ${describe(logger)}`);
  }
}

/**
 * Talks to Cairn's tables without running any workflow: enqueue by name, follow handles, send
 * messages, read events and streams, cancel, list. Use it in processes that only submit or observe
 * work (a web server in front of workers, a script). `Engine` is a Client that also runs workflows.
 *
 * @example
 * const client = await Client.open({ database: process.env.DATABASE_URL! });
 * const handle = await client.enqueue('send_email', { to: 'ada@example.com' }, { queue: 'emails' });
 * console.log(await handle.result());
 * await client.close();
 */
export class Client implements HandleSource {
  protected readonly provider: Provider;
  protected readonly logger: Logger;
  protected readonly waits: Waits;
  protected readonly closeController = new AbortController();
  /** The most bytes one stored value may take. */
  protected readonly maxPayloadBytes: number;
  protected closing: Promise<void> | undefined;
  /** @internal OpenTelemetry when it is on: the caller's trace context is stored with each workflow started. */
  protected readonly telemetry: Telemetry | undefined;
  /** @internal Hooks, spans and metrics of an engine (a Client has none). */
  protected observer: Observer | undefined;
  /** The provider itself; `provider` is this behind a guard that refuses calls once it is closed. */
  private readonly rawProvider: Provider;
  private released = false;
  /**
   * Schedules stored in the database: list, pause, resume, trigger, backfill. A tick fired from a
   * Client is enqueued on the schedule's queue, or handed unowned to a live engine that registers
   * the workflow, which adopts it at its next heartbeat.
   */
  readonly schedules: Schedules;

  /** Opens the database (migrating it unless `migrate: false`) and returns a client. */
  static async open(options: ClientOptions): Promise<Client> {
    const opened = await openDatabase(options, 'Client.open');
    return new Client(opened);
  }

  protected constructor(opened: Opened) {
    // Every waiter listens for the close; there may be thousands.
    setMaxListeners(0, this.closeController.signal);
    this.rawProvider = opened.provider;
    this.provider = refuseWhenClosed(opened.provider, () => this.released);
    this.logger = opened.logger;
    this.maxPayloadBytes = opened.maxPayloadBytes;
    this.telemetry = opened.telemetry;
    this.waits = new Waits(this.provider, opened.pollIntervalMs, this.closeController.signal);
    this.schedules = new Schedules({
      provider: this.provider,
      start: (row, tick, id) => this.startScheduled(row, tick, id),
      assertFirable: (row) => this.assertFirable(row),
    });
  }

  /** Starts the workflow of schedule `row` for `tick` under `id`: on its queue, else handed to a live engine. */
  protected async startScheduled(row: ScheduleRow, tick: number, id: string): Promise<WorkflowHandle> {
    const input = serialize(scheduledInput(tick), `the input of schedule '${row.name}'`);
    if (row.queue !== null) {
      const queue = await this.provider.getQueue(row.queue);
      if (!queue) throw new InvalidArgumentError('queue', `schedule '${row.name}' enqueues on queue '${row.queue}', which is not declared`);
      return this.insertQueued(row.workflowName, input, queue, { id }, null);
    }
    const conflict = await this.provider.insertWorkflow({
      id,
      name: row.workflowName,
      input,
      executorId: null,
      appVersion: null,
      queue: null,
      parentId: null,
      deadlineAt: null,
      createdAt: Date.now(),
    });
    if (conflict) return this.onInsertConflict(conflict, row.workflowName, null, null, 'return-existing');
    return new Handle(this, id);
  }

  /** Refuses a schedule no process could fire; a Client cannot know which engines register a name, so it takes any. */
  protected assertFirable(_row: ScheduleRow): void {}

  /** A handle to any workflow by id (it need not exist yet). */
  handle<O = unknown>(id: string): WorkflowHandle<O> {
    assertName('workflow id', id);
    return new Handle<O>(this, id);
  }

  /**
   * Puts a workflow on a queue by name; a worker process that registered the name runs it. A name
   * no process registers stays ENQUEUED. The queue must have been declared by an engine (`engine.queue`).
   *
   * @example
   * await client.enqueue('resize_image', { key }, { queue: 'images', priority: 1, dedupId: key });
   * // Typed: the input is checked and the handle's result() is a Receipt.
   * const processOrder: WorkflowRef<Order, Receipt> = { name: 'process_order' };
   * const handle = await client.enqueue(processOrder, order, { queue: 'orders' });
   */
  enqueue<I, O>(workflow: WorkflowRef<I, O>, input: I, options: EnqueueOptions): Promise<WorkflowHandle<O>>;
  enqueue<O = unknown>(workflowName: string, input: unknown, options: EnqueueOptions): Promise<WorkflowHandle<O>>;
  async enqueue<O = unknown>(workflow: string | WorkflowRef, input: unknown, options: EnqueueOptions): Promise<WorkflowHandle<O>> {
    const workflowName = assertName('workflow name', typeof workflow === 'object' && workflow !== null && typeof workflow.name === 'string' ? workflow.name : workflow);
    assertOptions('enqueue options', options);
    if (options === undefined) throw new InvalidArgumentError('queue', 'enqueue needs options with a queue');
    const queueName = assertName('queue', options.queue);
    this.assertOpen(`cannot enqueue workflow '${workflowName}'`);
    const queue = await this.provider.getQueue(queueName);
    if (!queue) {
      throw new InvalidArgumentError('queue', `queue '${queueName}' is not declared; declare it with engine.queue('${queueName}', ...) in a worker and launch the engine`);
    }
    return this.insertQueued<O>(workflowName, serialize(input, `the input of workflow '${workflowName}'`, this.maxPayloadBytes), queue, options, null);
  }

  /** Stores a queued workflow after checking the queue options against the queue. */
  protected async insertQueued<O>(
    name: string,
    input: string,
    queue: QueueDefinition,
    options: Omit<EnqueueOptions, 'queue'>,
    parentId: string | null,
  ): Promise<WorkflowHandle<O>> {
    const id = options.id === undefined ? newWorkflowId() : assertName('workflow id', options.id);
    const priority = options.priority === undefined ? 0 : assertInt32('priority', options.priority);
    const dedupId = options.dedupId === undefined ? null : assertName('dedupId', options.dedupId);
    const delayMs = options.delayMs === undefined ? 0 : assertDuration('delayMs', options.delayMs);
    const timeoutMs = options.timeoutMs === undefined ? undefined : assertDuration('timeoutMs', options.timeoutMs);
    const onDuplicate = options.onDuplicate ?? 'error';
    if (onDuplicate !== 'error' && onDuplicate !== 'return-existing') {
      throw new InvalidArgumentError('onDuplicate', `onDuplicate must be 'error' or 'return-existing', got ${describe(onDuplicate)}`);
    }
    let partitionKey: string | null = null;
    if (queue.partitioned) {
      if (options.partitionKey === undefined) {
        throw new InvalidArgumentError('partitionKey', `queue '${queue.name}' is partitioned: every workflow enqueued on it needs a partitionKey`);
      }
      partitionKey = assertName('partitionKey', options.partitionKey);
    } else if (options.partitionKey !== undefined) {
      throw new InvalidArgumentError('partitionKey', `queue '${queue.name}' is not partitioned, so it takes no partitionKey`);
    }
    const createdAt = Date.now();
    const row: NewWorkflow = {
      id,
      name,
      input,
      executorId: null,
      appVersion: null,
      queue: queue.name,
      parentId,
      deadlineAt: timeoutMs === undefined ? null : createdAt + delayMs + timeoutMs,
      createdAt,
      status: delayMs > 0 ? 'DELAYED' : 'ENQUEUED',
      priority,
      dedupId,
      partitionKey,
      availableAt: delayMs > 0 ? createdAt + delayMs : null,
      traceContext: this.telemetry?.capture() ?? null,
    };
    const conflict = await (options.transaction === undefined ? this.provider.insertWorkflow(row) : this.provider.insertWorkflowWithin(options.transaction, row));
    if (conflict) return this.onInsertConflict<O>(conflict, name, queue.name, dedupId, onDuplicate);
    this.observer?.enqueued({
      workflowId: id, name, queue: queue.name, executorId: this.observer.executorId, appVersion: this.observer.appVersion(),
      priority, partitionKey, status: delayMs > 0 ? 'DELAYED' : 'ENQUEUED',
    });
    return new Handle<O>(this, id);
  }

  protected onInsertConflict<O>(
    conflict: InsertConflict,
    name: string,
    queue: string | null,
    dedupId: string | null,
    onDuplicate: 'error' | 'return-existing',
  ): WorkflowHandle<O> {
    if (conflict.reason === 'dedup' && queue !== null && dedupId !== null) {
      if (onDuplicate === 'error') throw new DuplicateQueueEntryError(queue, dedupId);
      return new Handle<O>(this, conflict.row.id);
    }
    if (conflict.row.name !== name) throw new WorkflowConflictError(conflict.row.id, conflict.row.name, name);
    return new Handle<O>(this, conflict.row.id);
  }

  /** The stored workflow; rejects with WorkflowNotFoundError when there is none. */
  async getWorkflow<I = unknown, O = unknown>(id: string): Promise<WorkflowInfo<I, O>> {
    assertName('workflow id', id);
    this.assertOpen(`cannot read workflow '${id}'`);
    const row = await this.provider.getWorkflow(id);
    if (!row) throw new WorkflowNotFoundError(id);
    return toWorkflowInfo<I, O>(row);
  }

  /** The recorded steps of a workflow, in counter order. */
  async listSteps(id: string): Promise<StepInfo[]> {
    assertName('workflow id', id);
    this.assertOpen(`cannot list the steps of workflow '${id}'`);
    const row = await this.provider.getWorkflow(id);
    if (!row) throw new WorkflowNotFoundError(id);
    // Negative step ids hold the deadlines of waits, not steps.
    return (await this.provider.listSteps(id)).filter((s) => s.stepId > 0).map((step) => toStepInfo(step, id));
  }

  /**
   * Stored workflows matching a filter, oldest first unless `order: 'desc'`.
   *
   * @example
   * const failed = await engine.listWorkflows({ status: 'ERROR', limit: 20, order: 'desc' });
   */
  async listWorkflows(filter: ListWorkflowsFilter = {}): Promise<WorkflowInfo[]> {
    const query = listFilter(filter);
    this.assertOpen('cannot list workflows');
    const rows = await this.provider.listWorkflows(query);
    return rows.map((r) => toWorkflowInfo(r));
  }

  /**
   * Deletes a finished workflow with its steps, messages, events and streams. A workflow still to
   * run (cancel it first) or with children still to run is refused, and nothing is deleted.
   *
   * @example
   * await engine.deleteWorkflow('order-42');
   */
  async deleteWorkflow(id: string): Promise<void> {
    assertName('workflow id', id);
    this.assertOpen(`cannot delete workflow '${id}'`);
    if (await this.provider.deleteWorkflow(id)) return;
    const row = await this.provider.getWorkflow(id);
    if (!row) throw new WorkflowNotFoundError(id);
    if (!isTerminal(row.status)) {
      throw new InvalidArgumentError('id', `workflow '${id}' is ${row.status}: only a finished workflow can be deleted; cancel it first`);
    }
    throw new InvalidArgumentError('id', `workflow '${id}' has child workflows still to run; delete it once they finish, or cancel it, which cancels them`);
  }

  /**
   * Deletes finished workflows completed before `olderThan` (a Date, or an age in ms), with
   * everything stored under their ids, in batches of `batchSize` (one transaction each), oldest
   * first. Running workflows and parents with a child still to run are never deleted.
   *
   * @example
   * const { deleted } = await engine.gc({ olderThan: 30 * 24 * 3600_000 });
   */
  async gc(options: GcOptions): Promise<GcResult> {
    const { cutoff, statuses, batchSize, onProgress } = gcRequest(options, Date.now());
    let deleted = 0;
    for (;;) {
      this.assertOpen('cannot delete finished workflows');
      const started = performance.now();
      const ids = await this.provider.gcBatch(cutoff, statuses, batchSize);
      deleted += ids.length;
      if (ids.length > 0) onProgress?.(deleted);
      if (ids.length < batchSize) return { deleted };
      // gc is background work: it takes at most a tenth of the time, of the database or this thread.
      await sleep((performance.now() - started) * GC_REST_RATIO);
    }
  }

  /**
   * Every declared queue with its limits and how many of its workflows are ready, delayed and
   * running, by name.
   *
   * @example
   * for (const q of await client.listQueues()) console.log(q.name, q.enqueued, q.running);
   */
  async listQueues(): Promise<QueueInfo[]> {
    this.assertOpen('cannot list queues');
    return this.provider.listQueues();
  }

  /**
   * Cancels a workflow and its unfinished children, from any process. It is CANCELLED in the
   * database when this returns; its execution stops at its next Context call. Cancelling a
   * finished workflow changes nothing.
   *
   * @example
   * await engine.cancel('order-42');
   */
  async cancel(id: string): Promise<void> {
    assertName('workflow id', id);
    this.assertOpen(`cannot cancel workflow '${id}'`);
    const reason = new WorkflowCancelledError(id);
    const { row, cancelled } = await this.provider.cancelWorkflow(id, serializeError(reason), Date.now());
    if (!row) throw new WorkflowNotFoundError(id);
    this.cancelled(id, cancelled, reason);
  }

  /**
   * Moves a CANCELLED, ERROR or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow back to PENDING with its
   * outcome, deadline and recovery count cleared, from any process: it is left unowned, and a live
   * engine that registers its name adopts it at its next heartbeat and runs it from its
   * checkpoints. (`engine.resume` runs it in that engine at once.) A PENDING or SUCCESS workflow is
   * left as it is.
   *
   * @example
   * await client.resume('order-42');
   */
  async resume<O = unknown>(id: string): Promise<WorkflowHandle<O>> {
    assertName('workflow id', id);
    this.assertOpen(`cannot resume workflow '${id}'`);
    const before = await this.provider.getWorkflow(id);
    if (!before) throw new WorkflowNotFoundError(id);
    if (RESUMABLE.has(before.status)) await this.provider.resumeWorkflow(id, null, null, Date.now());
    return new Handle<O>(this, id);
  }

  /**
   * Runs a failed or cancelled workflow again under its own id, from any process, dropping its
   * checkpoints from `fromStep` on (default: the failed step); see `engine.retry`. The workflow is
   * left PENDING and unowned, and a live engine that registers its name adopts it at its next
   * heartbeat.
   *
   * @example
   * await client.retry('order-D1');
   */
  async retry<O = unknown>(id: string, options?: RetryWorkflowOptions): Promise<WorkflowHandle<O>> {
    const { fromStep } = await this.planRetry(id, options);
    await this.retryStored(id, fromStep, null, null);
    return new Handle<O>(this, id);
  }

  /** Checks a retry against the stored workflow: returns the workflow, its checkpoints and the step to run again from. */
  protected async planRetry(id: string, options: RetryWorkflowOptions | undefined): Promise<{ row: WorkflowRow; steps: StepRow[]; fromStep: number }> {
    assertName('workflow id', id);
    assertOptions('retry options', options);
    const requested = options?.fromStep === undefined ? undefined : assertPositiveInteger('fromStep', options.fromStep);
    this.assertOpen(`cannot retry workflow '${id}'`);
    const row = await this.provider.getWorkflow(id);
    if (!row) throw new WorkflowNotFoundError(id);
    if (!RESUMABLE.has(row.status)) throw notRetryable(id, row.status);
    const steps = await this.provider.listSteps(id);
    const last = steps.reduce((max, s) => Math.max(max, s.stepId), 0);
    if (requested !== undefined && requested > last + 1) {
      throw new InvalidArgumentError(
        'fromStep',
        `fromStep ${requested} is past the end of workflow '${id}': it has ${last === 0 ? 'no checkpoint' : `checkpoints up to step ${last}`}, so fromStep may be 1 to ${last + 1}`,
      );
    }
    return { row, steps, fromStep: requested ?? failedStep(steps, last) };
  }

  /** The retry itself: the row after it, or why there was none (the workflow changed meanwhile). */
  protected async retryStored(id: string, fromStep: number, executorId: string | null, appVersion: string | null): Promise<WorkflowRow> {
    const row = await this.provider.retryWorkflow(id, fromStep, executorId, appVersion, Date.now());
    if (row) return row;
    const now = await this.provider.getWorkflow(id);
    if (!now) throw new WorkflowNotFoundError(id);
    throw notRetryable(id, now.status);
  }

  /**
   * Starts a new workflow with the same name and input as `id`, reusing its checkpoints before
   * `fromStep`, from any process: it is left PENDING and unowned, and a live engine that registers
   * its name adopts it at its next heartbeat. (`engine.fork` runs it in that engine at once.)
   *
   * @example
   * const copy = await client.fork('order-42', { fromStep: 3, id: 'order-42-again' });
   */
  async fork<O = unknown>(id: string, options: ForkOptions): Promise<WorkflowHandle<O>> {
    const { newId } = await this.forkStored(id, options, null, null);
    return new Handle<O>(this, newId);
  }

  /**
   * Stores a fork of `id` owned by `executorId` (null: unowned) once `accept` (if given) takes
   * its source; returns the source, its checkpoints, the first step to run again and the new id.
   */
  protected async forkStored(
    id: string,
    options: ForkOptions,
    executorId: string | null,
    appVersion: string | null,
    accept?: (source: WorkflowRow) => void,
  ): Promise<{ source: WorkflowRow; steps: StepRow[]; fromStep: number; newId: string }> {
    assertName('workflow id', id);
    assertOptions('fork options', options);
    if (options === undefined) throw new InvalidArgumentError('fromStep', 'fork needs options with fromStep');
    const fromStep = assertPositiveInteger('fromStep', options.fromStep);
    const newId = options.id === undefined ? newWorkflowId() : assertName('id', options.id);
    this.assertOpen(`cannot fork workflow '${id}'`);
    const source = await this.provider.getWorkflow(id);
    if (!source) throw new WorkflowNotFoundError(id);
    accept?.(source);
    const steps = await this.provider.listSteps(id);
    const last = steps.reduce((max, s) => Math.max(max, s.stepId), 0);
    if (fromStep > 1 && fromStep > last) {
      throw new InvalidArgumentError(
        'fromStep',
        `fromStep ${fromStep} is past the last recorded step of workflow '${id}' (${last === 0 ? 'it has none' : `step ${last}`})`,
      );
    }
    const row: NewWorkflow = {
      id: newId,
      name: source.name,
      input: source.input ?? serialize(undefined, 'input'),
      executorId,
      appVersion,
      queue: null,
      parentId: null,
      deadlineAt: null,
      createdAt: Date.now(),
    };
    const conflict = await this.provider.forkWorkflow(row, id, fromStep);
    if (conflict) {
      throw new InvalidArgumentError('id', `workflow id '${newId}' is already taken (by a '${conflict.row.name}' workflow); a fork needs an id no workflow has`);
    }
    return { source, steps, fromStep, newId };
  }

  /**
   * The executors of the fleet: every engine process that ran here recently, whether it is alive
   * (heartbeating within its lease), and how many PENDING workflows it owns.
   *
   * @example
   * const dead = (await engine.listExecutors()).filter((e) => !e.alive && e.pending > 0);
   */
  async listExecutors(): Promise<ExecutorInfo[]> {
    this.assertOpen('cannot list executors');
    const { now, executors } = await this.provider.listExecutors();
    return executors.map((e) => ({
      id: e.id,
      hostname: e.hostname,
      pid: e.pid,
      appVersion: e.appVersion,
      startedAt: new Date(e.startedAt),
      heartbeatAt: new Date(e.heartbeatAt),
      stoppedAt: e.stoppedAt === null ? null : new Date(e.stoppedAt),
      alive: e.stoppedAt === null && e.heartbeatAt + e.leaseMs >= now,
      pending: e.pending,
    }));
  }

  /**
   * Every app version seen, oldest first: by executors (live ones are counted), or stamped on
   * PENDING workflows (counted too). A version with PENDING workflows and no live executor has
   * work only a process of that version, or code whose replay matches it, can finish.
   *
   * @example
   * for (const v of await engine.listVersions()) console.log(v.appVersion, v.executors, v.pending);
   */
  async listVersions(): Promise<VersionInfo[]> {
    this.assertOpen('cannot list versions');
    return (await this.provider.listVersions()).map((v) => ({
      appVersion: v.appVersion,
      executors: v.executors,
      pending: v.pending,
      firstSeenAt: new Date(v.firstSeenAt),
      lastSeenAt: new Date(v.lastSeenAt),
    }));
  }

  /**
   * A workflow's history as plain JSON: its name, input and every checkpoint as stored. Commit
   * histories of live workflows as fixtures and replay them with `checkReplay` from `cairn/testing`
   * before deploying changed workflow code.
   *
   * @example
   * writeFileSync(`test/histories/${id}.json`, JSON.stringify(await engine.exportHistory(id), null, 2));
   */
  async exportHistory(id: string): Promise<WorkflowHistory> {
    assertName('workflow id', id);
    this.assertOpen(`cannot export the history of workflow '${id}'`);
    const row = await this.provider.getWorkflow(id);
    if (!row) throw new WorkflowNotFoundError(id);
    const steps = await this.provider.listSteps(id);
    return {
      format: 'cairn.history',
      formatVersion: 1,
      workflowId: row.id,
      name: row.name,
      status: row.status,
      appVersion: row.appVersion,
      input: row.input,
      steps: steps.map((st) => ({ stepId: st.stepId, name: st.name, output: st.output, error: st.error, childId: st.childId })),
      exportedAt: new Date().toISOString(),
    };
  }

  /**
   * Completes external task `key` of pipeline run `workflowId` with `value`, which becomes the
   * task's output, from any process. A task is completed once: it must be waiting (its trigger
   * held), and a second completion, or one racing it, is refused with TaskNotWaitingError, as is
   * one for a task the run has not reached, that failed or was skipped, or whose run ended. An
   * unknown run is WorkflowNotFoundError; a key that names no external task of the run,
   * InvalidArgumentError.
   *
   * @example
   * await client.completeTask('etl-2024-06-01', 'approve', { approvedBy: 'ada' });
   */
  async completeTask(workflowId: string, key: string, value?: unknown): Promise<void> {
    assertName('workflow id', workflowId);
    assertName('task key', key);
    const body = serialize({ value } satisfies Completion, `the completion of task '${key}' of workflow '${workflowId}'`);
    this.assertOpen(`cannot complete task '${key}' of workflow '${workflowId}'`);
    await deliverCompletion(this.provider, workflowId, key, body);
  }

  /** Hook for the engine: workflows just cancelled that may be running in this process. */
  protected cancelled(_id: string, _ids: string[], _reason: Error): void {}

  /**
   * Sends a message to a workflow from outside any workflow. With an idempotency key, sending the
   * same key to the same workflow again delivers nothing more.
   *
   * @example
   * await engine.send('order-42', { approved: true }, 'approval', { idempotencyKey: 'approval-42' });
   */
  async send(workflowId: string, message: unknown, topic?: string, options?: SendOptions): Promise<void> {
    assertName('workflow id', workflowId);
    const t = topic === undefined ? '' : assertName('topic', topic);
    assertOptions('send options', options);
    const key = options?.idempotencyKey === undefined ? null : assertName('idempotencyKey', options.idempotencyKey);
    const body = serialize(message, `the message to workflow '${workflowId}'`, this.maxPayloadBytes);
    this.assertOpen(`cannot send to workflow '${workflowId}'`);
    const sent = await this.provider.sendMessage(workflowId, t, body, key, Date.now());
    if (sent === 'no-destination') throw new WorkflowNotFoundError(workflowId);
  }

  /**
   * Waits until `workflowId` has set event `key` and returns its value, or `null` once `timeoutMs`
   * (default 60,000) passes.
   *
   * @example
   * const status = await engine.getEvent<string>('order-42', 'status', 5_000);
   */
  async getEvent<T = unknown>(workflowId: string, key: string, timeoutMs: number = DEFAULT_WAIT_MS): Promise<T | null> {
    assertName('workflow id', workflowId);
    assertName('event key', key);
    assertDuration('timeoutMs', timeoutMs);
    this.assertOpen(`cannot read events of workflow '${workflowId}'`);
    const text = await this.waitForEvent(workflowId, key, Date.now() + timeoutMs);
    return text === undefined ? null : deserialize<T>(text, `event '${key}' of workflow '${workflowId}'`);
  }

  protected waitForEvent(
    workflowId: string,
    key: string,
    deadline: number,
    signal?: AbortSignal,
    parking?: () => Promise<void>,
  ): Promise<string | undefined> {
    return this.waits.until(
      [`e:${workflowId}:${key}`],
      async (attempt) => {
        const value = await this.provider.getEvent(workflowId, key);
        if (value === undefined && attempt === 0) await parking?.();
        return value;
      },
      { deadline, ...(signal && { signal }) },
    );
  }

  /**
   * Reads stream `key` of a workflow from the start, in order, then tails it live until the stream
   * is closed or the workflow ends.
   *
   * @example
   * for await (const token of engine.readStream<string>('chat-7', 'tokens')) process.stdout.write(token);
   */
  async *readStream<T = unknown>(workflowId: string, key: string): AsyncGenerator<T, void, undefined> {
    assertName('workflow id', workflowId);
    assertName('stream key', key);
    let after = 0;
    for (;;) {
      this.assertOpen(`stopped reading stream '${key}' of workflow '${workflowId}'`);
      const batch = await this.waits.until([`s:${workflowId}:${key}`, `w:${workflowId}`], async () => {
        // Status first: entries are written before the workflow ends, so reading them after
        // seeing it ended cannot miss any.
        const row = await this.provider.getWorkflow(workflowId);
        const entries = await this.provider.readStream(workflowId, key, after);
        if (entries.length > 0) return entries;
        if (!row) throw new WorkflowNotFoundError(workflowId);
        return isTerminal(row.status) ? ('ended' as const) : undefined;
      });
      if (batch === undefined || batch === 'ended') return;
      for (const entry of batch) {
        if (entry.closed) return;
        after = entry.offset;
        yield deserialize<T>(entry.value, `entry ${entry.offset} of stream '${key}' of workflow '${workflowId}'`);
      }
    }
  }

  /** @internal */
  async getWorkflowRow(id: string): Promise<WorkflowRow | undefined> {
    this.assertOpen(`cannot read workflow '${id}'`);
    return this.provider.getWorkflow(id);
  }

  /** @internal Waits for a workflow to finish, woken by the notification of its status change. */
  async awaitResult(id: string): Promise<unknown> {
    this.assertOpen(`stopped waiting for workflow '${id}'`);
    const row = await this.waits.until([`w:${id}`], async () => {
      const r = await this.provider.getWorkflow(id);
      if (!r) throw new WorkflowNotFoundError(id);
      return isTerminal(r.status) ? r : undefined;
    });
    return resultOf(row!);
  }

  /** Stops waits and closes the database. */
  async close(): Promise<void> {
    this.closing ??= this.release();
    return this.closing;
  }

  protected async release(): Promise<void> {
    this.closeController.abort(new EngineClosedError('stopped waiting'));
    await this.waits.close();
    this.released = true;
    await this.rawProvider.close();
  }

  protected assertOpen(what: string): void {
    if (this.closing) throw new EngineClosedError(what);
  }
}

/** Provider methods that do not touch the database: called as they are, before and after release. */
const PASS_THROUGH: ReadonlySet<PropertyKey> = new Set(['close', 'isTransient']);

/** Provider methods that answer synchronously; after release they answer as an idle database would. */
const SYNC_METHODS: Record<string, unknown> = { committedElsewhere: false };

/**
 * The provider as seen by everything built on a client (the engine, its schedules, scheduler and
 * dispatchers): once the client released it, every call rejects with EngineClosedError instead of
 * the driver's own error about a closed connection or pool. Methods run on the provider itself.
 */
function refuseWhenClosed(provider: Provider, released: () => boolean): Provider {
  const wrapped = new Map<PropertyKey, { original: unknown; guard: unknown }>();
  return new Proxy(provider, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== 'function' || PASS_THROUGH.has(property)) return value;
      const known = wrapped.get(property);
      if (known?.original === value) return known.guard;
      const method = value as (...args: unknown[]) => unknown;
      const name = String(property);
      const guard = (...args: unknown[]): unknown => {
        if (!released()) return method.apply(target, args);
        if (name in SYNC_METHODS) return SYNC_METHODS[name];
        return Promise.reject(new EngineClosedError(`cannot use the database (${name})`));
      };
      wrapped.set(property, { original: value, guard });
      return guard;
    },
  });
}

/** What a scheduled workflow receives for `tick`. */
export function scheduledInput(tick: number): ScheduledInput {
  return { scheduledAt: new Date(tick), firedAt: new Date() };
}
