-- Cairn schema, version 6. Postgres's enqueue_workflow SQL function applies the API's rules at
-- this version; SQLite has no such function and nothing to change. The file keeps both dialects
-- at the same number.
SELECT 1;
