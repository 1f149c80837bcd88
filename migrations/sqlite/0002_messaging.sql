-- Cairn schema, version 2: messages, events, streams and child links.
-- SQLite has no cross-process notifications: writers wake waiters in their own process, and
-- waiters in other processes notice on their fallback poll.

CREATE TABLE cairn_messages (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  destination_id  TEXT NOT NULL,
  topic           TEXT NOT NULL,
  body            TEXT NOT NULL,
  idempotency_key TEXT,
  created_at      INTEGER NOT NULL,
  consumed_at     INTEGER
);
CREATE INDEX cairn_messages_unconsumed_idx ON cairn_messages (destination_id, topic, seq) WHERE consumed_at IS NULL;
CREATE UNIQUE INDEX cairn_messages_idempotency_idx ON cairn_messages (destination_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE cairn_events (
  workflow_id TEXT NOT NULL,
  key         TEXT NOT NULL,
  value       TEXT NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (workflow_id, key)
) WITHOUT ROWID;

CREATE TABLE cairn_streams (
  workflow_id TEXT NOT NULL,
  key         TEXT NOT NULL,
  offset_id   INTEGER NOT NULL,
  value       TEXT,
  closed      INTEGER NOT NULL DEFAULT 0,
  created_at  INTEGER NOT NULL,
  PRIMARY KEY (workflow_id, key, offset_id)
) WITHOUT ROWID;

CREATE INDEX cairn_workflows_parent_idx ON cairn_workflows (parent_id) WHERE parent_id IS NOT NULL;
