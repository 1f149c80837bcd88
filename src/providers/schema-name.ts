import { InvalidArgumentError } from '../engine/errors.js';

// At most 48 characters, so the notification channel cairn_<schema> stays within Postgres's 63.
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,47}$/;

/** Schema names are spliced into SQL, so only plain lowercase identifiers are accepted. */
export function assertSchemaName(schema: unknown): string {
  if (typeof schema !== 'string' || !IDENTIFIER.test(schema)) {
    throw new InvalidArgumentError(
      'schema',
      `schema ${JSON.stringify(schema)} is not a safe identifier: use 1 to 48 characters of a-z, 0-9 and _, not starting with a digit`,
    );
  }
  return schema;
}
