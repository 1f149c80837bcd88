import { RESUMABLE } from '../engine/client.js';
import { assertName } from '../engine/validate.js';
import type { WorkflowInfo } from '../types.js';
import { ago, badge, duration, html, instant, jsonBlock, plainText, segment, type Html } from './html.js';
import { actionForm, formNumber, HttpError, nameFromPath, type Reply, type Request } from './http.js';
import { liveToggle } from './layout.js';
import { errorBlock, timeline } from './timeline.js';
import { waitingOn } from './waiting.js';

/** What a notice says after an action redirected back here (`?done=`); only these words are shown. */
const DONE: Record<string, string> = {
  cancelled: 'Cancelled. Its unfinished children were cancelled too.',
  resumed: 'Resumed. A live engine that registers it runs it from its checkpoints.',
  retried: 'Retry requested. A live engine that registers it runs it again from the chosen step.',
  forked: 'Forked: this is the new workflow. A live engine that registers it runs it.',
  triggered: "Triggered: this is the schedule's new workflow.",
};

const UNFINISHED = new Set(['PENDING', 'ENQUEUED', 'DELAYED']);

/** `/workflows/<id>`: the workflow, what it waits on, its step waterfall, and the actions. */
export async function workflowPage(req: Request, rawId: string): Promise<Reply> {
  const id = nameFromPath(rawId, 'workflow id');
  const w = await req.client.getWorkflow(id);
  const steps = await req.client.listSteps(id);
  const waiting = UNFINISHED.has(w.status) ? await waitingOn(req.client, w, steps, req.base) : { lines: [], parked: [] };
  const tl = timeline(w, steps, req.base, waiting.parked);
  const done = DONE[req.query.get('done') ?? ''];
  const end = w.completedAt?.getTime();

  const body = html`
<div class="head">
<h1>Workflow <span class="id">${w.id}</span></h1>
${liveToggle(UNFINISHED.has(w.status))}
</div>
${done ? html`<div class="notice" role="status">${done}</div>` : ''}`;
  const live = html`
${w.problem ? html`<div class="problem">${w.problem.message}</div>` : ''}
<div class="card">
<dl class="facts">
${fact('Status', badge(w.status))}
${fact('Name', w.name)}
${fact('Queue', w.queue ?? '—')}
${fact('Executor', html`<span class="mono">${w.executorId ?? '—'}</span>`)}
${fact('App version', html`<span class="mono">${w.appVersion ?? '—'}</span>`)}
${fact('Parent', w.parentId ? html`<a class="id" href="${req.base}/workflows/${segment(w.parentId)}">${w.parentId}</a>` : '—')}
${fact('Created', html`<span title="${plainText(ago(w.createdAt))}">${instant(w.createdAt)}</span>`)}
${fact('Started', w.startedAt ? instant(w.startedAt) : '—')}
${fact('Completed', end !== undefined ? html`${instant(w.completedAt)} <span class="muted nowrap">(${duration(end - (w.startedAt ?? w.createdAt).getTime())})</span>` : '—')}
${fact('Recoveries', String(w.recoveryAttempts))}
</dl>
</div>
${waiting.lines.length > 0 ? html`<div class="waiting" data-waiting><b>Waiting</b><div>${waiting.lines.map((l) => html`<div>${l}</div>`)}</div></div>` : ''}
${req.readOnly ? '' : actions(req, w, steps.length)}
${tl.body}
<div class="io">
<div class="card"><h2>Input</h2>${jsonBlock(w.input)}</div>
<div class="card">${outcome(w)}</div>
</div>`;
  return {
    kind: 'page',
    shell: { title: `Workflow ${w.id}`, section: 'workflows', body, live, geometry: tl.geometry },
    data: { workflow: w, steps, waiting: waiting.lines.map(plainText) },
  };
}

function fact(label: string, value: Html | string): Html {
  return html`<div data-fact="${label.toLowerCase().replace(/ /g, '-')}"><dt>${label}</dt><dd>${value}</dd></div>`;
}

function outcome(w: WorkflowInfo): Html {
  if (w.status === 'SUCCESS') return html`<h2>Output</h2>${jsonBlock(w.output)}`;
  if (w.error !== undefined && w.error !== null) return html`<h2>Error</h2><div data-error>${errorBlock(w.error)}</div>`;
  return html`<h2>Output</h2><span class="muted">Not finished.</span>`;
}

function actions(req: Request, w: WorkflowInfo, stepCount: number): Html {
  const path = `/workflows/${segment(w.id)}`;
  const forms: Html[] = [];
  if (UNFINISHED.has(w.status)) {
    forms.push(actionForm(req, `${path}/cancel`, 'Cancel', { confirm: `Cancel workflow ${w.id} and its unfinished children?`, style: 'danger' }));
  }
  if (RESUMABLE.has(w.status)) {
    forms.push(actionForm(req, `${path}/resume`, 'Resume', { confirm: `Resume workflow ${w.id} from its checkpoints?` }));
    forms.push(
      actionForm(req, `${path}/retry`, 'Retry', {
        confirm: `Retry workflow ${w.id}? Checkpoints from the chosen step on are dropped and run again.`,
        style: 'primary',
        fields: html`<label>From step<input class="w-s" name="fromStep" inputmode="numeric" placeholder="failed" min="1" max="${stepCount + 1}"></label>`,
      }),
    );
  }
  forms.push(
    actionForm(req, `${path}/fork`, 'Fork', {
      confirm: `Start a new workflow from workflow ${w.id}'s checkpoints?`,
      fields: html`<label>From step<input class="w-s" name="fromStep" inputmode="numeric" required value="${Math.max(1, stepCount)}"></label><label>New id (optional)<input class="w-m mono" name="newId" placeholder="generated"></label>`,
    }),
  );
  return html`<div class="card toolbar"><h2>Actions</h2><div class="actions">${forms}</div></div>`;
}

/** POST `/workflows/<id>/<action>`: runs it, then redirects back (a fork to the new workflow). */
export async function workflowAction(req: Request, rawId: string, action: string): Promise<Reply> {
  const id = nameFromPath(rawId, 'workflow id');
  const back = (done: string, to = id) => ({ kind: 'redirect' as const, location: `${req.base}/workflows/${segment(to)}?done=${done}` });
  switch (action) {
    case 'cancel':
      await req.client.cancel(id);
      return back('cancelled');
    case 'resume':
      await req.client.resume(id);
      return back('resumed');
    case 'retry': {
      const fromStep = formNumber(req.form, 'fromStep', 'from step');
      await req.client.retry(id, fromStep === undefined ? {} : { fromStep });
      return back('retried');
    }
    case 'fork': {
      const fromStep = formNumber(req.form, 'fromStep', 'from step');
      if (fromStep === undefined) throw new HttpError(400, 'BAD_FORM', 'a fork needs the step to start from (from step)');
      const newId = (req.form.get('newId') ?? '').trim();
      const handle = await req.client.fork(id, newId === '' ? { fromStep } : { fromStep, id: assertName('new id', newId) });
      return back('forked', handle.id);
    }
    default:
      throw new HttpError(404, 'NOT_FOUND', `there is no action '${action}' on workflows`);
  }
}
