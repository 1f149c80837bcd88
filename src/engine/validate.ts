import { InvalidArgumentError } from './errors.js';

/** Argument checks shared by the public entry points; each names the argument it rejects. */

/**
 * The longest duration any option accepts: 1e15 ms, about 31,700 years. Added to the current
 * time it still fits a bigint epoch-millisecond column exactly and a JavaScript Date (whose range
 * ends at 8.64e15 ms).
 */
export const MAX_DURATION_MS = 1e15;

/** The largest value of a 32-bit signed integer column (priorities, queue limits). */
export const MAX_INT32 = 2_147_483_647;
/** The smallest value of a 32-bit signed integer column. */
export const MIN_INT32 = -2_147_483_648;

/**
 * Checks a name or id: a non-empty string of at most `maxLength` UTF-16 code units, holding no
 * NUL character (PostgreSQL text cannot store one) and no lone surrogate (PostgreSQL would store
 * U+FFFD in its place, so two different ids would become the same row).
 */
export function assertName(argument: string, value: unknown, maxLength = 255): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(argument, `${argument} must be a non-empty string, got ${describe(value)}`);
  }
  if (value.length > maxLength) {
    throw new InvalidArgumentError(argument, `${argument} must be at most ${maxLength} characters, got ${value.length}`);
  }
  const nul = value.indexOf('\u0000');
  if (nul !== -1) {
    throw new InvalidArgumentError(argument, `${argument} must not contain a NUL character (\\u0000), found one at index ${nul}`);
  }
  if (!isWellFormed(value)) {
    throw new InvalidArgumentError(
      argument,
      `${argument} must be well-formed Unicode, but it holds a lone surrogate at index ${loneSurrogateAt(value)}`,
    );
  }
  return value;
}

/**
 * Checks a duration in milliseconds: a finite number from 0 to {@link MAX_DURATION_MS}. A
 * fractional duration is rounded up to the next whole millisecond, which is what is stored.
 */
export function assertDuration(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(argument, `${argument} must be a finite number of milliseconds >= 0, got ${describe(value)}`);
  }
  if (value > MAX_DURATION_MS) {
    throw new InvalidArgumentError(argument, `${argument} must be at most ${MAX_DURATION_MS} milliseconds (about 31,700 years), got ${describe(value)}`);
  }
  return Math.ceil(value);
}

/** Checks an integer from 1 to `max` (by default the largest 32-bit integer, the column's range). */
export function assertPositiveInteger(argument: string, value: unknown, max = MAX_INT32): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(argument, `${argument} must be an integer >= 1, got ${describe(value)}`);
  }
  if (value > max) throw new InvalidArgumentError(argument, `${argument} must be at most ${max}, got ${describe(value)}`);
  return value;
}

/** Checks an integer from 0 to `max` (by default Number.MAX_SAFE_INTEGER). */
export function assertNonNegativeInteger(argument: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(argument, `${argument} must be an integer >= 0, got ${describe(value)}`);
  }
  if (value > max) throw new InvalidArgumentError(argument, `${argument} must be at most ${max}, got ${describe(value)}`);
  return value;
}

/** Checks an integer that fits a 32-bit signed column, such as a queue priority. */
export function assertInt32(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < MIN_INT32 || value > MAX_INT32) {
    throw new InvalidArgumentError(argument, `${argument} must be an integer from ${MIN_INT32} to ${MAX_INT32}, got ${describe(value)}`);
  }
  return value;
}

export function assertFunction(argument: string, value: unknown): void {
  if (typeof value !== 'function') {
    throw new InvalidArgumentError(argument, `${argument} must be a function, got ${describe(value)}`);
  }
}

export function assertOptions(argument: string, value: unknown): void {
  if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new InvalidArgumentError(argument, `${argument} must be an object, got ${describe(value)}`);
  }
}

export function assertDate(argument: string, value: unknown): number {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw new InvalidArgumentError(argument, `${argument} must be a valid Date, got ${describe(value)}`);
  }
  return value.getTime();
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') {
    if (value === '') return 'an empty string';
    // A name thousands of characters long says nothing more than its start and its length.
    return value.length > 80 ? `${JSON.stringify(value.slice(0, 60))}... (${value.length} characters)` : JSON.stringify(value);
  }
  if (typeof value === 'number') return String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** Whether a string holds no lone surrogate (String.prototype.isWellFormed, Node 20). */
export function isWellFormed(value: string): boolean {
  return (value as string & { isWellFormed(): boolean }).isWellFormed();
}

function loneSurrogateAt(value: string): number {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = value.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
      return i;
    }
    if (c >= 0xdc00 && c <= 0xdfff) return i;
  }
  return -1;
}
