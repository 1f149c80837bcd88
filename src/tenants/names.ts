import { InvalidArgumentError } from '../engine/errors.js';

/** The longest tenant name: with a prefix of up to 8, a schema of at most 48 (see assertSchemaName). */
export const MAX_TENANT_NAME = 40;
const NAME = /^[a-z][a-z0-9_]*$/;
const PREFIX = /^[a-z][a-z0-9_]{0,7}$/;

/**
 * Tenant names become schema, role and file names, so only plain lowercase identifiers are
 * accepted: 1 to 40 characters of a-z, 0-9 and _, starting with a letter.
 */
export function assertTenantName(name: unknown): string {
  const rule = `use 1 to ${MAX_TENANT_NAME} characters of a-z, 0-9 and _, starting with a letter`;
  if (typeof name !== 'string') throw new InvalidArgumentError('name', `tenant name must be a string, got ${name === null ? 'null' : typeof name}; ${rule}`);
  if (name === '') throw new InvalidArgumentError('name', `tenant name is empty; ${rule}`);
  if (name.length > MAX_TENANT_NAME) {
    throw new InvalidArgumentError('name', `tenant name ${JSON.stringify(name.slice(0, 20) + '…')} is ${name.length} characters, more than ${MAX_TENANT_NAME}; ${rule}`);
  }
  if (!NAME.test(name)) {
    const bad = [...name].find((c) => !/[a-z0-9_]/.test(c));
    const why = bad === undefined ? 'does not start with a letter' : `contains ${JSON.stringify(bad)}`;
    throw new InvalidArgumentError('name', `tenant name ${JSON.stringify(name)} ${why}; ${rule}`);
  }
  return name;
}

/** The prefix of tenant schemas and roles: 1 to 8 characters of a-z, 0-9 and _, starting with a letter. */
export function assertTenantPrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new InvalidArgumentError('prefix', `tenant prefix ${JSON.stringify(prefix)} is not allowed: use 1 to 8 characters of a-z, 0-9 and _, starting with a letter`);
  }
  return prefix;
}

/** Any identifier as a quoted SQL identifier (for names Cairn did not choose, such as the database's). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
