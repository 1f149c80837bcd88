import { InvalidArgumentError } from './errors.js';

/** Argument checks shared by the public entry points; each names the argument it rejects. */

export function assertName(argument: string, value: unknown, maxLength = 255): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new InvalidArgumentError(argument, `${argument} must be a non-empty string, got ${describe(value)}`);
  }
  if (value.length > maxLength) {
    throw new InvalidArgumentError(argument, `${argument} must be at most ${maxLength} characters, got ${value.length}`);
  }
  return value;
}

export function assertDuration(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new InvalidArgumentError(argument, `${argument} must be a finite number of milliseconds >= 0, got ${describe(value)}`);
  }
  return value;
}

export function assertPositiveInteger(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(argument, `${argument} must be an integer >= 1, got ${describe(value)}`);
  }
  return value;
}

export function assertNonNegativeInteger(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(argument, `${argument} must be an integer >= 0, got ${describe(value)}`);
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
  if (typeof value === 'string') return value === '' ? 'an empty string' : JSON.stringify(value);
  if (typeof value === 'number') return String(value);
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}
