-- Cairn schema, version 7: events keep their history, one row per setEvent under its step id, so
-- a fork from step N carries the values set before N. Events stored before keep step id 0.

CREATE TABLE cairn_events_history (
  workflow_id TEXT NOT NULL,
  key         TEXT NOT NULL,
  step_id     INTEGER NOT NULL,
  value       TEXT NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (workflow_id, key, step_id)
) WITHOUT ROWID;
INSERT INTO cairn_events_history (workflow_id, key, step_id, value, updated_at)
  SELECT workflow_id, key, 0, value, updated_at FROM cairn_events;
DROP TABLE cairn_events;
ALTER TABLE cairn_events_history RENAME TO cairn_events;
