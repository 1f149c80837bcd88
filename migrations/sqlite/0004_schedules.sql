-- Cairn schema, version 4: cron schedules, stored so every engine picks up changes at run time.

CREATE TABLE cairn_schedules (
  name          TEXT PRIMARY KEY,
  cron          TEXT NOT NULL,
  workflow_name TEXT NOT NULL,
  timezone      TEXT NOT NULL,
  queue         TEXT,
  missed        TEXT NOT NULL CHECK (missed IN ('skip', 'backfill')),
  paused        INTEGER NOT NULL DEFAULT 0,
  last_tick_at  INTEGER,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
) WITHOUT ROWID;
