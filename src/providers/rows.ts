import type { WorkflowStatus } from '../types.js';
import type { ClaimedWorkflow, ExecutorRow, HeartbeatResult, ListFilter, QueueDefinition, QueueRow, ScheduleRow, StepRow, VersionRow, WorkflowRow } from './provider.js';

/** Column lists and row mappers shared by the SQL providers (snake_case in SQL, camelCase in TS). */

export const WORKFLOW_COLUMNS =
  'id, name, status, input, output, error, queue, executor_id, app_version, parent_id, recovery_attempts, deadline_at, created_at, started_at, completed_at, priority, dedup_id, partition_key, available_at, trace_context';

/** The columns a queue claim returns (see ClaimedWorkflow), with the two it is ordered by. */
export const CLAIMED_COLUMNS = 'id, name, input, queue, app_version, deadline_at, recovery_attempts, trace_context, priority, enqueue_seq';

/** A column list qualified by a table alias (for UPDATE ... FROM). */
export const qualified = (columns: string, alias: string): string =>
  columns
    .split(', ')
    .map((c) => `${alias}.${c}`)
    .join(', ');

export const STEP_COLUMNS = 'step_id, name, output, error, child_id, attempts, started_at, completed_at';

type Raw = Record<string, unknown>;

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : (v as string));

export function toWorkflowRow(r: Raw): WorkflowRow {
  return {
    id: r.id as string,
    name: r.name as string,
    status: r.status as WorkflowStatus,
    input: strOrNull(r.input),
    output: strOrNull(r.output),
    error: strOrNull(r.error),
    queue: strOrNull(r.queue),
    executorId: strOrNull(r.executor_id),
    appVersion: strOrNull(r.app_version),
    parentId: strOrNull(r.parent_id),
    recoveryAttempts: num(r.recovery_attempts),
    deadlineAt: numOrNull(r.deadline_at),
    createdAt: num(r.created_at),
    startedAt: numOrNull(r.started_at),
    completedAt: numOrNull(r.completed_at),
    priority: num(r.priority ?? 0),
    dedupId: strOrNull(r.dedup_id),
    partitionKey: strOrNull(r.partition_key),
    availableAt: numOrNull(r.available_at),
    traceContext: strOrNull(r.trace_context),
  };
}

function toClaimedWorkflow(r: Raw): ClaimedWorkflow {
  return {
    id: r.id as string,
    name: r.name as string,
    input: strOrNull(r.input),
    queue: strOrNull(r.queue),
    appVersion: strOrNull(r.app_version),
    deadlineAt: numOrNull(r.deadline_at),
    recoveryAttempts: num(r.recovery_attempts ?? 0),
    traceContext: strOrNull(r.trace_context),
  };
}

/**
 * The workflows of one claim in the order they start: (priority, enqueue order). An UPDATE's
 * RETURNING rows come in no particular order on either database.
 */
export function claimedInOrder(rows: Raw[]): ClaimedWorkflow[] {
  return rows
    .sort((a, b) => num(a.priority) - num(b.priority) || num(a.enqueue_seq) - num(b.enqueue_seq))
    .map(toClaimedWorkflow);
}

export function toQueueRow(r: Raw): QueueRow {
  return { ...toQueueDefinition(r), enqueued: num(r.enqueued), delayed: num(r.delayed), running: num(r.running) };
}

export function toQueueDefinition(r: Raw): QueueDefinition {
  const limit = numOrNull(r.rate_limit);
  const periodMs = numOrNull(r.rate_period_ms);
  return {
    name: r.name as string,
    concurrency: numOrNull(r.concurrency),
    workerConcurrency: numOrNull(r.worker_concurrency),
    rateLimit: limit === null || periodMs === null ? null : { limit, periodMs },
    partitioned: r.partitioned === true || r.partitioned === 1,
  };
}

/** Parameters of the queue claim: limits as numbers, with "no limit" as a large one. */
export function claimLimits(q: QueueDefinition, now: number) {
  const NONE = 2_147_483_647;
  return {
    concurrency: q.concurrency ?? NONE,
    rateLimit: q.rateLimit?.limit ?? NONE,
    windowStart: q.rateLimit ? now - q.rateLimit.periodMs : now + 1,
  };
}

/** Groups checkpoint rows (with their workflow_id, in counter order) by workflow; every id asked for gets a list. */
export function stepsByWorkflow(ids: string[], rows: Raw[]): Map<string, StepRow[]> {
  const out = new Map<string, StepRow[]>(ids.map((id) => [id, []]));
  for (const r of rows) out.get(r.workflow_id as string)?.push(toStepRow(r));
  return out;
}

export function toStepRow(r: Raw): StepRow {
  return {
    stepId: num(r.step_id),
    name: r.name as string,
    output: strOrNull(r.output),
    error: strOrNull(r.error),
    childId: strOrNull(r.child_id),
    attempts: num(r.attempts),
    startedAt: num(r.started_at),
    completedAt: num(r.completed_at),
  };
}

/**
 * Builds the parameterised listWorkflows query. `param(i)` renders the i-th placeholder
 * (`$1` on Postgres, `?` on SQLite); `inList(i)` renders membership in the array bound there.
 */
/** How a database spells the parts of a listing query that differ. */
export interface ListDialect {
  /** The placeholder of the i-th parameter (1-based). */
  param(i: number): string;
  /** `column IN (list)` for the list bound as the i-th parameter, without the column. */
  inList(i: number): string;
  /** The bound form of a list of text values. */
  encodeList(values: string[]): unknown;
  /** A condition that `column` starts with `prefix`, binding what it needs with `bind`. */
  startsWith(column: string, prefix: string, bind: (value: unknown) => string): string;
}

/** The workflow listing: every filter is an indexable condition, and `after` pages by keyset. */
export function listWorkflowsQuery(table: string, filter: ListFilter, dialect: ListDialect): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const bind = (v: unknown): string => {
    params.push(v);
    return dialect.param(params.length);
  };
  const bindList = (values: string[]): string => {
    params.push(dialect.encodeList(values));
    return dialect.inList(params.length);
  };
  if (filter.statuses?.length) where.push(`status ${bindList(filter.statuses)}`);
  if (filter.ids !== undefined) where.push(`id ${bindList(filter.ids)}`);
  if (filter.idPrefix !== undefined) where.push(dialect.startsWith('id', filter.idPrefix, bind));
  if (filter.name !== undefined) where.push(`name = ${bind(filter.name)}`);
  if (filter.queue !== undefined) where.push(`queue = ${bind(filter.queue)}`);
  if (filter.executorId !== undefined) where.push(`executor_id = ${bind(filter.executorId)}`);
  if (filter.appVersion !== undefined) where.push(`app_version = ${bind(filter.appVersion)}`);
  if (filter.parentId !== undefined) where.push(`parent_id = ${bind(filter.parentId)}`);
  if (filter.createdAfter !== undefined) where.push(`created_at >= ${bind(filter.createdAfter)}`);
  if (filter.createdBefore !== undefined) where.push(`created_at < ${bind(filter.createdBefore)}`);
  if (filter.completedAfter !== undefined) where.push(`completed_at >= ${bind(filter.completedAfter)}`);
  if (filter.completedBefore !== undefined) where.push(`completed_at < ${bind(filter.completedBefore)}`);
  const desc = filter.order === 'desc';
  if (filter.after !== undefined) {
    // The plain bound on created_at lets the index seek; the row comparison breaks ties by id.
    const { createdAt, id } = filter.after;
    where.push(`created_at ${desc ? '<=' : '>='} ${bind(createdAt)} AND (created_at, id) ${desc ? '<' : '>'} (${bind(createdAt)}, ${bind(id)})`);
  }
  const dir = desc ? 'DESC' : 'ASC';
  let sql = `SELECT ${WORKFLOW_COLUMNS} FROM ${table}`;
  if (where.length) sql += ` WHERE ${where.join(' AND ')}`;
  sql += ` ORDER BY created_at ${dir}, id ${dir}`;
  sql += ` LIMIT ${bind(filter.limit ?? 2_147_483_647)}`;
  if (filter.offset) sql += ` OFFSET ${bind(filter.offset)}`;
  return { sql, params };
}

/** The next instant a queue's dispatcher should look again: a DELAYED workflow due, or a rate-limit slot freed. */
export function nextQueueTime(q: QueueDefinition, row: { delayed_at: unknown; oldest_start: unknown }): number | null {
  const times: number[] = [];
  if (row.delayed_at !== null && row.delayed_at !== undefined) times.push(num(row.delayed_at));
  if (q.rateLimit && row.oldest_start !== null && row.oldest_start !== undefined) times.push(num(row.oldest_start) + q.rateLimit.periodMs);
  return times.length === 0 ? null : Math.min(...times);
}

export function toExecutorRow(r: Raw): ExecutorRow {
  return {
    id: r.id as string,
    hostname: r.hostname as string,
    hostKey: r.host_key as string,
    pid: num(r.pid),
    appVersion: r.app_version as string,
    leaseMs: num(r.lease_ms),
    startedAt: num(r.started_at),
    heartbeatAt: num(r.heartbeat_at),
    stoppedAt: numOrNull(r.stopped_at),
  };
}

/** The heartbeat's row: JSON arrays come back parsed from Postgres and as text from SQLite. */
export function toHeartbeatResult(r: Raw): HeartbeatResult {
  const json = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);
  return {
    registered: num(r.registered) > 0,
    live: num(r.live),
    dead: json(r.dead) as string[],
    unowned: num(r.unowned),
    neighbours: (json(r.neighbours) as Array<[string, unknown, unknown]>).map(([id, pid, startedAt]) => ({ id, pid: num(pid), startedAt: num(startedAt) })),
  };
}

export function toVersionRow(r: Raw): VersionRow {
  return {
    appVersion: r.app_version as string,
    executors: num(r.executors),
    pending: num(r.pending),
    firstSeenAt: num(r.first_seen_at),
    lastSeenAt: num(r.last_seen_at),
  };
}

export const SCHEDULE_COLUMNS = 'name, cron, workflow_name, timezone, queue, missed, paused, last_tick_at, created_at, updated_at';

export function toScheduleRow(r: Raw): ScheduleRow {
  return {
    name: r.name as string,
    cron: r.cron as string,
    workflowName: r.workflow_name as string,
    timezone: r.timezone as string,
    queue: strOrNull(r.queue),
    missed: r.missed as ScheduleRow['missed'],
    paused: r.paused === true || r.paused === 1,
    lastTickAt: numOrNull(r.last_tick_at),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

/** The definition columns of a schedule, in the order the Postgres statements take them ($1-$8). */
export function scheduleParams(s: ScheduleRow): unknown[] {
  return [s.name, s.cron, s.workflowName, s.timezone, s.queue, s.missed, s.paused, s.lastTickAt];
}
