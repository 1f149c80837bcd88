import type { ScheduleInfo } from '../types.js';
import { ago, duration, html, instant, segment, type Html } from './html.js';
import { actionForm, HttpError, nameFromPath, type Reply, type Request } from './http.js';
import { liveToggle } from './layout.js';
import { listLink } from './list-page.js';

/** The pages about the fleet rather than one workflow: queues, schedules, executors, versions. */

function tableCard(headers: Array<string | [string, 'num']>, rows: Html[], empty: string): Html {
  return html`<div class="card flush">${
    rows.length === 0
      ? html`<div class="empty">${empty}</div>`
      : html`<table><thead><tr>${headers.map((h) => (Array.isArray(h) ? html`<th class="num">${h[0]}</th>` : html`<th>${h}</th>`))}</tr></thead><tbody>${rows}</tbody></table>`
  }</div>`;
}

function head(title: string, note: string, live = true): Html {
  return html`<div class="head"><div><h1>${title}</h1><div class="muted">${note}</div></div>${live ? liveToggle(true) : ''}</div>`;
}

const dash = html`<span class="muted">—</span>`;

export async function queuesPage(req: Request): Promise<Reply> {
  const queues = await req.client.listQueues();
  const rows = queues.map(
    (q) => html`<tr data-queue="${q.name}">
<td><a href="${listLink(req, { queue: q.name })}">${q.name}</a></td>
<td class="num">${q.concurrency ?? dash}</td>
<td class="num">${q.workerConcurrency ?? dash}</td>
<td>${q.rateLimit ? `${q.rateLimit.limit} per ${duration(q.rateLimit.periodMs)}` : dash}</td>
<td>${q.partitioned ? 'yes' : 'no'}</td>
<td class="num"><a href="${listLink(req, { queue: q.name, status: 'ENQUEUED' })}">${q.enqueued}</a></td>
<td class="num"><a href="${listLink(req, { queue: q.name, status: 'DELAYED' })}">${q.delayed}</a></td>
<td class="num"><a href="${listLink(req, { queue: q.name, status: 'PENDING' })}">${q.running}</a></td>
</tr>`,
  );
  const body = head('Queues', 'Declared queues, their limits, and how many of their workflows wait or run.');
  const live = tableCard(
    ['Queue', ['Concurrency', 'num'], ['Per worker', 'num'], 'Rate limit', 'Partitioned', ['Enqueued', 'num'], ['Delayed', 'num'], ['Running', 'num']],
    rows,
    'No queue has been declared.',
  );
  return { kind: 'page', shell: { title: 'Queues', section: 'queues', body, live }, data: { queues } };
}

const SCHEDULE_DONE: Record<string, string> = {
  paused: 'Paused: it fires no tick until it is resumed.',
  resumed: 'Resumed: it fires again from its next tick.',
};

export async function schedulesPage(req: Request): Promise<Reply> {
  const schedules = await req.client.schedules.list();
  const now = Date.now();
  const done = SCHEDULE_DONE[req.query.get('done') ?? ''];
  const rows = schedules.map((s) => scheduleRow(req, s, now));
  const body = html`${head('Schedules', 'Cron schedules stored in the database; each tick starts its workflow once.')}
${done ? html`<div class="notice" role="status">${done}</div>` : ''}`;
  const live = tableCard(
    ['Schedule', 'Cron', 'Workflow', 'Time zone', 'Queue', 'Missed ticks', 'State', 'Last tick', 'Next tick', ...(req.readOnly ? [] : ['Actions'])],
    rows,
    'No schedule is stored.',
  );
  return { kind: 'page', shell: { title: 'Schedules', section: 'schedules', body, live }, data: { schedules } };
}

function scheduleRow(req: Request, s: ScheduleInfo, now: number): Html {
  const path = `/schedules/${segment(s.name)}`;
  const state = s.problem ? html`<span class="no" title="${s.problem}">broken</span>` : s.paused ? html`<span class="muted">paused</span>` : html`<span class="yes">active</span>`;
  return html`<tr data-schedule="${s.name}">
<td class="nowrap">${s.name}${s.problem ? html`<div class="muted">${s.problem}</div>` : ''}</td>
<td><code>${s.cron}</code></td>
<td><a href="${listLink(req, { name: s.workflowName })}">${s.workflowName}</a></td>
<td>${s.timezone}</td>
<td>${s.queue ?? dash}</td>
<td>${s.missed}</td>
<td>${state}</td>
<td>${s.lastTickAt ? html`<span title="${instant(s.lastTickAt)}">${ago(s.lastTickAt, now)}</span>` : dash}</td>
<td>${s.nextTickAt ? html`${instant(s.nextTickAt)} <span class="muted nowrap">(${ago(s.nextTickAt, now)})</span>` : dash}</td>
${
  req.readOnly
    ? ''
    : html`<td><div class="actions">${
        s.paused
          ? actionForm(req, `${path}/resume`, 'Resume', { confirm: `Resume schedule ${s.name}?` })
          : actionForm(req, `${path}/pause`, 'Pause', { confirm: `Pause schedule ${s.name}?` })
      }${actionForm(req, `${path}/trigger`, 'Trigger now', { confirm: `Start schedule ${s.name}'s workflow now, besides its ticks?` })}</div></td>`
}
</tr>`;
}

/** POST `/schedules/<name>/<action>`: pause, resume, or trigger (which goes to the new workflow). */
export async function scheduleAction(req: Request, rawName: string, action: string): Promise<Reply> {
  const name = nameFromPath(rawName, 'schedule name');
  if (!['pause', 'resume', 'trigger'].includes(action)) throw new HttpError(404, 'NOT_FOUND', `there is no action '${action}' on schedules`);
  if ((await req.client.schedules.get(name)) === undefined) throw new HttpError(404, 'SCHEDULE_NOT_FOUND', `no schedule named '${name}' exists`);
  if (action === 'pause') await req.client.schedules.pause(name);
  else if (action === 'resume') await req.client.schedules.resume(name);
  else {
    const handle = await req.client.schedules.trigger(name);
    return { kind: 'redirect', location: `${req.base}/workflows/${segment(handle.id)}?done=triggered` };
  }
  return { kind: 'redirect', location: `${req.base}/schedules?done=${action === 'pause' ? 'paused' : 'resumed'}` };
}

export async function executorsPage(req: Request): Promise<Reply> {
  const executors = await req.client.listExecutors();
  const now = Date.now();
  const rows = executors.map(
    (e) => html`<tr data-executor="${e.id}">
<td class="mono">${e.id}</td>
<td>${e.hostname}</td>
<td class="num">${e.pid}</td>
<td class="mono">${e.appVersion}</td>
<td>${e.alive ? html`<span class="yes">alive</span>` : html`<span class="no">${e.stoppedAt ? 'stopped' : 'dead'}</span>`}</td>
<td>${ago(e.heartbeatAt, now)}</td>
<td>${ago(e.startedAt, now)}</td>
<td class="num"><a href="${listLink(req, { executor: e.id, status: 'PENDING' })}">${e.pending}</a></td>
</tr>`,
  );
  const body = head('Executors', 'Engine processes that ran here recently. A dead one’s PENDING workflows are adopted by the live ones.');
  const live = tableCard(['Executor', 'Host', ['PID', 'num'], 'App version', 'State', 'Heartbeat', 'Started', ['Pending', 'num']], rows, 'No executor has run on this database yet.');
  return { kind: 'page', shell: { title: 'Executors', section: 'executors', body, live }, data: { executors } };
}

export async function versionsPage(req: Request): Promise<Reply> {
  const versions = await req.client.listVersions();
  const rows = versions.map(
    (v) => html`<tr data-version="${v.appVersion}">
<td class="mono">${v.appVersion}</td>
<td class="num">${v.executors}</td>
<td class="num"><a href="${listLink(req, { version: v.appVersion, status: 'PENDING' })}">${v.pending}</a></td>
<td>${instant(v.firstSeenAt)}</td>
<td>${instant(v.lastSeenAt)}</td>
</tr>`,
  );
  const body = head('Versions', 'App versions seen. PENDING work of a version with no live executor waits for code that can replay it.');
  const live = tableCard(['App version', ['Live executors', 'num'], ['Pending', 'num'], 'First seen', 'Last seen'], rows, 'No app version has been seen yet.');
  return { kind: 'page', shell: { title: 'Versions', section: 'versions', body, live }, data: { versions } };
}
