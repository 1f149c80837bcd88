import { setTimeout as sleep } from 'node:timers/promises';
import { Fleet } from '../fleet/fleet.js';
import { defaultExecutorId } from '../fleet/identity.js';
import type { AdoptResult, ClaimedWorkflow, QueueDefinition, ScheduleRow, StepRow, WorkflowRow } from '../providers/provider.js';
import { Dispatcher } from '../queues/dispatcher.js';
import { Queue, queueDefinition } from '../queues/queue.js';
import { Scheduler } from '../scheduler/scheduler.js';
import { scheduleRow, tickId } from '../scheduler/schedules.js';
import { DagBuilder } from '../dag/builder.js';
import { Observer } from '../observability/observer.js';
import { HOOK_NAMES } from '../observability/types.js';
import type {
  CloseOptions,
  DagOptions,
  DebounceOptions,
  EngineOptions,
  ForkOptions,
  QueueOptions,
  RetryWorkflowOptions,
  ScheduledInput,
  ScheduleOptions,
  StartArgs,
  StartOptions,
  Workflow,
  WorkflowFunction,
  WorkflowHandle,
} from '../types.js';
import { Retention, retentionOptions } from './retention.js';
import { Client, openDatabase, RESUMABLE, scheduledInput, type Opened } from './client.js';
import type { ChildStart, EngineCore } from './core.js';
import {
  EngineClosedError,
  InvalidArgumentError,
  type NonDeterminismError,
  UnknownWorkflowError,
  WorkflowCancelledError,
  WorkflowNotFoundError,
} from './errors.js';
import { Execution, type ExecutionSpec, type Outcome } from './execution.js';
import { Handle } from './handle.js';
import { persist } from './persist.js';
import { newWorkflowId } from './ids.js';
import { resultOf } from './info.js';
import { Registry, rememberWorkflow, type Registration } from './registry.js';
import { roundTrip } from './serialization.js';
import { assertDuration, assertInt32, assertName, assertOptions, assertPositiveInteger } from './validate.js';

const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;
const DEFAULT_LEASE_MS = 30_000;
/** Workflows whose checkpoints recovery loads in one query. */
const RECOVERY_BATCH = 500;
/** A debounce without maxWaitMs: about 30,000 years, an integer either database stores. */
const NO_MAX_WAIT_MS = 1e15;
/** The longest delay a Node timer takes as it is. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * The durable-execution engine: registers workflows, starts, recovers and dispatches them, and
 * answers everything a {@link Client} does. One per process and database.
 *
 * @example
 * const engine = await Engine.open({ database: 'sqlite:./app.db' });
 * const greet = engine.workflow('greet', async (ctx, name: string) => ctx.step('hello', () => `hello ${name}`));
 * await engine.recover();
 * console.log(await greet.run('world'));
 * await engine.close();
 */
/** How long an engine watches for the commit of a workflow started in the caller's transaction. */
const COMMIT_WAIT_MS = 600_000;

export class Engine extends Client {
  readonly executorId: string;
  private readonly registry: Registry;
  private readonly maxRecoveryAttempts: number;
  private readonly running = new Map<string, Execution>();
  /** Workflows whose replay diverged here: this process leaves them to code that matches them. */
  private readonly divergedHere = new Set<string>();
  private readonly runningByQueue = new Map<string, number>();
  private readonly queues = new Map<string, Queue>();
  private readonly dispatchers: Dispatcher[] = [];
  private launched = false;
  private readonly core: EngineCore;
  private closed = false;
  /** Set when close() begins: executions are released as soon as they park. */
  private releaseReason: EngineClosedError | undefined;
  private readonly pendingRetries = new Set<NodeJS.Timeout>();
  private readonly declaredSchedules = new Map<string, ScheduleRow>();
  private readonly scheduler: Scheduler;
  private readonly fleet: Fleet;
  /** Automatic clean-up, when `retention` is set. */
  private readonly retention: Retention | undefined;
  /** Stops reporting `cairn.queue.depth`, when metrics are on. */
  private readonly stopQueueGauge: (() => void) | undefined;

  /**
   * Opens the database, applies pending migrations (unless `migrate: false`) and returns an engine.
   *
   * @example
   * const engine = await Engine.open({ database: process.env.DATABASE_URL ?? 'sqlite:./cairn.db' });
   */
  static override async open(options: EngineOptions): Promise<Engine> {
    let lease = { leaseMs: DEFAULT_LEASE_MS, heartbeatMs: DEFAULT_LEASE_MS / 3 };
    if (typeof options === 'object' && options !== null) {
      if (options.executorId !== undefined) assertName('executorId', options.executorId);
      else if (process.env.CAIRN_EXECUTOR_ID !== undefined) assertName('CAIRN_EXECUTOR_ID', process.env.CAIRN_EXECUTOR_ID);
      if (options.appVersion !== undefined) assertName('appVersion', options.appVersion);
      else if (process.env.CAIRN_APP_VERSION !== undefined) assertName('CAIRN_APP_VERSION', process.env.CAIRN_APP_VERSION);
      assertPositiveInteger('maxRecoveryAttempts', options.maxRecoveryAttempts ?? 50);
      lease = leaseOptions(options);
      retentionOptions(options.retention);
      assertHooks(options.hooks);
    }
    const opened = await openDatabase(options, 'Engine.open');
    const engine = new Engine(opened, options, lease);
    try {
      await engine.fleet.start();
    } catch (err) {
      await opened.provider.close().catch(() => undefined);
      throw err;
    }
    engine.retention?.start();
    return engine;
  }

  private constructor(opened: Opened, options: EngineOptions, lease: { leaseMs: number; heartbeatMs: number }) {
    super(opened);
    this.executorId = options.executorId ?? process.env.CAIRN_EXECUTOR_ID ?? defaultExecutorId();
    this.registry = new Registry(options.appVersion ?? process.env.CAIRN_APP_VERSION);
    this.maxRecoveryAttempts = options.maxRecoveryAttempts ?? 50;
    this.observer = Observer.create(options.hooks, opened.telemetry, this.logger, this.executorId, () => this.registry.knownVersion() ?? null);
    this.stopQueueGauge = opened.telemetry?.observeQueues(this.provider, this.logger);
    this.fleet = new Fleet({
      provider: this.provider,
      logger: this.logger,
      executorId: this.executorId,
      leaseMs: lease.leaseMs,
      heartbeatMs: lease.heartbeatMs,
      maxRecoveryAttempts: this.maxRecoveryAttempts,
      appVersion: () => this.registry.knownVersion(),
      names: () => this.registry.names(),
      exclude: () => [...this.divergedHere],
      adopted: async (result) => void (await this.runAdopted(result)),
    });
    const engine = this;
    this.core = {
      provider: this.provider,
      executorId: this.executorId,
      maxPayloadBytes: this.maxPayloadBytes,
      leaseLapsed: () => this.fleet.leaseLapsed(),
      renewLease: async () => {
        const adopted = await this.fleet.renew();
        if (adopted) await this.runAdopted(adopted);
      },
      logger: this.logger,
      observer: this.observer,
      waits: this.waits,
      get closed() {
        return engine.closed;
      },
      get closing() {
        return engine.closing !== undefined;
      },
      startChild: (start) => this.startChild(start),
      handle: (id) => new Handle(this, id),
      diverged: (id, err, recordedVersion) => this.diverged(id, err, recordedVersion),
      awaitResult: (id) => this.awaitResult(id),
      waitForEvent: (workflowId, key, deadline, signal, parking) => this.waitForEvent(workflowId, key, deadline, signal, parking),
    };
    const retention = retentionOptions(options.retention);
    this.retention = retention && new Retention(retention, (o) => this.gc(o), this.logger);
    this.scheduler = new Scheduler({
      provider: this.provider,
      waits: this.waits,
      logger: this.logger,
      canFire: (row) => row.queue !== null || this.registry.get(row.workflowName) !== undefined,
      fire: async (row, tick) => {
        await this.startScheduled(row, tick, tickId(row.name, tick));
        await this.provider.markScheduleTick(row.name, tick);
      },
    });
  }

  /** The application version this engine stamps on the workflows it starts, claims and recovers. */
  get appVersion(): string {
    return this.registry.appVersion();
  }

  /**
   * Registers a workflow function under a unique name.
   *
   * @example
   * const order = engine.workflow('process_order', async (ctx, input: Order) => {
   *   const charge = await ctx.step('charge', () => payments.charge(input));
   *   return { charge };
   * });
   */
  workflow<I, O>(name: string, fn: WorkflowFunction<I, O>): Workflow<I, O> {
    const reg = this.registry.register(name, fn);
    const workflow: Workflow<I, O> = {
      name,
      start: (...[input, options]: StartArgs<I>) => this.start<O>(reg, input, options),
      run: async (...[input, options]: StartArgs<I>) => (await this.start<O>(reg, input, options)).result(),
      handle: (id) => this.handle<O>(id),
    };
    rememberWorkflow(workflow, reg);
    return workflow;
  }

  /**
   * Declares a pipeline: tasks with dependencies, each run as a checkpointed step once its trigger
   * holds, independent ones in parallel (at most `maxParallel` at once). `build()` checks it and
   * registers it as a workflow named `name` (see docs/pipelines.md).
   *
   * @example
   * const report = engine.dag<{ day: string }>('daily_report')
   *   .task('orders', ({ input }) => shop.orders(input.day))
   *   .task('refunds', ({ input }) => shop.refunds(input.day))
   *   .task('publish', ({ deps }) => publish(deps.orders, deps.refunds), { dependsOn: ['orders', 'refunds'] })
   *   .build();
   * await report.run({ day: '2024-06-01' });
   */
  dag<I = unknown>(name: string, options?: DagOptions): DagBuilder<I> {
    return new DagBuilder<I>(name, options, (n, fn) => this.workflow(n, fn));
  }

  /** @internal The workflow registered here under `name` (checkReplay). */
  registered(name: string): Registration | undefined {
    return this.registry.get(name);
  }

  /**
   * Declares a queue with its flow-control limits. Its dispatcher runs from `engine.launch()`.
   *
   * @example
   * engine.queue('emails', { concurrency: 10, workerConcurrency: 2, rateLimit: { limit: 100, periodMs: 60_000 } });
   */
  queue(name: string, options: QueueOptions = {}): Queue {
    const definition = queueDefinition(name, options);
    if (this.queues.has(definition.name)) {
      throw new InvalidArgumentError('name', `a queue named '${definition.name}' is already declared in this engine`);
    }
    const queue = new Queue(definition, (q, workflow, key, input, opts) => this.debounce(q, workflow, key, input, opts));
    this.queues.set(definition.name, queue);
    if (this.launched) this.dispatch(definition);
    return queue;
  }

  /**
   * Declares a cron schedule in code; it is stored (or updated) in the database at `launch()`.
   * Each tick starts `workflow` once across all processes, with `{ scheduledAt, firedAt }` as input.
   *
   * @example
   * engine.schedule('hourly-sync', '0 * * * *', sync, { timezone: 'Europe/Paris', missed: 'backfill' });
   */
  schedule(name: string, cron: string, workflow: Workflow<ScheduledInput, unknown>, options?: ScheduleOptions): void {
    const row = scheduleRow(name, cron, workflow, options, Date.now());
    if (this.declaredSchedules.has(row.name)) {
      throw new InvalidArgumentError('name', `a schedule named '${row.name}' is already declared in this engine`);
    }
    this.declaredSchedules.set(row.name, row);
  }

  /**
   * Starts the background work of this engine: stores declared schedules and runs the scheduler,
   * and runs one dispatcher per declared queue. Call it after registering workflows, queues and
   * schedules (and usually after `recover()`).
   */
  async launch(): Promise<void> {
    this.assertOpen('cannot launch');
    if (this.launched) return;
    await this.schedules.storeDeclared([...this.declaredSchedules.values()]);
    // Stored before launch() returns, so clients can enqueue on them at once.
    const now = Date.now();
    for (const queue of this.queues.values()) await this.provider.upsertQueue(queue.definition, now);
    this.launched = true;
    for (const queue of this.queues.values()) this.dispatch(queue.definition);
    this.scheduler.start();
  }

  /** A schedule of a workflow this engine does not register needs a queue whose workers may. */
  protected override assertFirable(row: ScheduleRow): void {
    if (row.queue !== null || this.registry.get(row.workflowName)) return;
    throw new InvalidArgumentError(
      'workflow',
      `schedule '${row.name}' would start workflow '${row.workflowName}', which is not registered in this engine; register it first, or give the schedule a queue whose workers run it`,
    );
  }

  /** Starts a schedule's workflow for a tick under `id`: here, or on the schedule's queue. */
  protected override async startScheduled(row: ScheduleRow, tick: number, id: string): Promise<WorkflowHandle> {
    const input = scheduledInput(tick);
    if (row.queue !== null) {
      const queue = await this.queueNamed(row.queue);
      if (!queue) throw new InvalidArgumentError('queue', `schedule '${row.name}' enqueues on queue '${row.queue}', which is not declared`);
      return this.insertQueued(row.workflowName, roundTrip(input, `the input of schedule '${row.name}'`).text, queue, { id }, null);
    }
    const reg = this.registry.get(row.workflowName);
    if (!reg) throw new UnknownWorkflowError(row.workflowName);
    return this.start(reg, input, { id });
  }

  /** A queue declared in this engine, else one stored by another engine; undefined when neither. */
  private async queueNamed(name: string): Promise<QueueDefinition | undefined> {
    return this.queues.get(name)?.definition ?? (await this.provider.getQueue(name));
  }

  private dispatch(queue: QueueDefinition): void {
    const dispatcher = new Dispatcher(queue, {
      waits: this.waits,
      logger: this.logger,
      register: (q) => this.provider.upsertQueue(q, Date.now()),
      claim: (q, slots) =>
        this.provider.claimQueued({ queue: q, executorId: this.executorId, appVersion: this.appVersion, names: this.registry.names(), slots }),
      run: (rows) => this.runClaimed(rows),
      running: (q) => this.runningByQueue.get(q) ?? 0,
    });
    this.dispatchers.push(dispatcher);
    dispatcher.start();
  }

  /**
   * Runs what a queue claim took. A workflow claimed for the first time runs fresh; one that ran
   * before (its executor died and it went back to its queue) is resumed from its checkpoints.
   */
  private runClaimed(rows: ClaimedWorkflow[]): void {
    const again: ClaimedWorkflow[] = [];
    for (const row of rows) {
      const reg = this.registry.get(row.name);
      if (!reg) continue; // claims only ask for registered names
      if (row.recoveryAttempts > 0) {
        // Counted from the claim on, while its checkpoints load, so the next claim sees the slot taken.
        if (row.queue !== null) this.takeSlot(row.queue);
        again.push(row);
      } else {
        const spec: ExecutionSpec = { id: row.id, name: row.name, fn: reg.fn, storedInput: row.input, deadlineAt: row.deadlineAt, recoveryAttempts: 0, replay: null, traceContext: row.traceContext };
        void this.execute(spec, row.queue);
      }
    }
    if (again.length === 0) return;
    void this.provider.listStepsOf(again.map((r) => r.id)).then(
      (replays) => {
        for (const row of again) {
          if (this.running.has(row.id)) {
            if (row.queue !== null) this.freeSlot(row.queue);
            continue;
          }
          void this.resumeExecution(row, replays.get(row.id)!, 0, true);
        }
      },
      // Each stays PENDING under this executor; recovery (here after a restart, or by another executor) resumes it.
      (err: unknown) => {
        for (const row of again) if (row.queue !== null) this.freeSlot(row.queue);
        this.logger.error({ err, workflows: again.map((r) => r.id) }, 'could not load the checkpoints of claimed workflows');
      },
    );
  }

  private async start<O>(reg: Registration, input: unknown, options: StartOptions | undefined): Promise<WorkflowHandle<O>> {
    this.assertOpen(`cannot start workflow '${reg.name}'`);
    assertOptions('start options', options);
    if (options?.queue !== undefined) {
      const queueName = assertName('queue', options.queue);
      const queue = this.queues.get(queueName);
      if (!queue) {
        throw new InvalidArgumentError('queue', `queue '${queueName}' is not declared in this engine; declare it with engine.queue('${queueName}', ...)`);
      }
      return this.insertQueued<O>(reg.name, roundTrip(input, `the input of workflow '${reg.name}'`, this.maxPayloadBytes).text, queue.definition, options, null);
    }
    for (const key of ['priority', 'dedupId', 'delayMs', 'partitionKey'] as const) {
      if (options?.[key] !== undefined) throw new InvalidArgumentError(key, `${key} applies to queued workflows; pass a queue as well`);
    }
    const id = options?.id === undefined ? newWorkflowId() : assertName('workflow id', options.id);
    const timeoutMs = options?.timeoutMs === undefined ? undefined : assertDuration('timeoutMs', options.timeoutMs);
    const { text, value } = roundTrip(input, `the input of workflow '${reg.name}'`, this.maxPayloadBytes);
    const createdAt = Date.now();
    const deadlineAt = timeoutMs === undefined ? null : createdAt + timeoutMs;
    const traceContext = this.telemetry?.capture() ?? null;
    if (options?.transaction !== undefined) {
      const row = { id, name: reg.name, input: text, executorId: null, appVersion: null, queue: null, parentId: null, deadlineAt, createdAt, traceContext };
      const conflict = await this.provider.insertWorkflowWithin(options.transaction, row);
      if (conflict) return this.onInsertConflict<O>(conflict, reg.name, null, null, 'error');
      void this.runOnceCommitted(reg, id, options.transaction);
      return new Handle<O>(this, id);
    }
    const conflict = await this.provider.insertWorkflow({
      id,
      name: reg.name,
      input: text,
      executorId: this.executorId,
      appVersion: this.appVersion,
      queue: null,
      parentId: null,
      deadlineAt,
      createdAt,
      traceContext,
    });
    if (conflict) return this.onInsertConflict<O>(conflict, reg.name, null, null, 'error');
    const done = this.execute({ id, name: reg.name, fn: reg.fn, input: value, deadlineAt, recoveryAttempts: 0, replay: null, traceContext }, null);
    return new Handle<O>(this, id, undefined, done);
  }

  /**
   * Runs a workflow started in the caller's transaction once that commits: claimed here when the
   * commit is seen (its end on SQLite, the notification sent at COMMIT on PostgreSQL). A rollback
   * leaves nothing to claim. Not seen within COMMIT_WAIT_MS, it is left unowned, and a live engine
   * registering it adopts it at its next heartbeat.
   */
  private async runOnceCommitted(reg: Registration, id: string, tx: unknown): Promise<void> {
    try {
      const claim = () => this.provider.claimUnowned(id, this.executorId, this.appVersion, Date.now());
      const ended = this.provider.transactionEnded(tx);
      const row = ended ? await ended.then(claim) : await this.waits.until([`w:${id}`], claim, { deadline: Date.now() + COMMIT_WAIT_MS });
      if (!row || this.closed) return;
      void this.execute({ id, name: reg.name, fn: reg.fn, storedInput: row.input, deadlineAt: row.deadlineAt, recoveryAttempts: 0, replay: null, traceContext: row.traceContext }, null);
    } catch (err) {
      if (!this.closed) this.logger.warn({ err, workflowId: id }, 'could not run a workflow started in a transaction; a live engine adopts it at its next heartbeat');
    }
  }

  private async debounce<I, O>(queue: QueueDefinition, workflow: Workflow<I, O>, key: string, input: I, options: DebounceOptions): Promise<WorkflowHandle<O>> {
    this.assertOpen(`cannot debounce on queue '${queue.name}'`);
    const reg = this.registry.get(typeof workflow === 'object' && workflow !== null ? workflow.name : '');
    if (!reg) throw new InvalidArgumentError('workflow', 'debounce needs a workflow registered in this engine');
    assertName('debounce key', key);
    assertOptions('debounce options', options);
    if (options === undefined) throw new InvalidArgumentError('periodMs', 'debounce needs options with periodMs');
    const periodMs = assertDuration('periodMs', options.periodMs);
    const maxWaitMs = options.maxWaitMs === undefined ? NO_MAX_WAIT_MS : assertDuration('maxWaitMs', options.maxWaitMs);
    const priority = options.priority === undefined ? 0 : assertInt32('priority', options.priority);
    if (queue.partitioned && options.partitionKey === undefined) {
      throw new InvalidArgumentError('partitionKey', `queue '${queue.name}' is partitioned: every workflow enqueued on it needs a partitionKey`);
    }
    if (!queue.partitioned && options.partitionKey !== undefined) {
      throw new InvalidArgumentError('partitionKey', `queue '${queue.name}' is not partitioned, so it takes no partitionKey`);
    }
    const partitionKey = options.partitionKey === undefined ? null : assertName('partitionKey', options.partitionKey);
    const id = await this.provider.debounce({
      row: {
        id: newWorkflowId(),
        name: reg.name,
        input: roundTrip(input, `the input of workflow '${reg.name}'`, this.maxPayloadBytes).text,
        executorId: null,
        appVersion: null,
        queue: queue.name,
        parentId: null,
        deadlineAt: null,
        createdAt: Date.now(),
        priority,
        partitionKey,
      },
      key,
      periodMs,
      maxWaitMs,
    });
    return new Handle<O>(this, id);
  }

  /** Runs an execution in this process and keeps count of it. */
  private execute(spec: ExecutionSpec, queue: string | null, retries = 0, slotTaken = false): Promise<Outcome> {
    const execution = new Execution(this.core, spec, queue);
    // Started while close() drains (a child of a running workflow): it runs until it parks.
    if (this.releaseReason) execution.release(this.releaseReason);
    this.running.set(spec.id, execution);
    if (queue !== null && !slotTaken) this.takeSlot(queue);
    // One reaction per parked execution, and no closure besides it: parked workflows stay small.
    void execution.done.then(
      (outcome) => {
        this.executionEnded(spec.id, queue);
        if (outcome.kind === 'abandoned' && outcome.retry) this.runAgainLater(spec.id, retries + 1);
      },
      (err: unknown) => {
        this.executionEnded(spec.id, queue);
        this.logger.error({ err, workflowId: spec.id }, 'workflow execution failed unexpectedly');
      },
    );
    return execution.done;
  }

  private executionEnded(id: string, queue: string | null): void {
    this.running.delete(id);
    if (queue !== null) this.freeSlot(queue);
  }

  /** Counts a workflow of `queue` as running in this process (against its workerConcurrency). */
  private takeSlot(queue: string): void {
    this.runningByQueue.set(queue, (this.runningByQueue.get(queue) ?? 0) + 1);
  }

  private freeSlot(queue: string): void {
    this.runningByQueue.set(queue, (this.runningByQueue.get(queue) ?? 1) - 1);
    this.waits.notify(`q:${queue}`);
  }

  /**
   * An execution stopped because the database kept failing: once it answers again, run the
   * workflow from its checkpoints here, as recovery would after a restart.
   */
  private runAgainLater(id: string, retries: number): void {
    if (this.closing) return;
    const delay = Math.min(30_000, 500 * 2 ** Math.min(retries, 6));
    this.logger.warn({ workflowId: id, delayMs: delay }, 'workflow interrupted by database errors; running it again later');
    const timer = setTimeout(() => {
      this.pendingRetries.delete(timer);
      void this.rerun(id, retries);
    }, delay);
    this.pendingRetries.add(timer);
  }

  private async rerun(id: string, retries: number): Promise<void> {
    if (this.closing || this.running.has(id)) return;
    try {
      const row = await this.provider.getWorkflow(id);
      if (row?.status !== 'PENDING' || row.executorId !== this.executorId || this.running.has(id)) return;
      if (!this.registry.get(row.name)) return;
      const replay = await this.provider.listSteps(id);
      if (this.closing || this.running.has(id)) return;
      void this.resumeExecution(row, replay, retries);
    } catch (err) {
      if (this.closing) return;
      this.logger.warn({ err, workflowId: id }, 'could not run an interrupted workflow again yet');
      this.runAgainLater(id, retries + 1);
    }
  }

  /**
   * Resumes every PENDING workflow of this executor from its checkpoints, and adopts at once this
   * executor's share of the work of dead executors and of workflows nobody owns (on this host, a
   * crashed predecessor is found by its pid; elsewhere by its lapsed lease). A workflow another app
   * version recorded runs here too: its replay decides (see docs/versions.md). Each recovery is
   * counted; after `maxRecoveryAttempts` recoveries without progress a workflow is parked in
   * MAX_RECOVERY_ATTEMPTS_EXCEEDED. A workflow whose name is not registered here is
   * left as it is, and its handle's `result()` rejects with UnknownWorkflowError.
   *
   * @example
   * const engine = await Engine.open({ database });
   * registerWorkflows(engine);
   * const handles = await engine.recover();
   */
  async recover(): Promise<WorkflowHandle[]> {
    this.assertOpen('cannot recover');
    // Work begins: the app version is fixed now, so the fleet adopts under it.
    this.registry.appVersion();
    const claim = await this.provider.claimForRecovery(
      this.executorId,
      this.registry.names(),
      [...this.running.keys(), ...this.divergedHere],
      this.maxRecoveryAttempts,
    );
    if (claim.claimed.length > 0) {
      this.logger.info({ executorId: this.executorId, workflows: claim.claimed.map((r) => r.id) }, `recovering ${claim.claimed.length} workflow(s) of this executor`);
    }
    const handles: WorkflowHandle[] = [];
    for (const row of claim.parked) {
      this.logger.warn({ workflowId: row.id, attempts: row.recoveryAttempts }, 'workflow parked in MAX_RECOVERY_ATTEMPTS_EXCEEDED');
      handles.push(new Handle(this, row.id));
    }
    for (const row of claim.unknown) {
      const err = new UnknownWorkflowError(row.name, row.id);
      this.logger.error({ err, workflowId: row.id }, err.message);
      handles.push(new Handle(this, row.id, err));
    }
    // And the work of dead executors, now: on this host a crashed predecessor is found at once.
    // Both claims come before anything runs, so recover() resolves as its executions begin.
    const adopted = await this.fleet.renew();
    handles.push(...(await this.resumeAll(claim.claimed)));
    if (adopted) handles.push(...(await this.runAdopted(adopted)));
    return handles;
  }

  /** Runs here what a heartbeat adopted from dead executors; returns a handle for each. */
  private async runAdopted(result: AdoptResult): Promise<WorkflowHandle[]> {
    if (this.closing) return [];
    if (result.claimed.length > 0) {
      this.logger.info({ executorId: this.executorId, workflows: result.claimed.map((r) => r.id) }, `running ${result.claimed.length} adopted workflow(s)`);
      this.observer?.adopted(result.claimed);
    }
    const handles: WorkflowHandle[] = [];
    for (const row of result.parked) {
      this.logger.warn({ workflowId: row.id, attempts: row.recoveryAttempts }, 'workflow parked in MAX_RECOVERY_ATTEMPTS_EXCEEDED');
      handles.push(new Handle(this, row.id));
    }
    handles.push(...(await this.resumeAll(result.claimed)));
    return handles;
  }

  /**
   * Resumes claimed PENDING workflows from their checkpoints, loaded a batch of workflows per query;
   * each batch starts running as it arrives.
   */
  private async resumeAll(claimed: WorkflowRow[]): Promise<WorkflowHandle[]> {
    const handles: WorkflowHandle[] = [];
    for (let i = 0; i < claimed.length; i += RECOVERY_BATCH) {
      const rows = claimed.slice(i, i + RECOVERY_BATCH);
      const replays = await this.provider.listStepsOf(rows.map((r) => r.id));
      for (const row of rows) {
        // Started meanwhile by another path (a rerun after an interruption): one execution is enough.
        const done = this.running.has(row.id) ? undefined : this.resumeExecution(row, replays.get(row.id)!);
        handles.push(new Handle(this, row.id, undefined, done));
      }
    }
    return handles;
  }

  /**
   * Runs a stored PENDING workflow here from its checkpoints (recovery, adoption, resume, a rerun
   * after interruption). One recorded by another app version runs too: its replay decides.
   */
  private resumeExecution(row: ClaimedWorkflow, replay: StepRow[], retries = 0, slotTaken = false): Promise<Outcome> {
    const reg = this.registry.get(row.name)!;
    const spec: ExecutionSpec = {
      id: row.id, name: row.name, fn: reg.fn, storedInput: row.input, deadlineAt: row.deadlineAt, recoveryAttempts: row.recoveryAttempts, replay,
      traceContext: row.traceContext,
    };
    const version = this.appVersion;
    if (row.appVersion !== version) {
      spec.recordedVersion = row.appVersion;
      spec.claimVersion = version;
    }
    return this.execute(spec, row.queue, retries, slotTaken);
  }

  /**
   * A replay here diverged from the workflow's history: nothing past the divergence ran or was
   * recorded. The workflow is handed back, unowned and under the version that recorded it, so an
   * executor running matching code adopts it; this process does not take it again.
   */
  private async diverged(id: string, err: NonDeterminismError, recordedVersion: string | null | undefined): Promise<void> {
    this.divergedHere.add(id);
    const appVersion = this.appVersion;
    const recorded = recordedVersion === undefined ? appVersion : recordedVersion;
    this.logger.warn(
      {
        workflowId: id, stepId: err.stepId, recordedName: err.recordedName, calledName: err.calledName, callSite: err.callSite,
        recordedVersion: recorded, appVersion,
      },
      `workflow '${id}' stays PENDING for code of version ${recorded ?? '(none)'}: its replay on version ${appVersion} diverged. ${err.message}`,
    );
    try {
      await persist(
        () => this.provider.releaseWorkflow(id, this.executorId, recorded),
        `handing back workflow '${id}'`,
        this.logger,
        () => this.closed,
      );
    } catch (e) {
      this.logger.error({ err: e, workflowId: id }, 'could not hand back a workflow whose replay diverged; it stays with this executor until it stops');
    }
  }

  protected override cancelled(id: string, ids: string[], reason: Error): void {
    for (const c of ids) this.running.get(c)?.abort(c === id ? reason : new WorkflowCancelledError(c));
  }

  /**
   * Runs a CANCELLED, ERROR or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow again in this process, from
   * its checkpoints: recorded steps are not re-run. Its deadline and recovery count are cleared.
   * Resuming a workflow that is PENDING or SUCCESS changes nothing.
   *
   * @example
   * const handle = await engine.resume('order-42');
   */
  override async resume<O = unknown>(id: string): Promise<WorkflowHandle<O>> {
    assertName('workflow id', id);
    this.assertOpen(`cannot resume workflow '${id}'`);
    const before = await this.provider.getWorkflow(id);
    if (!before) throw new WorkflowNotFoundError(id);
    const reg = this.registry.get(before.name);
    if (!reg) throw new UnknownWorkflowError(before.name, id);
    if (!RESUMABLE.has(before.status)) return new Handle<O>(this, id);
    // A cancelled execution still unwinding here must end before the row is PENDING again,
    // or its failure would be written over the resumed workflow.
    await this.running.get(id)?.done;
    const row = await this.provider.resumeWorkflow(id, this.executorId, this.appVersion, Date.now());
    if (row?.status === 'PENDING' && !this.running.has(id)) void this.resumeExecution(row, await this.provider.listSteps(id));
    return new Handle<O>(this, id);
  }

  /**
   * Runs a failed or cancelled workflow (ERROR, CANCELLED or MAX_RECOVERY_ATTEMPTS_EXCEEDED) again,
   * under its own id, in this process: checkpoints before `fromStep` are kept and returned as
   * recorded; those from `fromStep` on are dropped, with the events and stream entries their steps
   * wrote, and run again. By default it starts at the failed step: the last step whose checkpoint
   * holds an error, or, when none does, just past the last checkpoint (so only the code after it
   * runs again). The fix-the-bug path: deploy the fix, then retry.
   *
   * Children started and messages received from `fromStep` on are not undone: a retried
   * `startChild` with the same id attaches to the child already there.
   *
   * @example
   * await engine.retry('order-D1');                  // from the step that failed
   * await engine.retry('order-D1', { fromStep: 2 }); // steps 2 and later run again
   */
  override async retry<O = unknown>(id: string, options?: RetryWorkflowOptions): Promise<WorkflowHandle<O>> {
    const { row: before, steps, fromStep } = await this.planRetry(id, options);
    const reg = this.registry.get(before.name);
    if (!reg) throw new UnknownWorkflowError(before.name, id);
    // A cancelled execution still unwinding here must end before the row is PENDING again.
    await this.running.get(id)?.done;
    const row = await this.retryStored(id, fromStep, this.executorId, this.appVersion);
    if (!this.running.has(id)) void this.resumeExecution(row, checkpointsBefore(steps, fromStep));
    return new Handle<O>(this, id);
  }

  /**
   * Starts a new workflow with the same function and input as `id`, reusing its checkpoints before
   * `fromStep` and executing the rest again.
   *
   * @example
   * const retry = await engine.fork('order-42', { fromStep: 3, id: 'order-42-retry' });
   */
  override async fork<O = unknown>(id: string, options: ForkOptions): Promise<WorkflowHandle<O>> {
    const registered = (name: string): Registration => {
      const reg = this.registry.get(name);
      if (!reg) throw new UnknownWorkflowError(name, id);
      return reg;
    };
    const { source, steps, fromStep, newId } = await this.forkStored(id, options, this.executorId, this.appVersion, (row) => registered(row.name));
    const replay = checkpointsBefore(steps, fromStep);
    const done = this.execute({ id: newId, name: source.name, fn: registered(source.name).fn, storedInput: source.input, deadlineAt: null, recoveryAttempts: 0, replay }, null);
    return new Handle<O>(this, newId, undefined, done);
  }

  private async startChild(start: ChildStart): Promise<void> {
    // While close() drains, running workflows go on, children included; past its deadline, no more.
    if (this.closed) throw new EngineClosedError(`cannot start child workflow '${start.childId}'`);
    if (start.queue) {
      const queue = await this.queueNamed(start.queue.name);
      if (!queue) {
        throw new InvalidArgumentError('queue', `queue '${start.queue.name}' is not declared; declare it with engine.queue('${start.queue.name}', ...)`);
      }
      const options = {
        id: start.childId,
        ...(start.timeoutMs !== undefined && { timeoutMs: start.timeoutMs }),
        ...(start.queue.priority !== undefined && { priority: start.queue.priority }),
        ...(start.queue.partitionKey !== undefined && { partitionKey: start.queue.partitionKey }),
      };
      await this.insertQueued(start.name, start.input, queue, options, start.parentId);
      return;
    }
    const reg = this.registry.get(start.name);
    if (!reg) throw new UnknownWorkflowError(start.name);
    const createdAt = Date.now();
    const deadlineAt = start.timeoutMs === undefined ? null : createdAt + start.timeoutMs;
    const traceContext = this.telemetry?.capture() ?? null;
    const conflict = await this.provider.insertWorkflow({
      id: start.childId,
      name: start.name,
      input: start.input,
      executorId: this.executorId,
      appVersion: this.appVersion,
      queue: null,
      parentId: start.parentId,
      deadlineAt,
      createdAt,
      traceContext,
    });
    if (conflict) {
      this.onInsertConflict(conflict, start.name, null, null, 'error');
      return;
    }
    void this.execute({ id: start.childId, name: start.name, fn: reg.fn, storedInput: start.input, deadlineAt, recoveryAttempts: 0, replay: null, traceContext }, null);
  }

  /**
   * @internal Waits for a workflow to finish: directly when it runs here, else woken by the
   * notification of its status change.
   */
  override async awaitResult(id: string, local?: Promise<Outcome>): Promise<unknown> {
    if (local) {
      // A success is final. A failure or cancellation may have been resumed since: that is read below.
      const outcome = await local;
      if (outcome.kind === 'ended' && outcome.status === 'SUCCESS') return outcome.value;
      if (outcome.kind === 'stored' && outcome.row.status === 'SUCCESS') return resultOf(outcome.row);
    }
    for (;;) {
      const local = this.running.get(id);
      if (local) {
        const outcome = await local.done;
        if (outcome.kind !== 'abandoned') return settle(outcome);
      }
      this.assertOpen(`stopped waiting for workflow '${id}'`);
      const found = await this.waits.until([`w:${id}`], async () => {
        if (this.running.has(id)) return 'local' as const;
        const row = await this.provider.getWorkflow(id);
        if (!row) throw new WorkflowNotFoundError(id);
        return row.status === 'PENDING' || row.status === 'ENQUEUED' || row.status === 'DELAYED' ? undefined : row;
      });
      if (found !== undefined && found !== 'local') return resultOf(found);
    }
  }

  /**
   * Stops the engine: stops dispatching, waits for workflows in flight up to `timeoutMs`, then
   * leaves the rest PENDING (a later `recover()` resumes them) and closes the database.
   */
  override async close(options: CloseOptions = {}): Promise<void> {
    assertOptions('close options', options);
    const timeoutMs = assertDuration('timeoutMs', options.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
    this.closing ??= this.shutDown(timeoutMs);
    return this.closing;
  }

  private async shutDown(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const timer of this.pendingRetries) clearTimeout(timer);
    this.pendingRetries.clear();
    await this.scheduler.stop();
    await this.retention?.stop();
    await Promise.all(this.dispatchers.map((d) => d.stop()));
    this.stopQueueGauge?.();
    // Steps in flight finish and are recorded; a workflow that is (or comes to be) parked in a
    // sleep or wait is released at once, PENDING, for recovery to resume.
    this.releaseReason = new EngineClosedError('workflow released: the engine is closing');
    for (const e of this.running.values()) e.release(this.releaseReason);
    // Children started meanwhile join the running set, so look again until it is empty.
    while (this.running.size > 0 && Date.now() < deadline) {
      const timeUp = new AbortController();
      const timer = sleep(Math.min(deadline - Date.now(), MAX_TIMER_MS), undefined, { signal: timeUp.signal }).catch(() => undefined);
      await Promise.race([Promise.allSettled([...this.running.values()].map((e) => e.done)), timer]);
      timeUp.abort();
    }
    this.closed = true;
    const reason = new EngineClosedError('workflow abandoned');
    for (const e of this.running.values()) e.abort(reason);
    // Marked stopped: what is left unfinished here is adopted by the other executors at once.
    await this.fleet.stop().catch((err: unknown) => this.logger.warn({ err, executorId: this.executorId }, 'could not mark this executor stopped'));
    await this.release();
  }
}

/** Checks leaseMs and heartbeatMs: positive integers, the heartbeat below the lease (default a third of it). */
function leaseOptions(options: EngineOptions): { leaseMs: number; heartbeatMs: number } {
  const leaseMs = assertPositiveInteger('leaseMs', options.leaseMs ?? DEFAULT_LEASE_MS);
  const heartbeatMs = assertPositiveInteger('heartbeatMs', options.heartbeatMs ?? Math.max(1, Math.floor(leaseMs / 3)));
  if (heartbeatMs >= leaseMs) {
    throw new InvalidArgumentError('heartbeatMs', `heartbeatMs (${heartbeatMs}) must be below leaseMs (${leaseMs}), or the lease lapses between heartbeats`);
  }
  return { leaseMs, heartbeatMs };
}

/** Checks `hooks`: an object whose known keys hold functions. */
function assertHooks(hooks: unknown): void {
  if (hooks === undefined) return;
  assertOptions('hooks', hooks);
  const given = hooks as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!(HOOK_NAMES as readonly string[]).includes(key)) {
      throw new InvalidArgumentError(`hooks.${key}`, `'${key}' is not a hook; the hooks are ${HOOK_NAMES.join(', ')}`);
    }
    if (given[key] !== undefined && typeof given[key] !== 'function') {
      throw new InvalidArgumentError(`hooks.${key}`, `hooks.${key} must be a function, got ${typeof given[key]}`);
    }
  }
}

function settle(outcome: Exclude<Outcome, { kind: 'abandoned' }>): unknown {
  if (outcome.kind === 'stored') return resultOf(outcome.row);
  if (outcome.status === 'SUCCESS') return outcome.value;
  throw outcome.error;
}

/** The checkpoints a run from `fromStep` keeps: those before it, with the wait deadlines of those. */
function checkpointsBefore(steps: StepRow[], fromStep: number): StepRow[] {
  return steps.filter((s) => s.stepId < fromStep && s.stepId > -fromStep);
}
