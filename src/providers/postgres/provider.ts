import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { InvalidArgumentError } from '../../engine/errors.js';
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
import { TransactionBodyError } from '../provider.js';
import type { WorkflowStatus } from '../../types.js';
import {
  claimedInOrder,
  claimLimits,
  listWorkflowsQuery,
  nextQueueTime,
  scheduleParams,
  stepsByWorkflow,
  toExecutorRow,
  toHeartbeatResult,
  toQueueDefinition,
  toQueueRow,
  toScheduleRow,
  toStepRow,
  toVersionRow,
  toWorkflowRow,
} from '../rows.js';
import { assertSchemaName } from '../schema-name.js';
import { Batcher } from '../batcher.js';
import { codeOf, isTransientPostgresError, postgresConnectionError, redactUrl } from '../faults.js';
import { loadMigrations } from '../migrations.js';
import { holdConnection } from './connection.js';
import { PostgresListener } from './listener.js';
import { migratePostgres } from './migrate.js';
import { postgresStatements, type PostgresStatements } from './statements.js';

export interface PostgresProviderOptions {
  /** A `postgres://` URL; or pass `pool`. */
  connectionString?: string;
  /** An existing pool; the provider does not end it on close. */
  pool?: pg.Pool;
  /** Schema holding Cairn's tables (default `cairn`). */
  schema?: string;
  /** Pool size when the provider creates the pool (default 10). */
  max?: number;
  /**
   * How long a new connection may take to be established, in ms (default 10,000), when the
   * provider creates the pool; a host that never answers then fails instead of hanging.
   */
  connectTimeoutMs?: number;
  /** Called with every statement before it is sent (instrumentation, tests). */
  onStatement?: StatementObserver;
  /**
   * Group commit of checkpoints (default on): checkpoints written while others are committing go
   * together in one statement. `lanes` is how many such statements may be in flight (default 1).
   */
  groupCommit?: boolean | { lanes?: number };
}

/** How long a transaction of this provider may sit idle (its process paused) before the server ends it. */
const TRANSACTION_IDLE_MS = 5_000;
/** How many times a transactional step runs when it keeps losing serialization conflicts or deadlocks. */
const TRANSACTION_ROUNDS = 10;
/** serialization_failure and deadlock_detected: the transaction did nothing and may simply run again. */
const RERUN_STATES = new Set(['40001', '40P01']);
/** Thrown inside a transactional step's transaction to roll it back when its checkpoint missed. */
const MISSED = Symbol('missed');


type StepWrite = { workflowId: string; step: StepRow; owner: string };
type EndWrite = { id: string; status: 'SUCCESS' | 'ERROR'; output: string | null; error: string | null; completedAt: number; owner: string };

type Query = { name?: string; text: string };

/**
 * Cairn on PostgreSQL through a node-postgres Pool. Each operation is one statement on the happy
 * path, sent as a named prepared statement.
 *
 * @example
 * const engine = await Engine.open({ database: new PostgresProvider({ connectionString, schema: 'tenant_a' }) });
 */
export class PostgresProvider implements Provider {
  readonly kind = 'postgres';
  readonly capabilities = { multiHost: true, crossProcessNotifications: true };
  readonly schema: string;
  private readonly pool: pg.Pool;
  private readonly ownsPool: boolean;
  private readonly sql: PostgresStatements;
  private readonly observe: StatementObserver | undefined;
  private readonly listener: PostgresListener;
  private readonly steps: Batcher<StepWrite, CheckpointOutcome> | undefined;
  private readonly ends: Batcher<EndWrite, WorkflowRow | undefined | null> | undefined;
  private readonly starts: Batcher<NewWorkflow, InsertConflict | null> | undefined;
  private readonly resets: Batcher<string, void> | undefined;
  /** The server and database, for messages: the URL with its password hidden. */
  private readonly database: string;

  constructor(options: PostgresProviderOptions) {
    this.schema = assertSchemaName(options.schema ?? 'cairn');
    this.ownsPool = options.pool === undefined;
    const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    if (!Number.isSafeInteger(connectTimeoutMs) || connectTimeoutMs < 1) {
      throw new InvalidArgumentError('connectTimeoutMs', `connectTimeoutMs must be an integer >= 1, got ${String(connectTimeoutMs)}`);
    }
    this.pool =
      options.pool ?? new pg.Pool({ connectionString: options.connectionString, max: options.max ?? 10, connectionTimeoutMillis: connectTimeoutMs });
    // A broken idle connection must not crash the process; the next query gets a fresh one.
    if (this.ownsPool) this.pool.on('error', () => undefined);
    this.database = describeDatabase(options.connectionString, this.pool.options);
    this.sql = postgresStatements(this.schema);
    this.observe = options.onStatement;
    this.listener = new PostgresListener(
      options.connectionString === undefined ? options.pool?.options : { connectionString: options.connectionString, connectionTimeoutMillis: connectTimeoutMs },
      this.sql.channel,
    );
    const group = options.groupCommit ?? true;
    if (group !== false) {
      const lanes = typeof group === 'object' && group.lanes !== undefined ? group.lanes : 1;
      this.steps = new Batcher((writes) => this.writeSteps(writes), lanes, 500);
      this.ends = new Batcher((writes) => this.writeEnds(writes), lanes, 500);
      this.starts = new Batcher((rows) => this.writeStarts(rows), lanes, 500);
      this.resets = new Batcher((ids) => this.writeResets(ids), lanes, 500);
    }
  }

  private async query(q: Query, values: unknown[]): Promise<pg.QueryResult> {
    this.observe?.(q.text);
    return this.pool.query({ name: q.name, text: q.text, values });
  }

  async migrate(): Promise<void> {
    try {
      await migratePostgres(this.pool, this.schema);
    } catch (err) {
      throw postgresConnectionError(err, this.database) ?? err;
    }
  }

  async schemaVersion(): Promise<SchemaVersion> {
    let applied: number;
    try {
      // Not reported to onStatement: it is the open's check, not one of the engine's operations.
      const res = await this.pool.query<{ v: number | null }>(`SELECT max(version) AS v FROM "${this.schema}".migrations`);
      applied = res.rows[0]?.v ?? 0;
    } catch (err) {
      // 42P01: no migrations table (or no schema) yet.
      if ((err as { code?: unknown }).code !== '42P01') throw postgresConnectionError(err, this.database) ?? err;
      applied = 0;
    }
    return { applied, expected: loadMigrations('postgres').length, where: `Postgres schema "${this.schema}" at ${this.database}` };
  }

  isTransient(err: unknown): boolean {
    return isTransientPostgresError(err);
  }

  async close(): Promise<void> {
    await this.listener.close();
    if (this.ownsPool) await this.pool.end();
  }

  subscribe(listener: ChangeListener): Promise<() => Promise<void>> {
    return this.listener.subscribe(listener);
  }

  insertWorkflow(w: NewWorkflow): Promise<InsertConflict | null> {
    return this.starts ? this.starts.submit(w) : this.writeStart(w);
  }

  private async writeStart(w: NewWorkflow): Promise<InsertConflict | null> {
    const res = await this.query(this.sql.insertWorkflow, insertParams(w));
    return res.rowCount === 1 ? null : this.explainConflict(w);
  }

  /** One statement for a batch of starts; a lone one takes the single-row statement. */
  private async writeStarts(rows: NewWorkflow[]): Promise<Array<InsertConflict | null>> {
    if (rows.length === 1) return [await this.writeStart(rows[0]!)];
    const res = await this.query(this.sql.insertWorkflows, columnsOf(rows.map(insertParams), 15));
    const inserted = new Set(res.rows.map((r) => (r as { id: string }).id));
    // Two rows of one batch may share an id: only the first of them is the one inserted.
    const claimed = new Set<string>();
    return Promise.all(
      rows.map(async (w) => {
        if (inserted.has(w.id) && !claimed.has(w.id)) {
          claimed.add(w.id);
          return null;
        }
        return this.explainConflict(w);
      }),
    );
  }

  /**
   * Off the happy path: what kept a workflow from being inserted, read through `run` (the pool,
   * or the caller's transaction, which sees its own uncommitted rows).
   */
  private async explainConflict(w: NewWorkflow, run: (query: Query, values: unknown[]) => Promise<pg.QueryResult> = (q, v) => this.query(q, v)): Promise<InsertConflict> {
    const byId = (await run(this.sql.getWorkflow, [w.id])).rows[0];
    if (byId) return { reason: 'id', row: toWorkflowRow(byId as Record<string, unknown>) };
    if (w.queue && w.dedupId) {
      const holder = await run(this.sql.getDedupHolder, [w.queue, w.dedupId]);
      if (holder.rows[0]) return { reason: 'dedup', row: toWorkflowRow(holder.rows[0] as Record<string, unknown>) };
    }
    throw new Error(`workflow '${w.id}' was not inserted, and neither its id nor its dedupId is taken any more; try again`);
  }

  async upsertQueue(q: QueueDefinition, now: number): Promise<void> {
    await this.query(this.sql.upsertQueue, [
      q.name, q.concurrency, q.workerConcurrency, q.rateLimit?.limit ?? null, q.rateLimit?.periodMs ?? null, q.partitioned, now,
    ]);
  }

  async getQueue(name: string): Promise<QueueDefinition | undefined> {
    const res = await this.query(this.sql.getQueue, [name]);
    return res.rows[0] ? toQueueDefinition(res.rows[0] as Record<string, unknown>) : undefined;
  }

  async claimQueued(r: ClaimRequest): Promise<ClaimResult> {
    const claim = r.queue.partitioned ? this.sql.claimPartitioned : this.sql.claim;
    return this.transaction(async (q) => {
      await q(this.sql.lockQueue, [`cairn:${this.schema}:queue:${r.queue.name}`]);
      await q(this.sql.promoteDelayed, [r.queue.name, Date.now()]);
      // Read once the queue's lock is held and the table could be written: a claim that waited
      // must not stamp or count from the time before it waited.
      const now = Date.now();
      const { concurrency, rateLimit, windowStart } = claimLimits(r.queue, now);
      const claimed =
        r.slots > 0
          ? (await q(claim, [r.queue.name, windowStart, r.names, concurrency, rateLimit, r.slots, r.executorId, r.appVersion, now])).rows
          : [];
      const next = (await q(this.sql.nextQueueTime, [r.queue.name, windowStart])).rows[0] as { delayed_at: string | null; oldest_start: string | null };
      return { claimed: claimedInOrder(claimed as Array<Record<string, unknown>>), nextAt: nextQueueTime(r.queue, next) };
    });
  }

  async debounce(r: DebounceRequest): Promise<string> {
    const w = r.row;
    const res = await this.query(this.sql.debounce, [
      w.id, w.name, w.input, w.queue, w.parentId, w.createdAt, w.priority ?? 0, w.partitionKey ?? null, r.periodMs, r.key, r.maxWaitMs,
    ]);
    return (res.rows[0] as { id: string }).id;
  }

  /**
   * Runs `fn` in a transaction on one pooled connection. While the connection is checked out, the
   * pool's own error listener is off it, so this one stands in: a connection that dies mid-transaction
   * (a restarted server, a terminated backend) must fail the transaction, not the process. A broken
   * connection goes back with its error, so the pool discards it instead of lending it out again.
   */
  private async transaction<T>(fn: (q: (query: Query, values: unknown[]) => Promise<pg.QueryResult>, client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    const held = holdConnection(client);
    const q = (query: Query, values: unknown[]) => {
      this.observe?.(query.text);
      return client.query({ name: query.name, text: query.text, values });
    };
    try {
      // A process paused in the middle (SIGSTOP, a frozen VM) would hold its locks, the queue's
      // claim lock included, for as long as it stays paused: the server ends such a transaction
      // once it sits idle for TRANSACTION_IDLE_MS. Sent with BEGIN, in the same round trip.
      await client.query(`BEGIN; SET LOCAL idle_in_transaction_session_timeout = ${TRANSACTION_IDLE_MS}`);
      const result = await fn(q, client);
      this.observe?.('COMMIT');
      await client.query('COMMIT');
      return result;
    } catch (err) {
      if (isTransientPostgresError(err)) held.broke(err);
      else await client.query('ROLLBACK').catch((rollbackFailed: unknown) => held.broke(rollbackFailed));
      throw err;
    } finally {
      held.release();
    }
  }

  async getWorkflow(id: string): Promise<WorkflowRow | undefined> {
    const res = await this.query(this.sql.getWorkflow, [id]);
    return res.rows[0] ? toWorkflowRow(res.rows[0] as Record<string, unknown>) : undefined;
  }

  async listWorkflows(filter: ListFilter): Promise<WorkflowRow[]> {
    const q = listWorkflowsQuery(this.sql.workflowsTable, filter, {
      param: (i) => `$${i}`,
      inList: (i) => `= ANY($${i}::text[])`,
      encodeList: (v) => v,
      // LIKE, with the prefix's wildcards escaped: a range scan of the primary key where the
      // database's collation is C; otherwise the listing's order index is walked until the page is full.
      startsWith: (column, prefix, bind) => `${column} LIKE ${bind(`${prefix.replace(/[\\%_]/g, '\\$&')}%`)}`,
    });
    const res = await this.query({ text: q.sql }, q.params);
    return res.rows.map((r) => toWorkflowRow(r as Record<string, unknown>));
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
    return this.ends ? this.ends.submit(end) : this.writeEnd(end);
  }

  private async writeEnd(e: EndWrite): Promise<WorkflowRow | undefined | null> {
    const res = await this.query(this.sql.completeWorkflow, [...endParams(e), this.sql.channel, e.owner]);
    return res.rows.length === 1 ? null : this.getWorkflow(e.id);
  }

  /** One statement for a batch of workflow ends; a lone one takes the single-row statement. */
  private async writeEnds(ends: EndWrite[]): Promise<Array<WorkflowRow | undefined | null>> {
    if (ends.length === 1) return [await this.writeEnd(ends[0]!)];
    const res = await this.query(this.sql.completeWorkflows, [...columnsOf(ends.map(endParams), 5), this.sql.channel, ends.map((e) => e.owner)]);
    const ended = new Set(res.rows.map((r) => (r as { id: string }).id));
    return Promise.all(ends.map(async (e) => (ended.has(e.id) ? null : this.getWorkflow(e.id))));
  }

  async cancelWorkflow(id: string, error: string, now: number): Promise<CancelResult> {
    const res = await this.query(this.sql.cancelWorkflow, [id, error, now]);
    return { row: await this.getWorkflow(id), cancelled: res.rows.map((r) => (r as { id: string }).id) };
  }

  async recordStepWithEffect(workflowId: string, step: StepRow, effect: StepEffect, owner: string): Promise<CheckpointOutcome | { kind: 'no-destination' }> {
    const base = stepParams(workflowId, step);
    if (effect.kind === 'send') {
      const res = await this.query(this.sql.recordSend, [...base, effect.destinationId, effect.topic, effect.body, owner]);
      const row = res.rows[0] as { dest: number; done: number };
      if (row.done === 1) return { kind: 'recorded' };
      if (row.dest === 0) return { kind: 'no-destination' };
      return this.explainMiss(workflowId, step.stepId, owner);
    }
    const res =
      effect.kind === 'set-event'
        ? await this.query(this.sql.recordSetEvent, [...base, effect.key, effect.value, owner])
        : await this.query(this.sql.recordStream, [...base, effect.key, effect.value, effect.closed, owner]);
    return res.rowCount === 1 ? { kind: 'recorded' } : this.explainMiss(workflowId, step.stepId, owner);
  }

  async recordRecv(
    workflowId: string,
    step: Pick<StepRow, 'stepId' | 'name' | 'startedAt' | 'completedAt'>,
    topic: string,
    owner: string,
  ): Promise<CheckpointMiss | { kind: 'received'; body: string } | { kind: 'empty' }> {
    const res = await this.query(this.sql.recordRecv, [workflowId, step.stepId, step.name, step.startedAt, step.completedAt, topic, owner]);
    const row = res.rows[0] as { found: number; body: string | null };
    if (row.body !== null) return { kind: 'received', body: row.body };
    if (row.found === 0) return { kind: 'empty' };
    return this.explainMiss(workflowId, step.stepId, owner);
  }

  async sendMessage(destinationId: string, topic: string, body: string, idempotencyKey: string | null, now: number): Promise<'sent' | 'duplicate' | 'no-destination'> {
    const res = await this.query(this.sql.sendMessage, [destinationId, topic, body, idempotencyKey, now]);
    const row = res.rows[0] as { dest: number; sent: number };
    return row.sent === 1 ? 'sent' : row.dest === 0 ? 'no-destination' : 'duplicate';
  }

  async listSchedules(): Promise<ScheduleRow[]> {
    return (await this.query(this.sql.listSchedules, [])).rows.map((r) => toScheduleRow(r as Record<string, unknown>));
  }

  async getSchedule(name: string): Promise<ScheduleRow | undefined> {
    const row = (await this.query(this.sql.getSchedule, [name])).rows[0];
    return row ? toScheduleRow(row as Record<string, unknown>) : undefined;
  }

  async insertSchedule(row: ScheduleRow): Promise<boolean> {
    return (await this.query(this.sql.insertSchedule, [...scheduleParams(row), row.createdAt, row.updatedAt])).rowCount === 1;
  }

  async updateSchedule(row: ScheduleRow): Promise<boolean> {
    return (await this.query(this.sql.updateSchedule, [...scheduleParams(row), row.updatedAt])).rowCount === 1;
  }

  async deleteSchedule(name: string): Promise<boolean> {
    return (await this.query(this.sql.deleteSchedule, [name])).rowCount === 1;
  }

  async markScheduleTick(name: string, tick: number): Promise<void> {
    await this.query(this.sql.markScheduleTick, [name, tick]);
  }

  async getEvent(workflowId: string, key: string): Promise<string | undefined> {
    const res = await this.query(this.sql.getEvent, [workflowId, key]);
    return (res.rows[0] as { value: string } | undefined)?.value;
  }

  async readStream(workflowId: string, key: string, afterOffset: number): Promise<StreamEntry[]> {
    const res = await this.query(this.sql.readStream, [workflowId, key, afterOffset]);
    return res.rows.map((r) => {
      const row = r as { offset_id: number; value: string | null; closed: boolean };
      return { offset: row.offset_id, value: row.value, closed: row.closed };
    });
  }

  async resumeWorkflow(id: string, executorId: string | null, appVersion: string | null, now: number): Promise<WorkflowRow | undefined> {
    await this.query(this.sql.resumeWorkflow, [id, executorId, appVersion, now]);
    return this.getWorkflow(id);
  }

  async retryWorkflow(id: string, fromStep: number, executorId: string | null, appVersion: string | null, now: number): Promise<WorkflowRow | undefined> {
    const res = await this.query(this.sql.retryWorkflow, [id, executorId, appVersion, now, fromStep]);
    return res.rows[0] ? toWorkflowRow(res.rows[0] as Record<string, unknown>) : undefined;
  }

  async forkWorkflow(w: NewWorkflow, sourceId: string, fromStep: number): Promise<InsertConflict | null> {
    const inserted = await this.transaction(async (q) => {
      if ((await q(this.sql.insertWorkflow, insertParams(w))).rowCount !== 1) return false;
      await q(this.sql.copySteps, [w.id, sourceId, fromStep]);
      return true;
    });
    return inserted ? null : this.explainConflict(w);
  }

  async transactionStep(workflowId: string, owner: string, body: (tx: unknown) => unknown, finish: (value: unknown) => StepRow): Promise<CheckpointOutcome> {
    for (let round = 1; ; round++) {
      let step: StepRow | undefined;
      try {
        await this.transaction(async (q, client) => {
          try {
            step = finish(await body(client));
          } catch (err) {
            throw new TransactionBodyError(err);
          }
          let res: pg.QueryResult;
          try {
            res = await q(this.sql.recordStep, [...stepParams(workflowId, step), owner]);
          } catch (err) {
            // The function caught a failed statement and returned: the transaction is aborted.
            if (codeOf(err) === '25P02') throw new TransactionBodyError(new Error('a statement in the transaction failed and the function returned anyway, so nothing was committed', { cause: err }));
            throw err;
          }
          if (res.rowCount !== 1) throw MISSED;
        });
        return { kind: 'recorded' };
      } catch (err) {
        if (err === MISSED) return this.explainMiss(workflowId, step!.stepId, owner);
        // Another transaction won a serialization conflict or a deadlock: run it all again.
        if (round < TRANSACTION_ROUNDS && RERUN_STATES.has(codeOf(err instanceof TransactionBodyError ? err.error : err) ?? '')) {
          await sleep(Math.random() * 10 * round);
          continue;
        }
        throw err;
      }
    }
  }

  async insertWorkflowWithin(tx: unknown, w: NewWorkflow): Promise<InsertConflict | null> {
    const client = tx as pg.ClientBase;
    if (typeof tx !== 'object' || tx === null || typeof client.query !== 'function') {
      throw new InvalidArgumentError('transaction', 'transaction must be a pg client (a pg.Client or a pool client) in a transaction you opened with BEGIN on the same database as Cairn');
    }
    const inserted = await client.query({ text: this.sql.insertWorkflow.text, values: insertParams(w) });
    if (inserted.rowCount === 1) {
      // Queued rows notify through their trigger; a started one says so itself. Both reach listeners at COMMIT.
      if ((w.status ?? 'PENDING') === 'PENDING') await client.query('SELECT pg_notify($1, $2)', [this.sql.channel, JSON.stringify([`w:${w.id}`])]);
      return null;
    }
    // Unnamed statements: the caller's connection has prepared statements of its own.
    return this.explainConflict(w, (q, values) => client.query({ text: q.text, values }));
  }

  transactionEnded(): undefined {
    return undefined;
  }

  async claimUnowned(id: string, executorId: string, appVersion: string, now: number): Promise<WorkflowRow | undefined> {
    const res = await this.query(this.sql.claimUnowned, [id, executorId, appVersion, now]);
    return res.rows[0] ? toWorkflowRow(res.rows[0] as Record<string, unknown>) : undefined;
  }

  async listQueues(): Promise<QueueRow[]> {
    return (await this.query(this.sql.listQueues, [])).rows.map((r) => toQueueRow(r as Record<string, unknown>));
  }

  async gcBatch(cutoff: number, statuses: WorkflowStatus[], limit: number): Promise<string[]> {
    return (await this.query(this.sql.gcBatch, [cutoff, statuses, limit])).rows.map((r) => (r as { id: string }).id);
  }

  async deleteWorkflow(id: string): Promise<boolean> {
    return (await this.query(this.sql.deleteWorkflow, [id])).rowCount === 1;
  }

  async resetRecoveryAttempts(id: string): Promise<void> {
    if (this.resets) return this.resets.submit(id);
    await this.query(this.sql.resetRecoveryAttempts, [id]);
  }

  /** Recovery-count resets that arrive together (a recovery resuming many workflows) go as one statement. */
  private async writeResets(ids: string[]): Promise<void[]> {
    if (ids.length === 1) await this.query(this.sql.resetRecoveryAttempts, ids);
    else await this.query(this.sql.resetRecoveryAttemptsOf, [ids]);
    return ids.map(() => undefined);
  }

  recordStep(workflowId: string, step: StepRow, owner: string): Promise<CheckpointOutcome> {
    const write = { workflowId, step, owner };
    return this.steps ? this.steps.submit(write) : this.writeStep(write);
  }

  async recordCancelledStep(workflowId: string, step: StepRow): Promise<boolean> {
    return (await this.query(this.sql.recordCancelledStep, stepParams(workflowId, step))).rowCount === 1;
  }

  private async writeStep(w: StepWrite): Promise<CheckpointOutcome> {
    const res = await this.query(this.sql.recordStep, [...stepParams(w.workflowId, w.step), w.owner]);
    return res.rowCount === 1 ? { kind: 'recorded' } : this.explainMiss(w.workflowId, w.step.stepId, w.owner);
  }

  /** One statement for a batch of checkpoints; a lone one takes the single-row statement. */
  private async writeSteps(writes: StepWrite[]): Promise<CheckpointOutcome[]> {
    if (writes.length === 1) return [await this.writeStep(writes[0]!)];
    const res = await this.query(this.sql.recordSteps, columnsOf(writes.map((w) => [...stepParams(w.workflowId, w.step), w.owner]), 10));
    const recorded = new Set(res.rows.map((r) => `${(r as { step_id: number }).step_id}:${(r as { workflow_id: string }).workflow_id}`));
    return Promise.all(
      writes.map(async (w): Promise<CheckpointOutcome> =>
        recorded.has(`${w.step.stepId}:${w.workflowId}`) ? { kind: 'recorded' } : this.explainMiss(w.workflowId, w.step.stepId, w.owner),
      ),
    );
  }

  /**
   * Off the happy path: why a checkpoint was not written. The workflow was adopted by another
   * executor (this execution is fenced off), another execution holds the counter, or the workflow
   * is not PENDING.
   */
  private async explainMiss(workflowId: string, stepId: number, owner: string): Promise<CheckpointMiss> {
    const status = (await this.query(this.sql.getStatus, [workflowId])).rows[0] as { status: WorkflowRow['status']; executor_id: string | null } | undefined;
    // Owned by another executor now, whatever its status: adopted (and maybe finished) elsewhere.
    if (status !== undefined && status.executor_id !== owner) return { kind: 'superseded', owner: status.executor_id };
    const existing = await this.query(this.sql.getStep, [workflowId, stepId]);
    if (existing.rows[0]) return { kind: 'conflict', existing: toStepRow(existing.rows[0] as Record<string, unknown>) };
    return { kind: 'not-pending', status: status?.status };
  }

  async listSteps(workflowId: string): Promise<StepRow[]> {
    const res = await this.query(this.sql.listSteps, [workflowId]);
    return res.rows.map((r) => toStepRow(r as Record<string, unknown>));
  }

  async listStepsOf(workflowIds: string[]): Promise<Map<string, StepRow[]>> {
    const res = await this.query(this.sql.listStepsOf, [workflowIds]);
    return stepsByWorkflow(workflowIds, res.rows as Array<Record<string, unknown>>);
  }

  async claimForRecovery(executorId: string, names: string[], exclude: string[], maxAttempts: number): Promise<RecoveryClaim> {
    const res = await this.query(this.sql.claimForRecovery, [executorId, names, exclude, maxAttempts, Date.now()]);
    const rows = res.rows.map((r) => toWorkflowRow(r as Record<string, unknown>));
    const unknown = await this.query(this.sql.unknownPending, [executorId, names]);
    return {
      claimed: rows.filter((r) => r.status === 'PENDING'),
      parked: rows.filter((r) => r.status !== 'PENDING'),
      unknown: unknown.rows.map((r) => toWorkflowRow(r as Record<string, unknown>)),
    };
  }

  async registerExecutor(e: Omit<ExecutorRow, 'heartbeatAt' | 'stoppedAt'>): Promise<void> {
    await this.query(this.sql.registerExecutor, [e.id, e.hostname, e.hostKey, e.pid, e.appVersion, e.leaseMs, e.startedAt]);
  }

  async heartbeat(executorId: string, hostKey: string, appVersion: string | null, adoptable: Adoptable): Promise<HeartbeatResult> {
    const res = await this.query(this.sql.heartbeat, [executorId, hostKey, appVersion, adoptable.names, adoptable.exclude]);
    return toHeartbeatResult(res.rows[0] as Record<string, unknown>);
  }

  async stopExecutors(ids: string[]): Promise<void> {
    if (ids.length > 0) await this.query(this.sql.stopExecutors, [ids]);
  }

  async listExecutors(): Promise<{ now: number; executors: Array<ExecutorRow & { pending: number }> }> {
    const res = await this.query(this.sql.listExecutors, []);
    const rows = res.rows as Array<Record<string, unknown>>;
    return {
      now: rows[0] ? Number(rows[0].now) : Date.now(),
      executors: rows.map((r) => ({ ...toExecutorRow(r), pending: Number(r.pending) })),
    };
  }

  async releaseWorkflow(id: string, owner: string, appVersion: string | null): Promise<boolean> {
    return (await this.query(this.sql.releaseWorkflow, [id, owner, appVersion, Date.now()])).rowCount === 1;
  }

  async setAppVersion(id: string, appVersion: string, owner: string): Promise<void> {
    await this.query(this.sql.setAppVersion, [id, appVersion, owner]);
  }

  async listVersions(): Promise<VersionRow[]> {
    return (await this.query(this.sql.listVersions, [])).rows.map((r) => toVersionRow(r as Record<string, unknown>));
  }

  async adoptWorkflows(r: AdoptRequest): Promise<AdoptResult> {
    return this.transaction(async (q) => {
      const now = Date.now();
      const requeued = (await q(this.sql.requeueOrphans, [r.from, r.maxAttempts, now])).rowCount ?? 0;
      const { sharers } = (await q(this.sql.countAdoption, [r.from, r.live])).rows[0] as { sharers: number };
      const res = await q(this.sql.adoptOrphans, [r.executorId, r.from, r.names, sharers, r.exclude, r.maxAttempts, now]);
      const rows = res.rows.map((row) => toWorkflowRow(row as Record<string, unknown>));
      return { claimed: rows.filter((w) => w.status === 'PENDING'), parked: rows.filter((w) => w.status !== 'PENDING'), requeued };
    });
  }
}

/** The database a provider talks to, for messages: its URL without the password, or what the pool was given. */
function describeDatabase(connectionString: string | undefined, options: pg.PoolConfig): string {
  if (connectionString !== undefined) return redactUrl(connectionString);
  if (options.connectionString) return redactUrl(options.connectionString);
  const user = options.user ?? process.env.PGUSER ?? '';
  const host = options.host ?? process.env.PGHOST ?? 'localhost';
  const port = options.port ?? process.env.PGPORT ?? 5432;
  const db = options.database ?? process.env.PGDATABASE ?? '';
  return `postgres://${user ? `${user}@` : ''}${host}:${port}/${db}`;
}

function insertParams(w: NewWorkflow): unknown[] {
  return [
    w.id, w.name, w.input, w.queue, w.executorId, w.appVersion, w.parentId, w.deadlineAt, w.createdAt,
    w.status ?? 'PENDING', w.priority ?? 0, w.dedupId ?? null, w.partitionKey ?? null, w.availableAt ?? null,
    w.traceContext ?? null,
  ];
}

/** Turns rows of parameters into one array per column, for statements that unnest them. */
function columnsOf(rows: unknown[][], width: number): unknown[][] {
  const columns = Array.from({ length: width }, (): unknown[] => []);
  for (const row of rows) for (let i = 0; i < width; i++) columns[i]!.push(row[i]);
  return columns;
}

function endParams(e: EndWrite): unknown[] {
  return [e.id, e.status, e.output, e.error, e.completedAt];
}

function stepParams(workflowId: string, step: StepRow): unknown[] {
  return [workflowId, step.stepId, step.name, step.output, step.error, step.childId, step.startedAt, step.completedAt, step.attempts];
}
