-- Cairn schema, version 9: the app versions seen.
--
-- Every executor writes its app version here when it registers and at each heartbeat, so
-- `engine.listVersions()` can say when a version was first and last seen even after its executors
-- are forgotten. Workflows keep their own app_version: the version whose code recorded them.

CREATE TABLE versions (
  app_version   text PRIMARY KEY,
  first_seen_at bigint NOT NULL,
  last_seen_at  bigint NOT NULL
);

INSERT INTO versions (app_version, first_seen_at, last_seen_at)
SELECT app_version, min(created_at), max(updated_at) FROM workflows
WHERE app_version IS NOT NULL AND app_version <> ''
GROUP BY app_version;

INSERT INTO versions (app_version, first_seen_at, last_seen_at)
SELECT app_version, min(started_at), max(coalesce(stopped_at, heartbeat_at)) FROM executors
WHERE app_version <> ''
GROUP BY app_version
ON CONFLICT (app_version) DO UPDATE SET
  first_seen_at = least(versions.first_seen_at, excluded.first_seen_at),
  last_seen_at = greatest(versions.last_seen_at, excluded.last_seen_at);
