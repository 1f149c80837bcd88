/**
 * Fills a store with finished workflows by set-based SQL (not by running them): millions of rows
 * in seconds, the same on both databases. Deterministic: workflow n is `wf-<n, 8 digits>`, one in
 * ten ended ERROR, the rest SUCCESS, created evenly over `spanMs` ending `ageMs` ago.
 */

const NAMES = ['charge', 'ship', 'notify', 'refund', 'resize', 'report', 'sync', 'import'];

export interface Fill {
  kind: 'postgres' | 'sqlite';
  /** Table prefix: `cairn.` (a Postgres schema) or `cairn_` (SQLite). */
  prefix: string;
  rows: number;
  now: number;
  /** How long ago the newest filled workflow completed. */
  ageMs?: number;
  spanMs?: number;
}

function series(f: Fill): { from: string; n: string } {
  return f.kind === 'postgres'
    ? { from: `generate_series(1, ${f.rows}) AS n`, n: 'n::bigint' }
    : { from: `(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${f.rows}) SELECT n FROM s)`, n: 'n' };
}

function created(f: Fill): string {
  const span = f.spanMs ?? 30 * 86_400_000;
  const start = f.now - (f.ageMs ?? 0) - span;
  return `(${start} + ${series(f).n} * ${Math.floor(span / f.rows)})`;
}

function id(f: Fill): string {
  return f.kind === 'postgres' ? `'wf-' || lpad(n::text, 8, '0')` : `'wf-' || substr('00000000' || n, -8, 8)`;
}

/** The INSERT of `rows` finished workflows. */
export function fillWorkflows(f: Fill): string {
  const name = f.kind === 'postgres' ? `(ARRAY['${NAMES.join("','")}'])[1 + (n % ${NAMES.length})]` : `CASE n % ${NAMES.length} ${NAMES.map((x, i) => `WHEN ${i} THEN '${x}'`).join(' ')} END`;
  const at = created(f);
  return `INSERT INTO ${f.prefix}workflows (id, name, status, input, output, error, executor_id, app_version, created_at, started_at, completed_at, updated_at)
    SELECT ${id(f)}, ${name}, CASE WHEN n % 10 = 0 THEN 'ERROR' ELSE 'SUCCESS' END,
      '{"json":{"order":' || n || '}}', CASE WHEN n % 10 = 0 THEN NULL ELSE '{"json":{"ok":true}}' END,
      CASE WHEN n % 10 = 0 THEN '{"json":{"name":"Error","message":"declined"}}' ELSE NULL END,
      'bench-executor', 'v1', ${at}, ${at}, ${at} + 1500, ${at} + 1500
    FROM ${series(f).from}`;
}

/** The INSERT of `steps` checkpoints for each filled workflow. */
export function fillSteps(f: Fill, steps: number): string {
  const at = created(f);
  const k = f.kind === 'postgres' ? `generate_series(1, ${steps}) AS k` : `(WITH RECURSIVE t(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM t WHERE k < ${steps}) SELECT k FROM t)`;
  return `INSERT INTO ${f.prefix}steps (workflow_id, step_id, name, output, error, child_id, attempts, started_at, completed_at)
    SELECT ${id(f)}, k, 'step' || k, '{"json":' || k || '}', NULL, NULL, 1, ${at} + k * 100, ${at} + k * 100 + 50
    FROM ${series(f).from} CROSS JOIN ${k}`;
}
