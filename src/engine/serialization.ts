import superjson from 'superjson';
import { CorruptValueError, ERROR_CODES, SerializationError, type CairnError } from './errors.js';
import * as errors from './errors.js';

/**
 * Every stored value goes through superjson. Values are serialized and parsed back on first
 * execution too, so a first run sees exactly what a replay will.
 */

/** The default `maxPayloadBytes`: the most bytes one stored value may take. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;
/** The largest `maxPayloadBytes` allowed: both databases' text columns hold far more, but a value this big is a mistake. */
export const MAX_PAYLOAD_BYTES = 512 * 1024 * 1024;

/** Serializes a value to store, refusing one over `maxBytes` (UTF-8) with the path of its largest part. */
export function serialize(value: unknown, what: string, maxBytes = DEFAULT_MAX_PAYLOAD_BYTES): string {
  // Plain JSON needs none of superjson's annotations, and its text is the same either way.
  const text = isPlainJson(value, 0, undefined) ? `{"json":${JSON.stringify(value)}}` : annotated(value, what);
  // A UTF-16 code unit is at most 3 bytes of UTF-8: only long texts are measured.
  if (text.length * 3 > maxBytes) {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (bytes > maxBytes) throw new SerializationError(largestPart(value), what, `it takes ${bytes} bytes stored, over maxPayloadBytes (${maxBytes})`);
  }
  return text;
}

function annotated(value: unknown, what: string): string {
  const problem = findUnstorable(value, '$', new Set(), 0);
  if (problem !== undefined) throw new SerializationError(problem.path, what, problem.reason);
  try {
    return superjson.stringify(value);
  } catch (cause) {
    throw new SerializationError('$', what, (cause as Error).message, { cause });
  }
}

/** The path of the largest part of a value too big to store, following the largest member down a few levels. */
function largestPart(value: unknown): string {
  let path = '$';
  let current = value;
  for (let depth = 0; depth < 8 && typeof current === 'object' && current !== null; depth++) {
    const entries: Array<[string, unknown]> = Array.isArray(current)
      ? current.map((v, i) => [`[${i}]`, v])
      : current instanceof Map
        ? [...current].map(([k, v]) => [`.get(${JSON.stringify(String(k))})`, v])
        : Object.entries(current).map(([k, v]) => [/^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`, v]);
    if (entries.length === 0) break;
    let best: [string, unknown] | undefined;
    let bestSize = -1;
    for (const entry of entries) {
      const size = sizeOf(entry[1]);
      if (size > bestSize) [best, bestSize] = [entry, size];
    }
    path += best![0];
    current = best![1];
  }
  return path;
}

function sizeOf(value: unknown): number {
  if (typeof value === 'string') return value.length;
  try {
    return superjson.stringify(value).length;
  } catch {
    return 0;
  }
}

/**
 * Parses a stored value. A value that cannot be parsed (changed by hand, truncated, written by
 * something else) raises {@link CorruptValueError} naming `what`, with the parser's error as cause.
 */
export function deserialize<T = unknown>(text: string | null, what = 'a stored value'): T {
  if (text === null) return undefined as T;
  let stored: { json: unknown; meta?: unknown };
  try {
    stored = JSON.parse(text) as { json: unknown; meta?: unknown };
  } catch (cause) {
    throw new CorruptValueError(what, cause);
  }
  if (typeof stored !== 'object' || stored === null || Array.isArray(stored) || !('json' in stored)) {
    throw new CorruptValueError(what, new TypeError('it is not an object with a "json" field'));
  }
  // Without annotations superjson would return a copy of `json`, which is already a fresh value.
  if (stored.meta === undefined) return stored.json as T;
  try {
    return superjson.deserialize<T>(stored as Parameters<typeof superjson.deserialize>[0]);
  } catch (cause) {
    throw new CorruptValueError(what, cause);
  }
}

const PLAIN_DEPTH = 32;

/**
 * How deep a stored value may nest. superjson and JSON walk values recursively, and a value
 * nested some thousands of levels deep overflows the stack; far below that, refuse it by name.
 */
export const MAX_NESTING = 500;

/** Property names superjson refuses in annotated values, as a prototype-pollution risk. */
const POLLUTING_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Whether `value` is JSON as it stands: strings, finite numbers other than -0, booleans, null, and
 * arrays and plain objects of those, with no undefined and no object reached twice (superjson
 * would record the sharing). Anything else, or anything nested deeper than PLAIN_DEPTH, goes
 * through superjson.
 */
function isPlainJson(value: unknown, depth: number, seen: Set<object> | undefined): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'object':
      break;
    default:
      return false;
  }
  if (value === null) return true;
  if (depth === PLAIN_DEPTH) return false;
  seen ??= new Set();
  if (seen.has(value)) return false;
  seen.add(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isPlainJson(value[i], depth + 1, seen)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return false;
  for (const key in value) {
    if (!isPlainJson((value as Record<string, unknown>)[key], depth + 1, seen)) return false;
  }
  return true;
}

/** Serializes then parses, so the caller sees what a replay would. */
export function roundTrip<T>(value: T, what: string, maxBytes = DEFAULT_MAX_PAYLOAD_BYTES): { text: string; value: T } {
  const text = serialize(value, what, maxBytes);
  return { text, value: deserialize<T>(text) };
}

interface Problem {
  path: string;
  reason: string;
}

function findUnstorable(value: unknown, path: string, ancestors: Set<object>, depth: number): Problem | undefined {
  switch (typeof value) {
    case 'function':
      return { path, reason: 'a function' };
    case 'symbol':
      return { path, reason: 'a symbol' };
    case 'object':
      break;
    default:
      return undefined;
  }
  if (value === null || ancestors.has(value)) return undefined;
  if (depth >= MAX_NESTING) return { path, reason: `a value nested more than ${MAX_NESTING} levels deep` };
  if (value instanceof Date && Number.isNaN(value.getTime())) return { path, reason: 'an invalid Date (its time is NaN)' };
  if (Buffer.isBuffer(value)) return { path, reason: 'a Buffer (store a Uint8Array or a string instead)' };
  if (value instanceof Promise) return { path, reason: 'a Promise (await it first)' };
  if (value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef) {
    return { path, reason: `a ${value.constructor.name}` };
  }
  if (value instanceof Date || value instanceof RegExp || value instanceof URL || ArrayBuffer.isView(value)) {
    return undefined;
  }
  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const p = findUnstorable(value[i], `${path}[${i}]`, ancestors, depth + 1);
        if (p) return p;
      }
    } else if (value instanceof Map) {
      let i = 0;
      for (const [k, v] of value) {
        const p =
          findUnstorable(k, `${path}.<key ${i}>`, ancestors, depth + 1) ?? findUnstorable(v, `${path}.get(${describeKey(k)})`, ancestors, depth + 1);
        if (p) return p;
        i++;
      }
    } else if (value instanceof Set) {
      let i = 0;
      for (const v of value) {
        const p = findUnstorable(v, `${path}.<member ${i++}>`, ancestors, depth + 1);
        if (p) return p;
      }
    } else if (!(value instanceof Error)) {
      for (const key of Object.keys(value)) {
        if (POLLUTING_KEYS.has(key)) {
          return { path: `${path}.${key}`, reason: `a property named '${key}', which is refused beside values JSON cannot hold (a Date, Map, bigint...) as a prototype-pollution risk; rename it` };
        }
        const p = findUnstorable((value as Record<string, unknown>)[key], `${path}.${key}`, ancestors, depth + 1);
        if (p) return p;
      }
    }
  } finally {
    ancestors.delete(value);
  }
  return undefined;
}

function describeKey(k: unknown): string {
  return typeof k === 'string' ? JSON.stringify(k) : String(k);
}

/** What is stored for a thrown value: enough to rethrow an equivalent error on replay. */
interface StoredError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  props?: Record<string, unknown>;
  cause?: StoredError;
  thrown?: unknown;
}

const RESERVED_PROPS = new Set(['name', 'message', 'stack', 'cause', 'code']);

function toStoredError(err: unknown, depth = 0): StoredError {
  if (!(err instanceof Error)) {
    const stored: StoredError = { name: 'NonErrorThrown', message: safeString(err) };
    if (findUnstorable(err, '$', new Set(), 0) === undefined) stored.thrown = err;
    return stored;
  }
  const stored: StoredError = { name: err.name, message: err.message };
  if (err.stack !== undefined) stored.stack = err.stack;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') stored.code = code;
  const props: Record<string, unknown> = {};
  for (const key of Object.keys(err)) {
    if (RESERVED_PROPS.has(key) || key === 'errors') continue;
    const v = (err as unknown as Record<string, unknown>)[key];
    if (findUnstorable(v, '$', new Set(), 0) === undefined) props[key] = v;
  }
  // AggregateError keeps `errors` as an own but non-enumerable property; keep it either way.
  const nested = (err as { errors?: unknown }).errors;
  if (Array.isArray(nested)) props.errors = nested.map((e) => toStoredError(e, depth + 1));
  if (Object.keys(props).length > 0) stored.props = props;
  if (err.cause !== undefined && depth < 8) stored.cause = toStoredError(err.cause, depth + 1);
  return stored;
}

function safeString(v: unknown): string {
  try {
    return typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

const CAIRN_CLASSES = new Map<string, new (...args: never[]) => CairnError>(
  Object.keys(ERROR_CODES).map((name) => [name, (errors as unknown as Record<string, new (...args: never[]) => CairnError>)[name]!]),
);

function fromStoredError(stored: StoredError): unknown {
  if (stored.name === 'NonErrorThrown' && 'thrown' in stored) return stored.thrown;
  const cls = CAIRN_CLASSES.get(stored.name);
  const err: Error = cls ? (Object.create(cls.prototype) as Error) : new Error(stored.message);
  Object.defineProperty(err, 'message', { value: stored.message, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(err, 'name', { value: stored.name, writable: true, configurable: true, enumerable: false });
  if (stored.stack !== undefined) {
    Object.defineProperty(err, 'stack', { value: stored.stack, writable: true, configurable: true, enumerable: false });
  }
  if (stored.code !== undefined) (err as { code?: string }).code = stored.code;
  if (stored.props) {
    for (const [k, v] of Object.entries(stored.props)) {
      (err as unknown as Record<string, unknown>)[k] =
        k === 'errors' && Array.isArray(v) ? v.map((e) => fromStoredError(e as StoredError)) : v;
    }
  }
  if (stored.cause !== undefined) {
    Object.defineProperty(err, 'cause', { value: fromStoredError(stored.cause), writable: true, configurable: true, enumerable: false });
  }
  return err;
}

/** Serializes a thrown value; never throws itself. */
export function serializeError(err: unknown): string {
  const stored = toStoredError(err);
  try {
    return superjson.stringify(stored);
  } catch {
    // Fields were checked one by one; should superjson still refuse, keep what identifies the error.
    return superjson.stringify({ name: stored.name, message: stored.message, ...(stored.stack !== undefined && { stack: stored.stack }) });
  }
}

/**
 * Rebuilds a thrown value: Cairn errors keep their class, others become Errors with the same name,
 * message, code and fields. A stored error that cannot be read raises {@link CorruptValueError}.
 */
export function deserializeError(text: string, what = 'a stored error'): unknown {
  const stored = deserialize<StoredError>(text, what);
  if (!isStoredError(stored, 0)) throw new CorruptValueError(what, new TypeError('it is not a stored error (name and message strings)'));
  return fromStoredError(stored);
}

function isStoredError(v: unknown, depth: number): v is StoredError {
  if (typeof v !== 'object' || v === null || depth > 16) return false;
  const s = v as StoredError;
  if (typeof s.name !== 'string' || typeof s.message !== 'string') return false;
  if (s.stack !== undefined && typeof s.stack !== 'string') return false;
  if (s.props !== undefined && (typeof s.props !== 'object' || s.props === null)) return false;
  if (s.props && Array.isArray(s.props.errors) && !s.props.errors.every((e) => isStoredError(e, depth + 1))) return false;
  return s.cause === undefined || isStoredError(s.cause, depth + 1);
}
