/**
 * Every error Cairn raises extends {@link CairnError} and carries a stable `code`.
 * The codes are listed once, in {@link ERROR_CODES}, and documented in docs/errors.md;
 * a test keeps the two in step.
 */

import type { DagProblem } from '../types.js';

export const ERROR_CODES = {
  CairnError: 'CAIRN_ERROR',
  InvalidArgumentError: 'INVALID_ARGUMENT',
  NonDeterminismError: 'NON_DETERMINISM',
  WorkflowConflictError: 'WORKFLOW_CONFLICT',
  WorkflowCancelledError: 'WORKFLOW_CANCELLED',
  WorkflowTimeoutError: 'WORKFLOW_TIMEOUT',
  StepRetriesExceededError: 'STEP_RETRIES_EXCEEDED',
  DuplicateQueueEntryError: 'DUPLICATE_QUEUE_ENTRY',
  UnknownWorkflowError: 'UNKNOWN_WORKFLOW',
  WorkflowNotFoundError: 'WORKFLOW_NOT_FOUND',
  SerializationError: 'SERIALIZATION',
  MaxRecoveryAttemptsError: 'MAX_RECOVERY_ATTEMPTS',
  ContextUsageError: 'CONTEXT_USAGE',
  MigrationError: 'MIGRATION',
  EngineClosedError: 'ENGINE_CLOSED',
  ExecutionSupersededError: 'EXECUTION_SUPERSEDED',
  StepTimeoutError: 'STEP_TIMEOUT',
  ExecutionInterruptedError: 'EXECUTION_INTERRUPTED',
  CorruptValueError: 'CORRUPT_VALUE',
  DatabaseConnectionError: 'DATABASE_CONNECTION',
  DagValidationError: 'DAG_INVALID',
  TaskNotWaitingError: 'TASK_NOT_WAITING',
} as const;

export type CairnErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/**
 * Base class of every Cairn error.
 *
 * @example
 * try { await handle.result(); } catch (err) {
 *   if (err instanceof CairnError && err.code === 'WORKFLOW_CANCELLED') { ... }
 * }
 */
export class CairnError extends Error {
  readonly code: CairnErrorCode;
  /** Whether retrying the same call could succeed. Errors about the caller's input never can. */
  readonly retryable: boolean;

  constructor(code: CairnErrorCode, message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options?.retryable ?? false;
  }
}

/**
 * An argument or option was malformed. `argument` names which one.
 *
 * @example
 * await Engine.open({ database: 'mysql://x' }); // InvalidArgumentError, argument 'database'
 */
export class InvalidArgumentError extends CairnError {
  readonly argument: string;
  constructor(argument: string, message: string, options?: { cause?: unknown }) {
    super(ERROR_CODES.InvalidArgumentError, message, options);
    this.argument = argument;
  }
}

/**
 * A replay met a checkpoint recorded under another name than the call the code now makes at that
 * position (or the code returned before reaching checkpoints it had recorded). `stepId` counts as
 * `listSteps` shows it; `callSite` is the line of the workflow's code that made the call, when the
 * call was made from it.
 */
export class NonDeterminismError extends CairnError {
  constructor(
    readonly workflowId: string,
    readonly stepId: number,
    readonly recordedName: string,
    readonly calledName: string,
    readonly callSite?: string,
  ) {
    super(
      ERROR_CODES.NonDeterminismError,
      `workflow '${workflowId}' diverged from its history: step ${stepId} was recorded as '${recordedName}' but this code ` +
        (calledName === RETURNED ? 'returned before reaching it' : `called '${calledName}' there`) +
        (callSite === undefined ? '' : ` (at ${callSite})`),
    );
  }
}

/** The calledName of a divergence where the workflow function returned before a recorded step. */
export const RETURNED = '(returned)';

/** A workflow id is already taken by a workflow of another name. */
export class WorkflowConflictError extends CairnError {
  constructor(
    readonly workflowId: string,
    readonly existingName: string,
    readonly requestedName: string,
  ) {
    super(
      ERROR_CODES.WorkflowConflictError,
      `workflow id '${workflowId}' is already used by workflow '${existingName}', so it cannot start '${requestedName}'`,
    );
  }
}

/** The workflow was cancelled; raised by its Context calls and by `handle.result()`. */
export class WorkflowCancelledError extends CairnError {
  constructor(readonly workflowId: string) {
    super(ERROR_CODES.WorkflowCancelledError, `workflow '${workflowId}' was cancelled`);
  }
}

/** The workflow passed its deadline and was cancelled. */
export class WorkflowTimeoutError extends CairnError {
  constructor(readonly workflowId: string) {
    super(ERROR_CODES.WorkflowTimeoutError, `workflow '${workflowId}' passed its deadline and was cancelled`);
  }
}

/** A step failed on every allowed attempt; `errors` holds each attempt's error in order. */
export class StepRetriesExceededError extends CairnError {
  constructor(
    readonly stepName: string,
    readonly errors: unknown[],
  ) {
    super(ERROR_CODES.StepRetriesExceededError, `step '${stepName}' failed on all ${errors.length} attempts; last error: ${messageOf(errors[errors.length - 1])}`, {
      cause: errors[errors.length - 1],
    });
  }
}

/** A queue already holds an unfinished workflow with this deduplication id. */
export class DuplicateQueueEntryError extends CairnError {
  constructor(
    readonly queue: string,
    readonly dedupId: string,
  ) {
    super(ERROR_CODES.DuplicateQueueEntryError, `queue '${queue}' already holds an unfinished workflow with dedupId '${dedupId}'`);
  }
}

/** A stored workflow names a function this process has not registered. */
export class UnknownWorkflowError extends CairnError {
  constructor(
    readonly workflowName: string,
    readonly workflowId?: string,
  ) {
    super(
      ERROR_CODES.UnknownWorkflowError,
      workflowId === undefined
        ? `no workflow named '${workflowName}' is registered`
        : `workflow '${workflowId}' runs '${workflowName}', which is not registered in this process; it stays PENDING for a process that has it`,
    );
  }
}

/** No workflow is stored under this id. */
export class WorkflowNotFoundError extends CairnError {
  constructor(readonly workflowId: string) {
    super(ERROR_CODES.WorkflowNotFoundError, `no workflow with id '${workflowId}' exists`);
  }
}

/** A value cannot be stored faithfully; `path` says where inside it the problem is. */
export class SerializationError extends CairnError {
  constructor(
    readonly path: string,
    readonly what: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    // A path hundreds of levels long is kept whole in `path`; the message shows its ends.
    const shown = path.length > 160 ? `${path.slice(0, 100)}...${path.slice(-40)} (${path.length} characters)` : path;
    super(ERROR_CODES.SerializationError, `${what} cannot be stored: ${reason} at ${shown}`, options);
  }
}

/** Recovery gave up on a workflow after too many attempts. */
export class MaxRecoveryAttemptsError extends CairnError {
  constructor(
    readonly workflowId: string,
    readonly attempts: number,
  ) {
    super(
      ERROR_CODES.MaxRecoveryAttemptsError,
      `workflow '${workflowId}' was recovered ${attempts} times without finishing and is parked in MAX_RECOVERY_ATTEMPTS_EXCEEDED; resume it once the cause is fixed`,
    );
  }
}

/** A Context method was called where it is not allowed (inside a step, outside a workflow). */
export class ContextUsageError extends CairnError {
  constructor(message: string) {
    super(ERROR_CODES.ContextUsageError, message);
  }
}

/** The schema could not be migrated, or the database is newer than this code. */
export class MigrationError extends CairnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ERROR_CODES.MigrationError, message, options);
  }
}

/** The engine was closed; work in flight stays PENDING and is recovered at the next start. */
export class EngineClosedError extends CairnError {
  constructor(what: string) {
    super(ERROR_CODES.EngineClosedError, `${what}: the engine is closed`, { retryable: true });
  }
}

/**
 * Another execution took this workflow over, so the execution that sees this stops and records
 * nothing more: the workflow was finished elsewhere (`status`), or, while this process's lease had
 * lapsed (it was paused or cut off), adopted by another executor (`adoptedBy`).
 */
export class ExecutionSupersededError extends CairnError {
  constructor(
    readonly workflowId: string,
    readonly status: string,
    readonly adoptedBy?: string | null,
  ) {
    super(
      ERROR_CODES.ExecutionSupersededError,
      adoptedBy === undefined
        ? `workflow '${workflowId}' was already finished by another execution (status ${status}); this execution stops`
        : `workflow '${workflowId}' was adopted by executor '${adoptedBy ?? 'none'}' while this process's lease had lapsed; this execution stops and records nothing more`,
    );
  }
}

/** One attempt of a step ran past its `timeoutMs`; its signal was aborted and the attempt counts as failed. */
export class StepTimeoutError extends CairnError {
  constructor(
    readonly stepName: string,
    readonly timeoutMs: number,
  ) {
    super(ERROR_CODES.StepTimeoutError, `an attempt of step '${stepName}' ran longer than its timeout of ${timeoutMs} ms`, { retryable: true });
  }
}

/**
 * The database kept failing while an execution wrote its progress, so the execution stopped where
 * it was. The workflow stays PENDING with the checkpoints it has; the engine runs it again later.
 */
export class ExecutionInterruptedError extends CairnError {
  constructor(
    readonly workflowId: string,
    cause: unknown,
  ) {
    super(
      ERROR_CODES.ExecutionInterruptedError,
      `workflow '${workflowId}' stopped because its progress could not be written (${(cause as Error)?.message ?? String(cause)}); it stays PENDING and runs again from its checkpoints`,
      { cause, retryable: true },
    );
  }
}

/**
 * A value read back from the database cannot be parsed: it was changed outside Cairn, or written
 * by something else. `what` says which value; `cause` holds the parser's error. Nothing is
 * changed in the database; lists and `getWorkflow` still return the row, with the unreadable
 * field undefined and this error in `problem`.
 *
 * @example
 * const info = await engine.getWorkflow('order-42');
 * if (info.problem) console.error(info.problem.what, info.problem.cause);
 */
export class CorruptValueError extends CairnError {
  constructor(
    readonly what: string,
    cause: unknown,
  ) {
    super(ERROR_CODES.CorruptValueError, `${what} is corrupt and cannot be read: ${messageOf(cause)}`, { cause });
  }
}

/** A short description of a thrown value, for messages that quote it. */
function messageOf(err: unknown): string {
  let text: string;
  if (err instanceof Error) text = err.message;
  else {
    try {
      text = typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err));
    } catch {
      text = String(err);
    }
  }
  return text.length > 500 ? `${text.slice(0, 500)}...` : text;
}

/**
 * The database could not be reached or would not let Cairn in. `database` names it with any
 * password hidden; `cause` is the driver's error. `retryable` is true when the server was refused,
 * unreachable or went away (trying again later can succeed), false for an unknown database, bad
 * credentials or a file that cannot be opened (the configuration must change first).
 *
 * @example
 * try { await Engine.open({ database: url }); } catch (err) {
 *   if (err instanceof DatabaseConnectionError && err.retryable) { ... wait and try again ... }
 * }
 */
export class DatabaseConnectionError extends CairnError {
  constructor(
    readonly database: string,
    reason: string,
    options: { cause?: unknown; retryable: boolean },
  ) {
    super(ERROR_CODES.DatabaseConnectionError, `cannot connect to ${database}: ${reason}`, options);
  }
}

/**
 * `build()` found problems in a pipeline: every one of them is in `problems` (cycles, missing
 * dependencies, duplicate or blank keys, invalid timeouts and triggers), and the message lists them.
 *
 * @example
 * try { engine.dag('etl').task('a', fa, { dependsOn: ['b'] }).task('b', fb, { dependsOn: ['a'] }).build(); }
 * catch (err) { if (err instanceof DagValidationError) console.log(err.problems); } // [{ kind: 'cycle', keys: ['a', 'b'], ... }]
 */
export class DagValidationError extends CairnError {
  constructor(
    readonly dagName: string,
    readonly problems: DagProblem[],
  ) {
    super(
      ERROR_CODES.DagValidationError,
      `pipeline '${dagName}' is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}): ${problems.map((p) => p.message).join('; ')}`,
    );
  }
}

/** Why an external task is not waiting for its completion; see {@link TaskNotWaitingError}. */
export type TaskNotWaitingReason = 'not-reached' | 'completed' | 'timed-out' | 'failed' | 'skipped' | 'ended';

const NOT_WAITING: Record<TaskNotWaitingReason, string> = {
  'not-reached': 'the run has not reached it yet (its trigger has not held)',
  completed: 'it was already completed',
  'timed-out': 'its wait timed out, and it failed',
  failed: 'its function failed before it waited',
  skipped: 'it was skipped, as its trigger could not hold',
  ended: 'the run has ended',
};

/**
 * `completeTask` named an external task that is not waiting for a completion: the run has not
 * reached it, or it was already completed (the first completion counts, once), or it failed, was
 * skipped, or its run ended. `reason` says which.
 *
 * @example
 * try { await client.completeTask('etl-7', 'approve', { by: 'ada' }); }
 * catch (err) { if (err instanceof TaskNotWaitingError && err.reason === 'completed') { ... already approved ... } }
 */
export class TaskNotWaitingError extends CairnError {
  constructor(
    readonly workflowId: string,
    readonly key: string,
    readonly reason: TaskNotWaitingReason,
    detail?: string,
  ) {
    super(
      ERROR_CODES.TaskNotWaitingError,
      `task '${key}' of workflow '${workflowId}' is not waiting for a completion: ${NOT_WAITING[reason]}${detail === undefined ? '' : ` (${detail})`}`,
    );
  }
}
