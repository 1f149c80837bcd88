/**
 * Public types of Cairn's observability: the lifecycle hooks `Engine.open({ hooks })` takes and the
 * plain objects they receive (see docs/observability.md).
 *
 * Every hook is called after the fact, off the path of the workflow: a hook that throws is logged
 * at warn and changes nothing, and one that is slow (an async hook that awaits) delays no workflow.
 */

/** What every workflow event names. */
export interface WorkflowEventBase {
  workflowId: string;
  /** The workflow's registered name. */
  name: string;
  /** The queue it was enqueued on, or null. */
  queue: string | null;
  /** The executor running it (for `workflowEnqueued`, the one that enqueued it, or null from a Client). */
  executorId: string | null;
  /** The app version of the engine that reports the event (null from a Client). */
  appVersion: string | null;
}

/** An execution of a workflow began here: a fresh start, a resume, a recovery, an adoption or a queue claim. */
export interface WorkflowStartedEvent extends WorkflowEventBase {
  /** True when it ran before and resumes from its checkpoints. */
  resumed: boolean;
  /** Recoveries counted on the workflow so far (0 for a fresh start). */
  recoveryAttempts: number;
  /** When this execution began (epoch ms). */
  startedAt: number;
}

/** A workflow ended here and its outcome is stored. */
export interface WorkflowEndedEvent extends WorkflowEventBase {
  /** CANCELLED when it was cancelled or timed out while running here. */
  status: 'SUCCESS' | 'ERROR' | 'CANCELLED';
  /** Time from the start of this execution to its end, in ms. */
  durationMs: number;
  /** The error it ended with (ERROR), or why it was cancelled (CANCELLED: a WorkflowCancelledError or WorkflowTimeoutError). */
  error?: unknown;
}

/** A step (`ctx.step`, `ctx.transaction`) finished running in this execution. Replayed steps report nothing. */
export interface StepEndedEvent {
  workflowId: string;
  workflowName: string;
  stepId: number;
  stepName: string;
  status: 'SUCCESS' | 'ERROR';
  /** Attempts the step made (1 unless it was retried). */
  attempts: number;
  /** From the first attempt's start to the end of the last, in ms. */
  durationMs: number;
  /** The error the step failed with (ERROR only). */
  error?: unknown;
}

/** An attempt of a step failed and another one follows after `delayMs`. */
export interface StepRetriedEvent {
  workflowId: string;
  workflowName: string;
  stepId: number;
  stepName: string;
  /** The attempt that failed (1 for the first). */
  attempt: number;
  /** The wait before the next attempt, in ms. */
  delayMs: number;
  error: unknown;
}

/** A workflow was stored on a queue (by this engine, or by a workflow it runs). */
export interface WorkflowEnqueuedEvent extends WorkflowEventBase {
  queue: string;
  priority: number;
  partitionKey: string | null;
  /** ENQUEUED, or DELAYED when it was given a delay. */
  status: 'ENQUEUED' | 'DELAYED';
}

/** This executor took over a workflow from a dead executor (or one nobody owned) at a heartbeat. */
export interface WorkflowAdoptedEvent extends WorkflowEventBase {
  /** Recoveries counted on the workflow, this adoption included. */
  recoveryAttempts: number;
}

/**
 * `Engine.open({ hooks })`: functions called after each lifecycle event, with a plain object.
 *
 * @example
 * const engine = await Engine.open({
 *   database,
 *   hooks: {
 *     workflowEnded: (e) => metrics.increment(`workflow.${e.status}`),
 *     stepRetried: (e) => console.warn(`${e.stepName} failed attempt ${e.attempt}`, e.error),
 *   },
 * });
 */
export interface WorkflowHooks {
  workflowStarted?: (event: WorkflowStartedEvent) => unknown;
  workflowEnded?: (event: WorkflowEndedEvent) => unknown;
  stepEnded?: (event: StepEndedEvent) => unknown;
  stepRetried?: (event: StepRetriedEvent) => unknown;
  workflowEnqueued?: (event: WorkflowEnqueuedEvent) => unknown;
  workflowAdopted?: (event: WorkflowAdoptedEvent) => unknown;
}

/** The names of the hooks, in the order a workflow's life usually meets them. */
export const HOOK_NAMES = ['workflowEnqueued', 'workflowAdopted', 'workflowStarted', 'stepRetried', 'stepEnded', 'workflowEnded'] as const;
