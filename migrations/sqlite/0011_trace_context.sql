-- Cairn schema, version 11: the trace context of the call that started a workflow (see the
-- Postgres migration of the same number).
ALTER TABLE cairn_workflows ADD COLUMN trace_context TEXT;
