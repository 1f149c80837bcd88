-- Cairn schema, version 3: durable queues.

ALTER TABLE workflows ADD COLUMN priority integer NOT NULL DEFAULT 0;
ALTER TABLE workflows ADD COLUMN dedup_id text;
ALTER TABLE workflows ADD COLUMN partition_key text;
-- When a DELAYED workflow becomes runnable.
ALTER TABLE workflows ADD COLUMN available_at bigint;
-- Set on DELAYED workflows created by queue.debounce; cleared when they become runnable.
ALTER TABLE workflows ADD COLUMN debounce_key text;

-- At most one unfinished workflow per (queue, dedupId).
CREATE UNIQUE INDEX workflows_dedup_idx ON workflows (queue, dedup_id)
  WHERE dedup_id IS NOT NULL AND status IN ('ENQUEUED', 'DELAYED', 'PENDING');
CREATE UNIQUE INDEX workflows_debounce_idx ON workflows (queue, debounce_key)
  WHERE debounce_key IS NOT NULL AND status = 'DELAYED';
CREATE INDEX workflows_queue_delayed_idx ON workflows (queue, available_at) WHERE status = 'DELAYED';
CREATE INDEX workflows_queue_running_idx ON workflows (queue, partition_key) WHERE status = 'PENDING' AND queue IS NOT NULL;
CREATE INDEX workflows_queue_started_idx ON workflows (queue, started_at) WHERE queue IS NOT NULL;

-- Queue definitions, upserted by every engine that declares the queue, so a Client can check names.
CREATE TABLE queues (
  name               text PRIMARY KEY,
  concurrency        integer,
  worker_concurrency integer,
  rate_limit         integer,
  rate_period_ms     bigint,
  partitioned        boolean NOT NULL DEFAULT false,
  updated_at         bigint NOT NULL
);

-- Queue wake-ups: a workflow entering a queue, or a queued workflow leaving PENDING (a slot freed).
-- Workflow wake-ups only when a workflow ends: nothing waits for the other transitions, and a
-- transaction that notifies commits in line with every other one that does.
CREATE OR REPLACE FUNCTION notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  channel text := 'cairn_' || TG_TABLE_SCHEMA;
BEGIN
  IF TG_TABLE_NAME = 'workflows' THEN
    IF TG_OP = 'UPDATE' AND NEW.status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED') THEN
      PERFORM pg_notify(channel, 'w:' || NEW.id);
    END IF;
    IF NEW.queue IS NOT NULL AND (NEW.status IN ('ENQUEUED', 'DELAYED') OR (TG_OP = 'UPDATE' AND OLD.status = 'PENDING')) THEN
      PERFORM pg_notify(channel, 'q:' || NEW.queue);
    END IF;
  ELSIF TG_TABLE_NAME = 'messages' THEN
    PERFORM pg_notify(channel, 'm:' || NEW.destination_id);
  ELSIF TG_TABLE_NAME = 'events' THEN
    PERFORM pg_notify(channel, 'e:' || NEW.workflow_id || ':' || NEW.key);
  ELSIF TG_TABLE_NAME = 'streams' THEN
    PERFORM pg_notify(channel, 's:' || NEW.workflow_id || ':' || NEW.key);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER workflows_enqueue_notify AFTER INSERT ON workflows
  FOR EACH ROW WHEN (NEW.queue IS NOT NULL) EXECUTE FUNCTION notify_change();

-- FIFO within a priority needs an order finer than milliseconds.
CREATE SEQUENCE enqueue_seq;
ALTER TABLE workflows ADD COLUMN enqueue_seq bigint;
CREATE INDEX workflows_queue_ready_idx ON workflows (queue, priority, enqueue_seq) WHERE status = 'ENQUEUED';

-- Enqueue from SQL, inside the caller's own transaction (a trigger, another language):
--   SELECT cairn.enqueue_workflow('send_email', 'emails', '{"to": "a@example.com"}', '{"priority": 1}');
-- Options: id, priority, dedup_id, delay_ms, partition_key. Returns the workflow id.
CREATE FUNCTION enqueue_workflow(p_name text, p_queue text, p_input json DEFAULT 'null', p_options json DEFAULT '{}')
RETURNS text LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  v_id    text := coalesce(p_options->>'id', gen_random_uuid()::text);
  v_now   bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
  v_delay bigint := coalesce((p_options->>'delay_ms')::bigint, 0);
  v_queue queues%ROWTYPE;
BEGIN
  IF p_name IS NULL OR p_name = '' THEN
    RAISE EXCEPTION 'cairn: enqueue_workflow needs a workflow name' USING ERRCODE = '22023';
  END IF;
  SELECT * INTO v_queue FROM queues WHERE name = p_queue;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'cairn: queue "%" is not declared by any engine', p_queue USING ERRCODE = '22023';
  END IF;
  IF v_queue.partitioned AND p_options->>'partition_key' IS NULL THEN
    RAISE EXCEPTION 'cairn: queue "%" is partitioned; pass partition_key in the options', p_queue USING ERRCODE = '22023';
  END IF;
  IF v_delay < 0 THEN
    RAISE EXCEPTION 'cairn: delay_ms must be >= 0, got %', v_delay USING ERRCODE = '22023';
  END IF;
  INSERT INTO workflows (id, name, status, input, queue, priority, dedup_id, partition_key, available_at,
                         enqueue_seq, created_at, updated_at)
  VALUES (v_id, p_name, CASE WHEN v_delay > 0 THEN 'DELAYED' ELSE 'ENQUEUED' END,
          json_build_object('json', p_input)::text, p_queue, coalesce((p_options->>'priority')::integer, 0),
          p_options->>'dedup_id', p_options->>'partition_key', CASE WHEN v_delay > 0 THEN v_now + v_delay END,
          nextval('enqueue_seq'), v_now, v_now)
  ON CONFLICT (id) DO NOTHING;
  RETURN v_id;
END
$$;
