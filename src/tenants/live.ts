import { providerFromUrl } from '../providers/open.js';

/**
 * The ids of a tenant's live executors, by the rule `listExecutors` applies (not stopped, lease
 * not expired, on the database's clock). Read from the provider, not a Client, so a tenant whose
 * schema is behind this code's migrations is still checked; one without an executors table has none.
 */
export async function liveExecutors(database: string, schema?: string): Promise<string[]> {
  const provider = providerFromUrl(database, schema === undefined ? {} : { schema });
  try {
    const { now, executors } = await provider.listExecutors();
    return executors.filter((e) => e.stoppedAt === null && e.heartbeatAt + e.leaseMs >= now).map((e) => e.id);
  } catch (err) {
    // 42P01 on Postgres, "no such table" on SQLite: never migrated that far.
    if ((err as { code?: unknown }).code === '42P01' || /no such table/.test((err as Error).message)) return [];
    throw err;
  } finally {
    await provider.close();
  }
}

/** The refusal of a drop while executors are alive, naming a few of them. */
export function busyMessage(name: string, live: string[]): string {
  const shown = live.slice(0, 5).map((id) => `'${id}'`).join(', ') + (live.length > 5 ? `, …` : '');
  return `tenant '${name}' has ${live.length} live executor${live.length === 1 ? '' : 's'} (${shown}); close its engines first, or pass { force: true }`;
}
