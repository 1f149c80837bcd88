import { setTimeout as sleep } from 'node:timers/promises';
import { CairnError } from './errors.js';
import type { Logger } from '../types.js';

/** Tries a write this many times before giving the execution up. */
export const WRITE_ATTEMPTS = 5;

/**
 * Runs a database write, trying again with backoff (100 ms, 200 ms, ...) when it fails for a reason
 * that may pass (a dropped connection, a busy lock). Cairn's own errors are answers, not failures,
 * and are thrown at once, as is everything once `stop()` says to stop.
 */
export async function persist<T>(write: () => Promise<T>, what: string, logger: Logger, stop: () => boolean): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (err instanceof CairnError || stop() || attempt >= WRITE_ATTEMPTS) throw err;
      logger.warn({ err, attempt }, `${what} failed; trying again`);
      await sleep(100 * 2 ** (attempt - 1));
    }
  }
}
