import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { providerFromUrl } from '../providers/open.js';
import type { Provider, StepRow, WorkflowRow } from '../providers/provider.js';
import { assertSchemaName } from '../providers/schema-name.js';
import type {
  CloseOptions,
  EngineOptions,
  ForkOptions,
  ListWorkflowsFilter,
  Logger,
  StartOptions,
  StepInfo,
  Workflow,
  WorkflowFunction,
  WorkflowHandle,
  WorkflowInfo,
  WorkflowStatus,
} from '../types.js';
import { WORKFLOW_STATUSES } from '../types.js';
import type { EngineCore } from './core.js';
import {
  EngineClosedError,
  InvalidArgumentError,
  UnknownWorkflowError,
  WorkflowCancelledError,
  WorkflowConflictError,
  WorkflowNotFoundError,
} from './errors.js';
import { Execution, type Outcome } from './execution.js';
import { Handle, type HandleSource } from './handle.js';
import { isTerminal, resultOf, toStepInfo, toWorkflowInfo } from './info.js';
import { Registry, type Registration } from './registry.js';
import { roundTrip, serializeError } from './serialization.js';
import {
  assertDate,
  assertDuration,
  assertName,
  assertNonNegativeInteger,
  assertOptions,
  assertPositiveInteger,
  describe,
} from './validate.js';

const RESUMABLE: ReadonlySet<WorkflowStatus> = new Set(['CANCELLED', 'ERROR', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED']);
const QUIET: Logger = { info() {}, warn() {}, error() {} };
const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;
/** Until notifications land, waiting on a workflow running elsewhere polls with this backoff. */
const POLL_MIN_MS = 10;
const POLL_MAX_MS = 1_000;

/**
 * The durable-execution engine: registers workflows, starts and recovers them, and answers
 * questions about them. One per process and database.
 *
 * @example
 * const engine = await Engine.open({ database: 'sqlite:./app.db' });
 * const greet = engine.workflow('greet', async (ctx, name: string) => ctx.step('hello', () => `hello ${name}`));
 * await engine.recover();
 * console.log(await greet.run('world'));
 * await engine.close();
 */
export class Engine implements HandleSource {
  readonly executorId: string;
  private readonly provider: Provider;
  private readonly logger: Logger;
  private readonly registry: Registry;
  private readonly maxRecoveryAttempts: number;
  private readonly running = new Map<string, Execution>();
  private readonly core: EngineCore;
  private closing: Promise<void> | undefined;
  private closed = false;
  private readonly closeController = new AbortController();

  /**
   * Opens the database, applies pending migrations (unless `migrate: false`) and returns an engine.
   *
   * @example
   * const engine = await Engine.open({ database: process.env.DATABASE_URL ?? 'sqlite:./cairn.db' });
   */
  static async open(options: EngineOptions): Promise<Engine> {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError('options', `Engine.open needs an options object, got ${describe(options)}`);
    }
    const executorId = assertName('executorId', options.executorId ?? process.env.CAIRN_EXECUTOR_ID ?? 'local');
    if (options.appVersion !== undefined) assertName('appVersion', options.appVersion);
    const maxRecoveryAttempts = assertPositiveInteger('maxRecoveryAttempts', options.maxRecoveryAttempts ?? 50);
    if (options.schema !== undefined) assertSchemaName(options.schema);
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
    if (options.migrate !== false) {
      try {
        await provider.migrate();
      } catch (err) {
        await provider.close().catch(() => undefined);
        throw err;
      }
    }
    return new Engine(provider, executorId, options.appVersion, options.logger ?? QUIET, maxRecoveryAttempts);
  }

  private constructor(provider: Provider, executorId: string, appVersion: string | undefined, logger: Logger, maxRecoveryAttempts: number) {
    this.provider = provider;
    this.executorId = executorId;
    this.logger = logger;
    this.registry = new Registry(appVersion);
    this.maxRecoveryAttempts = maxRecoveryAttempts;
    const engine = this;
    this.core = {
      provider,
      logger,
      get closed() {
        return engine.closed;
      },
    };
  }

  /** The application version this engine stamps on the workflows it starts and recovers. */
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
    return {
      name,
      start: (input, options) => this.start<O>(reg, input, options),
      run: async (input, options) => (await this.start<O>(reg, input, options)).result(),
    };
  }

  /** A handle to any workflow by id (it need not exist yet). */
  handle<O = unknown>(id: string): WorkflowHandle<O> {
    assertName('workflow id', id);
    return new Handle<O>(this, id);
  }

  private async start<O>(reg: Registration, input: unknown, options: StartOptions | undefined): Promise<WorkflowHandle<O>> {
    this.assertOpen(`cannot start workflow '${reg.name}'`);
    assertOptions('start options', options);
    const id = options?.id === undefined ? randomUUID() : assertName('workflow id', options.id);
    const timeoutMs = options?.timeoutMs === undefined ? undefined : assertDuration('timeoutMs', options.timeoutMs);
    const { text, value } = roundTrip(input, `the input of workflow '${reg.name}'`);
    const createdAt = Date.now();
    const deadlineAt = timeoutMs === undefined ? null : createdAt + timeoutMs;
    const existing = await this.provider.insertWorkflow({
      id,
      name: reg.name,
      input: text,
      executorId: this.executorId,
      appVersion: this.appVersion,
      queue: null,
      parentId: null,
      deadlineAt,
      createdAt,
    });
    if (existing) {
      if (existing.name !== reg.name) throw new WorkflowConflictError(id, existing.name, reg.name);
      return new Handle<O>(this, id);
    }
    this.launch({ id, name: reg.name, fn: reg.fn, input: value, deadlineAt, recoveryAttempts: 0, replay: null });
    return new Handle<O>(this, id);
  }

  private launch(spec: ConstructorParameters<typeof Execution>[1]): void {
    const execution = new Execution(this.core, spec);
    this.running.set(spec.id, execution);
    void execution.done.then(
      () => this.running.delete(spec.id),
      (err: unknown) => {
        this.running.delete(spec.id);
        this.logger.error({ err, workflowId: spec.id }, 'workflow execution failed unexpectedly');
      },
    );
  }

  /**
   * Resumes every PENDING workflow of this executor and app version from its checkpoints.
   * Each recovery is counted; past `maxRecoveryAttempts` a workflow is parked in
   * MAX_RECOVERY_ATTEMPTS_EXCEEDED. A workflow whose name is not registered here is left as it is,
   * and its handle's `result()` rejects with UnknownWorkflowError.
   *
   * @example
   * const engine = await Engine.open({ database });
   * registerWorkflows(engine);
   * const handles = await engine.recover();
   */
  async recover(): Promise<WorkflowHandle[]> {
    this.assertOpen('cannot recover');
    const claim = await this.provider.claimForRecovery(
      this.executorId,
      this.appVersion,
      this.registry.names(),
      [...this.running.keys()],
      this.maxRecoveryAttempts,
    );
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
    const replays = await Promise.all(claim.claimed.map((row) => this.provider.listSteps(row.id)));
    claim.claimed.forEach((row, i) => {
      this.resumeExecution(row, replays[i]!);
      handles.push(new Handle(this, row.id));
    });
    return handles;
  }

  private resumeExecution(row: WorkflowRow, replay: StepRow[]): void {
    const reg = this.registry.get(row.name)!;
    this.launch({
      id: row.id,
      name: row.name,
      fn: reg.fn,
      input: toWorkflowInfo(row).input,
      deadlineAt: row.deadlineAt,
      recoveryAttempts: row.recoveryAttempts,
      replay,
    });
  }

  /**
   * Cancels a workflow from any process. It ends CANCELLED at once in the database; the execution
   * stops at its next Context call (its own checkpoint write sees the cancellation), and when it runs
   * in this process its `ctx.signal` aborts immediately. Cancelling a finished workflow changes nothing.
   *
   * @example
   * await engine.cancel('order-42');
   */
  async cancel(id: string): Promise<void> {
    assertName('workflow id', id);
    this.assertOpen(`cannot cancel workflow '${id}'`);
    const reason = new WorkflowCancelledError(id);
    const row = await this.provider.cancelWorkflow(id, serializeError(reason), Date.now());
    if (!row) throw new WorkflowNotFoundError(id);
    if (row.status === 'CANCELLED') this.running.get(id)?.abort(reason);
  }

  /**
   * Runs a CANCELLED, ERROR or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow again in this process, from
   * its checkpoints: recorded steps are not re-run. Its deadline and recovery count are cleared.
   * Resuming a workflow that is PENDING or SUCCESS changes nothing.
   *
   * @example
   * const handle = await engine.resume('order-42');
   */
  async resume<O = unknown>(id: string): Promise<WorkflowHandle<O>> {
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
    if (row?.status === 'PENDING' && !this.running.has(id)) this.resumeExecution(row, await this.provider.listSteps(id));
    return new Handle<O>(this, id);
  }

  /**
   * Starts a new workflow with the same function and input as `id`, reusing its checkpoints before
   * `fromStep` and executing the rest again.
   *
   * @example
   * const retry = await engine.fork('order-42', { fromStep: 3, id: 'order-42-retry' });
   */
  async fork<O = unknown>(id: string, options: ForkOptions): Promise<WorkflowHandle<O>> {
    assertName('workflow id', id);
    assertOptions('fork options', options);
    if (options === undefined) throw new InvalidArgumentError('fromStep', 'fork needs options with fromStep');
    const fromStep = assertPositiveInteger('fromStep', options.fromStep);
    const newId = options.id === undefined ? randomUUID() : assertName('id', options.id);
    this.assertOpen(`cannot fork workflow '${id}'`);
    const source = await this.provider.getWorkflow(id);
    if (!source) throw new WorkflowNotFoundError(id);
    const reg = this.registry.get(source.name);
    if (!reg) throw new UnknownWorkflowError(source.name, id);
    const steps = await this.provider.listSteps(id);
    const last = steps.length === 0 ? 0 : steps[steps.length - 1]!.stepId;
    if (fromStep > 1 && fromStep > last) {
      throw new InvalidArgumentError(
        'fromStep',
        `fromStep ${fromStep} is past the last recorded step of workflow '${id}' (${last === 0 ? 'it has none' : `step ${last}`})`,
      );
    }
    const row = {
      id: newId,
      name: source.name,
      input: source.input ?? roundTrip(undefined, 'input').text,
      executorId: this.executorId,
      appVersion: this.appVersion,
      queue: null,
      parentId: null,
      deadlineAt: null,
      createdAt: Date.now(),
    };
    const existing = await this.provider.forkWorkflow(row, id, fromStep);
    if (existing) {
      if (existing.name !== source.name) throw new WorkflowConflictError(newId, existing.name, source.name);
      return new Handle<O>(this, newId);
    }
    const replay = steps.filter((s) => s.stepId < fromStep);
    this.launch({ id: newId, name: source.name, fn: reg.fn, input: toWorkflowInfo(source).input, deadlineAt: null, recoveryAttempts: 0, replay });
    return new Handle<O>(this, newId);
  }

  /** The stored workflow; rejects with WorkflowNotFoundError when there is none. */
  async getWorkflow<I = unknown, O = unknown>(id: string): Promise<WorkflowInfo<I, O>> {
    assertName('workflow id', id);
    const row = await this.provider.getWorkflow(id);
    if (!row) throw new WorkflowNotFoundError(id);
    return toWorkflowInfo<I, O>(row);
  }

  /** The recorded steps of a workflow, in counter order. */
  async listSteps(id: string): Promise<StepInfo[]> {
    assertName('workflow id', id);
    const row = await this.provider.getWorkflow(id);
    if (!row) throw new WorkflowNotFoundError(id);
    return (await this.provider.listSteps(id)).map(toStepInfo);
  }

  /**
   * Stored workflows matching a filter, oldest first unless `order: 'desc'`.
   *
   * @example
   * const failed = await engine.listWorkflows({ status: 'ERROR', limit: 20, order: 'desc' });
   */
  async listWorkflows(filter: ListWorkflowsFilter = {}): Promise<WorkflowInfo[]> {
    assertOptions('listWorkflows filter', filter);
    const statuses = filter.status === undefined ? undefined : Array.isArray(filter.status) ? filter.status : [filter.status];
    for (const s of statuses ?? []) {
      if (!WORKFLOW_STATUSES.includes(s as WorkflowStatus)) {
        throw new InvalidArgumentError('status', `status ${describe(s)} is not one of ${WORKFLOW_STATUSES.join(', ')}`);
      }
    }
    if (filter.order !== undefined && filter.order !== 'asc' && filter.order !== 'desc') {
      throw new InvalidArgumentError('order', `order must be 'asc' or 'desc', got ${describe(filter.order)}`);
    }
    const rows = await this.provider.listWorkflows({
      order: filter.order ?? 'asc',
      ...(statuses && { statuses }),
      ...(filter.name !== undefined && { name: assertName('name', filter.name) }),
      ...(filter.queue !== undefined && { queue: assertName('queue', filter.queue) }),
      ...(filter.createdAfter !== undefined && { createdAfter: assertDate('createdAfter', filter.createdAfter) }),
      ...(filter.createdBefore !== undefined && { createdBefore: assertDate('createdBefore', filter.createdBefore) }),
      ...(filter.limit !== undefined && { limit: assertNonNegativeInteger('limit', filter.limit) }),
      ...(filter.offset !== undefined && { offset: assertNonNegativeInteger('offset', filter.offset) }),
    });
    return rows.map((r) => toWorkflowInfo(r));
  }

  /** @internal */
  async getWorkflowRow(id: string): Promise<WorkflowRow | undefined> {
    return this.provider.getWorkflow(id);
  }

  /** @internal Waits for a workflow to finish: in-process when it runs here, else by polling with backoff. */
  async awaitResult(id: string): Promise<unknown> {
    let delay = POLL_MIN_MS;
    for (;;) {
      const local = this.running.get(id);
      if (local) {
        const outcome = await local.done;
        if (outcome.kind !== 'abandoned') return settle(outcome);
      }
      this.assertOpen(`stopped waiting for workflow '${id}'`);
      const row = await this.provider.getWorkflow(id);
      if (!row) throw new WorkflowNotFoundError(id);
      if (isTerminal(row.status)) return resultOf(row);
      if (this.running.has(id)) continue;
      try {
        await sleep(delay, undefined, { signal: this.closeController.signal });
      } catch {
        throw new EngineClosedError(`stopped waiting for workflow '${id}'`);
      }
      delay = Math.min(delay * 2, POLL_MAX_MS);
    }
  }

  /**
   * Stops the engine: waits for workflows in flight up to `timeoutMs`, then leaves the rest PENDING
   * (a later `recover()` resumes them) and closes the database.
   */
  async close(options: CloseOptions = {}): Promise<void> {
    assertOptions('close options', options);
    const timeoutMs = assertDuration('timeoutMs', options.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
    this.closing ??= this.shutDown(timeoutMs);
    return this.closing;
  }

  private async shutDown(timeoutMs: number): Promise<void> {
    const inFlight = [...this.running.values()].map((e) => e.done);
    if (inFlight.length > 0) {
      const deadline = new AbortController();
      await Promise.race([Promise.allSettled(inFlight), sleep(timeoutMs, undefined, { signal: deadline.signal }).catch(() => undefined)]);
      deadline.abort();
    }
    this.closed = true;
    const reason = new EngineClosedError('workflow abandoned');
    for (const e of this.running.values()) e.abort(reason);
    this.closeController.abort(reason);
    await this.provider.close();
  }

  private assertOpen(what: string): void {
    if (this.closing) throw new EngineClosedError(what);
  }
}

function settle(outcome: Exclude<Outcome, { kind: 'abandoned' }>): unknown {
  if (outcome.kind === 'stored') return resultOf(outcome.row);
  if (outcome.status === 'SUCCESS') return outcome.value;
  throw outcome.error;
}
