import { CSS, FAVICON, LOGO, SCRIPT } from './assets.js';
import { html, trusted, type Html } from './html.js';

/** The sections of the top navigation. */
export type Section = 'workflows' | 'queues' | 'schedules' | 'executors' | 'versions' | 'none';

const NAV: Array<[Exclude<Section, 'none'>, string]> = [
  ['workflows', 'Workflows'],
  ['queues', 'Queues'],
  ['schedules', 'Schedules'],
  ['executors', 'Executors'],
  ['versions', 'Versions'],
];

export interface Shell {
  title: string;
  section: Section;
  /** The top of the page. */
  body: Html;
  /** The part live refresh fetches again, below the body. */
  live?: Html;
  /** CSS rules made by the dashboard (the waterfall's bar positions), under the page's nonce. */
  geometry?: string;
}

export interface PageContext {
  /** The dashboard's path as the browser sees it, without a trailing slash ('' at the root). */
  base: string;
  nonce: string;
  readOnly: boolean;
}

/** A whole page: the top bar, the body, and the inlined style and script under the CSP nonce. */
export function renderPage(shell: Shell, ctx: PageContext): string {
  const nav = NAV.map(([key, label]) => html`<a href="${ctx.base}/${key}" class="${key === shell.section ? 'on' : ''}">${label}</a>`);
  return `<!doctype html>${html`<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${shell.title} · Cairn</title>
<link rel="icon" href="${FAVICON}">
<style nonce="${ctx.nonce}">${trusted(CSS)}</style>
<style nonce="${ctx.nonce}" id="geometry">${trusted(shell.geometry ?? '')}</style>
</head>
<body>
<header class="top">
<a class="brand" href="${ctx.base}/workflows">${trusted(LOGO)}Cairn</a>
<nav>${nav}</nav>
${ctx.readOnly ? html`<span class="ro" title="Actions are turned off">read-only</span>` : ''}
</header>
<main>${shell.body}${shell.live ? html`<div data-live>${shell.live}</div>` : ''}</main>
<script nonce="${ctx.nonce}">${trusted(SCRIPT)}</script>
</body>
</html>`.text}`;
}

/** The live region and its geometry, for a live refresh (asked for with the `X-Cairn-Live` header). */
export function liveFragment(shell: Shell): string {
  return JSON.stringify({ html: shell.live?.text ?? '', geometry: shell.geometry ?? '' });
}

/** The live refresh toggle; `on` says whether it starts ticked (the browser remembers a choice to turn it off). */
export function liveToggle(on: boolean): Html {
  return html`<label class="live"><input type="checkbox" id="live" data-default="${on ? 'on' : 'off'}" data-interval="3000"> Live refresh</label>`;
}

/** The page of a request that could not be served: the status, what was wrong, and a way back. */
export function errorBody(status: number, code: string, message: string, base: string): Html {
  return html`<div class="error-page card">
<div class="code">${status} · ${code}</div>
<h1>${TITLES[status] ?? 'Error'}</h1>
<p>${message}</p>
<a class="button" href="${base}/workflows">Back to workflows</a>
</div>`;
}

export const TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Not authorized',
  403: 'Forbidden',
  404: 'Not found',
  405: 'Method not allowed',
  409: 'Conflict',
  413: 'Request too large',
  500: 'Internal error',
  503: 'Unavailable',
};
