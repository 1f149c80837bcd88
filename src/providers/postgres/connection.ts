import type pg from 'pg';

/**
 * Guards a connection checked out of the pool: an 'error' event while it is out is recorded
 * rather than left unhandled (which would end the process). `release` hands it back, with the
 * error when it broke, so the pool discards it; a broken connection keeps the guard, since its
 * last events may still come after it was handed back.
 */
export function holdConnection(client: pg.PoolClient): { broke(err: unknown): void; readonly broken: unknown; release(): void } {
  let broken: unknown;
  const onError = (err: Error) => (broken ??= err);
  client.on('error', onError);
  return {
    broke(err: unknown) {
      broken ??= err;
    },
    get broken() {
      return broken;
    },
    release() {
      if (broken === undefined) {
        client.off('error', onError);
        client.release();
      } else {
        client.release(broken instanceof Error ? broken : new Error(String(broken)));
      }
    },
  };
}
