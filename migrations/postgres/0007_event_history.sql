-- Cairn schema, version 7: events keep their history.
--
-- Each setEvent is a checkpoint, and its value is now stored under that checkpoint's step id, so
-- the value of an event as it stood at any step is known. A fork from step N carries the values
-- set before N (a fork used to see none of them), and reading an event takes its latest value.
-- Events stored before this version keep step id 0: they count as set before every step.

ALTER TABLE events ADD COLUMN step_id integer NOT NULL DEFAULT 0;
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ADD PRIMARY KEY (workflow_id, key, step_id);
