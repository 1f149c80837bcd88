-- Cairn schema, version 8: executors with heartbeats and leases. Every engine is an executor with
-- a row here, heartbeating every heartbeatMs; one whose heartbeat is older than its lease_ms, or
-- that stopped, is dead, and the live executors adopt its PENDING workflows.

CREATE TABLE cairn_executors (
  id           TEXT PRIMARY KEY,
  hostname     TEXT NOT NULL,
  host_key     TEXT NOT NULL,
  pid          INTEGER NOT NULL,
  app_version  TEXT NOT NULL,
  lease_ms     INTEGER NOT NULL,
  started_at   INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL,
  stopped_at   INTEGER,
  adoptions    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Executors that ran workflows before this version left no row: each gets a stopped one.
INSERT INTO cairn_executors (id, hostname, host_key, pid, app_version, lease_ms, started_at, heartbeat_at, stopped_at)
SELECT DISTINCT executor_id, '', '', 0, '', 0, 0, 0, 0 FROM cairn_workflows
WHERE status = 'PENDING' AND executor_id IS NOT NULL;
