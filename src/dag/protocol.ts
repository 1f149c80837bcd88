/**
 * What a pipeline run records beyond its tasks' steps, shared by the runner and by `completeTask`
 * (which may run in a process that never built the pipeline): the name of the checkpoint that
 * opens every run, the name a skipped task is recorded under, and the event and message topic
 * through which an external task's state and completion travel.
 */

/** Prefix of the first checkpoint of every run: `cairn.dag:<version>`, whose output is the {@link DagShape}. */
export const SHAPE_STEP = 'cairn.dag:';

/** Prefix of the checkpoint of a task whose trigger could not hold. */
export const SKIPPED_STEP = 'cairn.skipped:';

/** The event holding an external task's state, and the topic its completion is sent on. */
export function taskChannel(key: string): string {
  return `cairn.task:${key}`;
}

/** The states an external task publishes under {@link taskChannel}. */
export type ExternalState = 'waiting' | 'completed' | 'timed-out' | 'failed' | 'skipped';

/** A pipeline's shape as its runs record it. */
export interface DagShape {
  name: string;
  version: string;
  tasks: ShapeTask[];
}

export interface ShapeTask {
  key: string;
  dependsOn: string[];
  /** A rule's name, or `function` for a trigger function. */
  trigger: string;
  external: boolean;
}

/** The message `completeTask` sends: wrapped, so a completion with `null` is not a recv timeout. */
export interface Completion {
  value: unknown;
}
