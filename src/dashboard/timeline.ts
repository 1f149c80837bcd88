import type { StepInfo, WorkflowInfo } from '../types.js';
import { duration, html, instant, jsonBlock, segment, short, type Html } from './html.js';
import type { ParkedWait } from './waiting.js';

/**
 * A workflow's steps as a waterfall: one row per checkpoint, its bar placed by its start and end
 * relative to the workflow's start, drawn by CSS alone. The bar positions are rules of the page's
 * own style sheet (numbers the dashboard computes; no stored text goes into CSS).
 */

/** How the dashboard shows a checkpoint, from the name Context calls record it under. */
interface StepView {
  /** A short label of the call: step, sleep, recv, child, ... */
  kind: string;
  /** The step's name, or what the call was about. */
  title: string;
  /** A line under the title: the outcome in brief. */
  detail: string;
  /** How the bar is drawn. */
  bar: 'run' | 'error' | 'wait' | 'child' | 'mark';
  /** When the call's effect ended (a sleep ends at its wake-up time, not when it was recorded). */
  end: number;
}

/** Context calls that record a value rather than run work: drawn as a mark. */
const MARKS: Record<string, string> = {
  'cairn.now': 'now',
  'cairn.random': 'random',
  'cairn.uuid': 'uuid',
  'cairn.send': 'send',
  'cairn.setEvent': 'set event',
  'cairn.writeStream': 'stream',
  'cairn.closeStream': 'close stream',
};

export function viewOf(step: StepInfo, now: number): StepView {
  const completed = step.completedAt.getTime();
  const failed = step.error !== undefined && step.error !== null;
  const outcome = failed ? short(step.error) : short(step.output);
  const view = (kind: string, title: string, detail: string, bar: StepView['bar'], end = completed): StepView => ({
    kind,
    title,
    detail,
    bar: failed ? 'error' : bar,
    end,
  });
  const { name } = step;
  if (name === 'cairn.sleep') {
    const wake = typeof step.output === 'number' ? step.output : completed;
    return view('sleep', 'sleep', `until ${instant(new Date(wake))}${wake > now ? ` (in ${duration(wake - now)})` : ''}`, 'wait', Math.max(completed, wake));
  }
  if (name === 'cairn.recv') return view('recv', 'receive a message', failed ? outcome : step.output === null ? 'timed out' : `got ${outcome}`, 'wait');
  if (name === 'cairn.getEvent') return view('event', 'get an event', failed ? outcome : step.output === null ? 'timed out' : `got ${outcome}`, 'wait');
  if (name === 'cairn.childResult') return view('child', 'child result', outcome, 'wait');
  if (name.startsWith('cairn.child:')) return view('child', name.slice('cairn.child:'.length), `started ${step.childId ?? ''}`, 'child');
  if (name.startsWith('cairn.patch:')) return view('patch', name.slice('cairn.patch:'.length), 'patched', 'mark');
  const mark = MARKS[name];
  if (mark !== undefined) return view(mark, mark, outcome, 'mark');
  return view('step', name, outcome, 'run');
}

export interface Timeline {
  body: Html;
  /** CSS rules placing the bars. */
  geometry: string;
}

/** Most rows a waterfall draws; a longer history is cut, and the whole of it is in the page's JSON. */
export const MAX_ROWS = 1_000;

export function timeline(w: WorkflowInfo, all: StepInfo[], base: string, parked: ParkedWait[] = [], now = Date.now()): Timeline {
  const steps = all.length > MAX_ROWS ? all.slice(-MAX_ROWS) : all;
  const views = steps.map((s) => viewOf(s, now));
  // Nothing is drawn past the workflow's end, or past now while it runs.
  const limit = w.completedAt ? w.completedAt.getTime() : now;
  const drawnEnd = steps.map((s, i) => Math.max(s.completedAt.getTime(), Math.min(views[i]!.end, limit)));
  let start = (w.startedAt ?? w.createdAt).getTime();
  for (const s of steps) start = Math.min(start, s.startedAt.getTime());
  const span = Math.max(drawnEnd.reduce((a, b) => Math.max(a, b), limit) - start, 1);
  const pct = (ms: number) => Math.min(100, Math.max(0, (ms / span) * 100));

  const rules: string[] = [];
  const rows: Array<[number, Html]> = steps.map((s, i) => {
    const v = views[i]!;
    const from = s.startedAt.getTime();
    const until = drawnEnd[i]!;
    const left = pct(from - start);
    const width = Math.max(Math.min(pct(until - from), 100 - left), 0.4);
    rules.push(`#bar-${s.stepId}{left:${Math.min(left, 99.6).toFixed(3)}%;width:${width.toFixed(3)}%}`);
    // A sleep still running is drawn up to now, open-ended.
    const open = v.end > until;
    return [s.stepId, html`<details class="tl-row" id="step-${s.stepId}" data-step="${s.stepId}" data-kind="${v.kind}">
<summary>
<span class="tl-id">${s.stepId}</span>
<span class="tl-name"><b title="${s.name}"><span class="kind">${v.kind}</span>${v.title}${s.attempts > 1 ? html`<span class="tries">${s.attempts} attempts</span>` : ''}</b><small title="${v.detail}">${v.detail}</small></span>
<span class="track"><span class="bar k-${v.bar}${open ? ' open' : ''}" id="bar-${s.stepId}" title="${v.title}: ${duration(until - from)}"></span></span>
<span class="tl-dur">${duration(v.end - from)}</span>
</summary>
<div class="tl-body">
<div class="meta">Recorded as <code>${s.name}</code> · started ${instant(s.startedAt)} · completed ${instant(s.completedAt)} · ${s.attempts} ${s.attempts === 1 ? 'attempt' : 'attempts'}${
      s.childId ? html` · child <a class="id" href="${base}/workflows/${segment(s.childId)}">${s.childId}</a>` : ''
    }</div>
${s.problem ? html`<div class="problem">${s.problem.message}</div>` : ''}
${s.error !== undefined && s.error !== null ? errorBlock(s.error) : jsonBlock(s.output)}
</div>
</details>`];
  });
  for (const p of parked) {
    const from = p.since.getTime();
    const left = pct(from - start);
    rules.push(`#bar-${p.stepId}{left:${Math.min(left, 99.6).toFixed(3)}%;width:${Math.max(100 - left, 0.4).toFixed(3)}%}`);
    const title = p.kind === 'recv' ? 'receive a message' : 'get an event';
    const until = p.deadline ? `waiting, until ${instant(p.deadline)}` : 'waiting';
    rows.push([
      p.stepId,
      html`<details class="tl-row parked" id="step-${p.stepId}" data-step="${p.stepId}" data-kind="${p.kind}" data-parked>
<summary>
<span class="tl-id">${p.stepId}</span>
<span class="tl-name"><b><span class="kind">${p.kind}</span>${title}</b><small>${until}</small></span>
<span class="track"><span class="bar k-wait open" id="bar-${p.stepId}" title="${title}: waiting for ${duration(now - from)}"></span></span>
<span class="tl-dur">${duration(now - from)}…</span>
</summary>
<div class="tl-body"><div class="meta">Parked since about ${instant(p.since)}; no checkpoint yet. The wait ends with what arrives, or with null at its deadline.</div></div>
</details>`,
    ]);
  }
  rows.sort((a, b) => a[0] - b[0]);

  const scale = [0, 0.25, 0.5, 0.75, 1].map((f) => html`<span>${f === 0 ? '0' : duration(span * f)}</span>`);
  const body = html`<div class="card flush timeline">
<h2>Steps <span class="muted">(${all.length}${parked.length > 0 ? `, ${parked.length} waiting` : ''})</span></h2>
${all.length > steps.length ? html`<div class="tl-empty">Showing the last ${MAX_ROWS} of ${all.length} steps; <code>?format=json</code> has them all.</div>` : ''}
<div class="tl-head"><span>#</span><span>Step</span><span class="scale">${scale}</span><span class="tl-dur">Duration</span></div>
${rows.length === 0 ? html`<div class="tl-empty">No checkpoint recorded yet.</div>` : rows.map((r) => r[1])}
</div>`;
  return { body, geometry: rules.join('\n') };
}

/** A stored error: its name and message, its other fields as JSON, its stack folded away. */
export function errorBlock(error: unknown): Html {
  if (!(error instanceof Error)) return html`<div class="err-title">Error</div>${jsonBlock(error)}`;
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(error)) fields[k] = v;
  return html`<div>
<div class="err-title">${error.name}: ${error.message}</div>
${Object.keys(fields).length > 0 ? jsonBlock(fields) : ''}
${error.stack ? html`<details><summary class="muted">Stack</summary><pre class="json stack">${error.stack}</pre></details>` : ''}
</div>`;
}
