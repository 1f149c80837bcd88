-- Cairn schema, version 1: workflows and their step checkpoints.
-- Instants are epoch milliseconds; stored values are superjson text.

CREATE TABLE cairn_workflows (
  id                TEXT PRIMARY KEY,
  name              TEXT NOT NULL,
  status            TEXT NOT NULL CHECK (status IN ('PENDING', 'ENQUEUED', 'DELAYED', 'SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')),
  input             TEXT,
  output            TEXT,
  error             TEXT,
  queue             TEXT,
  executor_id       TEXT,
  app_version       TEXT,
  parent_id         TEXT,
  recovery_attempts INTEGER NOT NULL DEFAULT 0,
  deadline_at       INTEGER,
  created_at        INTEGER NOT NULL,
  started_at        INTEGER,
  completed_at      INTEGER,
  updated_at        INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX cairn_workflows_pending_idx ON cairn_workflows (executor_id, app_version) WHERE status = 'PENDING';
CREATE INDEX cairn_workflows_created_idx ON cairn_workflows (created_at);
CREATE INDEX cairn_workflows_status_idx ON cairn_workflows (status, created_at);
CREATE INDEX cairn_workflows_name_idx ON cairn_workflows (name, created_at);

CREATE TABLE cairn_steps (
  workflow_id  TEXT NOT NULL,
  step_id      INTEGER NOT NULL,
  name         TEXT NOT NULL,
  output       TEXT,
  error        TEXT,
  child_id     TEXT,
  attempts     INTEGER NOT NULL DEFAULT 1,
  started_at   INTEGER NOT NULL,
  completed_at INTEGER NOT NULL,
  PRIMARY KEY (workflow_id, step_id)
) WITHOUT ROWID;
