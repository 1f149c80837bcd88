import { InvalidArgumentError } from '../engine/errors.js';
import { providerFromUrl } from './open.js';
import type { Provider } from './provider.js';

/**
 * Applies Cairn's pending migrations to a database and returns. Safe to run from several
 * processes at once; refuses a database migrated by a newer Cairn.
 *
 * @example
 * await migrate({ database: process.env.DATABASE_URL!, schema: 'cairn' });
 */
export async function migrate(options: { database: string | Provider; schema?: string }): Promise<void> {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options', 'migrate needs an options object with a database');
  }
  const given = typeof options.database === 'object' && options.database !== null;
  const provider = given
    ? (options.database as Provider)
    : providerFromUrl(options.database, options.schema === undefined ? {} : { schema: options.schema });
  try {
    await provider.migrate();
  } finally {
    if (!given) await provider.close();
  }
}
