-- Cairn schema, version 5. Postgres lightens its workflow notifications at this version; SQLite
-- notifies in process and has nothing to change. The file keeps both dialects at the same number.
SELECT 1;
