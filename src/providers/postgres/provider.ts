import pg from 'pg';
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
import { assertSchemaName } from '../schema-name.js';
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
  /** Called with every statement before it is sent (instrumentation, tests). */
  onStatement?: StatementObserver;
}

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
  readonly capabilities = { multiHost: true };
  readonly schema: string;
  private readonly pool: pg.Pool;
  private readonly ownsPool: boolean;
  private readonly sql: PostgresStatements;
  private readonly observe: StatementObserver | undefined;

  constructor(options: PostgresProviderOptions) {
    this.schema = assertSchemaName(options.schema ?? 'cairn');
    this.ownsPool = options.pool === undefined;
    this.pool = options.pool ?? new pg.Pool({ connectionString: options.connectionString, max: options.max ?? 10 });
    // A broken idle connection must not crash the process; the next query gets a fresh one.
    if (this.ownsPool) this.pool.on('error', () => undefined);
    this.sql = postgresStatements(this.schema);
    this.observe = options.onStatement;
  }

  private async query(q: Query, values: unknown[]): Promise<pg.QueryResult> {
    this.observe?.(q.text);
    return this.pool.query({ name: q.name, text: q.text, values });
  }

  migrate(): Promise<void> {
    return migratePostgres(this.pool, this.schema);
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end();
  }

  async insertWorkflow(w: NewWorkflow): Promise<WorkflowRow | null> {
    const res = await this.query(this.sql.insertWorkflow, insertParams(w));
    if (res.rowCount === 1) return null;
    const existing = await this.getWorkflow(w.id);
    if (!existing) throw new Error(`workflow '${w.id}' conflicted on insert but could not be read back`);
    return existing;
  }

  async getWorkflow(id: string): Promise<WorkflowRow | undefined> {
    const res = await this.query(this.sql.getWorkflow, [id]);
    return res.rows[0] ? toWorkflowRow(res.rows[0] as Record<string, unknown>) : undefined;
  }

  async listWorkflows(filter: ListFilter): Promise<WorkflowRow[]> {
    const q = listWorkflowsQuery(this.sql.workflowsTable, filter, (i) => `$${i}`, (i) => `= ANY($${i}::text[])`, (v) => v);
    const res = await this.query({ text: q.sql }, q.params);
    return res.rows.map((r) => toWorkflowRow(r as Record<string, unknown>));
  }

  async completeWorkflow(
    id: string,
    status: 'SUCCESS' | 'ERROR',
    output: string | null,
    error: string | null,
    completedAt: number,
  ): Promise<WorkflowRow | undefined | null> {
    const res = await this.query(this.sql.completeWorkflow, [id, status, output, error, completedAt]);
    return res.rowCount === 1 ? null : this.getWorkflow(id);
  }

  async cancelWorkflow(id: string, error: string, now: number): Promise<WorkflowRow | undefined> {
    await this.query(this.sql.cancelWorkflow, [id, error, now]);
    return this.getWorkflow(id);
  }

  async resumeWorkflow(id: string, executorId: string, appVersion: string, now: number): Promise<WorkflowRow | undefined> {
    await this.query(this.sql.resumeWorkflow, [id, executorId, appVersion, now]);
    return this.getWorkflow(id);
  }

  async forkWorkflow(w: NewWorkflow, sourceId: string, fromStep: number): Promise<WorkflowRow | null> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const inserted = await client.query({
        ...this.sql.insertWorkflow,
        values: insertParams(w),
      });
      if (inserted.rowCount === 1) await client.query({ ...this.sql.copySteps, values: [w.id, sourceId, fromStep] });
      await client.query('COMMIT');
      if (inserted.rowCount === 1) return null;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
    return (await this.getWorkflow(w.id)) ?? null;
  }

  async resetRecoveryAttempts(id: string): Promise<void> {
    await this.query(this.sql.resetRecoveryAttempts, [id]);
  }

  async recordStep(workflowId: string, step: StepRow): Promise<CheckpointOutcome> {
    const res = await this.query(this.sql.recordStep, [
      workflowId, step.stepId, step.name, step.output, step.error, step.childId, step.startedAt, step.completedAt, step.attempts,
    ]);
    if (res.rowCount === 1) return { kind: 'recorded' };
    const existing = await this.query(this.sql.getStep, [workflowId, step.stepId]);
    if (existing.rows[0]) return { kind: 'conflict', existing: toStepRow(existing.rows[0] as Record<string, unknown>) };
    const status = await this.query(this.sql.getStatus, [workflowId]);
    return { kind: 'not-pending', status: (status.rows[0] as { status?: WorkflowRow['status'] } | undefined)?.status };
  }

  async listSteps(workflowId: string): Promise<StepRow[]> {
    const res = await this.query(this.sql.listSteps, [workflowId]);
    return res.rows.map((r) => toStepRow(r as Record<string, unknown>));
  }

  async claimForRecovery(
    executorId: string,
    appVersion: string,
    names: string[],
    exclude: string[],
    maxAttempts: number,
  ): Promise<RecoveryClaim> {
    const res = await this.query(this.sql.claimForRecovery, [executorId, appVersion, names, exclude, maxAttempts, Date.now()]);
    const rows = res.rows.map((r) => toWorkflowRow(r as Record<string, unknown>));
    const unknown = await this.query(this.sql.unknownPending, [executorId, appVersion, names]);
    return {
      claimed: rows.filter((r) => r.status === 'PENDING'),
      parked: rows.filter((r) => r.status !== 'PENDING'),
      unknown: unknown.rows.map((r) => toWorkflowRow(r as Record<string, unknown>)),
    };
  }
}

function insertParams(w: NewWorkflow): unknown[] {
  return [w.id, w.name, w.input, w.queue, w.executorId, w.appVersion, w.parentId, w.deadlineAt, w.createdAt];
}
