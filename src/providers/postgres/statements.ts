import { STEP_COLUMNS, WORKFLOW_COLUMNS } from '../rows.js';

/**
 * Every statement the Postgres provider sends, named so node-postgres prepares each once per
 * connection. `s` is the quoted schema.
 */
export function postgresStatements(schema: string) {
  const s = `"${schema}"`;
  const named = (name: string, text: string) => ({ name: `cairn_${schema}_${name}`, text });
  return {
    insertWorkflow: named(
      'insert_workflow',
      `INSERT INTO ${s}.workflows (id, name, status, input, queue, executor_id, app_version, parent_id, deadline_at, created_at, started_at, updated_at)
       VALUES ($1, $2, 'PENDING', $3, $4, $5, $6, $7, $8, $9, $9, $9)
       ON CONFLICT (id) DO NOTHING`,
    ),
    getWorkflow: named('get_workflow', `SELECT ${WORKFLOW_COLUMNS} FROM ${s}.workflows WHERE id = $1`),
    completeWorkflow: named(
      'complete_workflow',
      `UPDATE ${s}.workflows SET status = $2, output = $3, error = $4, completed_at = $5, updated_at = $5
       WHERE id = $1 AND status = 'PENDING'`,
    ),
    // The checkpoint: one statement that also checks the workflow is still PENDING (cancellation)
    // and that no other execution holds this counter (conflict).
    recordStep: named(
      'record_step',
      `INSERT INTO ${s}.steps (workflow_id, step_id, name, output, error, child_id, attempts, started_at, completed_at)
       SELECT $1, $2::integer, $3, $4, $5, $6, $9::integer, $7::bigint, $8::bigint
       WHERE EXISTS (SELECT 1 FROM ${s}.workflows WHERE id = $1 AND status = 'PENDING')
       ON CONFLICT (workflow_id, step_id) DO NOTHING`,
    ),
    cancelWorkflow: named(
      'cancel_workflow',
      `UPDATE ${s}.workflows SET status = 'CANCELLED', error = $2, completed_at = $3, updated_at = $3
       WHERE id = $1 AND status IN ('PENDING', 'ENQUEUED', 'DELAYED')`,
    ),
    resumeWorkflow: named(
      'resume_workflow',
      `UPDATE ${s}.workflows
       SET status = 'PENDING', executor_id = $2, app_version = $3, output = NULL, error = NULL, deadline_at = NULL,
           recovery_attempts = 0, completed_at = NULL, started_at = $4, updated_at = $4
       WHERE id = $1 AND status IN ('CANCELLED', 'ERROR', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED')`,
    ),
    copySteps: named(
      'copy_steps',
      `INSERT INTO ${s}.steps (workflow_id, step_id, name, output, error, child_id, attempts, started_at, completed_at)
       SELECT $1, step_id, name, output, error, child_id, attempts, started_at, completed_at
       FROM ${s}.steps WHERE workflow_id = $2 AND step_id < $3`,
    ),
    resetRecoveryAttempts: named('reset_recovery_attempts', `UPDATE ${s}.workflows SET recovery_attempts = 0 WHERE id = $1`),
    getStep: named('get_step', `SELECT ${STEP_COLUMNS} FROM ${s}.steps WHERE workflow_id = $1 AND step_id = $2`),
    getStatus: named('get_status', `SELECT status FROM ${s}.workflows WHERE id = $1`),
    listSteps: named('list_steps', `SELECT ${STEP_COLUMNS} FROM ${s}.steps WHERE workflow_id = $1 ORDER BY step_id`),
    claimForRecovery: named(
      'claim_for_recovery',
      `UPDATE ${s}.workflows
       SET recovery_attempts = recovery_attempts + 1,
           status = CASE WHEN recovery_attempts + 1 > $5 THEN 'MAX_RECOVERY_ATTEMPTS_EXCEEDED' ELSE status END,
           completed_at = CASE WHEN recovery_attempts + 1 > $5 THEN $6 ELSE completed_at END,
           updated_at = $6
       WHERE status = 'PENDING' AND executor_id = $1 AND app_version = $2
         AND name = ANY($3::text[]) AND NOT (id = ANY($4::text[]))
       RETURNING ${WORKFLOW_COLUMNS}`,
    ),
    unknownPending: named(
      'unknown_pending',
      `SELECT ${WORKFLOW_COLUMNS} FROM ${s}.workflows
       WHERE status = 'PENDING' AND executor_id = $1 AND app_version = $2 AND NOT (name = ANY($3::text[]))`,
    ),
    workflowsTable: `${s}.workflows`,
  };
}

export type PostgresStatements = ReturnType<typeof postgresStatements>;
