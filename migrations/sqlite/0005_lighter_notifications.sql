-- Cairn schema, version 5. Postgres narrows its workflow status trigger at this version; SQLite
-- notifies in process and has nothing to change. The file keeps both dialects at the same number.
SELECT 1;
