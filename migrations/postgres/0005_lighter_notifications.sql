-- Cairn schema, version 5: lighter workflow notifications.
--
-- The workflow status trigger now runs only for rows it notifies about, and no longer for ends:
-- - A queue claim moves hundreds of rows from ENQUEUED to PENDING and notifies nothing; the WHEN
--   clause is checked by the server without calling the function.
-- - A workflow reaches SUCCESS or ERROR only through Cairn's end statements, which send the
--   notifications themselves: one per statement, whose payload is a JSON array of every key it
--   concerns ('w:<id>' for each workflow ended, 'q:<queue>' for each queue with a slot freed). A
--   trigger call per ended row was about a third of the cost of ending a batch.
-- Cancellation, parking past the recovery cap and queue entries still notify through the trigger.

DROP TRIGGER workflows_notify ON workflows;
CREATE TRIGGER workflows_notify AFTER UPDATE OF status ON workflows
  FOR EACH ROW WHEN (
    OLD.status IS DISTINCT FROM NEW.status
    AND NEW.status NOT IN ('SUCCESS', 'ERROR')
    AND (
      NEW.status IN ('CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
      OR (NEW.queue IS NOT NULL AND (NEW.status IN ('ENQUEUED', 'DELAYED') OR OLD.status = 'PENDING'))
    )
  )
  EXECUTE FUNCTION notify_change();
