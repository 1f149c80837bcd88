import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { InvalidArgumentError } from '../../engine/errors.js';
import { TransactionBodyError } from '../provider.js';
import type {
  Adoptable,
  AdoptRequest,
  AdoptResult,
  CancelResult,
  ExecutorRow,
  HeartbeatResult,
  ScheduleRow,
  ClaimRequest,
  ClaimResult,
  DebounceRequest,
  InsertConflict,
  QueueDefinition,
  QueueRow,
  ChangeListener,
  CheckpointMiss,
  CheckpointOutcome,
  ListFilter,
  NewWorkflow,
  Provider,
  RecoveryClaim,
  SchemaVersion,
  StatementObserver,
  StepEffect,
  StepRow,
  StreamEntry,
  VersionRow,
  WorkflowRow,
} from '../provider.js';
import type { WorkflowStatus } from '../../types.js';
import { claimedInOrder, claimLimits, listWorkflowsQuery, nextQueueTime, stepsByWorkflow, toExecutorRow, toHeartbeatResult, toQueueDefinition, toQueueRow, toScheduleRow, toStepRow, toVersionRow, toWorkflowRow } from '../rows.js';
import { Batcher } from '../batcher.js';
import { isTransientSqliteError, sqliteConnectionError } from '../faults.js';
import { loadMigrations } from '../migrations.js';
import { SqliteBus } from './listener.js';
import { migrateSqlite } from './migrate.js';
import { sqliteStatements } from './statements.js';

export type SqliteSynchronous = 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA';

/** Thrown inside a transactional step's transaction to roll it back when its checkpoint missed. */
const MISSED = Symbol('missed');

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** The error of an async function given to ctx.transaction on SQLite; running it again would not help. */
function asyncOnSqlite(): InvalidArgumentError {
  const err = new InvalidArgumentError(
    'fn',
    'on SQLite the function of ctx.transaction must be synchronous: it runs inside a better-sqlite3 transaction, which cannot wait for a promise; it returned one, so nothing it did before its first await was committed',
  );
  Object.defineProperty(err, 'nonRetryable', { value: true });
  return err;
}

export interface SqliteProviderOptions {
  /** A file path, or `:memory:`. */
  path: string;
  /** `PRAGMA synchronous` (default FULL: every commit is fsync'd before it returns). */
  synchronous?: SqliteSynchronous;
  /** How long one statement waits for another process's lock, in ms (default 5000), blocking the thread meanwhile. */
  busyTimeoutMs?: number;
  /**
   * How long a write that still found the database locked (SQLITE_BUSY) keeps being tried again,
   * asynchronously with backoff, before its error is thrown, in ms (default 30000; 0: never).
   * A busy statement never committed, so trying it again is safe. Checkpoint writes are left to the
   * engine, which retries them itself and interrupts an execution whose progress cannot be written.
   */
  busyRetryMs?: number;
  /** Called with every statement before it is sent (instrumentation, tests). */
  onStatement?: StatementObserver;
  /**
   * Group commit of checkpoints (default on): checkpoints written in the same turn of the event
   * loop share one transaction, so one fsync makes all of them durable.
   */
  groupCommit?: boolean;
}

const SYNCHRONOUS: readonly SqliteSynchronous[] = ['OFF', 'NORMAL', 'FULL', 'EXTRA'];

type Raw = Record<string, unknown>;
type EndWrite = { id: string; status: 'SUCCESS' | 'ERROR'; output: string | null; error: string | null; completedAt: number; owner: string };
type StepWrite = { workflowId: string; step: StepRow; owner: string };

/**
 * Cairn on an SQLite file through better-sqlite3, in WAL mode. Statements run synchronously, so
 * each one is a whole commit and transactions cannot interleave.
 *
 * @example
 * const engine = await Engine.open({ database: new SqliteProvider({ path: './app.db', synchronous: 'NORMAL' }) });
 */
export class SqliteProvider implements Provider {
  readonly kind = 'sqlite';
  readonly capabilities = { multiHost: false, crossProcessNotifications: false };
  readonly path: string;
  private readonly db: Database.Database;
  private readonly observe: StatementObserver | undefined;
  private readonly prepared = new Map<string, Database.Statement>();
  private readonly bus: SqliteBus;
  private readonly steps: Batcher<StepWrite, CheckpointOutcome> | undefined;
  private readonly ends: Batcher<EndWrite, WorkflowRow | undefined | null> | undefined;
  private readonly resets: Batcher<string, void> | undefined;
  /** The last `PRAGMA data_version` seen by committedElsewhere(). */
  private dataVersion: number | undefined;
  private readonly busyRetryMs: number;

  constructor(options: SqliteProviderOptions) {
    const synchronous = options.synchronous ?? 'FULL';
    if (!SYNCHRONOUS.includes(synchronous)) {
      throw new InvalidArgumentError('synchronous', `synchronous must be one of ${SYNCHRONOUS.join(', ')}, got ${JSON.stringify(synchronous)}`);
    }
    const busy = options.busyTimeoutMs ?? 5000;
    if (!Number.isFinite(busy) || busy < 0) {
      throw new InvalidArgumentError('busyTimeoutMs', `busyTimeoutMs must be a finite number >= 0, got ${busy}`);
    }
    const busyRetry = options.busyRetryMs ?? 30_000;
    if (!Number.isFinite(busyRetry) || busyRetry < 0) {
      throw new InvalidArgumentError('busyRetryMs', `busyRetryMs must be a finite number >= 0, got ${busyRetry}`);
    }
    this.busyRetryMs = busyRetry;
    this.path = options.path;
    try {
      this.db = new Database(options.path, { timeout: busy });
    } catch (cause) {
      throw new InvalidArgumentError('database', `cannot open SQLite database '${options.path}': ${(cause as Error).message}`, { cause });
    }
    try {
      if (options.path !== ':memory:') this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${synchronous}`);
    } catch (err) {
      // Opened, but not usable: not a database, unreadable, locked for good.
      this.db.close();
      throw sqliteConnectionError(err, `SQLite database '${options.path}'`) ?? err;
    }
    this.observe = options.onStatement;
    this.bus = SqliteBus.for(options.path);
    if (options.groupCommit !== false) {
      this.steps = new Batcher((writes) => this.writeSteps(writes), 1, 1_000, true);
      this.ends = new Batcher((writes) => this.writeEnds(writes), 1, 1_000, true);
      this.resets = new Batcher((ids) => this.writeResets(ids), 1, 1_000, true);
    }
  }

  /**
   * Group commit's write: a lone item in its own autocommit statement, several in one IMMEDIATE
   * transaction (one fsync for all).
   */
  private together<I, O>(items: I[], write: (item: I) => O): O[] {
    if (items.length === 1) return [write(items[0]!)];
    this.observe?.('BEGIN IMMEDIATE');
    const out = this.db.transaction(() => items.map(write)).immediate();
    this.observe?.('COMMIT');
    return out;
  }

  /** Recovery-count resets that arrive together (a recovery resuming many workflows) share one transaction. */
  private async writeResets(ids: string[]): Promise<void[]> {
    const reset = this.stmt(sqliteStatements.resetRecoveryAttempts);
    return this.together(ids, (id) => void reset.run(id));
  }

  /** Workflow ends that arrive together share one transaction, like checkpoints. */
  private async writeEnds(ends: EndWrite[]): Promise<Array<WorkflowRow | undefined | null>> {
    const queues = this.together(ends, (e) => this.endRow(e));
    return ends.map((e, i) => {
      const queue = queues[i];
      if (queue === undefined) return this.getWorkflowRow(e.id);
      this.bus.emit(`w:${e.id}`);
      if (queue !== null) this.bus.emit(`q:${queue}`);
      return null;
    });
  }

  /** Ends one PENDING workflow; its queue (or null) when it did, undefined when it was not PENDING. */
  private endRow(e: EndWrite): string | null | undefined {
    const ended = this.stmt(sqliteStatements.completeWorkflow).get(e.status, e.output, e.error, e.completedAt, e.completedAt, e.id, e.owner) as
      | { queue: string | null }
      | undefined;
    return ended === undefined ? undefined : ended.queue;
  }

  private getWorkflowRow(id: string): WorkflowRow | undefined {
    const row = this.stmt(sqliteStatements.getWorkflow).get(id) as Raw | undefined;
    return row ? toWorkflowRow(row) : undefined;
  }

  /** One IMMEDIATE transaction (one fsync) for all the checkpoints of a batch. */
  private async writeSteps(writes: StepWrite[]): Promise<CheckpointOutcome[]> {
    const inserted = this.together(writes, (w) => this.insertStep(w.workflowId, w.step, w.owner));
    return writes.map((w, i) => (inserted[i] === 1 ? { kind: 'recorded' } : this.explainMiss(w.workflowId, w.step.stepId, w.owner)));
  }

  async subscribe(listener: ChangeListener): Promise<() => Promise<void>> {
    return this.bus.subscribe(listener);
  }

  private stmt(sql: string): Database.Statement {
    this.observe?.(sql);
    let s = this.prepared.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.prepared.set(sql, s);
    }
    return s;
  }

  /**
   * Runs a write, and runs it again while it fails with SQLITE_BUSY (another connection held the
   * lock past the busy timeout), after pauses that double from 20 ms to 1 s, for up to busyRetryMs.
   * The pauses are asynchronous: the thread serves other work meanwhile.
   */
  private async retryBusy<T>(write: () => T): Promise<T> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        return write();
      } catch (err) {
        const pause = Math.min(20 * 2 ** Math.min(attempt, 10), 1_000);
        if (!isTransientSqliteError(err) || !this.db.open || Date.now() + pause - started > this.busyRetryMs) throw err;
        await new Promise((resolve) => setTimeout(resolve, pause * (0.5 + Math.random() / 2)));
      }
    }
  }

  async migrate(): Promise<void> {
    try {
      await this.retryBusy(() => migrateSqlite(this.db, `'${this.path}'`));
    } catch (err) {
      throw sqliteConnectionError((err as { cause?: unknown }).cause ?? err, `SQLite database '${this.path}'`) ?? err;
    }
  }

  async schemaVersion(): Promise<SchemaVersion> {
    const where = `SQLite database '${this.path}'`;
    let applied: number;
    try {
      // Not reported to onStatement: it is the open's check, not one of the engine's operations.
      const table = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cairn_migrations'").get();
      applied = table ? ((this.db.prepare('SELECT max(version) AS v FROM cairn_migrations').get() as { v: number | null }).v ?? 0) : 0;
    } catch (err) {
      throw sqliteConnectionError(err, where) ?? err;
    }
    return { applied, expected: loadMigrations('sqlite').length, where };
  }

  isTransient(err: unknown): boolean {
    return isTransientSqliteError(err);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  async insertWorkflow(w: NewWorkflow): Promise<InsertConflict | null> {
    const inserted = await this.retryBusy(() => this.stmt(sqliteStatements.insertWorkflow).run(insertParams(w)).changes === 1);
    if (!inserted) return this.explainConflict(w);
    if (w.queue !== null) this.bus.emit(`q:${w.queue}`);
    return null;
  }

  /**
   * Off the happy path: what kept a workflow from being inserted, read through `get` (this
   * connection, or the caller's in its transaction, which sees its own uncommitted rows).
   */
  private explainConflict(w: NewWorkflow, get: (sql: string, ...params: unknown[]) => unknown = (sql, ...params) => this.stmt(sql).get(...params)): InsertConflict {
    const byId = get(sqliteStatements.getWorkflow, w.id) as Raw | undefined;
    if (byId) return { reason: 'id', row: toWorkflowRow(byId) };
    if (w.queue && w.dedupId) {
      const holder = get(sqliteStatements.getDedupHolder, w.queue, w.dedupId) as Raw | undefined;
      if (holder) return { reason: 'dedup', row: toWorkflowRow(holder) };
    }
    throw new Error(`workflow '${w.id}' was not inserted, and neither its id nor its dedupId is taken any more; try again`);
  }

  async upsertQueue(q: QueueDefinition, now: number): Promise<void> {
    await this.retryBusy(() => this.stmt(sqliteStatements.upsertQueue).run(
      q.name, q.concurrency, q.workerConcurrency, q.rateLimit?.limit ?? null, q.rateLimit?.periodMs ?? null, q.partitioned ? 1 : 0, now,
    ));
  }

  async getQueue(name: string): Promise<QueueDefinition | undefined> {
    const row = this.stmt(sqliteStatements.getQueue).get(name) as Raw | undefined;
    return row ? toQueueDefinition(row) : undefined;
  }

  async transactionStep(workflowId: string, owner: string, body: (tx: unknown) => unknown, finish: (value: unknown) => StepRow): Promise<CheckpointOutcome> {
    let step: StepRow | undefined;
    const run = this.db.transaction(() => {
      try {
        const value = body(this.db);
        if (isThenable(value)) {
          // Whatever it does after its first await runs outside this transaction: refuse it.
          value.then(undefined, () => undefined);
          throw asyncOnSqlite();
        }
        step = finish(value);
      } catch (err) {
        throw new TransactionBodyError(err);
      }
      if (this.insertStep(workflowId, step, owner) !== 1) throw MISSED;
    });
    try {
      await this.retryBusy(() => run.immediate());
      return { kind: 'recorded' };
    } catch (err) {
      if (err === MISSED) return this.explainMiss(workflowId, step!.stepId, owner);
      throw err;
    }
  }

  insertWorkflowWithin(tx: unknown, w: NewWorkflow): Promise<InsertConflict | null> {
    const db = this.callerTransaction(tx);
    const inserted = db.prepare(sqliteStatements.insertWorkflow).run(insertParams(w)).changes === 1;
    if (inserted) {
      // This process's dispatchers and waiters learn of it once the caller's transaction ends.
      void this.transactionEnded(db).then(() => this.bus.emit(w.queue === null ? `w:${w.id}` : `q:${w.queue}`));
      return Promise.resolve(null);
    }
    try {
      return Promise.resolve(this.explainConflict(w, (sql, ...params) => db.prepare(sql).get(...params)));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The caller's better-sqlite3 database, checked: the same file as this provider's, in a transaction. */
  private callerTransaction(tx: unknown): Database.Database {
    const db = tx as Database.Database;
    if (typeof tx !== 'object' || tx === null || typeof db.prepare !== 'function' || typeof db.inTransaction !== 'boolean') {
      throw new InvalidArgumentError('transaction', 'transaction must be a better-sqlite3 database on the same file as Cairn, in a transaction (db.exec(\'BEGIN\'), or inside db.transaction())');
    }
    if (resolve(db.name) !== resolve(this.path)) {
      throw new InvalidArgumentError('transaction', `transaction is a database on '${db.name}', but Cairn's database is '${this.path}': a workflow can only be inserted in a transaction on Cairn's own file`);
    }
    if (!db.inTransaction) throw new InvalidArgumentError('transaction', 'transaction is a database with no transaction open: begin one first (db.exec(\'BEGIN\'))');
    return db;
  }

  async transactionEnded(tx: unknown): Promise<void> {
    const db = tx as Database.Database;
    for (let pause = 0; db.open && db.inTransaction; pause = Math.min(Math.max(pause * 2, 1), 100)) {
      await new Promise((r) => (pause === 0 ? setImmediate(r) : setTimeout(r, pause)));
    }
  }

  async claimUnowned(id: string, executorId: string, appVersion: string, now: number): Promise<WorkflowRow | undefined> {
    const row = await this.retryBusy(() => this.stmt(sqliteStatements.claimUnowned).get({ id, executorId, appVersion, now }) as Raw | undefined);
    return row ? toWorkflowRow(row) : undefined;
  }

  async listQueues(): Promise<QueueRow[]> {
    return (this.stmt(sqliteStatements.listQueues).all() as Raw[]).map(toQueueRow);
  }

  async gcBatch(cutoff: number, statuses: WorkflowStatus[], limit: number): Promise<string[]> {
    return this.deleteSelected(sqliteStatements.gcBatch, { cutoff, statuses: JSON.stringify(statuses), limit });
  }

  async deleteWorkflow(id: string): Promise<boolean> {
    return (await this.deleteSelected(sqliteStatements.deletable, { id })).length === 1;
  }

  /** Deletes the workflows `select` finds, with everything stored under their ids, in one transaction. */
  private deleteSelected(select: string, params: Record<string, unknown>): Promise<string[]> {
    const remove = this.db.transaction((): string[] => {
      const ids = (this.stmt(select).all(params) as Array<{ id: string }>).map((r) => r.id);
      if (ids.length === 0) return ids;
      const list = JSON.stringify(ids);
      for (const sql of sqliteStatements.deleteOf) this.stmt(sql).run({ ids: list });
      return ids;
    });
    return this.retryBusy(() => remove.immediate());
  }

  async claimQueued(r: ClaimRequest): Promise<ClaimResult> {
    const queue = r.queue.name;
    const claim = this.db.transaction((): ClaimResult => {
      // Read inside the IMMEDIATE transaction, once the write lock is held.
      const now = Date.now();
      const { concurrency, rateLimit, windowStart } = claimLimits(r.queue, now);
      this.stmt(sqliteStatements.promoteDelayed).run({ queue, now });
      const claimed =
        r.slots > 0
          ? (this.stmt(r.queue.partitioned ? sqliteStatements.claimPartitioned : sqliteStatements.claim).all({
              queue, names: JSON.stringify(r.names), slots: r.slots, concurrency, rateLimit, windowStart,
              executorId: r.executorId, appVersion: r.appVersion, now,
            }) as Raw[])
          : [];
      const next = this.stmt(sqliteStatements.nextQueueTime).get({ queue, windowStart }) as { delayed_at: unknown; oldest_start: unknown };
      return { claimed: claimedInOrder(claimed), nextAt: nextQueueTime(r.queue, next) };
    });
    return this.retryBusy(() => claim.immediate());
  }

  async debounce(r: DebounceRequest): Promise<string> {
    const w = r.row;
    const row = await this.retryBusy(() => this.stmt(sqliteStatements.debounce).get({
      id: w.id, name: w.name, input: w.input, queue: w.queue, parentId: w.parentId, now: w.createdAt, priority: w.priority ?? 0,
      partitionKey: w.partitionKey ?? null, periodMs: r.periodMs, key: r.key, maxWaitMs: r.maxWaitMs,
    }) as { id: string });
    this.bus.emit(`q:${w.queue}`);
    return row.id;
  }

  async getWorkflow(id: string): Promise<WorkflowRow | undefined> {
    return this.getWorkflowRow(id);
  }

  async listWorkflows(filter: ListFilter): Promise<WorkflowRow[]> {
    const q = listWorkflowsQuery(sqliteStatements.workflowsTable, filter, {
      param: () => '?',
      inList: () => 'IN (SELECT value FROM json_each(?))',
      encodeList: (v) => JSON.stringify(v),
      // GLOB is case-sensitive and, with its wildcards escaped and a trailing *, seeks the
      // primary key to the prefix's range (LIKE would fold case and scan).
      startsWith: (column, prefix, bind) => `${column} GLOB ${bind(`${prefix.replace(/[*?[]/g, '[$&]')}*`)}`,
    });
    return (this.stmt(q.sql).all(...q.params) as Raw[]).map(toWorkflowRow);
  }

  async completeWorkflow(
    id: string,
    status: 'SUCCESS' | 'ERROR',
    output: string | null,
    error: string | null,
    completedAt: number,
    owner: string,
  ): Promise<WorkflowRow | undefined | null> {
    const end = { id, status, output, error, completedAt, owner };
    if (this.ends) return this.ends.submit(end, id);
    return (await this.writeEnds([end]))[0];
  }

  async cancelWorkflow(id: string, error: string, now: number): Promise<CancelResult> {
    const rows = await this.retryBusy(() => this.stmt(sqliteStatements.cancelWorkflow).all({ id, error, now }) as Array<{ id: string }>);
    const cancelled = rows.map((r) => r.id);
    for (const c of cancelled) this.bus.emit(`w:${c}`);
    return { row: await this.getWorkflow(id), cancelled };
  }

  async recordStepWithEffect(workflowId: string, step: StepRow, effect: StepEffect, owner: string): Promise<CheckpointOutcome | { kind: 'no-destination' }> {
    const write = this.db.transaction((): 'recorded' | 'missed' | 'no-destination' => {
      if (effect.kind === 'send' && !this.stmt(sqliteStatements.workflowExists).get(effect.destinationId)) return 'no-destination';
      if (this.insertStep(workflowId, step, owner) !== 1) return 'missed';
      if (effect.kind === 'send') {
        this.stmt(sqliteStatements.insertMessage).run(effect.destinationId, effect.topic, effect.body, null, step.completedAt);
      } else if (effect.kind === 'set-event') {
        this.stmt(sqliteStatements.insertEvent).run(workflowId, effect.key, step.stepId, effect.value, step.completedAt);
      } else {
        this.stmt(sqliteStatements.insertStream).run(workflowId, effect.key, step.stepId, effect.value, effect.closed ? 1 : 0, step.completedAt);
      }
      return 'recorded';
    });
    const result = write.immediate();
    if (result === 'no-destination') return { kind: 'no-destination' };
    if (result === 'missed') return this.explainMiss(workflowId, step.stepId, owner);
    this.bus.emit(
      effect.kind === 'send' ? `m:${effect.destinationId}` : effect.kind === 'set-event' ? `e:${workflowId}:${effect.key}` : `s:${workflowId}:${effect.key}`,
    );
    return { kind: 'recorded' };
  }

  async recordRecv(
    workflowId: string,
    step: Pick<StepRow, 'stepId' | 'name' | 'startedAt' | 'completedAt'>,
    topic: string,
    owner: string,
  ): Promise<CheckpointMiss | { kind: 'received'; body: string } | { kind: 'empty' }> {
    const take = this.db.transaction((): { body: string } | 'empty' | 'missed' => {
      const message = this.stmt(sqliteStatements.oldestMessage).get(workflowId, topic) as { seq: number; body: string } | undefined;
      if (!message) return 'empty';
      const row: StepRow = { ...step, output: message.body, error: null, childId: null, attempts: 1 };
      if (this.insertStep(workflowId, row, owner) !== 1) return 'missed';
      this.stmt(sqliteStatements.consumeMessage).run(step.completedAt, message.seq);
      return { body: message.body };
    });
    const result = take.immediate();
    if (result === 'empty') return { kind: 'empty' };
    if (result === 'missed') return this.explainMiss(workflowId, step.stepId, owner);
    return { kind: 'received', body: result.body };
  }

  async sendMessage(destinationId: string, topic: string, body: string, idempotencyKey: string | null, now: number): Promise<'sent' | 'duplicate' | 'no-destination'> {
    const send = this.db.transaction((): 'sent' | 'duplicate' | 'no-destination' => {
      if (!this.stmt(sqliteStatements.workflowExists).get(destinationId)) return 'no-destination';
      return this.stmt(sqliteStatements.insertMessage).run(destinationId, topic, body, idempotencyKey, now).changes === 1 ? 'sent' : 'duplicate';
    });
    const result = await this.retryBusy(() => send.immediate());
    if (result === 'sent') this.bus.emit(`m:${destinationId}`);
    return result;
  }

  async listSchedules(): Promise<ScheduleRow[]> {
    return (this.stmt(sqliteStatements.listSchedules).all() as Raw[]).map(toScheduleRow);
  }

  async getSchedule(name: string): Promise<ScheduleRow | undefined> {
    const row = this.stmt(sqliteStatements.getSchedule).get(name) as Raw | undefined;
    return row ? toScheduleRow(row) : undefined;
  }

  async insertSchedule(row: ScheduleRow): Promise<boolean> {
    return this.changedSchedules(await this.retryBusy(() => this.stmt(sqliteStatements.insertSchedule).run({ ...row, paused: row.paused ? 1 : 0 }).changes));
  }

  async updateSchedule(row: ScheduleRow): Promise<boolean> {
    const { createdAt: _createdAt, ...rest } = row;
    return this.changedSchedules(await this.retryBusy(() => this.stmt(sqliteStatements.updateSchedule).run({ ...rest, paused: row.paused ? 1 : 0 }).changes));
  }

  async deleteSchedule(name: string): Promise<boolean> {
    return this.changedSchedules(await this.retryBusy(() => this.stmt(sqliteStatements.deleteSchedule).run(name).changes));
  }

  private changedSchedules(changes: number): boolean {
    if (changes === 1) this.bus.emit('sch');
    return changes === 1;
  }

  async markScheduleTick(name: string, tick: number): Promise<void> {
    await this.retryBusy(() => this.stmt(sqliteStatements.markScheduleTick).run(tick, name, tick));
  }

  async getEvent(workflowId: string, key: string): Promise<string | undefined> {
    return (this.stmt(sqliteStatements.getEvent).get(workflowId, key) as { value: string } | undefined)?.value;
  }

  async readStream(workflowId: string, key: string, afterOffset: number): Promise<StreamEntry[]> {
    const rows = this.stmt(sqliteStatements.readStream).all(workflowId, key, afterOffset) as Array<{ offset_id: number; value: string | null; closed: number }>;
    return rows.map((r) => ({ offset: r.offset_id, value: r.value, closed: r.closed === 1 }));
  }

  async resumeWorkflow(id: string, executorId: string | null, appVersion: string | null, now: number): Promise<WorkflowRow | undefined> {
    const resumed = await this.retryBusy(() => this.stmt(sqliteStatements.resumeWorkflow).run(executorId, appVersion, now, now, id).changes === 1);
    if (resumed) this.bus.emit(`w:${id}`);
    return this.getWorkflow(id);
  }

  async retryWorkflow(id: string, fromStep: number, executorId: string | null, appVersion: string | null, now: number): Promise<WorkflowRow | undefined> {
    const retry = this.db.transaction((): WorkflowRow | undefined => {
      if (this.stmt(sqliteStatements.resumeWorkflow).run(executorId, appVersion, now, now, id).changes !== 1) return undefined;
      const drop = { id, from: fromStep };
      this.stmt(sqliteStatements.dropStepsFrom).run(drop);
      this.stmt(sqliteStatements.dropEventsFrom).run(drop);
      this.stmt(sqliteStatements.dropStreamsFrom).run(drop);
      return this.getWorkflowRow(id);
    });
    const row = await this.retryBusy(() => retry.immediate());
    if (row) this.bus.emit(`w:${id}`);
    return row;
  }

  async forkWorkflow(w: NewWorkflow, sourceId: string, fromStep: number): Promise<InsertConflict | null> {
    const fork = this.db.transaction((): boolean => {
      if (this.stmt(sqliteStatements.insertWorkflow).run(insertParams(w)).changes !== 1) return false;
      const copy = { to: w.id, from: sourceId, before: fromStep };
      this.stmt(sqliteStatements.copySteps).run(copy);
      this.stmt(sqliteStatements.copyEvents).run(copy);
      this.stmt(sqliteStatements.copyStreams).run(copy);
      return true;
    });
    return (await this.retryBusy(() => fork.immediate())) ? null : this.explainConflict(w);
  }

  committedElsewhere(): boolean {
    // data_version changes when another connection (another process, or another provider on this
    // file) commits; this connection's own commits leave it as it is.
    if (!this.db.open) return false;
    const version = this.db.pragma('data_version', { simple: true }) as number;
    const changed = this.dataVersion !== undefined && version !== this.dataVersion;
    this.dataVersion = version;
    return changed;
  }

  async resetRecoveryAttempts(id: string): Promise<void> {
    if (this.resets) return this.resets.submit(id, id);
    this.stmt(sqliteStatements.resetRecoveryAttempts).run(id);
  }

  async recordStep(workflowId: string, step: StepRow, owner: string): Promise<CheckpointOutcome> {
    if (this.steps) return this.steps.submit({ workflowId, step, owner }, workflowId);
    return this.insertStep(workflowId, step, owner) === 1 ? { kind: 'recorded' } : this.explainMiss(workflowId, step.stepId, owner);
  }

  async recordCancelledStep(workflowId: string, step: StepRow): Promise<boolean> {
    return (
      this.stmt(sqliteStatements.recordCancelledStep).run(
        workflowId, step.stepId, step.name, step.output, step.error, step.childId, step.attempts, step.startedAt, step.completedAt, workflowId,
      ).changes === 1
    );
  }

  private insertStep(workflowId: string, step: StepRow, owner: string): number {
    return this.stmt(sqliteStatements.recordStep).run(
      workflowId, step.stepId, step.name, step.output, step.error, step.childId, step.attempts, step.startedAt, step.completedAt, workflowId, owner,
    ).changes;
  }

  /**
   * Off the happy path: why a checkpoint was not written. The workflow was adopted by another
   * executor (this execution is fenced off), another execution holds the counter, or the workflow
   * is not PENDING.
   */
  private explainMiss(workflowId: string, stepId: number, owner: string): CheckpointMiss {
    const status = this.stmt(sqliteStatements.getStatus).get(workflowId) as { status: WorkflowRow['status']; executor_id: string | null } | undefined;
    // Owned by another executor now, whatever its status: adopted (and maybe finished) elsewhere.
    if (status !== undefined && status.executor_id !== owner) return { kind: 'superseded', owner: status.executor_id };
    const existing = this.stmt(sqliteStatements.getStep).get(workflowId, stepId) as Raw | undefined;
    if (existing) return { kind: 'conflict', existing: toStepRow(existing) };
    return { kind: 'not-pending', status: status?.status };
  }

  async listSteps(workflowId: string): Promise<StepRow[]> {
    return (this.stmt(sqliteStatements.listSteps).all(workflowId) as Raw[]).map(toStepRow);
  }

  async listStepsOf(workflowIds: string[]): Promise<Map<string, StepRow[]>> {
    return stepsByWorkflow(workflowIds, this.stmt(sqliteStatements.listStepsOf).all(JSON.stringify(workflowIds)) as Raw[]);
  }

  async claimForRecovery(executorId: string, names: string[], exclude: string[], maxAttempts: number): Promise<RecoveryClaim> {
    const now = Date.now();
    const namesJson = JSON.stringify(names);
    const claimed = await this.retryBusy(
      () => this.stmt(sqliteStatements.claimForRecovery).all(maxAttempts, maxAttempts, now, now, executorId, namesJson, JSON.stringify(exclude)) as Raw[],
    );
    const rows = claimed.map(toWorkflowRow);
    const unknown = (this.stmt(sqliteStatements.unknownPending).all(executorId, namesJson) as Raw[]).map(toWorkflowRow);
    for (const r of rows) if (r.status !== 'PENDING') this.bus.emit(`w:${r.id}`);
    return {
      claimed: rows.filter((r) => r.status === 'PENDING'),
      parked: rows.filter((r) => r.status !== 'PENDING'),
      unknown,
    };
  }

  async registerExecutor(e: Omit<ExecutorRow, 'heartbeatAt' | 'stoppedAt'>): Promise<void> {
    const now = Date.now();
    const register = this.db.transaction(() => {
      this.stmt(sqliteStatements.registerExecutor).run({ ...e, now });
      if (e.appVersion !== '') this.stmt(sqliteStatements.seenVersion).run({ appVersion: e.appVersion, now });
    });
    await this.retryBusy(() => register.immediate());
  }

  async heartbeat(executorId: string, hostKey: string, appVersion: string | null, adoptable: Adoptable): Promise<HeartbeatResult> {
    const beat = this.db.transaction((now: number): Raw => {
      const registered = this.stmt(sqliteStatements.renewLease).run({ id: executorId, now, appVersion }).changes;
      this.stmt(sqliteStatements.forgetExecutors).run({ id: executorId, now });
      if (appVersion !== null && appVersion !== '') this.stmt(sqliteStatements.seenVersion).run({ appVersion, now });
      return { ...(this.stmt(sqliteStatements.fleet).get({ id: executorId, hostKey, now, names: JSON.stringify(adoptable.names), exclude: JSON.stringify(adoptable.exclude) }) as Raw), registered };
    });
    return toHeartbeatResult(await this.retryBusy(() => beat.immediate(Date.now())));
  }

  async stopExecutors(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    await this.retryBusy(() => this.stmt(sqliteStatements.stopExecutors).run({ ids: JSON.stringify(ids), now: Date.now() }));
  }

  async listExecutors(): Promise<{ now: number; executors: Array<ExecutorRow & { pending: number }> }> {
    const rows = this.stmt(sqliteStatements.listExecutors).all() as Raw[];
    return { now: Date.now(), executors: rows.map((r) => ({ ...toExecutorRow(r), pending: Number(r.pending) })) };
  }

  async releaseWorkflow(id: string, owner: string, appVersion: string | null): Promise<boolean> {
    return (await this.retryBusy(() => this.stmt(sqliteStatements.releaseWorkflow).run({ id, owner, appVersion, now: Date.now() }))).changes === 1;
  }

  async setAppVersion(id: string, appVersion: string, owner: string): Promise<void> {
    await this.retryBusy(() => this.stmt(sqliteStatements.setAppVersion).run({ id, appVersion, owner }));
  }

  async listVersions(): Promise<VersionRow[]> {
    return (this.stmt(sqliteStatements.listVersions).all({ now: Date.now() }) as Raw[]).map(toVersionRow);
  }

  async adoptWorkflows(r: AdoptRequest): Promise<AdoptResult> {
    const adopt = this.db.transaction((now: number) => {
      const from = JSON.stringify(r.from);
      const requeued = this.stmt(sqliteStatements.requeueOrphans).all({ from, maxAttempts: r.maxAttempts, now }) as Array<{ id: string; queue: string; status: string }>;
      const { sharers } = this.stmt(sqliteStatements.sharers).get({ from, live: r.live }) as { sharers: number };
      this.stmt(sqliteStatements.countAdoption).run({ from });
      const rows = (
        this.stmt(sqliteStatements.adoptOrphans).all({
          id: r.executorId, from, names: JSON.stringify(r.names), exclude: JSON.stringify(r.exclude), live: sharers, maxAttempts: r.maxAttempts, now,
        }) as Raw[]
      ).map(toWorkflowRow);
      return { rows, requeued };
    });
    const { rows, requeued } = await this.retryBusy(() => adopt.immediate(Date.now()));
    for (const q of new Set(requeued.map((w) => w.queue))) this.bus.emit(`q:${q}`);
    for (const w of requeued) if (w.status !== 'ENQUEUED') this.bus.emit(`w:${w.id}`);
    for (const w of rows) if (w.status !== 'PENDING') this.bus.emit(`w:${w.id}`);
    return { claimed: rows.filter((w) => w.status === 'PENDING'), parked: rows.filter((w) => w.status !== 'PENDING'), requeued: requeued.length };
  }
}

function insertParams(w: NewWorkflow): Record<string, unknown> {
  return {
    id: w.id, name: w.name, status: w.status ?? 'PENDING', input: w.input, queue: w.queue, executorId: w.executorId,
    appVersion: w.appVersion, parentId: w.parentId, deadlineAt: w.deadlineAt, createdAt: w.createdAt, priority: w.priority ?? 0,
    dedupId: w.dedupId ?? null, partitionKey: w.partitionKey ?? null, availableAt: w.availableAt ?? null,
    traceContext: w.traceContext ?? null,
  };
}
