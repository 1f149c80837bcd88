import { InvalidArgumentError, TaskNotWaitingError, WorkflowNotFoundError } from '../engine/errors.js';
import { isTerminal } from '../engine/info.js';
import { deserialize } from '../engine/serialization.js';
import type { Provider } from '../providers/provider.js';
import { SHAPE_STEP, taskChannel, type DagShape, type ExternalState } from './protocol.js';

/**
 * Delivers the completion of external task `key` of pipeline run `workflowId` (`body`: the
 * stored {@link Completion}) from any process, once. The run's first checkpoint says which tasks
 * it has and which are external; the task's event says whether it waits. The message carries the
 * task's channel as its idempotency key, so of two completions racing past those checks, one is
 * stored and the other refused.
 */
export async function deliverCompletion(provider: Provider, workflowId: string, key: string, body: string): Promise<void> {
  const row = await provider.getWorkflow(workflowId);
  if (!row) throw new WorkflowNotFoundError(workflowId);
  const first = (await provider.listSteps(workflowId)).find((s) => s.stepId === 1);
  if (!first?.name.startsWith(SHAPE_STEP)) {
    if (!first && !isTerminal(row.status)) throw new TaskNotWaitingError(workflowId, key, 'not-reached', `workflow '${workflowId}' has recorded nothing yet`);
    throw new InvalidArgumentError(
      'workflowId',
      `workflow '${workflowId}' ('${row.name}') is not a pipeline run; completeTask completes the external tasks of pipelines built with engine.dag(name)`,
    );
  }
  const shape = deserialize<DagShape>(first.output, `the shape recorded by pipeline run '${workflowId}'`);
  const externals = shape.tasks.filter((t) => t.external).map((t) => `'${t.key}'`);
  const listed = externals.length === 0 ? 'it has none' : `its external tasks are ${externals.join(', ')}`;
  const task = shape.tasks.find((t) => t.key === key);
  if (!task) throw new InvalidArgumentError('key', `pipeline '${shape.name}' (run '${workflowId}') has no task '${key}'; ${listed}`);
  if (!task.external) {
    throw new InvalidArgumentError('key', `task '${key}' of pipeline '${shape.name}' is not external: it completes by itself, and completeTask completes only tasks declared with { external: true }; ${listed}`);
  }
  if (isTerminal(row.status)) throw new TaskNotWaitingError(workflowId, key, 'ended', `the run is ${row.status}`);
  const stored = await provider.getEvent(workflowId, taskChannel(key));
  const state = stored === undefined ? undefined : deserialize<ExternalState>(stored, `the state of task '${key}' of workflow '${workflowId}'`);
  if (state === undefined) throw new TaskNotWaitingError(workflowId, key, 'not-reached');
  if (state !== 'waiting') throw new TaskNotWaitingError(workflowId, key, state);
  const sent = await provider.sendMessage(workflowId, taskChannel(key), body, taskChannel(key), Date.now());
  if (sent === 'duplicate') throw new TaskNotWaitingError(workflowId, key, 'completed');
  if (sent === 'no-destination') throw new WorkflowNotFoundError(workflowId);
}
