import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { toJson } from '../cli/format.js';
import { Client } from '../engine/client.js';
import { CairnError, InvalidArgumentError } from '../engine/errors.js';
import { describe } from '../engine/validate.js';
import type { Logger } from '../types.js';
import { Csrf, CSRF_FIELD, sameOrigin } from './csrf.js';
import { executorsPage, queuesPage, scheduleAction, schedulesPage, versionsPage } from './fleet-pages.js';
import { checkFormat, HttpError, readForm, securityHeaders, send, wantsJson, type Reply, type Request } from './http.js';
import { errorBody, liveFragment, renderPage, TITLES } from './layout.js';
import { listPage } from './list-page.js';
import { workflowAction, workflowPage } from './workflow-page.js';

export interface DashboardOptions {
  /** A database URL (`postgres://…`, `sqlite:<path>`): the handler opens a Client on it at its first request, and `close()` closes it. */
  database?: string;
  /** With `database`: the PostgreSQL schema (default `cairn`). */
  schema?: string;
  /** A Client (or an Engine) to use instead; the handler never closes it. */
  client?: Client;
  /**
   * The path the dashboard is served under, as the browser sees it (`/admin/cairn`, or `/` for a
   * server of its own). Links and the CSRF cookie's path are made from it. Under Express, mount the
   * handler at the same path: `app.use('/admin/cairn', handler)`.
   */
  basePath: string;
  /**
   * Called first on every request under `basePath`; return false (or a promise of it) to refuse
   * with 401. It may set headers (a `WWW-Authenticate` challenge) or answer the request itself.
   */
  auth?: (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;
  /** No action buttons, and every POST is refused with 403. */
  readOnly?: boolean;
  /** Key of the CSRF tokens (default: random per handler). Give every process behind one load balancer the same. */
  secret?: string | Buffer;
  /** Where errors of the handler itself are logged (pino-compatible; default the console). */
  logger?: Logger;
}

/** A node:http request handler, also Express middleware; `close()` closes the Client it opened. */
export interface DashboardHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void;
  close(): Promise<void>;
}

type Incoming = IncomingMessage & { originalUrl?: string; body?: unknown };

const CONSOLE: Logger = {
  info() {},
  warn: (obj, msg) => console.warn(`cairn dashboard: ${msg ?? ''}`, obj),
  error: (obj, msg) => console.error(`cairn dashboard: ${msg ?? ''}`, obj),
};

/**
 * The Cairn dashboard as a request handler: see workflows, their steps and the fleet, and cancel,
 * resume, retry or fork workflows and steer schedules, from a browser. Pages are rendered on the
 * server, every asset is inlined, and stored values are escaped; actions are form posts checked
 * against CSRF. Requests outside `basePath` go to `next()` when there is one, else get a 404.
 *
 * @example
 * import { dashboardHandler } from 'cairn/dashboard';
 * const dashboard = dashboardHandler({ database: process.env.DATABASE_URL!, basePath: '/admin/cairn', auth: isAdmin });
 * app.use('/admin/cairn', dashboard); // Express; or http.createServer(dashboard)
 */
export function dashboardHandler(options: DashboardOptions): DashboardHandler {
  const o = checkOptions(options);
  const base = normalizeBase(o.basePath);
  const csrf = new Csrf(o.secret, base === '' ? '/' : base);
  const logger = o.logger ?? CONSOLE;
  let opened: Promise<Client> | undefined;
  let closed = false;

  const client = (): Promise<Client> => {
    if (closed) return Promise.reject(new HttpError(503, 'CLOSED', 'the dashboard has been closed'));
    if (o.client) return Promise.resolve(o.client);
    opened ??= Client.open({ database: o.database!, migrate: false, ...(o.schema !== undefined && { schema: o.schema }) }).catch((err: unknown) => {
      opened = undefined; // the next request tries again
      throw err;
    });
    return opened;
  };

  const handle = async (req: Incoming, res: ServerResponse, next?: (err?: unknown) => void): Promise<void> => {
    const target = locate(req, base);
    if (target === undefined) {
      if (next) return next();
      securityHeaders(res);
      return send(res, 404, 'text/plain; charset=utf-8', 'Not found\n');
    }
    const nonce = randomBytes(16).toString('base64');
    securityHeaders(res, nonce);
    const json = wantsJson(req, target.query);
    try {
      if (o.auth) {
        let allowed: boolean;
        try {
          allowed = (await o.auth(req, res)) === true;
        } catch (err) {
          logger.error({ err }, 'the auth function threw; the request was refused with 500');
          throw new HttpError(500, 'AUTH_FAILED', 'the request could not be authorized');
        }
        if (!allowed) {
          if (res.writableEnded) return;
          throw new HttpError(401, 'UNAUTHORIZED', 'you are not allowed to see this dashboard');
        }
      }
      checkFormat(target.query);
      const route = routeOf(target.segments);
      if (!route) throw new HttpError(404, 'NOT_FOUND', 'there is no such page in the dashboard');
      const method = req.method === 'HEAD' ? 'HEAD' : req.method === 'GET' ? 'GET' : req.method === 'POST' ? 'POST' : undefined;
      const allowed = route.post ? ['POST'] : ['GET', 'HEAD'];
      if (method === undefined || !allowed.includes(method)) {
        res.setHeader('Allow', allowed.join(', '));
        throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${req.method ?? ''} is not allowed here; use ${allowed.join(' or ')}`);
      }
      let form = new URLSearchParams();
      if (method === 'POST') {
        if (o.readOnly) throw new HttpError(403, 'READ_ONLY', 'this dashboard is read-only: actions are turned off');
        if (!sameOrigin(req)) throw new HttpError(403, 'CROSS_ORIGIN', 'the action was posted from another origin');
        form = await readForm(req);
        if (!csrf.verify(req, form.get(CSRF_FIELD) ?? undefined)) {
          throw new HttpError(403, 'CSRF', 'the form is missing its security token or it has expired; reload the page and try again');
        }
      }
      const request: Request = {
        client: await client(),
        method,
        segments: target.segments,
        query: target.query,
        form,
        token: csrf.token(req, res),
        base,
        readOnly: o.readOnly === true,
      };
      const reply = await route.run(request);
      respond(res, reply, json, req.headers['x-cairn-live'] === '1', { base, nonce, readOnly: o.readOnly === true });
    } catch (err) {
      const { status, code, message } = classify(err, logger);
      const ctx = { base, nonce, readOnly: o.readOnly === true };
      if (json) send(res, status, 'application/json; charset=utf-8', toJson({ error: { status, code, message } }));
      else send(res, status, 'text/html; charset=utf-8', renderPage({ title: TITLES[status] ?? 'Error', section: 'none', body: errorBody(status, code, message, base) }, ctx));
    }
  };

  const handler = ((req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): void => {
    handle(req as Incoming, res, next).catch((err: unknown) => {
      logger.error({ err }, 'the dashboard failed to answer a request');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'Internal error\n');
      else res.destroy();
    });
  }) as DashboardHandler;
  handler.close = async () => {
    closed = true;
    const pending = opened;
    opened = undefined;
    if (pending) await (await pending.catch(() => undefined))?.close();
  };
  return handler;
}

interface Route {
  post: boolean;
  run(req: Request): Promise<Reply>;
}

function routeOf(segments: string[]): Route | undefined {
  const [first, second, third, ...rest] = segments;
  if (rest.length > 0) return undefined;
  const get = (run: Route['run']): Route => ({ post: false, run });
  if (first === undefined || (first === 'workflows' && second === undefined)) return get(listPage);
  if (second === undefined) {
    const pages: Record<string, Route['run']> = { queues: queuesPage, schedules: schedulesPage, executors: executorsPage, versions: versionsPage };
    return Object.hasOwn(pages, first) ? get(pages[first]!) : undefined;
  }
  if (first === 'workflows' && third === undefined) return get((req) => workflowPage(req, second));
  if (first === 'workflows' && third !== undefined) return { post: true, run: (req) => workflowAction(req, second, third) };
  if (first === 'schedules' && third !== undefined) return { post: true, run: (req) => scheduleAction(req, second, third) };
  return undefined;
}

/**
 * Where a request falls under the dashboard: its path below `base`, split into segments, and its
 * query. Express strips the mount path from `req.url` and keeps the whole path in
 * `req.originalUrl`, so that is tried first; then `req.url`.
 */
function locate(req: Incoming, base: string): { segments: string[]; query: URLSearchParams } | undefined {
  for (const url of [req.originalUrl, req.url]) {
    if (typeof url !== 'string') continue;
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path !== base && !path.startsWith(`${base}/`)) continue;
    const segments = path.slice(base.length).split('/').slice(1);
    if (segments[segments.length - 1] === '') segments.pop();
    return { segments, query: new URLSearchParams(q === -1 ? '' : url.slice(q + 1)) };
  }
  return undefined;
}

function respond(res: ServerResponse, reply: Reply, json: boolean, live: boolean, ctx: { base: string; nonce: string; readOnly: boolean }): void {
  if (reply.kind === 'redirect') return send(res, 303, 'text/plain; charset=utf-8', `See ${reply.location}\n`, { Location: reply.location });
  if (json) return send(res, reply.status ?? 200, 'application/json; charset=utf-8', toJson(reply.data));
  if (live) return send(res, reply.status ?? 200, 'application/json; charset=utf-8', liveFragment(reply.shell));
  send(res, reply.status ?? 200, 'text/html; charset=utf-8', renderPage(reply.shell, ctx));
}

/** HTTP statuses of Cairn's error codes; a code not listed is a 500 that still shows its message. */
const STATUS_OF: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  WORKFLOW_NOT_FOUND: 404,
  WORKFLOW_CONFLICT: 409,
  DUPLICATE_QUEUE_ENTRY: 409,
  UNKNOWN_WORKFLOW: 409,
  NON_DETERMINISM: 409,
  ENGINE_CLOSED: 503,
  DATABASE_CONNECTION: 503,
  MIGRATION: 503,
};

/** The status and message of a failed request. Errors that are not Cairn's are logged and shown as a bare 500. */
function classify(err: unknown, logger: Logger): { status: number; code: string; message: string } {
  if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message };
  if (err instanceof CairnError) {
    const status = STATUS_OF[err.code] ?? 500;
    if (status === 500) logger.error({ err }, 'a dashboard request failed');
    return { status, code: err.code, message: err.message };
  }
  logger.error({ err }, 'a dashboard request failed');
  return { status: 500, code: 'INTERNAL', message: 'the dashboard could not answer this request; the error has been logged' };
}

function checkOptions(options: DashboardOptions): DashboardOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options', `dashboardHandler needs an options object, got ${describe(options)}`);
  }
  if ((options.database === undefined) === (options.client === undefined)) {
    throw new InvalidArgumentError('database', 'dashboardHandler needs either a database URL or a client, not both');
  }
  if (options.database !== undefined && typeof options.database !== 'string') {
    throw new InvalidArgumentError('database', `database must be a URL string, got ${describe(options.database)}`);
  }
  if (options.client !== undefined && !(options.client instanceof Client)) {
    throw new InvalidArgumentError('client', 'client must be a Client or an Engine');
  }
  if (options.client !== undefined && options.schema !== undefined) {
    throw new InvalidArgumentError('schema', 'schema applies to a database URL; a client already has its schema');
  }
  if (options.auth !== undefined && typeof options.auth !== 'function') {
    throw new InvalidArgumentError('auth', `auth must be a function of the request, got ${describe(options.auth)}`);
  }
  return options;
}

/** `/admin/cairn/` → `/admin/cairn`, `/` → ``; refuses paths a link could not be built from. */
function normalizeBase(path: unknown): string {
  if (typeof path !== 'string' || !/^\/([A-Za-z0-9._~!$&'()*+,;=:@%-]+\/?)*$/.test(path)) {
    throw new InvalidArgumentError('basePath', `basePath must be a URL path starting with '/', such as '/admin/cairn', got ${describe(path)}`);
  }
  return path.replace(/\/+$/, '');
}
