-- Cairn schema, version 9: the app versions seen (see the Postgres migration of the same number).

CREATE TABLE cairn_versions (
  app_version   TEXT PRIMARY KEY,
  first_seen_at INTEGER NOT NULL,
  last_seen_at  INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO cairn_versions (app_version, first_seen_at, last_seen_at)
SELECT app_version, min(created_at), max(updated_at) FROM cairn_workflows
WHERE app_version IS NOT NULL AND app_version <> ''
GROUP BY app_version;

INSERT INTO cairn_versions (app_version, first_seen_at, last_seen_at)
SELECT app_version, min(started_at), max(coalesce(stopped_at, heartbeat_at)) FROM cairn_executors
WHERE app_version <> ''
GROUP BY app_version
ON CONFLICT (app_version) DO UPDATE SET
  first_seen_at = min(first_seen_at, excluded.first_seen_at),
  last_seen_at = max(last_seen_at, excluded.last_seen_at);
