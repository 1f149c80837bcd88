-- Cairn schema, version 5: the workflow status trigger runs only for rows it notifies about.
-- A queue claim moves hundreds of rows from ENQUEUED to PENDING and notifies nothing; the WHEN
-- clause is checked by the server without calling the function.

DROP TRIGGER workflows_notify ON workflows;
CREATE TRIGGER workflows_notify AFTER UPDATE OF status ON workflows
  FOR EACH ROW WHEN (
    OLD.status IS DISTINCT FROM NEW.status
    AND (
      NEW.status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')
      OR (NEW.queue IS NOT NULL AND (NEW.status IN ('ENQUEUED', 'DELAYED') OR OLD.status = 'PENDING'))
    )
  )
  EXECUTE FUNCTION notify_change();
