-- Cairn schema, version 10: deleting finished workflows (see the Postgres migration of the same number).
CREATE INDEX cairn_messages_destination_idx ON cairn_messages (destination_id);
