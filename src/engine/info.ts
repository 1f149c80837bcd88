import type { StepRow, WorkflowRow } from '../providers/provider.js';
import type { StepInfo, WorkflowInfo, WorkflowStatus } from '../types.js';
import { MaxRecoveryAttemptsError, WorkflowCancelledError } from './errors.js';
import { deserialize, deserializeError } from './serialization.js';

/** Converts stored rows into the public shapes, and a finished row into its result. */

const TERMINAL: ReadonlySet<WorkflowStatus> = new Set(['SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED']);

export function isTerminal(status: WorkflowStatus): boolean {
  return TERMINAL.has(status);
}

const date = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));

export function toWorkflowInfo<I, O>(row: WorkflowRow): WorkflowInfo<I, O> {
  return {
    id: row.id,
    name: row.name,
    status: row.status,
    input: deserialize<I>(row.input),
    output: row.output === null ? undefined : deserialize<O>(row.output),
    error: row.error === null ? undefined : deserializeError(row.error),
    queue: row.queue,
    executorId: row.executorId,
    appVersion: row.appVersion,
    parentId: row.parentId,
    createdAt: new Date(row.createdAt),
    startedAt: date(row.startedAt),
    completedAt: date(row.completedAt),
    recoveryAttempts: row.recoveryAttempts,
  };
}

export function toStepInfo(row: StepRow): StepInfo {
  return {
    stepId: row.stepId,
    name: row.name,
    output: row.output === null ? undefined : deserialize(row.output),
    error: row.error === null ? undefined : deserializeError(row.error),
    childId: row.childId,
    attempts: row.attempts,
    startedAt: new Date(row.startedAt),
    completedAt: new Date(row.completedAt),
  };
}

/** The result of a finished workflow: its output, or the error `handle.result()` rejects with. */
export function resultOf<O>(row: WorkflowRow): O {
  switch (row.status) {
    case 'SUCCESS':
      return deserialize<O>(row.output);
    case 'ERROR':
      throw row.error === null ? new Error(`workflow '${row.id}' failed`) : deserializeError(row.error);
    case 'CANCELLED':
      throw row.error === null ? new WorkflowCancelledError(row.id) : deserializeError(row.error);
    case 'MAX_RECOVERY_ATTEMPTS_EXCEEDED':
      throw new MaxRecoveryAttemptsError(row.id, row.recoveryAttempts);
    default:
      throw new Error(`workflow '${row.id}' is ${row.status}, not finished`);
  }
}
