import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { CairnError, type CairnErrorCode } from '../../src/index.js';
import type { Store } from './targets.js';

/** A validator for assert.throws/rejects: a CairnError with this code, a message matching, and these fields. */
export function cairnError(code: CairnErrorCode, message: RegExp, fields: Record<string, unknown> = {}) {
  return (err: unknown): true => {
    assert.ok(err instanceof CairnError, `expected a CairnError with code ${code}, got ${String(err)}`);
    assert.equal(err.code, code, `unexpected code for: ${err.message}`);
    assert.match(err.message, message);
    for (const [key, value] of Object.entries(fields)) {
      assert.deepEqual((err as unknown as Record<string, unknown>)[key], value, `field ${key} of: ${err.message}`);
    }
    return true;
  };
}

/**
 * A SIGKILLed client's last statement may still be running in its Postgres backend: wait until
 * every connection with this application name is gone, so what a test reads next is final.
 * Nothing to wait for on SQLite.
 */
export async function connectionsGone(store: Store, applicationName: string): Promise<void> {
  if (!store.database.startsWith('postgres')) return;
  const client = new pg.Client({ connectionString: store.database });
  await client.connect();
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const res = await client.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
      if ((res.rows[0] as { n: number }).n === 0) return;
      assert.ok(Date.now() < deadline, `connections of ${applicationName} still open 10 s after the kill`);
      await sleep(20);
    }
  } finally {
    await client.end();
  }
}
