-- Cairn schema, version 11: the trace context of the call that started a workflow.
--
-- With OpenTelemetry, `start`, `enqueue` and `startChild` store the caller's active span as a W3C
-- traceparent, so an execution that recovers, adopts, claims from a queue or runs a child
-- continues the caller's trace. Null when there was no active span (or no OpenTelemetry).
ALTER TABLE workflows ADD COLUMN trace_context TEXT;
