-- Cairn schema, version 10: deleting finished workflows, and finding workflows by id prefix.
--
-- `deleteWorkflow` and `gc` remove a workflow's messages with it. The existing message indexes
-- cover only unconsumed messages and idempotency keys, so without this one each deletion would
-- scan the whole messages table.
CREATE INDEX messages_destination_idx ON messages (destination_id);

-- `listWorkflows({ idPrefix })` (the dashboard's search) as a range scan: the primary key follows
-- the database's collation, under which a prefix is not a range unless that collation is C.
CREATE INDEX workflows_id_pattern_idx ON workflows (id text_pattern_ops);
