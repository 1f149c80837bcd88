-- Cairn schema, version 3: durable queues.

ALTER TABLE cairn_workflows ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cairn_workflows ADD COLUMN dedup_id TEXT;
ALTER TABLE cairn_workflows ADD COLUMN partition_key TEXT;
ALTER TABLE cairn_workflows ADD COLUMN available_at INTEGER;
ALTER TABLE cairn_workflows ADD COLUMN debounce_key TEXT;

CREATE UNIQUE INDEX cairn_workflows_dedup_idx ON cairn_workflows (queue, dedup_id)
  WHERE dedup_id IS NOT NULL AND status IN ('ENQUEUED', 'DELAYED', 'PENDING');
CREATE UNIQUE INDEX cairn_workflows_debounce_idx ON cairn_workflows (queue, debounce_key)
  WHERE debounce_key IS NOT NULL AND status = 'DELAYED';
-- FIFO within a priority needs an order finer than milliseconds.
ALTER TABLE cairn_workflows ADD COLUMN enqueue_seq INTEGER;
CREATE INDEX cairn_workflows_queue_ready_idx ON cairn_workflows (queue, priority, enqueue_seq) WHERE status = 'ENQUEUED';
CREATE INDEX cairn_workflows_enqueue_seq_idx ON cairn_workflows (enqueue_seq) WHERE enqueue_seq IS NOT NULL;
CREATE INDEX cairn_workflows_queue_delayed_idx ON cairn_workflows (queue, available_at) WHERE status = 'DELAYED';
CREATE INDEX cairn_workflows_queue_running_idx ON cairn_workflows (queue, partition_key) WHERE status = 'PENDING' AND queue IS NOT NULL;
CREATE INDEX cairn_workflows_queue_started_idx ON cairn_workflows (queue, started_at) WHERE queue IS NOT NULL;

CREATE TABLE cairn_queues (
  name               TEXT PRIMARY KEY,
  concurrency        INTEGER,
  worker_concurrency INTEGER,
  rate_limit         INTEGER,
  rate_period_ms     INTEGER,
  partitioned        INTEGER NOT NULL DEFAULT 0,
  updated_at         INTEGER NOT NULL
) WITHOUT ROWID;
