import { WORKFLOW_STATUSES, type WorkflowInfo } from '../types.js';
import { cursorOf, parseListQuery, type LIST_PARAMS } from './filters.js';
import { ago, badge, duration, html, segment } from './html.js';
import type { Reply, Request } from './http.js';
import { liveToggle } from './layout.js';

/**
 * The workflows list: filters by status, name, queue, id prefix and creation time, newest first by
 * default, paged by keyset (`after` holds the last row of the page before), refreshed live.
 */
export async function listPage(req: Request): Promise<Reply> {
  const q = parseListQuery(req.query);
  const rows = await req.client.listWorkflows({ ...q.filter, limit: q.limit + 1 });
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  const nextParams = new URLSearchParams(q.params);
  if (rows.length > q.limit && last) nextParams.set('after', cursorOf(last));
  const next = rows.length > q.limit && last ? `${req.base}/workflows?${nextParams}` : null;
  const first = q.paged ? `${req.base}/workflows${q.params.size > 0 ? `?${q.params}` : ''}` : null;

  const body = html`
<div class="head"><h1>Workflows</h1>${liveToggle(true)}</div>
${filterForm(req, q.params)}`;
  const live = html`<div class="card flush">
${page.length === 0 ? html`<div class="empty">No workflows match${q.paged ? ' on this page' : ''}.</div>` : table(req, page)}
${next || first ? html`<div class="pager"><span>${first ? html`<a href="${first}">← First page</a>` : ''}</span><span>${next ? html`<a href="${next}" rel="next" id="next-page">Next page →</a>` : ''}</span></div>` : ''}
</div>`;
  return { kind: 'page', shell: { title: 'Workflows', section: 'workflows', body, live }, data: { workflows: page, next } };
}

function table(req: Request, rows: WorkflowInfo[]) {
  const now = Date.now();
  return html`<table class="workflows">
<thead><tr><th>ID</th><th>Name</th><th>Status</th><th>Queue</th><th>Executor</th><th>Version</th><th>Created</th><th class="num">Duration</th></tr></thead>
<tbody>${rows.map(
    (w) => html`<tr data-id="${w.id}">
<td><a class="id" href="${req.base}/workflows/${segment(w.id)}">${w.id}</a></td>
<td>${w.name}</td>
<td>${badge(w.status)}</td>
<td>${w.queue ?? ''}</td>
<td class="mono">${w.executorId ?? ''}</td>
<td class="mono">${w.appVersion === null ? '' : w.appVersion.slice(0, 12)}</td>
<td>${ago(w.createdAt, now)}</td>
<td class="num">${w.completedAt ? duration(w.completedAt.getTime() - (w.startedAt ?? w.createdAt).getTime()) : ''}</td>
</tr>`,
  )}</tbody></table>`;
}

function filterForm(req: Request, params: URLSearchParams) {
  const value = (key: string) => params.get(key) ?? '';
  const status = params.getAll('status');
  // Filters the form has no field for (executor, version, parent) are kept as hidden fields.
  const hidden = ['executor', 'version', 'parent'].filter((k) => params.has(k));
  return html`<form class="filters card" method="get" action="${req.base}/workflows">
<label>Status<select class="w-m" name="status"><option value="">Any</option>${WORKFLOW_STATUSES.map(
    (s) => html`<option value="${s}"${status.length === 1 && status[0] === s ? ' selected' : ''}>${s}</option>`,
  )}</select></label>
<label>Name<input class="w-m" name="name" value="${value('name')}" placeholder="workflow name"></label>
<label>Queue<input class="w-s" name="queue" value="${value('queue')}"></label>
<label>ID starts with<input class="w-l mono" name="id" value="${value('id')}" placeholder="order-"></label>
<label>Created after<input class="w-m" name="createdAfter" value="${value('createdAfter')}" placeholder="1h, or an ISO time"></label>
<label>Created before<input class="w-m" name="createdBefore" value="${value('createdBefore')}" placeholder="30m, or an ISO time"></label>
<label>Order<select name="order"><option value="desc">Newest first</option><option value="asc"${value('order') === 'asc' ? ' selected' : ''}>Oldest first</option></select></label>
${hidden.map((k) => html`<input type="hidden" name="${k}" value="${value(k)}">`)}
${params.has('limit') ? html`<input type="hidden" name="limit" value="${value('limit')}">` : ''}
<button type="submit" class="primary">Apply</button>
<a class="button" href="${req.base}/workflows">Reset</a>
</form>`;
}

/** Parameters of the list a link may carry (for building links to filtered lists elsewhere). */
export function listLink(req: Request, filter: Partial<Record<(typeof LIST_PARAMS)[number], string>>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(filter)) if (v !== undefined) params.set(k, v);
  return `${req.base}/workflows?${params}`;
}
