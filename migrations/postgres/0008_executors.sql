-- Cairn schema, version 8: executors with heartbeats and leases.
--
-- Every engine is an executor with a row here, heartbeating every heartbeatMs. An executor whose
-- heartbeat is older than its lease_ms, or that stopped, is dead: the live executors adopt its
-- PENDING workflows. Times are epoch milliseconds of the database's clock, so the executors of
-- several machines agree on who is late.

CREATE TABLE executors (
  id           text PRIMARY KEY,
  hostname     text NOT NULL,
  -- The host and its process-id namespace: executors with the same host_key can tell from a pid
  -- whether the other is still running.
  host_key     text NOT NULL,
  pid          integer NOT NULL,
  app_version  text NOT NULL,
  lease_ms     bigint NOT NULL,
  started_at   bigint NOT NULL,
  heartbeat_at bigint NOT NULL,
  stopped_at   bigint,
  -- Adoption sweeps made on this executor's work since it died: each live executor takes about
  -- remaining / (live - adoptions), so the work splits evenly across the fleet.
  adoptions    integer NOT NULL DEFAULT 0
);

-- Executors that ran workflows before this version left no row: each gets a stopped one, so its
-- unfinished workflows are adopted like those of any stopped executor.
INSERT INTO executors (id, hostname, host_key, pid, app_version, lease_ms, started_at, heartbeat_at, stopped_at)
SELECT DISTINCT executor_id, '', '', 0, '', 0, 0, 0, 0 FROM workflows
WHERE status = 'PENDING' AND executor_id IS NOT NULL;
