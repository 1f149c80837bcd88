import { STEP_COLUMNS, WORKFLOW_COLUMNS } from '../rows.js';

/** Every statement the SQLite provider sends; prepared once per connection. */
export const sqliteStatements = {
  insertWorkflow: `INSERT INTO cairn_workflows (id, name, status, input, queue, executor_id, app_version, parent_id, deadline_at, created_at, started_at, updated_at)
    VALUES (?, ?, 'PENDING', ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO NOTHING`,
  getWorkflow: `SELECT ${WORKFLOW_COLUMNS} FROM cairn_workflows WHERE id = ?`,
  completeWorkflow: `UPDATE cairn_workflows SET status = ?, output = ?, error = ?, completed_at = ?, updated_at = ?
    WHERE id = ? AND status = 'PENDING'`,
  // The checkpoint: one statement that also checks the workflow is still PENDING (cancellation)
  // and that no other execution holds this counter (conflict).
  recordStep: `INSERT INTO cairn_steps (workflow_id, step_id, name, output, error, child_id, attempts, started_at, completed_at)
    SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?
    WHERE EXISTS (SELECT 1 FROM cairn_workflows WHERE id = ? AND status = 'PENDING')
    ON CONFLICT (workflow_id, step_id) DO NOTHING`,
  cancelWorkflow: `UPDATE cairn_workflows SET status = 'CANCELLED', error = ?, completed_at = ?, updated_at = ?
    WHERE id = ? AND status IN ('PENDING', 'ENQUEUED', 'DELAYED')`,
  resumeWorkflow: `UPDATE cairn_workflows
    SET status = 'PENDING', executor_id = ?, app_version = ?, output = NULL, error = NULL, deadline_at = NULL,
        recovery_attempts = 0, completed_at = NULL, started_at = ?, updated_at = ?
    WHERE id = ? AND status IN ('CANCELLED', 'ERROR', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')`,
  copySteps: `INSERT INTO cairn_steps (workflow_id, step_id, name, output, error, child_id, attempts, started_at, completed_at)
    SELECT ?, step_id, name, output, error, child_id, attempts, started_at, completed_at
    FROM cairn_steps WHERE workflow_id = ? AND step_id < ?`,
  resetRecoveryAttempts: `UPDATE cairn_workflows SET recovery_attempts = 0 WHERE id = ?`,
  getStep: `SELECT ${STEP_COLUMNS} FROM cairn_steps WHERE workflow_id = ? AND step_id = ?`,
  getStatus: `SELECT status FROM cairn_workflows WHERE id = ?`,
  listSteps: `SELECT ${STEP_COLUMNS} FROM cairn_steps WHERE workflow_id = ? ORDER BY step_id`,
  claimForRecovery: `UPDATE cairn_workflows
    SET recovery_attempts = recovery_attempts + 1,
        status = CASE WHEN recovery_attempts + 1 > ? THEN 'MAX_RECOVERY_ATTEMPTS_EXCEEDED' ELSE status END,
        completed_at = CASE WHEN recovery_attempts + 1 > ? THEN ? ELSE completed_at END,
        updated_at = ?
    WHERE status = 'PENDING' AND executor_id = ? AND app_version = ?
      AND name IN (SELECT value FROM json_each(?)) AND id NOT IN (SELECT value FROM json_each(?))
    RETURNING ${WORKFLOW_COLUMNS}`,
  unknownPending: `SELECT ${WORKFLOW_COLUMNS} FROM cairn_workflows
    WHERE status = 'PENDING' AND executor_id = ? AND app_version = ? AND name NOT IN (SELECT value FROM json_each(?))`,
  workflowsTable: 'cairn_workflows',
} as const;
