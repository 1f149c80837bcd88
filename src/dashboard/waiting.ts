import type { Client } from '../engine/client.js';
import { deserialize } from '../engine/serialization.js';
import type { StepInfo, WorkflowInfo } from '../types.js';
import { duration, html, instant, segment, type Html } from './html.js';

/**
 * What an unfinished workflow is waiting on, as far as the database can tell: a queue, an owner,
 * or the Context call it is parked in. A sleep records its wake-up time as its checkpoint; a
 * `recv` or `getEvent` that parks records its deadline under its negated step id (exported with
 * the history) before it has a checkpoint; a child start is a checkpoint naming the child.
 */
export async function waitingOn(client: Client, w: WorkflowInfo, steps: StepInfo[], base: string, now = Date.now()): Promise<Waiting> {
  if (w.status === 'ENQUEUED') return { lines: [html`Waiting in queue <b>${w.queue ?? ''}</b> for a worker to claim it, within the queue's limits.`], parked: [] };
  if (w.status === 'DELAYED') return { lines: [html`Delayed on queue <b>${w.queue ?? ''}</b>: it becomes runnable when its delay has passed.`], parked: [] };
  if (w.status !== 'PENDING') return { lines: [], parked: [] };

  const lines: Html[] = [];
  const parked: ParkedWait[] = [];
  if (w.executorId === null) {
    lines.push(html`Not owned by any executor: a live engine that registers <b>${w.name}</b> adopts it at its next heartbeat.`);
  } else {
    const owner = (await client.listExecutors()).find((e) => e.id === w.executorId);
    if (!owner || !owner.alive) {
      lines.push(html`Its executor <code>${w.executorId}</code> is not alive: a live engine that registers <b>${w.name}</b> adopts it once the executor's lease has lapsed.`);
    }
  }

  const recorded = new Set(steps.map((s) => s.stepId));
  const history = await client.exportHistory(w.id);
  for (const row of history.steps) {
    if (row.stepId >= 0 || recorded.has(-row.stepId)) continue;
    let deadline: number | undefined;
    try {
      deadline = deserialize<number>(row.output);
    } catch {
      deadline = undefined;
    }
    const stepId = -row.stepId;
    const kind = row.name === 'cairn.recv.deadline' ? 'recv' : row.name === 'cairn.getEvent.deadline' ? 'event' : undefined;
    if (kind === undefined) continue;
    const before = steps.filter((s) => s.stepId < stepId).reduce((at, s) => Math.max(at, s.completedAt.getTime()), (w.startedAt ?? w.createdAt).getTime());
    parked.push({ stepId, kind, since: new Date(before), deadline: typeof deadline === 'number' ? new Date(deadline) : null });
    const until = typeof deadline === 'number' ? html` until ${instant(new Date(deadline))}${deadline > now ? ` (in ${duration(deadline - now)})` : ''}` : '';
    if (kind === 'recv') lines.push(html`Waiting for a message (<code>ctx.recv</code>) at step ${stepId}${until}.`);
    else lines.push(html`Waiting for an event (<code>ctx.getEvent</code>) at step ${stepId}${until}.`);
  }

  const last = steps[steps.length - 1];
  if (last?.name === 'cairn.sleep' && typeof last.output === 'number' && last.output > now) {
    lines.push(html`Sleeping at step ${last.stepId} until ${instant(new Date(last.output))} (in ${duration(last.output - now)}).`);
  } else if (last?.name.startsWith('cairn.child:') && last.childId) {
    const child = await client.getWorkflow(last.childId).catch(() => undefined);
    if (child && child.status !== 'SUCCESS' && child.status !== 'ERROR' && child.status !== 'CANCELLED') {
      lines.push(
        html`Started child <a class="id" href="${base}/workflows/${segment(child.id)}">${child.id}</a> at step ${last.stepId}, which is ${child.status}; a <code>runChild</code> waits for it.`,
      );
    }
  }
  if (lines.length === 0) lines.push(html`Running: step ${(last?.stepId ?? 0) + 1} has no checkpoint yet.`);
  return { lines, parked };
}

export interface Waiting {
  /** What the workflow waits on, in words. */
  lines: Html[];
  /** Waits parked without a checkpoint yet, drawn as open rows of the waterfall. */
  parked: ParkedWait[];
}

export interface ParkedWait {
  stepId: number;
  kind: 'recv' | 'event';
  /** When it began waiting, as near as is known: when the call before it completed. */
  since: Date;
  deadline: Date | null;
}
