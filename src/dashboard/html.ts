import { toJson } from '../cli/format.js';
import type { WorkflowStatus } from '../types.js';

/**
 * HTML built by the `html` tag: every interpolated value is escaped as text unless it is itself
 * `Html`, so a stored name, id, input or error can never become markup. There is no other way to
 * put raw text into a page.
 */
export class Html {
  constructor(readonly text: string) {}

  toString(): string {
    return this.text;
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text safe in element content and in quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/**
 * A template of trusted markup with escaped values: `Html` values go in as they are, arrays are
 * joined, `null`, `undefined` and `false` render nothing, and anything else is escaped text.
 *
 * @example
 * html`<a href="${url}">${workflow.name}</a>`
 */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!;
  return new Html(out);
}

function render(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (value === null || value === undefined || value === false) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/** Markup written by the dashboard itself (never stored text). */
export function trusted(text: string): Html {
  return new Html(text);
}

/** A stored value as indented JSON (dates as ISO text, errors as their fields), or a dash when there is none. */
export function jsonBlock(value: unknown): Html {
  if (value === undefined) return html`<span class="muted">—</span>`;
  return html`<pre class="json">${toJson(value)}</pre>`;
}

/** A short one-line rendering of a stored value for a table cell or a timeline row. */
export function short(value: unknown, max = 80): string {
  if (value === undefined) return '';
  let text: string;
  if (value instanceof Error) text = `${value.name}: ${value.message}`;
  else if (typeof value === 'string') text = value;
  else text = toJson(value).replace(/\s*\n\s*/g, ' ');
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** A UTC instant to the millisecond: `2026-01-31 12:00:00.123Z`. */
export function instant(d: Date | null | undefined): string {
  return d ? d.toISOString().replace('T', ' ') : '';
}

/** A time element showing how long ago, with the exact instant as its title. */
export function ago(d: Date | null | undefined, now = Date.now()): Html {
  if (!d) return html`<span class="muted">—</span>`;
  const ms = now - d.getTime();
  const text = ms >= 0 ? `${duration(ms)} ago` : `in ${duration(-ms)}`;
  return html`<time datetime="${d.toISOString()}" title="${instant(d)}">${text}</time>`;
}

/** A duration for people: `850 ms`, `4.2 s`, `3m 20s`, `2h 5m`, `3d 4h`. */
export function duration(ms: number): string {
  if (ms < 10 && !Number.isInteger(ms)) return `${Math.max(0, ms).toFixed(1)} ms`;
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  const units: Array<[string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1_000]];
  const first = units.findIndex(([, size]) => ms >= size);
  const [bigUnit, bigSize] = units[first]!;
  const parts = [`${Math.floor(ms / bigSize)}${bigUnit}`];
  const small = units[first + 1];
  if (small) {
    const n = Math.floor((ms % bigSize) / small[1]);
    if (n > 0) parts.push(`${n}${small[0]}`);
  }
  return parts.join(' ');
}

/** A status badge; the class picks the colour. */
export function badge(status: WorkflowStatus): Html {
  return html`<span class="badge s-${status.toLowerCase()}">${status === 'MAX_RECOVERY_ATTEMPTS_EXCEEDED' ? 'MAX RECOVERY' : status}</span>`;
}

/** A path segment of a dashboard URL (ids may hold `/`, `?`, `#` and anything else). */
export function segment(text: string): string {
  return encodeURIComponent(text);
}

const DECODE: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" };

/** The text of a fragment without its tags, for JSON: the inverse of the escaping above. */
export function plainText(fragment: Html): string {
  return fragment.text.replace(/<[^>]*>/g, '').replace(/&(amp|lt|gt|quot|#39);/g, (e) => DECODE[e]!);
}
