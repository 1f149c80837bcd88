-- Cairn schema, version 1: workflows and their step checkpoints.
-- Applied with search_path set to the configured schema. Instants are epoch milliseconds;
-- stored values are superjson text.

CREATE TABLE workflows (
  id                text PRIMARY KEY,
  name              text NOT NULL,
  status            text NOT NULL CHECK (status IN ('PENDING', 'ENQUEUED', 'DELAYED', 'SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')),
  input             text,
  output            text,
  error             text,
  queue             text,
  executor_id       text,
  app_version       text,
  parent_id         text,
  recovery_attempts integer NOT NULL DEFAULT 0,
  deadline_at       bigint,
  created_at        bigint NOT NULL,
  started_at        bigint,
  completed_at      bigint,
  updated_at        bigint NOT NULL
);

CREATE INDEX workflows_pending_idx ON workflows (executor_id, app_version) WHERE status = 'PENDING';
CREATE INDEX workflows_created_idx ON workflows (created_at);
CREATE INDEX workflows_status_idx ON workflows (status, created_at);
CREATE INDEX workflows_name_idx ON workflows (name, created_at);

-- No foreign key to workflows: every checkpoint insert already checks its workflow is PENDING,
-- and a foreign key would add a row lock on the workflow to each step.
CREATE TABLE steps (
  workflow_id  text NOT NULL,
  step_id      integer NOT NULL,
  name         text NOT NULL,
  output       text,
  error        text,
  child_id     text,
  attempts     integer NOT NULL DEFAULT 1,
  started_at   bigint NOT NULL,
  completed_at bigint NOT NULL,
  PRIMARY KEY (workflow_id, step_id)
);
