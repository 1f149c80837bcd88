import { createHash } from 'node:crypto';
import { CLAIMED_COLUMNS, qualified, SCHEDULE_COLUMNS, STEP_COLUMNS, WORKFLOW_COLUMNS } from '../rows.js';

/**
 * The tail of a statement that ends workflows (a `done` CTE returning `id, queue`): it notifies
 * the ends itself, in one notification per 6,000 bytes of keys on channel `channel` (a
 * parameter), a JSON array of 'w:<id>' for each workflow ended and 'q:<queue>' for each queue with
 * a slot freed, and returns the ids it ended. Migration 5 keeps the row trigger out of ends.
 */
function notifyEnds(channel: string): string {
  return `, keys AS (
         SELECT 'w:' || id AS k FROM done
         UNION SELECT 'q:' || queue FROM done WHERE queue IS NOT NULL
       ), sized AS (
         SELECT k, sum(octet_length(to_json(k)::text) + 2) OVER (ORDER BY k ROWS UNBOUNDED PRECEDING) AS upto FROM keys
       ), sent AS (
         SELECT pg_notify(${channel}, json_agg(k)::text) FROM sized GROUP BY upto / 6000
       )
       SELECT id FROM done WHERE (SELECT count(*) FROM sent) >= 0`;
}

/** Now on the database's clock, in epoch ms: executors on several machines agree on who is late. */
const NOW_MS = `(extract(epoch FROM clock_timestamp()) * 1000)::bigint`;

/**
 * Every statement the Postgres provider sends, named so node-postgres prepares each once per
 * connection. `s` is the quoted schema.
 */
export function postgresStatements(schema: string) {
  const s = `"${schema}"`;
  // Postgres cuts identifiers, prepared statement names included, at 63 bytes: with a long schema
  // spliced in, two names could be cut into one. A short hash of the schema keeps every name short
  // and distinct per schema.
  const tag = createHash('sha256').update(schema).digest('hex').slice(0, 12);
  const named = (name: string, text: string) => {
    const full = `cairn_${tag}_${name}`;
    if (full.length > 63) throw new Error(`statement name '${full}' is longer than Postgres's 63-byte limit`);
    return { name: full, text };
  };
  // The checkpoint insert, parameters $1-$9 as in recordStep and the owner at `owner`, as a CTE
  // other writes can hang off.
  // Records that an app version was seen now (a no-op for a null or empty one): a CTE of the
  // statements that register and heartbeat an executor.
  const SEEN_VERSION = (v: string) => `INSERT INTO ${s}.versions (app_version, first_seen_at, last_seen_at)
         SELECT ${v}, ${NOW_MS}, ${NOW_MS} WHERE ${v} IS NOT NULL AND ${v} <> ''
         ON CONFLICT (app_version) DO UPDATE SET last_seen_at = excluded.last_seen_at`;
  const stepCte = (owner: string, extra = '') => `step AS (
      INSERT INTO ${s}.steps (workflow_id, step_id, name, output, error, child_id, attempts, started_at, completed_at)
      SELECT $1, $2::integer, $3, $4, $5, $6, $9::integer, $7::bigint, $8::bigint
      WHERE EXISTS (SELECT 1 FROM ${s}.workflows WHERE id = $1 AND status = 'PENDING' AND executor_id = ${owner})${extra}
      ON CONFLICT (workflow_id, step_id) DO NOTHING
      RETURNING step_id)`;
  return {
    channel: `cairn_${schema}`,
    insertWorkflow: named(
      'insert_workflow',
      `INSERT INTO ${s}.workflows (id, name, status, input, queue, executor_id, app_version, parent_id, deadline_at,
         created_at, started_at, updated_at, priority, dedup_id, partition_key, available_at, trace_context, enqueue_seq)
       VALUES ($1, $2, $10, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $10 = 'PENDING' THEN $9::bigint END, $9, $11, $12, $13, $14, $15,
         CASE WHEN $4::text IS NULL THEN NULL ELSE nextval('${s}.enqueue_seq') END)
       ON CONFLICT DO NOTHING`,
    ),
    // Group commit of starts: many workflows in one statement; a row whose id (or dedupId) is
    // taken is skipped, and the caller learns why from the ids returned.
    insertWorkflows: named(
      'insert_workflows',
      `INSERT INTO ${s}.workflows (id, name, status, input, queue, executor_id, app_version, parent_id, deadline_at,
         created_at, started_at, updated_at, priority, dedup_id, partition_key, available_at, trace_context, enqueue_seq)
       SELECT i.id, i.name, i.status, i.input, i.queue, i.executor_id, i.app_version, i.parent_id, i.deadline_at,
         i.created_at, CASE WHEN i.status = 'PENDING' THEN i.created_at END, i.created_at, i.priority, i.dedup_id,
         i.partition_key, i.available_at, i.trace_context, CASE WHEN i.queue IS NULL THEN NULL ELSE nextval('${s}.enqueue_seq') END
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[],
         $10::text[], $11::integer[], $12::text[], $13::text[], $14::bigint[], $15::text[])
         AS i(id, name, input, queue, executor_id, app_version, parent_id, deadline_at, created_at, status, priority, dedup_id,
           partition_key, available_at, trace_context)
       ON CONFLICT DO NOTHING
       RETURNING id`,
    ),
    getWorkflow: named('get_workflow', `SELECT ${WORKFLOW_COLUMNS} FROM ${s}.workflows WHERE id = $1`),
    getDedupHolder: named(
      'get_dedup_holder',
      `SELECT ${WORKFLOW_COLUMNS} FROM ${s}.workflows
       WHERE queue = $1 AND dedup_id = $2 AND status IN ('ENQUEUED', 'DELAYED', 'PENDING')`,
    ),
    upsertQueue: named(
      'upsert_queue',
      `INSERT INTO ${s}.queues (name, concurrency, worker_concurrency, rate_limit, rate_period_ms, partitioned, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency, worker_concurrency = excluded.worker_concurrency,
         rate_limit = excluded.rate_limit, rate_period_ms = excluded.rate_period_ms, partitioned = excluded.partitioned,
         updated_at = excluded.updated_at`,
    ),
    getQueue: named('get_queue', `SELECT * FROM ${s}.queues WHERE name = $1`),
    lockQueue: named('lock_queue', `SELECT pg_advisory_xact_lock(hashtext($1))`),
    promoteDelayed: named(
      'promote_delayed',
      `UPDATE ${s}.workflows SET status = 'ENQUEUED', debounce_key = NULL, updated_at = $2
       WHERE queue = $1 AND status = 'DELAYED' AND available_at <= $2`,
    ),
    // Claim for a queue without partitions: the index gives the next rows in order directly.
    claim: named(
      'claim',
      `WITH chosen AS (
         SELECT id FROM ${s}.workflows
         WHERE queue = $1 AND status = 'ENQUEUED' AND name = ANY($3::text[])
         ORDER BY priority, enqueue_seq
         LIMIT greatest(0, least(
           $6::bigint,
           $4::bigint - (SELECT count(*) FROM ${s}.workflows WHERE queue = $1 AND status = 'PENDING'),
           $5::bigint - (SELECT count(*) FROM ${s}.workflows WHERE queue = $1 AND started_at >= $2)))
         FOR UPDATE SKIP LOCKED
       )
       UPDATE ${s}.workflows w SET status = 'PENDING', executor_id = $7, app_version = CASE WHEN w.recovery_attempts > 0 THEN w.app_version ELSE $8 END, started_at = $9, updated_at = $9
       FROM chosen WHERE w.id = chosen.id
       RETURNING ${qualified(CLAIMED_COLUMNS, 'w')}`,
    ),
    // Claim for a partitioned queue: the limits apply to each partition key on its own.
    claimPartitioned: named(
      'claim_partitioned',
      `WITH running AS (
         SELECT partition_key AS pk, count(*) AS n FROM ${s}.workflows WHERE queue = $1 AND status = 'PENDING' GROUP BY 1
       ), recent AS (
         SELECT partition_key AS pk, count(*) AS n FROM ${s}.workflows WHERE queue = $1 AND started_at >= $2 GROUP BY 1
       ), ready AS (
         SELECT id, partition_key AS pk, priority, enqueue_seq,
                row_number() OVER (PARTITION BY partition_key ORDER BY priority, enqueue_seq) AS rn
         FROM ${s}.workflows WHERE queue = $1 AND status = 'ENQUEUED' AND name = ANY($3::text[])
       ), chosen AS (
         SELECT r.id FROM ready r
         LEFT JOIN running u ON u.pk = r.pk LEFT JOIN recent t ON t.pk = r.pk
         WHERE r.rn <= least($4::bigint - coalesce(u.n, 0), $5::bigint - coalesce(t.n, 0))
         ORDER BY r.priority, r.enqueue_seq
         LIMIT $6
       ), locked AS (
         SELECT w.id FROM ${s}.workflows w JOIN chosen c ON c.id = w.id WHERE w.status = 'ENQUEUED' FOR UPDATE OF w SKIP LOCKED
       )
       UPDATE ${s}.workflows w SET status = 'PENDING', executor_id = $7, app_version = CASE WHEN w.recovery_attempts > 0 THEN w.app_version ELSE $8 END, started_at = $9, updated_at = $9
       FROM locked WHERE w.id = locked.id
       RETURNING ${qualified(CLAIMED_COLUMNS, 'w')}`,
    ),
    nextQueueTime: named(
      'next_queue_time',
      `SELECT (SELECT min(available_at) FROM ${s}.workflows WHERE queue = $1 AND status = 'DELAYED') AS delayed_at,
              (SELECT min(started_at) FROM ${s}.workflows WHERE queue = $1 AND started_at >= $2) AS oldest_start`,
    ),
    debounce: named(
      'debounce',
      `INSERT INTO ${s}.workflows (id, name, status, input, queue, parent_id, created_at, updated_at, priority,
         partition_key, available_at, debounce_key, enqueue_seq)
       VALUES ($1, $2, 'DELAYED', $3, $4, $5, $6, $6, $7, $8, $6::bigint + least($9::bigint, $11::bigint), $10, nextval('${s}.enqueue_seq'))
       ON CONFLICT (queue, debounce_key) WHERE debounce_key IS NOT NULL AND status = 'DELAYED'
       DO UPDATE SET input = excluded.input, updated_at = excluded.updated_at,
         available_at = least(excluded.available_at, ${s}.workflows.created_at + $11::bigint)
       RETURNING id`,
    ),
    // A lone end notifies from its RETURNING list: the same one-array payload as a batch, without
    // the CTE, which costs a single-row end about a sixth of a commit.
    completeWorkflow: named(
      'complete_workflow',
      `UPDATE ${s}.workflows SET status = $2, output = $3, error = $4, completed_at = $5, updated_at = $5
       WHERE id = $1 AND status = 'PENDING' AND executor_id = $7
       RETURNING pg_notify($6, CASE WHEN queue IS NULL THEN json_build_array('w:' || id) ELSE json_build_array('w:' || id, 'q:' || queue) END::text)`,
    ),
    // Group commit of workflow ends: each row still only ends a workflow that is PENDING.
    completeWorkflows: named(
      'complete_workflows',
      `WITH done AS (
         UPDATE ${s}.workflows w SET status = i.status, output = i.output, error = i.error, completed_at = i.completed_at, updated_at = i.completed_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $7::text[]) AS i(id, status, output, error, completed_at, owner)
         WHERE w.id = i.id AND w.status = 'PENDING' AND w.executor_id = i.owner
         RETURNING w.id, w.queue
       )${notifyEnds('$6')}`,
    ),
    // The checkpoint: one statement that also checks the workflow is still PENDING (cancellation)
    // and that no other execution holds this counter (conflict).
    recordStep: named(
      'record_step',
      `INSERT INTO ${s}.steps (workflow_id, step_id, name, output, error, child_id, attempts, started_at, completed_at)
       SELECT $1, $2::integer, $3, $4, $5, $6, $9::integer, $7::bigint, $8::bigint
       WHERE EXISTS (SELECT 1 FROM ${s}.workflows WHERE id = $1 AND status = 'PENDING' AND executor_id = $10)
       ON CONFLICT (workflow_id, step_id) DO NOTHING`,
    ),
    cancelWorkflow: named(
      'cancel_workflow',
      `WITH RECURSIVE tree AS (
         SELECT id FROM ${s}.workflows WHERE id = $1
         UNION SELECT w.id FROM ${s}.workflows w JOIN tree t ON w.parent_id = t.id
       )
       UPDATE ${s}.workflows SET status = 'CANCELLED', error = CASE WHEN id = $1 THEN $2 ELSE NULL END,
              completed_at = $3, updated_at = $3
       WHERE id IN (SELECT id FROM tree) AND status IN ('PENDING', 'ENQUEUED', 'DELAYED')
       RETURNING id`,
    ),
    recordSend: named(
      'record_send',
      `WITH dest AS (SELECT 1 FROM ${s}.workflows WHERE id = $10),
       ${stepCte('$13', ' AND EXISTS (SELECT 1 FROM dest)')},
       msg AS (INSERT INTO ${s}.messages (destination_id, topic, body, created_at) SELECT $10, $11, $12, $8::bigint FROM step RETURNING 1)
       SELECT (SELECT count(*) FROM dest)::int AS dest, (SELECT count(*) FROM msg)::int AS done`,
    ),
    recordSetEvent: named(
      'record_set_event',
      `WITH ${stepCte('$12')}
       INSERT INTO ${s}.events (workflow_id, key, step_id, value, updated_at) SELECT $1, $10, step_id, $11, $8::bigint FROM step`,
    ),
    recordStream: named(
      'record_stream',
      `WITH ${stepCte('$13')}
       INSERT INTO ${s}.streams (workflow_id, key, offset_id, value, closed, created_at)
       SELECT $1, $10, step_id, $11, $12::boolean, $8::bigint FROM step`,
    ),
    // Takes the oldest unconsumed message and records it as the checkpoint; the message is marked
    // consumed only if the checkpoint was written, all in one statement.
    recordRecv: named(
      'record_recv',
      `WITH m AS (
         SELECT seq, body FROM ${s}.messages
         WHERE destination_id = $1 AND topic = $6 AND consumed_at IS NULL
         ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED
       ),
       step AS (
         INSERT INTO ${s}.steps (workflow_id, step_id, name, output, error, child_id, attempts, started_at, completed_at)
         SELECT $1, $2::integer, $3, m.body, NULL, NULL, 1, $4::bigint, $5::bigint FROM m
         WHERE EXISTS (SELECT 1 FROM ${s}.workflows WHERE id = $1 AND status = 'PENDING' AND executor_id = $7)
         ON CONFLICT (workflow_id, step_id) DO NOTHING
         RETURNING output
       ),
       used AS (
         UPDATE ${s}.messages AS msg SET consumed_at = $5::bigint FROM m
         WHERE msg.seq = m.seq AND EXISTS (SELECT 1 FROM step) RETURNING 1
       )
       SELECT (SELECT count(*) FROM m)::int AS found, (SELECT output FROM step) AS body`,
    ),
    sendMessage: named(
      'send_message',
      `WITH dest AS (SELECT 1 FROM ${s}.workflows WHERE id = $1),
       ins AS (
         INSERT INTO ${s}.messages (destination_id, topic, body, idempotency_key, created_at)
         SELECT $1, $2, $3, $4, $5::bigint FROM dest
         ON CONFLICT (destination_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING 1
       )
       SELECT (SELECT count(*) FROM dest)::int AS dest, (SELECT count(*) FROM ins)::int AS sent`,
    ),
    listSchedules: named('list_schedules', `SELECT ${SCHEDULE_COLUMNS} FROM ${s}.schedules ORDER BY name`),
    getSchedule: named('get_schedule', `SELECT ${SCHEDULE_COLUMNS} FROM ${s}.schedules WHERE name = $1`),
    insertSchedule: named(
      'insert_schedule',
      `INSERT INTO ${s}.schedules (${SCHEDULE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (name) DO NOTHING`,
    ),
    updateSchedule: named(
      'update_schedule',
      `UPDATE ${s}.schedules SET cron = $2, workflow_name = $3, timezone = $4, queue = $5, missed = $6, paused = $7,
         last_tick_at = $8, updated_at = $9
       WHERE name = $1`,
    ),
    deleteSchedule: named('delete_schedule', `DELETE FROM ${s}.schedules WHERE name = $1`),
    markScheduleTick: named(
      'mark_schedule_tick',
      `UPDATE ${s}.schedules SET last_tick_at = $2 WHERE name = $1 AND (last_tick_at IS NULL OR last_tick_at < $2)`,
    ),
    // An event's value is the one its latest setEvent wrote.
    getEvent: named(
      'get_event',
      `SELECT value FROM ${s}.events WHERE workflow_id = $1 AND key = $2 ORDER BY step_id DESC LIMIT 1`,
    ),
    readStream: named(
      'read_stream',
      `SELECT offset_id, value, closed FROM ${s}.streams WHERE workflow_id = $1 AND key = $2 AND offset_id > $3 ORDER BY offset_id`,
    ),
    resumeWorkflow: named(
      'resume_workflow',
      `UPDATE ${s}.workflows
       SET status = 'PENDING', executor_id = $2, app_version = coalesce(app_version, $3), output = NULL, error = NULL, deadline_at = NULL,
           recovery_attempts = 0, completed_at = NULL, started_at = $4, updated_at = $4
       WHERE id = $1 AND status IN ('CANCELLED', 'ERROR', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')`,
    ),
    // A retry: the workflow PENDING again, and what its steps from $5 on recorded dropped, at once.
    retryWorkflow: named(
      'retry_workflow',
      `WITH w AS (
         UPDATE ${s}.workflows
         SET status = 'PENDING', executor_id = $2, app_version = coalesce(app_version, $3), output = NULL, error = NULL, deadline_at = NULL,
             recovery_attempts = 0, completed_at = NULL, started_at = $4, updated_at = $4
         WHERE id = $1 AND status IN ('CANCELLED', 'ERROR', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
         RETURNING ${WORKFLOW_COLUMNS}
       ), steps AS (
         DELETE FROM ${s}.steps WHERE workflow_id = (SELECT id FROM w) AND (step_id >= $5 OR step_id <= -$5::integer)
       ), events AS (
         DELETE FROM ${s}.events WHERE workflow_id = (SELECT id FROM w) AND step_id >= $5
       ), streams AS (
         DELETE FROM ${s}.streams WHERE workflow_id = (SELECT id FROM w) AND offset_id >= $5
       )
       SELECT ${WORKFLOW_COLUMNS} FROM w`,
    ),
    // A fork's copy: checkpoints before the fork point (and the wait deadlines of those, stored
    // under their negated step ids), with the events and stream entries they wrote.
    copySteps: named(
      'copy_steps',
      `WITH steps AS (
         INSERT INTO ${s}.steps (workflow_id, step_id, name, output, error, child_id, attempts, started_at, completed_at)
         SELECT $1, step_id, name, output, error, child_id, attempts, started_at, completed_at
         FROM ${s}.steps WHERE workflow_id = $2 AND step_id < $3 AND step_id > -$3
       ), events AS (
         INSERT INTO ${s}.events (workflow_id, key, step_id, value, updated_at)
         SELECT $1, key, step_id, value, updated_at FROM ${s}.events WHERE workflow_id = $2 AND step_id < $3
       )
       INSERT INTO ${s}.streams (workflow_id, key, offset_id, value, closed, created_at)
       SELECT $1, key, offset_id, value, closed, created_at FROM ${s}.streams WHERE workflow_id = $2 AND offset_id < $3`,
    ),
    // The checkpoint of a step whose body finished after its workflow was cancelled: its effect
    // happened, so it is kept, and a resume returns it instead of running the body again.
    recordCancelledStep: named(
      'record_cancelled_step',
      `INSERT INTO ${s}.steps (workflow_id, step_id, name, output, error, child_id, attempts, started_at, completed_at)
       SELECT $1, $2::integer, $3, $4, $5, $6, $9::integer, $7::bigint, $8::bigint
       WHERE EXISTS (SELECT 1 FROM ${s}.workflows WHERE id = $1 AND status = 'CANCELLED')
       ON CONFLICT (workflow_id, step_id) DO NOTHING`,
    ),
    resetRecoveryAttempts: named('reset_recovery_attempts', `UPDATE ${s}.workflows SET recovery_attempts = 0 WHERE id = $1`),
    resetRecoveryAttemptsOf: named(
      'reset_recovery_attempts_of',
      `UPDATE ${s}.workflows SET recovery_attempts = 0 WHERE id = ANY($1::text[])`,
    ),
    // Group commit: many checkpoints in one statement, each row keeping its own PENDING and conflict checks.
    recordSteps: named(
      'record_steps',
      `INSERT INTO ${s}.steps (workflow_id, step_id, name, output, error, child_id, attempts, started_at, completed_at)
       SELECT i.workflow_id, i.step_id, i.name, i.output, i.error, i.child_id, i.attempts, i.started_at, i.completed_at
       FROM unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[], $9::integer[],
         $10::text[])
         AS i(workflow_id, step_id, name, output, error, child_id, started_at, completed_at, attempts, owner)
       WHERE EXISTS (SELECT 1 FROM ${s}.workflows w WHERE w.id = i.workflow_id AND w.status = 'PENDING' AND w.executor_id = i.owner)
       ON CONFLICT (workflow_id, step_id) DO NOTHING
       RETURNING workflow_id, step_id`,
    ),
    getStep: named('get_step', `SELECT ${STEP_COLUMNS} FROM ${s}.steps WHERE workflow_id = $1 AND step_id = $2`),
    getStatus: named('get_status', `SELECT status, executor_id FROM ${s}.workflows WHERE id = $1`),
    listSteps: named('list_steps', `SELECT ${STEP_COLUMNS} FROM ${s}.steps WHERE workflow_id = $1 ORDER BY step_id`),
    listStepsOf: named(
      'list_steps_of',
      `SELECT workflow_id, ${STEP_COLUMNS} FROM ${s}.steps WHERE workflow_id = ANY($1::text[]) ORDER BY workflow_id, step_id`,
    ),
    claimForRecovery: named(
      'claim_for_recovery',
      `UPDATE ${s}.workflows
       SET recovery_attempts = recovery_attempts + 1,
           status = CASE WHEN recovery_attempts + 1 > $4 THEN 'MAX_RECOVERY_ATTEMPTS_EXCEEDED' ELSE status END,
           completed_at = CASE WHEN recovery_attempts + 1 > $4 THEN $5 ELSE completed_at END,
           updated_at = $5
       WHERE status = 'PENDING' AND executor_id = $1
         AND name = ANY($2::text[]) AND NOT (id = ANY($3::text[]))
       RETURNING ${WORKFLOW_COLUMNS}`,
    ),
    unknownPending: named(
      'unknown_pending',
      `SELECT ${WORKFLOW_COLUMNS} FROM ${s}.workflows
       WHERE status = 'PENDING' AND executor_id = $1 AND NOT (name = ANY($2::text[]))`,
    ),
    registerExecutor: named(
      'register_executor',
      `WITH seen AS (${SEEN_VERSION('$5::text')})
       INSERT INTO ${s}.executors (id, hostname, host_key, pid, app_version, lease_ms, started_at, heartbeat_at, stopped_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, ${NOW_MS}, NULL)
       ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname, host_key = excluded.host_key, pid = excluded.pid,
         app_version = excluded.app_version, lease_ms = excluded.lease_ms, started_at = excluded.started_at,
         heartbeat_at = excluded.heartbeat_at, stopped_at = NULL, adoptions = 0`,
    ),
    // The heartbeat: renews this executor's lease, forgets executors dead for a day with nothing
    // left to adopt, and reports the live count, the dead executors that still own PENDING
    // workflows, and this host's other running executors (whose pids can be checked).
    heartbeat: named(
      'heartbeat',
      `WITH seen AS (${SEEN_VERSION('$3::text')}), me AS (
         UPDATE ${s}.executors SET heartbeat_at = ${NOW_MS}, stopped_at = NULL, adoptions = 0, app_version = coalesce($3, app_version)
         WHERE id = $1 RETURNING id
       ), gone AS (
         DELETE FROM ${s}.executors e
         WHERE e.id <> $1 AND coalesce(e.stopped_at, e.heartbeat_at + e.lease_ms) < ${NOW_MS} - 86400000
           AND NOT EXISTS (SELECT 1 FROM ${s}.workflows w WHERE w.status = 'PENDING' AND w.executor_id = e.id)
         RETURNING 1
       )
       SELECT (SELECT count(*) FROM me)::int AS registered,
         (SELECT count(*) FROM ${s}.executors WHERE id <> $1 AND stopped_at IS NULL AND heartbeat_at + lease_ms >= ${NOW_MS})::int + 1 AS live,
         (SELECT coalesce(json_agg(e.id), '[]') FROM ${s}.executors e
          WHERE e.id <> $1 AND (e.stopped_at IS NOT NULL OR e.heartbeat_at + e.lease_ms < ${NOW_MS})
            AND EXISTS (SELECT 1 FROM ${s}.workflows w WHERE w.status = 'PENDING' AND w.executor_id = e.id)) AS dead,
         (SELECT coalesce(json_agg(json_build_array(e.id, e.pid, e.started_at)), '[]') FROM ${s}.executors e
          WHERE e.id <> $1 AND e.host_key = $2 AND e.stopped_at IS NULL) AS neighbours,
         (SELECT count(*) FROM ${s}.workflows WHERE status = 'PENDING' AND executor_id IS NULL AND name = ANY($4::text[]) AND NOT (id = ANY($5::text[])))::int AS unowned,
         (SELECT count(*) FROM gone)::int AS forgotten`,
    ),
    stopExecutors: named(
      'stop_executors',
      `UPDATE ${s}.executors SET stopped_at = ${NOW_MS} WHERE id = ANY($1::text[]) AND stopped_at IS NULL`,
    ),
    listExecutors: named(
      'list_executors',
      `SELECT e.id, e.hostname, e.host_key, e.pid, e.app_version, e.lease_ms, e.started_at, e.heartbeat_at, e.stopped_at,
         (SELECT count(*) FROM ${s}.workflows w WHERE w.status = 'PENDING' AND w.executor_id = e.id)::int AS pending,
         ${NOW_MS} AS now
       FROM ${s}.executors e ORDER BY e.started_at, e.id`,
    ),
    // A dead executor's queued workflows go back to their queue, keeping their place and their
    // checkpoints; the claim that takes them again counts them against the queue's limits.
    requeueOrphans: named(
      'requeue_orphans',
      `UPDATE ${s}.workflows
       SET status = CASE WHEN recovery_attempts + 1 > $2 THEN 'MAX_RECOVERY_ATTEMPTS_EXCEEDED' ELSE 'ENQUEUED' END,
           completed_at = CASE WHEN recovery_attempts + 1 > $2 THEN $3::bigint END,
           executor_id = NULL, recovery_attempts = recovery_attempts + 1, updated_at = $3
       WHERE status = 'PENDING' AND queue IS NOT NULL AND executor_id = ANY($1::text[])`,
    ),
    // Counts an adoption sweep on the dead executors and returns how many live executors are still
    // to take their share: the live count less the sweeps made so far (at least 1, this one).
    countAdoption: named(
      'count_adoption',
      `WITH before AS (SELECT coalesce(min(adoptions), 0) AS n FROM ${s}.executors WHERE id = ANY($1::text[])),
       counted AS (UPDATE ${s}.executors SET adoptions = adoptions + 1 WHERE id = ANY($1::text[]) RETURNING 1)
       SELECT greatest(1, $2::integer - (SELECT n FROM before))::int AS sharers, (SELECT count(*) FROM counted)::int AS counted`,
    ),
    // A share of the workflows nobody runs (those of dead executors, and those left unowned by an
    // executor whose code diverged from their history): 1/$4 of those this executor can run, so the
    // live executors split the work between them. Any app version: the replay decides.
    adoptOrphans: named(
      'adopt_orphans',
      `UPDATE ${s}.workflows
       SET executor_id = $1, recovery_attempts = recovery_attempts + 1,
           status = CASE WHEN recovery_attempts + 1 > $6 THEN 'MAX_RECOVERY_ATTEMPTS_EXCEEDED' ELSE status END,
           completed_at = CASE WHEN recovery_attempts + 1 > $6 THEN $7 ELSE completed_at END,
           updated_at = $7
       WHERE status = 'PENDING' AND id IN (
         SELECT id FROM ${s}.workflows
         WHERE status = 'PENDING' AND (executor_id = ANY($2::text[]) OR executor_id IS NULL) AND name = ANY($3::text[])
           AND NOT (id = ANY($5::text[]))
         ORDER BY created_at, id
         LIMIT (SELECT ceil(count(*)::numeric / $4::integer) FROM ${s}.workflows
                WHERE status = 'PENDING' AND (executor_id = ANY($2::text[]) OR executor_id IS NULL) AND name = ANY($3::text[])
                  AND NOT (id = ANY($5::text[])))
         FOR UPDATE SKIP LOCKED)
       RETURNING ${WORKFLOW_COLUMNS}`,
    ),
    // A workflow whose replay diverged from its history here: handed back, unowned, under the
    // version that recorded it, its recovery not counted. Fenced on the owner.
    releaseWorkflow: named(
      'release_workflow',
      `UPDATE ${s}.workflows SET executor_id = NULL, app_version = $3, recovery_attempts = greatest(recovery_attempts - 1, 0), updated_at = $4
       WHERE id = $1 AND executor_id = $2 AND status = 'PENDING'`,
    ),
    // A workflow of another version whose replay reached its first new call without diverging.
    setAppVersion: named(
      'set_app_version',
      `UPDATE ${s}.workflows SET app_version = $2 WHERE id = $1 AND executor_id = $3 AND status = 'PENDING'`,
    ),
    // Every version seen, with its live executors and PENDING workflows; versions only PENDING
    // workflows mention (stamped by a process that never heartbeat) are included.
    listVersions: named(
      'list_versions',
      `WITH pending AS (
         SELECT app_version, count(*)::int AS n, min(created_at) AS first_at, max(updated_at) AS last_at
         FROM ${s}.workflows WHERE status = 'PENDING' AND app_version IS NOT NULL AND app_version <> '' GROUP BY app_version
       ), live AS (
         SELECT app_version, count(*)::int AS n FROM ${s}.executors
         WHERE stopped_at IS NULL AND heartbeat_at + lease_ms >= ${NOW_MS} GROUP BY app_version
       )
       SELECT coalesce(v.app_version, p.app_version) AS app_version,
         coalesce(l.n, 0) AS executors, coalesce(p.n, 0) AS pending,
         coalesce(v.first_seen_at, p.first_at) AS first_seen_at, coalesce(v.last_seen_at, p.last_at) AS last_seen_at
       FROM ${s}.versions v
       FULL JOIN pending p ON p.app_version = v.app_version
       LEFT JOIN live l ON l.app_version = coalesce(v.app_version, p.app_version)
       ORDER BY 4, 1`,
    ),
    // A workflow started in the caller's transaction, once committed: taken by one engine.
    claimUnowned: named(
      'claim_unowned',
      `UPDATE ${s}.workflows SET executor_id = $2, app_version = $3, updated_at = $4
       WHERE id = $1 AND status = 'PENDING' AND executor_id IS NULL
       RETURNING ${WORKFLOW_COLUMNS}`,
    ),
    // Each queue with its limits and how many of its workflows are ready, delayed and running:
    // three counts, each on a partial index of its status.
    listQueues: named(
      'list_queues',
      `SELECT q.*,
         (SELECT count(*)::int FROM ${s}.workflows w WHERE w.queue = q.name AND w.status = 'ENQUEUED') AS enqueued,
         (SELECT count(*)::int FROM ${s}.workflows w WHERE w.queue = q.name AND w.status = 'DELAYED') AS delayed,
         (SELECT count(*)::int FROM ${s}.workflows w WHERE w.queue = q.name AND w.status = 'PENDING') AS running
       FROM ${s}.queues q ORDER BY q.name`,
    ),
    // A batch of finished workflows completed before $1, oldest first, deleted with everything
    // stored under their ids. A parent with a child still to run is kept; rows another
    // transaction holds (a resume, a retry) are skipped, and a status changed meanwhile is rechecked.
    gcBatch: named(
      'gc_batch',
      deleteWorkflows(
        s,
        `SELECT id FROM ${s}.workflows w
         WHERE created_at < $1 AND coalesce(completed_at, updated_at) < $1 AND status = ANY($2::text[]) AND ${noLiveChild(s)}
         ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED`,
      ),
    ),
    deleteWorkflow: named(
      'delete_workflow',
      deleteWorkflows(
        s,
        `SELECT id FROM ${s}.workflows w
         WHERE id = $1 AND status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED') AND ${noLiveChild(s)}
         FOR UPDATE`,
      ),
    ),
    workflowsTable: `${s}.workflows`,
  };
}

export type PostgresStatements = ReturnType<typeof postgresStatements>;

/** Keeps a workflow (aliased `w`) that has a child still to run. */
function noLiveChild(s: string): string {
  return `NOT EXISTS (SELECT 1 FROM ${s}.workflows c WHERE c.parent_id = w.id AND c.status IN ('PENDING', 'ENQUEUED', 'DELAYED'))`;
}

/** Deletes the workflows `doomed` selects with their steps, events, streams and messages; returns their ids. */
function deleteWorkflows(s: string, doomed: string): string {
  return `WITH doomed AS (${doomed}),
    steps AS (DELETE FROM ${s}.steps WHERE workflow_id IN (SELECT id FROM doomed)),
    events AS (DELETE FROM ${s}.events WHERE workflow_id IN (SELECT id FROM doomed)),
    streams AS (DELETE FROM ${s}.streams WHERE workflow_id IN (SELECT id FROM doomed)),
    messages AS (DELETE FROM ${s}.messages WHERE destination_id IN (SELECT id FROM doomed))
  DELETE FROM ${s}.workflows WHERE id IN (SELECT id FROM doomed) RETURNING id`;
}
