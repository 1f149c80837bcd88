-- Cairn schema, version 4: cron schedules, stored so every engine picks up changes at run time.

CREATE TABLE schedules (
  name          text PRIMARY KEY,
  cron          text NOT NULL,
  workflow_name text NOT NULL,
  timezone      text NOT NULL,
  queue         text,
  missed        text NOT NULL CHECK (missed IN ('skip', 'backfill')),
  paused        boolean NOT NULL DEFAULT false,
  -- The latest tick fired; missed ticks are counted from here.
  last_tick_at  bigint,
  created_at    bigint NOT NULL,
  updated_at    bigint NOT NULL
);

CREATE FUNCTION notify_schedules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('cairn_' || TG_TABLE_SCHEMA, 'sch');
  RETURN NULL;
END
$$;

-- Only definition changes wake the schedulers; recording a fired tick does not.
CREATE TRIGGER schedules_notify AFTER INSERT OR DELETE OR UPDATE OF cron, workflow_name, timezone, queue, missed, paused
  ON schedules FOR EACH STATEMENT EXECUTE FUNCTION notify_schedules();
