import type { StepRow, WorkflowRow } from '../providers/provider.js';
import type { StepInfo, WorkflowInfo, WorkflowStatus } from '../types.js';
import { CorruptValueError, MaxRecoveryAttemptsError, WorkflowCancelledError } from './errors.js';
import { deserialize, deserializeError } from './serialization.js';

/** Converts stored rows into the public shapes, and a finished row into its result. */

const TERMINAL: ReadonlySet<WorkflowStatus> = new Set(['SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED']);

export function isTerminal(status: WorkflowStatus): boolean {
  return TERMINAL.has(status);
}

const date = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));

/**
 * Reads the stored fields of one row. A field that cannot be parsed becomes undefined and its
 * CorruptValueError is returned as the problem (the first one, when several are), so one corrupt
 * row never fails a whole list.
 */
class FieldReader {
  problem: CorruptValueError | undefined;

  value<T>(text: string | null, what: string): T | undefined {
    if (text === null) return undefined;
    try {
      return deserialize<T>(text, what);
    } catch (err) {
      if (!(err instanceof CorruptValueError)) throw err;
      this.problem ??= err;
      return undefined;
    }
  }

  error(text: string | null, what: string): unknown {
    if (text === null) return undefined;
    try {
      return deserializeError(text, what);
    } catch (err) {
      if (!(err instanceof CorruptValueError)) throw err;
      this.problem ??= err;
      return undefined;
    }
  }
}

export function toWorkflowInfo<I, O>(row: WorkflowRow): WorkflowInfo<I, O> {
  const read = new FieldReader();
  const info: WorkflowInfo<I, O> = {
    id: row.id,
    name: row.name,
    status: row.status,
    input: read.value<I>(row.input, `the input of workflow '${row.id}'`) as I,
    output: read.value<O>(row.output, `the output of workflow '${row.id}'`),
    error: read.error(row.error, `the error of workflow '${row.id}'`),
    queue: row.queue,
    executorId: row.executorId,
    appVersion: row.appVersion,
    parentId: row.parentId,
    createdAt: new Date(row.createdAt),
    startedAt: date(row.startedAt),
    completedAt: date(row.completedAt),
    recoveryAttempts: row.recoveryAttempts,
  };
  if (read.problem) info.problem = read.problem;
  return info;
}

export function toStepInfo(row: StepRow, workflowId?: string): StepInfo {
  const read = new FieldReader();
  const of = `step ${row.stepId} ('${row.name}')${workflowId === undefined ? '' : ` of workflow '${workflowId}'`}`;
  const info: StepInfo = {
    stepId: row.stepId,
    name: row.name,
    output: read.value(row.output, `the output of ${of}`),
    error: read.error(row.error, `the error of ${of}`),
    childId: row.childId,
    attempts: row.attempts,
    startedAt: new Date(row.startedAt),
    completedAt: new Date(row.completedAt),
  };
  if (read.problem) info.problem = read.problem;
  return info;
}

/** The result of a finished workflow: its output, or the error `handle.result()` rejects with. */
export function resultOf<O>(row: WorkflowRow): O {
  switch (row.status) {
    case 'SUCCESS':
      return deserialize<O>(row.output, `the output of workflow '${row.id}'`);
    case 'ERROR':
      throw row.error === null ? new Error(`workflow '${row.id}' failed`) : deserializeError(row.error, `the error of workflow '${row.id}'`);
    case 'CANCELLED':
      throw row.error === null ? new WorkflowCancelledError(row.id) : deserializeError(row.error, `the error of workflow '${row.id}'`);
    case 'MAX_RECOVERY_ATTEMPTS_EXCEEDED':
      throw new MaxRecoveryAttemptsError(row.id, row.recoveryAttempts);
    default:
      throw new Error(`workflow '${row.id}' is ${row.status}, not finished`);
  }
}
