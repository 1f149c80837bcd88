/**
 * Checks the arguments of the listing and clean-up calls (`listWorkflows`, `gc`) and turns them
 * into what the provider takes: instants as epoch ms, statuses as a list, nothing left unchecked.
 */
import type { ListFilter } from '../providers/provider.js';
import { WORKFLOW_STATUSES, type GcOptions, type ListWorkflowsFilter, type WorkflowStatus } from '../types.js';
import { InvalidArgumentError } from './errors.js';
import { isTerminal } from './info.js';
import { assertDate, assertDuration, assertFunction, assertName, assertNonNegativeInteger, assertOptions, assertPositiveInteger, describe } from './validate.js';

/** Most ids one `listWorkflows({ ids })` call may name. */
export const MAX_LISTED_IDS = 1_000;

/** What `gc` deletes unless told otherwise: a parked MAX_RECOVERY_ATTEMPTS_EXCEEDED workflow may still be resumed. */
export const GC_STATUSES: readonly WorkflowStatus[] = ['SUCCESS', 'ERROR', 'CANCELLED'];

export function listFilter(filter: ListWorkflowsFilter): ListFilter {
  assertOptions('listWorkflows filter', filter);
  const statuses = filter.status === undefined ? undefined : statusList('status', Array.isArray(filter.status) ? filter.status : [filter.status]);
  if (filter.order !== undefined && filter.order !== 'asc' && filter.order !== 'desc') {
    throw new InvalidArgumentError('order', `order must be 'asc' or 'desc', got ${describe(filter.order)}`);
  }
  const query: ListFilter = { order: filter.order ?? 'asc' };
  if (statuses) query.statuses = statuses;
  if (filter.ids !== undefined) query.ids = idList(filter.ids);
  for (const key of ['name', 'queue', 'idPrefix', 'executorId', 'appVersion', 'parentId'] as const) {
    if (filter[key] !== undefined) query[key] = assertName(key, filter[key]);
  }
  for (const key of ['createdAfter', 'createdBefore', 'completedAfter', 'completedBefore'] as const) {
    if (filter[key] !== undefined) query[key] = assertDate(key, filter[key]);
  }
  if (filter.limit !== undefined) query.limit = assertNonNegativeInteger('limit', filter.limit);
  if (filter.offset !== undefined) query.offset = assertNonNegativeInteger('offset', filter.offset);
  if (filter.after !== undefined) {
    const after: unknown = filter.after;
    if (typeof after !== 'object' || after === null) {
      throw new InvalidArgumentError('after', `after must be the last workflow of the previous page (an object with createdAt and id), got ${describe(after)}`);
    }
    const { createdAt, id } = after as { createdAt: unknown; id: unknown };
    query.after = { createdAt: assertDate('after.createdAt', createdAt), id: assertName('after.id', id) };
  }
  return query;
}

/** The cutoff, statuses and batch size of a `gc` call, checked. */
export function gcRequest(options: GcOptions, now: number): { cutoff: number; statuses: WorkflowStatus[]; batchSize: number; onProgress?: (deleted: number) => void } {
  assertOptions('gc options', options);
  if (options === undefined || options.olderThan === undefined) {
    throw new InvalidArgumentError('olderThan', 'gc needs options with olderThan: a Date, or an age in milliseconds');
  }
  let cutoff: number;
  if (typeof options.olderThan === 'number') {
    cutoff = now - assertDuration('olderThan', options.olderThan);
  } else {
    cutoff = assertDate('olderThan', options.olderThan);
    if (cutoff > now) {
      throw new InvalidArgumentError('olderThan', `olderThan ${options.olderThan.toISOString()} is in the future; gc deletes workflows that finished before it, so it must be a past instant`);
    }
  }
  const statuses = options.statuses === undefined ? [...GC_STATUSES] : statusList('statuses', options.statuses);
  for (const s of statuses) {
    if (!isTerminal(s)) throw new InvalidArgumentError('statuses', `gc deletes only finished workflows, so statuses cannot include ${s}`);
  }
  if (statuses.length === 0) throw new InvalidArgumentError('statuses', 'statuses must name at least one finished status');
  const batchSize = options.batchSize === undefined ? 1_000 : assertPositiveInteger('batchSize', options.batchSize, 100_000);
  if (options.onProgress !== undefined) assertFunction('onProgress', options.onProgress);
  return { cutoff, statuses, batchSize, ...(options.onProgress && { onProgress: options.onProgress }) };
}

function statusList(argument: string, values: unknown): WorkflowStatus[] {
  if (!Array.isArray(values)) throw new InvalidArgumentError(argument, `${argument} must be an array of statuses, got ${describe(values)}`);
  for (const s of values) {
    if (!WORKFLOW_STATUSES.includes(s as WorkflowStatus)) {
      throw new InvalidArgumentError(argument, `status ${describe(s)} is not one of ${WORKFLOW_STATUSES.join(', ')}`);
    }
  }
  return values as WorkflowStatus[];
}

function idList(values: unknown): string[] {
  if (!Array.isArray(values)) throw new InvalidArgumentError('ids', `ids must be an array of workflow ids, got ${describe(values)}`);
  if (values.length > MAX_LISTED_IDS) throw new InvalidArgumentError('ids', `ids names ${values.length} workflows; at most ${MAX_LISTED_IDS} per call`);
  return values.map((id, i) => assertName(`ids[${i}]`, id));
}
