-- Cairn schema, version 10: deleting finished workflows.
--
-- `deleteWorkflow` and `gc` remove a workflow's messages with it. The existing message indexes
-- cover only unconsumed messages and idempotency keys, so without this one each deletion would
-- scan the whole messages table.
CREATE INDEX messages_destination_idx ON messages (destination_id);
