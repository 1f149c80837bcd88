import Database from 'better-sqlite3';
import { InvalidArgumentError } from '../../engine/errors.js';
import type {
  CheckpointOutcome,
  ListFilter,
  NewWorkflow,
  Provider,
  RecoveryClaim,
  StatementObserver,
  StepRow,
  WorkflowRow,
} from '../provider.js';
import { listWorkflowsQuery, toStepRow, toWorkflowRow } from '../rows.js';
import { migrateSqlite } from './migrate.js';
import { sqliteStatements } from './statements.js';

export type SqliteSynchronous = 'OFF' | 'NORMAL' | 'FULL' | 'EXTRA';

export interface SqliteProviderOptions {
  /** A file path, or `:memory:`. */
  path: string;
  /** `PRAGMA synchronous` (default FULL: every commit is fsync'd before it returns). */
  synchronous?: SqliteSynchronous;
  /** How long a write waits for another process's lock, in ms (default 5000). */
  busyTimeoutMs?: number;
  /** Called with every statement before it is sent (instrumentation, tests). */
  onStatement?: StatementObserver;
}

const SYNCHRONOUS: readonly SqliteSynchronous[] = ['OFF', 'NORMAL', 'FULL', 'EXTRA'];

type Raw = Record<string, unknown>;

/**
 * Cairn on an SQLite file through better-sqlite3, in WAL mode. Statements run synchronously, so
 * each one is a whole commit and transactions cannot interleave.
 *
 * @example
 * const engine = await Engine.open({ database: new SqliteProvider({ path: './app.db', synchronous: 'NORMAL' }) });
 */
export class SqliteProvider implements Provider {
  readonly kind = 'sqlite';
  readonly capabilities = { multiHost: false };
  readonly path: string;
  private readonly db: Database.Database;
  private readonly observe: StatementObserver | undefined;
  private readonly prepared = new Map<string, Database.Statement>();

  constructor(options: SqliteProviderOptions) {
    const synchronous = options.synchronous ?? 'FULL';
    if (!SYNCHRONOUS.includes(synchronous)) {
      throw new InvalidArgumentError('synchronous', `synchronous must be one of ${SYNCHRONOUS.join(', ')}, got ${JSON.stringify(synchronous)}`);
    }
    const busy = options.busyTimeoutMs ?? 5000;
    if (!Number.isFinite(busy) || busy < 0) {
      throw new InvalidArgumentError('busyTimeoutMs', `busyTimeoutMs must be a finite number >= 0, got ${busy}`);
    }
    this.path = options.path;
    try {
      this.db = new Database(options.path, { timeout: busy });
    } catch (cause) {
      throw new InvalidArgumentError('database', `cannot open SQLite database '${options.path}': ${(cause as Error).message}`, { cause });
    }
    if (options.path !== ':memory:') this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${synchronous}`);
    this.observe = options.onStatement;
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

  async migrate(): Promise<void> {
    migrateSqlite(this.db, `'${this.path}'`);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  async insertWorkflow(w: NewWorkflow): Promise<WorkflowRow | null> {
    const info = this.stmt(sqliteStatements.insertWorkflow).run(...insertParams(w));
    if (info.changes === 1) return null;
    const existing = await this.getWorkflow(w.id);
    if (!existing) throw new Error(`workflow '${w.id}' conflicted on insert but could not be read back`);
    return existing;
  }

  async getWorkflow(id: string): Promise<WorkflowRow | undefined> {
    const row = this.stmt(sqliteStatements.getWorkflow).get(id) as Raw | undefined;
    return row ? toWorkflowRow(row) : undefined;
  }

  async listWorkflows(filter: ListFilter): Promise<WorkflowRow[]> {
    const q = listWorkflowsQuery(
      sqliteStatements.workflowsTable,
      filter,
      () => '?',
      () => 'IN (SELECT value FROM json_each(?))',
      (v) => JSON.stringify(v),
    );
    return (this.stmt(q.sql).all(...q.params) as Raw[]).map(toWorkflowRow);
  }

  async completeWorkflow(
    id: string,
    status: 'SUCCESS' | 'ERROR',
    output: string | null,
    error: string | null,
    completedAt: number,
  ): Promise<WorkflowRow | undefined | null> {
    const info = this.stmt(sqliteStatements.completeWorkflow).run(status, output, error, completedAt, completedAt, id);
    return info.changes === 1 ? null : this.getWorkflow(id);
  }

  async cancelWorkflow(id: string, error: string, now: number): Promise<WorkflowRow | undefined> {
    this.stmt(sqliteStatements.cancelWorkflow).run(error, now, now, id);
    return this.getWorkflow(id);
  }

  async resumeWorkflow(id: string, executorId: string, appVersion: string, now: number): Promise<WorkflowRow | undefined> {
    this.stmt(sqliteStatements.resumeWorkflow).run(executorId, appVersion, now, now, id);
    return this.getWorkflow(id);
  }

  async forkWorkflow(w: NewWorkflow, sourceId: string, fromStep: number): Promise<WorkflowRow | null> {
    const fork = this.db.transaction((): boolean => {
      const info = this.stmt(sqliteStatements.insertWorkflow).run(...insertParams(w));
      if (info.changes !== 1) return false;
      this.stmt(sqliteStatements.copySteps).run(w.id, sourceId, fromStep);
      return true;
    });
    if (fork.immediate()) return null;
    return (await this.getWorkflow(w.id)) ?? null;
  }

  async resetRecoveryAttempts(id: string): Promise<void> {
    this.stmt(sqliteStatements.resetRecoveryAttempts).run(id);
  }

  async recordStep(workflowId: string, step: StepRow): Promise<CheckpointOutcome> {
    const info = this.stmt(sqliteStatements.recordStep).run(
      workflowId, step.stepId, step.name, step.output, step.error, step.childId, step.attempts, step.startedAt, step.completedAt, workflowId,
    );
    if (info.changes === 1) return { kind: 'recorded' };
    const existing = this.stmt(sqliteStatements.getStep).get(workflowId, step.stepId) as Raw | undefined;
    if (existing) return { kind: 'conflict', existing: toStepRow(existing) };
    const status = this.stmt(sqliteStatements.getStatus).get(workflowId) as { status: WorkflowRow['status'] } | undefined;
    return { kind: 'not-pending', status: status?.status };
  }

  async listSteps(workflowId: string): Promise<StepRow[]> {
    return (this.stmt(sqliteStatements.listSteps).all(workflowId) as Raw[]).map(toStepRow);
  }

  async claimForRecovery(
    executorId: string,
    appVersion: string,
    names: string[],
    exclude: string[],
    maxAttempts: number,
  ): Promise<RecoveryClaim> {
    const now = Date.now();
    const namesJson = JSON.stringify(names);
    const rows = (
      this.stmt(sqliteStatements.claimForRecovery).all(maxAttempts, maxAttempts, now, now, executorId, appVersion, namesJson, JSON.stringify(exclude)) as Raw[]
    ).map(toWorkflowRow);
    const unknown = (this.stmt(sqliteStatements.unknownPending).all(executorId, appVersion, namesJson) as Raw[]).map(toWorkflowRow);
    return {
      claimed: rows.filter((r) => r.status === 'PENDING'),
      parked: rows.filter((r) => r.status !== 'PENDING'),
      unknown,
    };
  }
}

function insertParams(w: NewWorkflow): unknown[] {
  return [w.id, w.name, w.input, w.queue, w.executorId, w.appVersion, w.parentId, w.deadlineAt, w.createdAt, w.createdAt, w.createdAt];
}
