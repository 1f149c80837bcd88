import { assertName } from '../engine/validate.js';
import { WORKFLOW_STATUSES, type ListWorkflowsFilter, type WorkflowStatus } from '../types.js';
import { HttpError } from './http.js';

/**
 * The workflows list's query string, read into a `listWorkflows` filter. Every bad value is a 400
 * that says which parameter was wrong and what it takes; empty fields (as a form submits them)
 * mean "no filter".
 */

/** The query parameters the list understands, as a form holds them. */
export const LIST_PARAMS = ['status', 'name', 'queue', 'id', 'executor', 'version', 'parent', 'createdAfter', 'createdBefore', 'order', 'limit'] as const;

export interface ListQuery {
  filter: ListWorkflowsFilter;
  /** Rows per page. */
  limit: number;
  statuses: WorkflowStatus[];
  /** The filter's parameters as given (without paging), to rebuild links. */
  params: URLSearchParams;
  /** Whether this is a later page. */
  paged: boolean;
}

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseListQuery(query: URLSearchParams, now = Date.now()): ListQuery {
  const params = new URLSearchParams();
  const filter: ListWorkflowsFilter = {};
  const text = (key: (typeof LIST_PARAMS)[number]): string | undefined => {
    const values = query.getAll(key).filter((v) => v !== '');
    if (values.length > 1) throw new HttpError(400, 'BAD_FILTER', `${key} may be given once, got ${values.length} values`);
    if (values[0] !== undefined) params.set(key, values[0]);
    return values[0];
  };

  const statuses: WorkflowStatus[] = [];
  for (const s of query.getAll('status')) {
    if (s === '') continue;
    if (!WORKFLOW_STATUSES.includes(s as WorkflowStatus)) {
      throw new HttpError(400, 'BAD_FILTER', `status '${s}' is not one of ${WORKFLOW_STATUSES.join(', ')}`);
    }
    if (!statuses.includes(s as WorkflowStatus)) statuses.push(s as WorkflowStatus);
    params.append('status', s);
  }
  if (statuses.length > 0) filter.status = statuses;

  const name = text('name');
  if (name !== undefined) filter.name = checked('name', name);
  const queue = text('queue');
  if (queue !== undefined) filter.queue = checked('queue', queue);
  const id = text('id');
  if (id !== undefined) filter.idPrefix = checked('id', id);
  const executor = text('executor');
  if (executor !== undefined) filter.executorId = checked('executor', executor);
  const version = text('version');
  if (version !== undefined) filter.appVersion = checked('version', version);
  const parent = text('parent');
  if (parent !== undefined) filter.parentId = checked('parent', parent);
  const after = text('createdAfter');
  if (after !== undefined) filter.createdAfter = time('createdAfter', after, now);
  const before = text('createdBefore');
  if (before !== undefined) filter.createdBefore = time('createdBefore', before, now);

  const order = text('order') ?? 'desc';
  if (order !== 'asc' && order !== 'desc') throw new HttpError(400, 'BAD_FILTER', `order must be 'asc' or 'desc', got '${order}'`);
  filter.order = order;

  const limitText = text('limit');
  let limit = DEFAULT_LIMIT;
  if (limitText !== undefined) {
    if (!/^\d{1,6}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > MAX_LIMIT) {
      throw new HttpError(400, 'BAD_FILTER', `limit must be a whole number from 1 to ${MAX_LIMIT}, got '${limitText}'`);
    }
    limit = Number(limitText);
  }

  const cursor = query.get('after');
  if (cursor !== null && cursor !== '') filter.after = parseCursor(cursor);
  return { filter, limit, statuses, params, paged: filter.after !== undefined };
}

/** The keyset cursor of the row a page ended with: `<createdAt in epoch ms>:<id>`. */
export function cursorOf(w: { createdAt: Date; id: string }): string {
  return `${w.createdAt.getTime()}:${w.id}`;
}

function parseCursor(text: string): { createdAt: Date; id: string } {
  const match = /^(\d{1,16}):([\s\S]+)$/.exec(text);
  if (!match) throw new HttpError(400, 'BAD_FILTER', `after must be a page cursor '<epoch ms>:<workflow id>', as the next-page link gives, got '${clip(text)}'`);
  return { createdAt: new Date(Number(match[1])), id: checked('after', match[2]!) };
}

function checked(key: string, value: string): string {
  try {
    return assertName(key, value);
  } catch (err) {
    throw new HttpError(400, 'BAD_FILTER', (err as Error).message);
  }
}

/** An ISO time (a time without a zone is UTC), or a duration ago: `90s`, `15m`, `1h`, `7d`. */
function time(key: string, text: string, now: number): Date {
  const ago = /^(\d{1,9})([smhd])$/.exec(text);
  if (ago) return new Date(now - Number(ago[1]) * UNITS[ago[2]!]!);
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(text) ? text : `${text}Z`;
  const at = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?)?(Z|[+-]\d{2}:?\d{2})?$/i.test(text) ? new Date(/T/.test(text) ? zoned : text) : new Date(NaN);
  if (Number.isNaN(at.getTime())) {
    throw new HttpError(400, 'BAD_FILTER', `${key} must be an ISO time (2026-01-31T12:00:00Z; UTC when no zone is given) or a duration ago (30m, 1h, 7d), got '${clip(text)}'`);
  }
  return at;
}

function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
