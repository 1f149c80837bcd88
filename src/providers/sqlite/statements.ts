import { CLAIMED_COLUMNS, SCHEDULE_COLUMNS, STEP_COLUMNS, WORKFLOW_COLUMNS } from '../rows.js';

/** Keeps a workflow (aliased `w`) that has a child still to run. */
const NO_LIVE_CHILD = `NOT EXISTS (SELECT 1 FROM cairn_workflows c WHERE c.parent_id = w.id AND c.status IN ('PENDING', 'ENQUEUED', 'DELAYED'))`;

/** Every statement the SQLite provider sends; prepared once per connection. */
export const sqliteStatements = {
  insertWorkflow: `INSERT INTO cairn_workflows (id, name, status, input, queue, executor_id, app_version, parent_id, deadline_at,
      created_at, started_at, updated_at, priority, dedup_id, partition_key, available_at, trace_context, enqueue_seq)
    VALUES (@id, @name, @status, @input, @queue, @executorId, @appVersion, @parentId, @deadlineAt,
      @createdAt, CASE WHEN @status = 'PENDING' THEN @createdAt END, @createdAt, @priority, @dedupId, @partitionKey, @availableAt, @traceContext,
      CASE WHEN @queue IS NULL THEN NULL ELSE (SELECT ifnull(max(enqueue_seq), 0) + 1 FROM cairn_workflows) END)
    ON CONFLICT DO NOTHING`,
  getDedupHolder: `SELECT ${WORKFLOW_COLUMNS} FROM cairn_workflows
    WHERE queue = ? AND dedup_id = ? AND status IN ('ENQUEUED', 'DELAYED', 'PENDING')`,
  upsertQueue: `INSERT INTO cairn_queues (name, concurrency, worker_concurrency, rate_limit, rate_period_ms, partitioned, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency, worker_concurrency = excluded.worker_concurrency,
      rate_limit = excluded.rate_limit, rate_period_ms = excluded.rate_period_ms, partitioned = excluded.partitioned,
      updated_at = excluded.updated_at`,
  getQueue: `SELECT * FROM cairn_queues WHERE name = ?`,
  promoteDelayed: `UPDATE cairn_workflows SET status = 'ENQUEUED', debounce_key = NULL, updated_at = @now
    WHERE queue = @queue AND status = 'DELAYED' AND available_at <= @now`,
  claim: `UPDATE cairn_workflows AS w SET status = 'PENDING', executor_id = @executorId, app_version = CASE WHEN w.recovery_attempts > 0 THEN w.app_version ELSE @appVersion END, started_at = @now, updated_at = @now
    FROM (
      SELECT id FROM cairn_workflows
      WHERE queue = @queue AND status = 'ENQUEUED' AND name IN (SELECT value FROM json_each(@names))
      ORDER BY priority, enqueue_seq
      LIMIT max(0, min(
        @slots,
        @concurrency - (SELECT count(*) FROM cairn_workflows WHERE queue = @queue AND status = 'PENDING'),
        @rateLimit - (SELECT count(*) FROM cairn_workflows WHERE queue = @queue AND started_at >= @windowStart)))
    ) AS chosen
    WHERE w.id = chosen.id
    RETURNING ${CLAIMED_COLUMNS}`,
  claimPartitioned: `UPDATE cairn_workflows AS w SET status = 'PENDING', executor_id = @executorId, app_version = CASE WHEN w.recovery_attempts > 0 THEN w.app_version ELSE @appVersion END, started_at = @now, updated_at = @now
    FROM (
      WITH running AS (
        SELECT partition_key AS pk, count(*) AS n FROM cairn_workflows WHERE queue = @queue AND status = 'PENDING' GROUP BY 1
      ), recent AS (
        SELECT partition_key AS pk, count(*) AS n FROM cairn_workflows WHERE queue = @queue AND started_at >= @windowStart GROUP BY 1
      ), ready AS (
        SELECT id, partition_key AS pk, priority, enqueue_seq,
               row_number() OVER (PARTITION BY partition_key ORDER BY priority, enqueue_seq) AS rn
        FROM cairn_workflows WHERE queue = @queue AND status = 'ENQUEUED' AND name IN (SELECT value FROM json_each(@names))
      )
      SELECT r.id FROM ready r
      LEFT JOIN running u ON u.pk = r.pk LEFT JOIN recent t ON t.pk = r.pk
      WHERE r.rn <= min(@concurrency - coalesce(u.n, 0), @rateLimit - coalesce(t.n, 0))
      ORDER BY r.priority, r.enqueue_seq
      LIMIT @slots
    ) AS chosen
    WHERE w.id = chosen.id
    RETURNING ${CLAIMED_COLUMNS}`,
  nextQueueTime: `SELECT (SELECT min(available_at) FROM cairn_workflows WHERE queue = @queue AND status = 'DELAYED') AS delayed_at,
    (SELECT min(started_at) FROM cairn_workflows WHERE queue = @queue AND started_at >= @windowStart) AS oldest_start`,
  debounce: `INSERT INTO cairn_workflows (id, name, status, input, queue, parent_id, created_at, updated_at, priority,
      partition_key, available_at, debounce_key, enqueue_seq)
    VALUES (@id, @name, 'DELAYED', @input, @queue, @parentId, @now, @now, @priority, @partitionKey, @now + min(@periodMs, @maxWaitMs), @key,
      (SELECT ifnull(max(enqueue_seq), 0) + 1 FROM cairn_workflows))
    ON CONFLICT (queue, debounce_key) WHERE debounce_key IS NOT NULL AND status = 'DELAYED'
    DO UPDATE SET input = excluded.input, updated_at = excluded.updated_at,
      available_at = min(excluded.available_at, cairn_workflows.created_at + @maxWaitMs)
    RETURNING id`,
  getWorkflow: `SELECT ${WORKFLOW_COLUMNS} FROM cairn_workflows WHERE id = ?`,
  completeWorkflow: `UPDATE cairn_workflows SET status = ?, output = ?, error = ?, completed_at = ?, updated_at = ?
    WHERE id = ? AND status = 'PENDING' AND executor_id = ?
    RETURNING queue`,
  // The checkpoint: one statement that also checks the workflow is still PENDING (cancellation)
  // and that no other execution holds this counter (conflict).
  recordStep: `INSERT INTO cairn_steps (workflow_id, step_id, name, output, error, child_id, attempts, started_at, completed_at)
    SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?
    WHERE EXISTS (SELECT 1 FROM cairn_workflows WHERE id = ? AND status = 'PENDING' AND executor_id = ?)
    ON CONFLICT (workflow_id, step_id) DO NOTHING`,
  cancelWorkflow: `UPDATE cairn_workflows
    SET status = 'CANCELLED', error = CASE WHEN id = @id THEN @error ELSE NULL END, completed_at = @now, updated_at = @now
    WHERE id IN (
      WITH RECURSIVE tree(id) AS (SELECT @id UNION SELECT w.id FROM cairn_workflows w JOIN tree t ON w.parent_id = t.id)
      SELECT id FROM tree
    ) AND status IN ('PENDING', 'ENQUEUED', 'DELAYED')
    RETURNING id`,
  workflowExists: `SELECT 1 AS found FROM cairn_workflows WHERE id = ?`,
  insertMessage: `INSERT INTO cairn_messages (destination_id, topic, body, idempotency_key, created_at) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (destination_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING`,
  oldestMessage: `SELECT seq, body FROM cairn_messages WHERE destination_id = ? AND topic = ? AND consumed_at IS NULL ORDER BY seq LIMIT 1`,
  consumeMessage: `UPDATE cairn_messages SET consumed_at = ? WHERE seq = ?`,
  insertEvent: `INSERT INTO cairn_events (workflow_id, key, step_id, value, updated_at) VALUES (?, ?, ?, ?, ?)`,
  insertStream: `INSERT INTO cairn_streams (workflow_id, key, offset_id, value, closed, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
  // An event's value is the one its latest setEvent wrote.
  getEvent: `SELECT value FROM cairn_events WHERE workflow_id = ? AND key = ? ORDER BY step_id DESC LIMIT 1`,
  listSchedules: `SELECT ${SCHEDULE_COLUMNS} FROM cairn_schedules ORDER BY name`,
  getSchedule: `SELECT ${SCHEDULE_COLUMNS} FROM cairn_schedules WHERE name = ?`,
  insertSchedule: `INSERT INTO cairn_schedules (${SCHEDULE_COLUMNS})
    VALUES (@name, @cron, @workflowName, @timezone, @queue, @missed, @paused, @lastTickAt, @createdAt, @updatedAt)
    ON CONFLICT (name) DO NOTHING`,
  updateSchedule: `UPDATE cairn_schedules SET cron = @cron, workflow_name = @workflowName, timezone = @timezone, queue = @queue,
      missed = @missed, paused = @paused, last_tick_at = @lastTickAt, updated_at = @updatedAt
    WHERE name = @name`,
  deleteSchedule: `DELETE FROM cairn_schedules WHERE name = ?`,
  markScheduleTick: `UPDATE cairn_schedules SET last_tick_at = ? WHERE name = ? AND (last_tick_at IS NULL OR last_tick_at < ?)`,
  readStream: `SELECT offset_id, value, closed FROM cairn_streams WHERE workflow_id = ? AND key = ? AND offset_id > ? ORDER BY offset_id`,
  resumeWorkflow: `UPDATE cairn_workflows
    SET status = 'PENDING', executor_id = ?, app_version = coalesce(app_version, ?), output = NULL, error = NULL, deadline_at = NULL,
        recovery_attempts = 0, completed_at = NULL, started_at = ?, updated_at = ?
    WHERE id = ? AND status IN ('CANCELLED', 'ERROR', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')`,
  // A retry: what the steps from @from on recorded is dropped, in the transaction that resumes it.
  dropStepsFrom: `DELETE FROM cairn_steps WHERE workflow_id = @id AND (step_id >= @from OR step_id <= -@from)`,
  dropEventsFrom: `DELETE FROM cairn_events WHERE workflow_id = @id AND step_id >= @from`,
  dropStreamsFrom: `DELETE FROM cairn_streams WHERE workflow_id = @id AND offset_id >= @from`,
  // A fork's copy: checkpoints before the fork point (and the wait deadlines of those, stored under
  // their negated step ids), with the events and stream entries they wrote.
  copySteps: `INSERT INTO cairn_steps (workflow_id, step_id, name, output, error, child_id, attempts, started_at, completed_at)
    SELECT @to, step_id, name, output, error, child_id, attempts, started_at, completed_at
    FROM cairn_steps WHERE workflow_id = @from AND step_id < @before AND step_id > -@before`,
  copyEvents: `INSERT INTO cairn_events (workflow_id, key, step_id, value, updated_at)
    SELECT @to, key, step_id, value, updated_at FROM cairn_events WHERE workflow_id = @from AND step_id < @before`,
  copyStreams: `INSERT INTO cairn_streams (workflow_id, key, offset_id, value, closed, created_at)
    SELECT @to, key, offset_id, value, closed, created_at FROM cairn_streams WHERE workflow_id = @from AND offset_id < @before`,
  // The checkpoint of a step whose body finished after its workflow was cancelled: its effect
  // happened, so it is kept, and a resume returns it instead of running the body again.
  recordCancelledStep: `INSERT INTO cairn_steps (workflow_id, step_id, name, output, error, child_id, attempts, started_at, completed_at)
    SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?
    WHERE EXISTS (SELECT 1 FROM cairn_workflows WHERE id = ? AND status = 'CANCELLED')
    ON CONFLICT (workflow_id, step_id) DO NOTHING`,
  resetRecoveryAttempts: `UPDATE cairn_workflows SET recovery_attempts = 0 WHERE id = ?`,
  getStep: `SELECT ${STEP_COLUMNS} FROM cairn_steps WHERE workflow_id = ? AND step_id = ?`,
  getStatus: `SELECT status, executor_id FROM cairn_workflows WHERE id = ?`,
  listSteps: `SELECT ${STEP_COLUMNS} FROM cairn_steps WHERE workflow_id = ? ORDER BY step_id`,
  listStepsOf: `SELECT workflow_id, ${STEP_COLUMNS} FROM cairn_steps WHERE workflow_id IN (SELECT value FROM json_each(?))
    ORDER BY workflow_id, step_id`,
  claimForRecovery: `UPDATE cairn_workflows
    SET recovery_attempts = recovery_attempts + 1,
        status = CASE WHEN recovery_attempts + 1 > ? THEN 'MAX_RECOVERY_ATTEMPTS_EXCEEDED' ELSE status END,
        completed_at = CASE WHEN recovery_attempts + 1 > ? THEN ? ELSE completed_at END,
        updated_at = ?
    WHERE status = 'PENDING' AND executor_id = ?
      AND name IN (SELECT value FROM json_each(?)) AND id NOT IN (SELECT value FROM json_each(?))
    RETURNING ${WORKFLOW_COLUMNS}`,
  unknownPending: `SELECT ${WORKFLOW_COLUMNS} FROM cairn_workflows
    WHERE status = 'PENDING' AND executor_id = ? AND name NOT IN (SELECT value FROM json_each(?))`,
  registerExecutor: `INSERT INTO cairn_executors (id, hostname, host_key, pid, app_version, lease_ms, started_at, heartbeat_at, stopped_at)
    VALUES (@id, @hostname, @hostKey, @pid, @appVersion, @leaseMs, @startedAt, @now, NULL)
    ON CONFLICT (id) DO UPDATE SET hostname = excluded.hostname, host_key = excluded.host_key, pid = excluded.pid,
      app_version = excluded.app_version, lease_ms = excluded.lease_ms, started_at = excluded.started_at,
      heartbeat_at = excluded.heartbeat_at, stopped_at = NULL, adoptions = 0`,
  renewLease: `UPDATE cairn_executors SET heartbeat_at = @now, stopped_at = NULL, adoptions = 0, app_version = coalesce(@appVersion, app_version) WHERE id = @id`,
  // Executors dead for a day with nothing left to adopt are forgotten.
  forgetExecutors: `DELETE FROM cairn_executors
    WHERE id <> @id AND coalesce(stopped_at, heartbeat_at + lease_ms) < @now - 86400000
      AND NOT EXISTS (SELECT 1 FROM cairn_workflows w WHERE w.status = 'PENDING' AND w.executor_id = cairn_executors.id)`,
  fleet: `SELECT
      (SELECT count(*) FROM cairn_executors WHERE id <> @id AND stopped_at IS NULL AND heartbeat_at + lease_ms >= @now) + 1 AS live,
      (SELECT json_group_array(e.id) FROM cairn_executors e
       WHERE e.id <> @id AND (e.stopped_at IS NOT NULL OR e.heartbeat_at + e.lease_ms < @now)
         AND EXISTS (SELECT 1 FROM cairn_workflows w WHERE w.status = 'PENDING' AND w.executor_id = e.id)) AS dead,
      (SELECT count(*) FROM cairn_workflows WHERE status = 'PENDING' AND executor_id IS NULL
         AND name IN (SELECT value FROM json_each(@names)) AND id NOT IN (SELECT value FROM json_each(@exclude))) AS unowned,
      (SELECT json_group_array(json_array(e.id, e.pid, e.started_at)) FROM cairn_executors e
       WHERE e.id <> @id AND e.host_key = @hostKey AND e.stopped_at IS NULL) AS neighbours`,
  stopExecutors: `UPDATE cairn_executors SET stopped_at = @now WHERE id IN (SELECT value FROM json_each(@ids)) AND stopped_at IS NULL`,
  listExecutors: `SELECT e.id, e.hostname, e.host_key, e.pid, e.app_version, e.lease_ms, e.started_at, e.heartbeat_at, e.stopped_at,
      (SELECT count(*) FROM cairn_workflows w WHERE w.status = 'PENDING' AND w.executor_id = e.id) AS pending
    FROM cairn_executors e ORDER BY e.started_at, e.id`,
  // A dead executor's queued workflows go back to their queue, keeping their place and checkpoints.
  requeueOrphans: `UPDATE cairn_workflows
    SET status = CASE WHEN recovery_attempts + 1 > @maxAttempts THEN 'MAX_RECOVERY_ATTEMPTS_EXCEEDED' ELSE 'ENQUEUED' END,
        completed_at = CASE WHEN recovery_attempts + 1 > @maxAttempts THEN @now END,
        executor_id = NULL, recovery_attempts = recovery_attempts + 1, updated_at = @now
    WHERE status = 'PENDING' AND queue IS NOT NULL AND executor_id IN (SELECT value FROM json_each(@from))
    RETURNING id, queue, status`,
  // Live executors still to take their share of the dead executors' work: the live count less the
  // adoption sweeps made so far (at least 1, this one).
  sharers: `SELECT CAST(max(1, @live - coalesce(min(adoptions), 0)) AS INTEGER) AS sharers FROM cairn_executors WHERE id IN (SELECT value FROM json_each(@from))`,
  countAdoption: `UPDATE cairn_executors SET adoptions = adoptions + 1 WHERE id IN (SELECT value FROM json_each(@from))`,
  // A share (1/@live) of the workflows nobody runs (those of dead executors, and those left unowned
  // by an executor whose code diverged from their history) that this executor can run, any version.
  adoptOrphans: `UPDATE cairn_workflows
    SET executor_id = @id, recovery_attempts = recovery_attempts + 1,
        status = CASE WHEN recovery_attempts + 1 > @maxAttempts THEN 'MAX_RECOVERY_ATTEMPTS_EXCEEDED' ELSE status END,
        completed_at = CASE WHEN recovery_attempts + 1 > @maxAttempts THEN @now ELSE completed_at END,
        updated_at = @now
    WHERE id IN (
      SELECT id FROM cairn_workflows
      WHERE status = 'PENDING' AND (executor_id IN (SELECT value FROM json_each(@from)) OR executor_id IS NULL)
        AND name IN (SELECT value FROM json_each(@names)) AND id NOT IN (SELECT value FROM json_each(@exclude))
      ORDER BY created_at, id
      LIMIT (SELECT CAST((count(*) + @live - 1) / @live AS INTEGER) FROM cairn_workflows
             WHERE status = 'PENDING' AND (executor_id IN (SELECT value FROM json_each(@from)) OR executor_id IS NULL)
               AND name IN (SELECT value FROM json_each(@names)) AND id NOT IN (SELECT value FROM json_each(@exclude))))
    RETURNING ${WORKFLOW_COLUMNS}`,
  // A workflow whose replay diverged here: handed back, unowned, under the version that recorded it.
  releaseWorkflow: `UPDATE cairn_workflows SET executor_id = NULL, app_version = @appVersion,
      recovery_attempts = max(recovery_attempts - 1, 0), updated_at = @now
    WHERE id = @id AND executor_id = @owner AND status = 'PENDING'`,
  setAppVersion: `UPDATE cairn_workflows SET app_version = @appVersion WHERE id = @id AND executor_id = @owner AND status = 'PENDING'`,
  seenVersion: `INSERT INTO cairn_versions (app_version, first_seen_at, last_seen_at) VALUES (@appVersion, @now, @now)
    ON CONFLICT (app_version) DO UPDATE SET last_seen_at = excluded.last_seen_at`,
  listVersions: `WITH pending AS (
      SELECT app_version, count(*) AS n, min(created_at) AS first_at, max(updated_at) AS last_at
      FROM cairn_workflows WHERE status = 'PENDING' AND app_version IS NOT NULL AND app_version <> '' GROUP BY app_version
    ), live AS (
      SELECT app_version, count(*) AS n FROM cairn_executors
      WHERE stopped_at IS NULL AND heartbeat_at + lease_ms >= @now GROUP BY app_version
    ), known AS (
      SELECT app_version FROM cairn_versions UNION SELECT app_version FROM pending
    )
    SELECT k.app_version, coalesce(l.n, 0) AS executors, coalesce(p.n, 0) AS pending,
      coalesce(v.first_seen_at, p.first_at) AS first_seen_at, coalesce(v.last_seen_at, p.last_at) AS last_seen_at
    FROM known k
    LEFT JOIN cairn_versions v ON v.app_version = k.app_version
    LEFT JOIN pending p ON p.app_version = k.app_version
    LEFT JOIN live l ON l.app_version = k.app_version
    ORDER BY 4, 1`,
  claimUnowned: `UPDATE cairn_workflows SET executor_id = @executorId, app_version = @appVersion, updated_at = @now
    WHERE id = @id AND status = 'PENDING' AND executor_id IS NULL
    RETURNING ${WORKFLOW_COLUMNS}`,
  listQueues: `SELECT q.*,
      (SELECT count(*) FROM cairn_workflows w WHERE w.queue = q.name AND w.status = 'ENQUEUED') AS enqueued,
      (SELECT count(*) FROM cairn_workflows w WHERE w.queue = q.name AND w.status = 'DELAYED') AS delayed,
      (SELECT count(*) FROM cairn_workflows w WHERE w.queue = q.name AND w.status = 'PENDING') AS running
    FROM cairn_queues q ORDER BY q.name`,
  // Finished workflows completed before @cutoff, oldest first; a parent with a child still to run is kept.
  gcBatch: `SELECT id FROM cairn_workflows w
    WHERE created_at < @cutoff AND coalesce(completed_at, updated_at) < @cutoff AND status IN (SELECT value FROM json_each(@statuses))
      AND ${NO_LIVE_CHILD}
    ORDER BY created_at LIMIT @limit`,
  deletable: `SELECT id FROM cairn_workflows w
    WHERE id = @id AND status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED') AND ${NO_LIVE_CHILD}`,
  // Everything stored under the ids in @ids, the workflows last.
  deleteOf: [
    `DELETE FROM cairn_steps WHERE workflow_id IN (SELECT value FROM json_each(@ids))`,
    `DELETE FROM cairn_events WHERE workflow_id IN (SELECT value FROM json_each(@ids))`,
    `DELETE FROM cairn_streams WHERE workflow_id IN (SELECT value FROM json_each(@ids))`,
    `DELETE FROM cairn_messages WHERE destination_id IN (SELECT value FROM json_each(@ids))`,
    `DELETE FROM cairn_workflows WHERE id IN (SELECT value FROM json_each(@ids))`,
  ],
  workflowsTable: 'cairn_workflows',
} as const;
