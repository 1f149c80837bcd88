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
}

export interface NewWorkflow {
  id: string;
  name: string;
  input: string;
  executorId: string;
  appVersion: string;
  queue: string | null;
  parentId: string | null;
  deadlineAt: number | null;
  createdAt: number;
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
  | { kind: 'not-pending'; status: WorkflowStatus | undefined };

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
  createdAfter?: number;
  createdBefore?: number;
  limit?: number;
  offset?: number;
  order: 'asc' | 'desc';
}

export interface ProviderCapabilities {
  /** Several processes may share the database (Postgres), or only the processes of one machine (SQLite). */
  readonly multiHost: boolean;
}

/** Called for every statement a provider sends, before it is sent. */
export type StatementObserver = (sql: string) => void;

export interface Provider {
  readonly kind: string;
  readonly capabilities: ProviderCapabilities;

  /** Applies pending migrations; safe when several processes do it at once. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  /** Inserts a PENDING workflow. Returns null when inserted, or the row already stored under that id. */
  insertWorkflow(row: NewWorkflow): Promise<WorkflowRow | null>;
  getWorkflow(id: string): Promise<WorkflowRow | undefined>;
  listWorkflows(filter: ListFilter): Promise<WorkflowRow[]>;
  /**
   * Ends a PENDING workflow. Returns null when this call ended it, or the stored row when it was
   * no longer PENDING (cancelled, or ended by a racing executor).
   */
  completeWorkflow(
    id: string,
    status: 'SUCCESS' | 'ERROR',
    output: string | null,
    error: string | null,
    completedAt: number,
  ): Promise<WorkflowRow | undefined | null>;

  /**
   * Moves a PENDING, ENQUEUED or DELAYED workflow to CANCELLED with `error` as the reason.
   * Returns the row as it is after the call (undefined when there is no such workflow).
   */
  cancelWorkflow(id: string, error: string, now: number): Promise<WorkflowRow | undefined>;
  /**
   * Moves a CANCELLED, ERROR or MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow back to PENDING under this
   * executor and version, clearing its outcome, deadline and recovery count. Returns the row after the call.
   */
  resumeWorkflow(id: string, executorId: string, appVersion: string, now: number): Promise<WorkflowRow | undefined>;
  /**
   * Inserts `row` as a new PENDING workflow and copies the checkpoints of `sourceId` below
   * `fromStep`, in one transaction. Returns null when inserted, or the row already under that id.
   */
  forkWorkflow(row: NewWorkflow, sourceId: string, fromStep: number): Promise<WorkflowRow | null>;

  /** Sets a workflow's recovery count back to 0 (its execution made progress). */
  resetRecoveryAttempts(id: string): Promise<void>;

  /** Writes one checkpoint for a PENDING workflow. */
  recordStep(workflowId: string, step: StepRow): Promise<CheckpointOutcome>;
  /** All checkpoints of a workflow in counter order, in one query. */
  listSteps(workflowId: string): Promise<StepRow[]>;

  /**
   * Counts one more recovery attempt on every PENDING workflow of this executor and version
   * whose name is in `names` (parking those past `maxAttempts`), in one statement.
   */
  claimForRecovery(executorId: string, appVersion: string, names: string[], exclude: string[], maxAttempts: number): Promise<RecoveryClaim>;
}
