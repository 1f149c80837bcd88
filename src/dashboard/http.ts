import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Client } from '../engine/client.js';
import { assertName } from '../engine/validate.js';
import { CSRF_FIELD } from './csrf.js';
import { html, type Html } from './html.js';
import type { Shell } from './layout.js';

/** What every page and action of the dashboard receives. */
export interface Request {
  client: Client;
  method: 'GET' | 'HEAD' | 'POST';
  /** The path below the dashboard's base, split at `/`, each segment still percent-encoded. */
  segments: string[];
  query: URLSearchParams;
  /** The form fields of a POST. */
  form: URLSearchParams;
  /** The CSRF token for this browser's forms. */
  token: string;
  /** The dashboard's path as the browser sees it, without a trailing slash. */
  base: string;
  readOnly: boolean;
}

/** A page (HTML, or its data as JSON when asked for), or a redirect after an action. */
export type Reply = { kind: 'page'; shell: Shell; data: unknown; status?: number } | { kind: 'redirect'; location: string };

/** A request the dashboard refuses, with the status and a message for the person who made it. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The most a form post may weigh. */
const MAX_BODY = 64 * 1024;

/** The fields of a urlencoded POST body (or of `req.body` when a framework has parsed it already). */
export async function readForm(req: IncomingMessage & { body?: unknown }): Promise<URLSearchParams> {
  if (req.body !== undefined && req.body !== null && typeof req.body === 'object' && !Buffer.isBuffer(req.body)) {
    const form = new URLSearchParams();
    for (const [k, v] of Object.entries(req.body as Record<string, unknown>)) if (typeof v === 'string') form.append(k, v);
    return form;
  }
  if (typeof req.body === 'string') return new URLSearchParams(req.body);
  if (req.readableEnded) return new URLSearchParams();
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, 'BODY_TOO_LARGE', `a form post may hold at most ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  if (size > 0 && type !== 'application/x-www-form-urlencoded') {
    throw new HttpError(400, 'BAD_FORM', `actions take a form (application/x-www-form-urlencoded), got '${type || 'no content type'}'`);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** Whether the caller asked for JSON: `?format=json`, or an Accept header that prefers it to HTML. */
export function wantsJson(req: IncomingMessage, query: URLSearchParams): boolean {
  if (query.get('format') === 'json') return true;
  const accept = req.headers.accept ?? '';
  return accept.includes('application/json') && !accept.includes('text/html');
}

/** Refuses a `format` other than json or html. */
export function checkFormat(query: URLSearchParams): void {
  const format = query.get('format');
  if (format !== null && format !== 'json' && format !== 'html') throw new HttpError(400, 'BAD_FORMAT', `format must be 'json' or 'html', got '${format}'`);
}

/** The headers every response of the dashboard carries; `nonce` allows the page's inline style and script. */
export function securityHeaders(res: ServerResponse, nonce?: string): void {
  res.setHeader(
    'Content-Security-Policy',
    nonce === undefined
      ? "default-src 'none'; frame-ancestors 'none'"
      : `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; img-src data:; connect-src 'self'; ` +
          "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  );
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Cache-Control', 'no-store');
}

export function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.end(body);
}

/**
 * A name or id taken from the URL (a workflow id, a schedule name): percent-decoded, then held to
 * the rules the engine applies (non-empty, at most 255 characters, no NUL, well-formed Unicode).
 */
export function nameFromPath(raw: string, what: string): string {
  let text: string;
  try {
    text = decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, 'BAD_URL', `the ${what} in the URL is not valid percent-encoded UTF-8`);
  }
  return assertName(what, text);
}

/** A hidden field with the CSRF token, for every form that posts. */
export function tokenField(req: Request): Html {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${req.token}">`;
}

/**
 * A form that posts an action, with the token, optional fields and a confirmation question. Not
 * rendered at all in read-only mode.
 */
export function actionForm(req: Request, path: string, label: string, options: { confirm?: string; fields?: Html; style?: string } = {}): Html {
  if (req.readOnly) return html``;
  return html`<form method="post" action="${req.base}${path}" class="act"${options.confirm ? html` data-confirm="${options.confirm}"` : ''}>${tokenField(req)}${
    options.fields ?? ''
  }<button type="submit" class="${options.style ?? ''}">${label}</button></form>`;
}

/** A whole-number field of a form: empty means not given. */
export function formNumber(form: URLSearchParams, field: string, label: string): number | undefined {
  const text = (form.get(field) ?? '').trim();
  if (text === '') return undefined;
  if (!/^[1-9]\d{0,8}$/.test(text)) throw new HttpError(400, 'BAD_FORM', `${label} must be a whole number from 1, got '${text}'`);
  return Number(text);
}
