-- Cairn schema, version 2: messages, events, streams, child links, and change notifications.

CREATE TABLE messages (
  seq             bigserial PRIMARY KEY,
  destination_id  text NOT NULL,
  topic           text NOT NULL,
  body            text NOT NULL,
  idempotency_key text,
  created_at      bigint NOT NULL,
  consumed_at     bigint
);
CREATE INDEX messages_unconsumed_idx ON messages (destination_id, topic, seq) WHERE consumed_at IS NULL;
CREATE UNIQUE INDEX messages_idempotency_idx ON messages (destination_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE events (
  workflow_id text NOT NULL,
  key         text NOT NULL,
  value       text NOT NULL,
  updated_at  bigint NOT NULL,
  PRIMARY KEY (workflow_id, key)
);

-- A stream entry's offset is the step id that wrote it, so entries are ordered and never collide.
CREATE TABLE streams (
  workflow_id text NOT NULL,
  key         text NOT NULL,
  offset_id   integer NOT NULL,
  value       text,
  closed      boolean NOT NULL DEFAULT false,
  created_at  bigint NOT NULL,
  PRIMARY KEY (workflow_id, key, offset_id)
);

CREATE INDEX workflows_parent_idx ON workflows (parent_id) WHERE parent_id IS NOT NULL;

-- Every change a waiter may be waiting for sends a notification on channel cairn_<schema>, inside
-- the transaction that makes the change, so it is delivered exactly when the change commits.
CREATE FUNCTION notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  channel text := 'cairn_' || TG_TABLE_SCHEMA;
BEGIN
  IF TG_TABLE_NAME = 'workflows' THEN
    PERFORM pg_notify(channel, 'w:' || NEW.id);
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

CREATE TRIGGER workflows_notify AFTER UPDATE OF status ON workflows
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION notify_change();
CREATE TRIGGER messages_notify AFTER INSERT ON messages FOR EACH ROW EXECUTE FUNCTION notify_change();
CREATE TRIGGER events_notify AFTER INSERT OR UPDATE ON events FOR EACH ROW EXECUTE FUNCTION notify_change();
CREATE TRIGGER streams_notify AFTER INSERT ON streams FOR EACH ROW EXECUTE FUNCTION notify_change();
