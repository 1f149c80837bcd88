import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { deserialize, deserializeError, roundTrip, serialize, serializeError } from '../src/engine/serialization.js';
import * as cairn from '../src/index.js';
import {
  CairnError,
  ContextUsageError,
  CorruptValueError,
  DagValidationError,
  DatabaseConnectionError,
  DuplicateQueueEntryError,
  ERROR_CODES,
  EngineClosedError,
  ExecutionInterruptedError,
  ExecutionSupersededError,
  InvalidArgumentError,
  MaxRecoveryAttemptsError,
  MigrationError,
  NonDeterminismError,
  SerializationError,
  StepRetriesExceededError,
  StepTimeoutError,
  TaskNotWaitingError,
  UnknownWorkflowError,
  WORKFLOW_STATUSES,
  WorkflowCancelledError,
  WorkflowConflictError,
  WorkflowNotFoundError,
  WorkflowTimeoutError,
} from '../src/index.js';

type ErrorName = keyof typeof ERROR_CODES;

/** One sample instance per error class; the first test checks this covers ERROR_CODES exactly. */
const samples: Record<ErrorName, () => CairnError> = {
  CairnError: () => new CairnError(ERROR_CODES.CairnError, 'base'),
  InvalidArgumentError: () => new InvalidArgumentError('limit', 'limit must be an integer >= 0, got -1'),
  NonDeterminismError: () => new NonDeterminismError('wf-1', 2, 'charge', 'refund'),
  WorkflowConflictError: () => new WorkflowConflictError('wf-1', 'alpha', 'beta'),
  WorkflowCancelledError: () => new WorkflowCancelledError('wf-1'),
  WorkflowTimeoutError: () => new WorkflowTimeoutError('wf-1'),
  StepRetriesExceededError: () => new StepRetriesExceededError('charge', [new Error('first'), new Error('second')]),
  DuplicateQueueEntryError: () => new DuplicateQueueEntryError('emails', 'welcome-42'),
  UnknownWorkflowError: () => new UnknownWorkflowError('ghost', 'wf-1'),
  WorkflowNotFoundError: () => new WorkflowNotFoundError('wf-1'),
  SerializationError: () => new SerializationError('$.a', 'the input', 'a function'),
  MaxRecoveryAttemptsError: () => new MaxRecoveryAttemptsError('wf-1', 51),
  ContextUsageError: () => new ContextUsageError('ctx.step was called inside a step'),
  MigrationError: () => new MigrationError('database is newer'),
  EngineClosedError: () => new EngineClosedError('cannot start'),
  ExecutionSupersededError: () => new ExecutionSupersededError('wf-1', 'SUCCESS'),
  StepTimeoutError: () => new StepTimeoutError('charge', 5_000),
  ExecutionInterruptedError: () => new ExecutionInterruptedError('wf-1', new Error('connection terminated')),
  CorruptValueError: () => new CorruptValueError("the output of workflow 'wf-1'", new SyntaxError('Unexpected end of JSON input')),
  DatabaseConnectionError: () => new DatabaseConnectionError('postgres://app:***@db:5432/app', 'refused', { retryable: true }),
  DagValidationError: () => new DagValidationError('etl', [{ kind: 'cycle', keys: ['a', 'b'], message: 'cycle: a → b → a' }]),
  TaskNotWaitingError: () => new TaskNotWaitingError('etl-1', 'approve', 'completed'),
};

const names = Object.keys(ERROR_CODES) as ErrorName[];
const codes: string[] = Object.values(ERROR_CODES);
const exported = cairn as unknown as Record<string, unknown>;

const docs = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

/** The body of each `## Heading` section of docs/errors.md, keyed by heading text. */
function docSections(): Map<string, string> {
  const sections = new Map<string, string>();
  const parts = docs.split(/^## /m).slice(1);
  for (const part of parts) {
    const newline = part.indexOf('\n');
    sections.set(part.slice(0, newline).trim(), part.slice(newline + 1));
  }
  return sections;
}

describe('error codes, exports and docs agree', () => {
  test('there is one sample per ERROR_CODES entry', () => {
    assert.deepEqual(Object.keys(samples).sort(), [...names].sort());
  });

  test('codes are unique', () => {
    assert.equal(new Set(codes).size, codes.length, `duplicate codes in ${codes.join(', ')}`);
  });

  for (const name of names) {
    test(`${name} is exported, extends CairnError and carries ${ERROR_CODES[name]}`, () => {
      const cls = exported[name];
      assert.equal(typeof cls, 'function', `${name} is not exported from src/index.ts`);
      assert.ok(cls === CairnError || (cls as { prototype: unknown }).prototype instanceof CairnError, `${name} does not extend CairnError`);
      const err = samples[name]();
      assert.ok(err instanceof (cls as new (...args: never[]) => CairnError));
      assert.ok(err instanceof CairnError);
      assert.ok(err instanceof Error);
      assert.equal(err.name, name);
      assert.equal(err.code, ERROR_CODES[name]);
      assert.equal(typeof err.retryable, 'boolean');
      assert.ok(err.message.length > 0);
    });
  }

  test('every exported subclass of CairnError has a code', () => {
    const errorClasses = Object.entries(exported)
      .filter(([, v]) => typeof v === 'function' && (v === CairnError || (v as { prototype: unknown }).prototype instanceof CairnError))
      .map(([k]) => k)
      .sort();
    assert.deepEqual(errorClasses, [...names].sort());
  });

  test('docs/errors.md has a section per class naming its code and retryability', () => {
    const sections = docSections();
    for (const name of names) {
      const body = sections.get(name);
      assert.ok(body !== undefined, `docs/errors.md has no '## ${name}' heading`);
      assert.ok(body.includes(`\`${ERROR_CODES[name]}\``), `the ${name} section does not mention \`${ERROR_CODES[name]}\``);
      const retryable = /\*\*Retryable:\*\*\s*(yes|no)\b/.exec(body)?.[1];
      assert.ok(retryable !== undefined, `the ${name} section does not say whether it is retryable`);
      assert.equal(retryable === 'yes', samples[name]().retryable, `the ${name} section says retryable: ${retryable}`);
      for (const label of ['Code', 'Raised when', 'Fields', 'What to do']) {
        assert.ok(body.includes(`**${label}:**`), `the ${name} section has no '${label}' entry`);
      }
    }
  });

  test('docs/errors.md mentions every code', () => {
    for (const code of codes) assert.ok(docs.includes(`\`${code}\``), `docs/errors.md does not mention \`${code}\``);
  });

  test('docs/errors.md mentions no code that does not exist', () => {
    const known = new Set<string>([...codes, ...WORKFLOW_STATUSES, 'ERROR_CODES']);
    const mentioned = [...docs.matchAll(/[`'"]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)[`'"]/g)].map((m) => m[1]!).filter((w) => w.length >= 3);
    const unknown = [...new Set(mentioned.filter((w) => !known.has(w) && !(w in globalThis)))];
    assert.deepEqual(unknown, [], `docs/errors.md mentions codes that do not exist: ${unknown.join(', ')}`);
    const declared = [...docs.matchAll(/\*\*Code:\*\*\s*`([^`]+)`/g)].map((m) => m[1]!).sort();
    assert.deepEqual(declared, [...codes].sort());
  });
});

describe('serialization of values', () => {
  test('round-trips Date, Map, Set, bigint, undefined and nested values', () => {
    const value = {
      when: new Date('2024-02-29T12:34:56.789Z'),
      byKey: new Map<unknown, unknown>([
        ['a', 1n],
        [2, new Set([new Date(0), 'x'])],
      ]),
      tags: new Set(['red', 'blue']),
      big: 2n ** 70n,
      missing: undefined,
      list: [undefined, null, -0, Number.NaN, Infinity, { deep: [new Map([['k', new Set([1n])]])] }],
      pattern: /ab+c/gi,
      bytes: new Uint8Array([1, 2, 255]),
    };
    const { text, value: back } = roundTrip(value, 'the sample');
    assert.equal(typeof text, 'string');
    assert.deepStrictEqual(back, value);
    assert.ok('missing' in back, 'an undefined property is kept');
    assert.ok(back.when instanceof Date && back.byKey instanceof Map && back.tags instanceof Set);
    assert.equal(typeof back.big, 'bigint');
    assert.ok(Object.is(back.list[2], -0));
    assert.deepStrictEqual(deserialize(serialize(value, 'the sample')), value);
  });

  test('round-trips top-level scalars and undefined', () => {
    for (const v of [undefined, null, 0, 'text', true, 10n, new Date(1)]) {
      assert.deepStrictEqual(roundTrip(v, 'a scalar').value, v);
    }
    assert.equal(deserialize(null), undefined);
  });

  test('parses values afresh, so the caller cannot mutate what was stored', () => {
    const input = { list: [1, 2] };
    const { value } = roundTrip(input, 'the input');
    assert.notEqual(value, input);
    assert.notEqual(value.list, input.list);
  });

  const unstorable: Array<[string, unknown, string, RegExp]> = [
    ['a function nested in objects and arrays', { a: { b: [1, () => 2] } }, '$.a.b[1]', /a function/],
    ['a symbol', { tag: Symbol('t') }, '$.tag', /a symbol/],
    ['a Buffer', { payload: [Buffer.from('hi')] }, '$.payload[0]', /Buffer/],
    ['a Promise', { pending: Promise.resolve(1) }, '$.pending', /Promise/],
    ['a function as the whole value', () => 1, '$', /a function/],
    ['a function in a Map value', new Map([['k', () => 1]]), '$.get("k")', /a function/],
    ['a symbol in a Set', new Set([1, Symbol('s')]), '$.<member 1>', /a symbol/],
    ['a WeakMap', { cache: new WeakMap() }, '$.cache', /WeakMap/],
  ];
  for (const [label, value, path, reason] of unstorable) {
    test(`SerializationError names the path of ${label}`, () => {
      assert.throws(
        () => serialize(value, 'the output of step "s"'),
        (err: unknown) => {
          assert.ok(err instanceof SerializationError);
          assert.ok(err instanceof CairnError);
          assert.equal(err.code, 'SERIALIZATION');
          assert.equal(err.path, path);
          assert.equal(err.what, 'the output of step "s"');
          assert.ok(err.message.includes(path), `message '${err.message}' does not name ${path}`);
          assert.ok(err.message.includes('the output of step "s"'), `message '${err.message}' does not say which value`);
          assert.match(err.message, reason);
          assert.match(err.message, /cannot be stored/);
          return true;
        },
      );
    });
  }

  test('a cycle is not mistaken for an unstorable value, and shared references are fine', () => {
    const shared = { n: 1 };
    assert.deepStrictEqual(roundTrip({ x: shared, y: shared }, 'shared').value, { x: { n: 1 }, y: { n: 1 } });
  });
});

describe('serialization of errors', () => {
  const rebuild = (err: unknown): unknown => deserializeError(serializeError(err));

  test('a plain Error keeps name, message and stack', () => {
    const original = new TypeError('bad type');
    const back = rebuild(original);
    assert.ok(back instanceof Error);
    assert.equal(back.name, 'TypeError');
    assert.equal(back.message, 'bad type');
    assert.equal(back.stack, original.stack);
  });

  test('a custom error keeps its name, code and own enumerable fields', () => {
    class HttpError extends Error {
      override name = 'HttpError';
      code = 'E_HTTP';
      status = 503;
      details = { retryAfter: new Date(5_000), hosts: new Set(['a', 'b']) };
      onRetry = () => undefined;
    }
    const back = rebuild(new HttpError('upstream unavailable')) as Error & Record<string, unknown>;
    assert.ok(back instanceof Error);
    assert.equal(back.name, 'HttpError');
    assert.equal(back.message, 'upstream unavailable');
    assert.equal(back.code, 'E_HTTP');
    assert.equal(back.status, 503);
    assert.deepStrictEqual(back.details, { retryAfter: new Date(5_000), hosts: new Set(['a', 'b']) });
    assert.equal('onRetry' in back, false, 'a field holding a function is dropped');
  });

  test('causes and an errors array are rebuilt', () => {
    const inner = Object.assign(new Error('disk full'), { code: 'ENOSPC' });
    const outer = new Error('could not save', { cause: inner });
    const several = Object.assign(new Error('several failures'), { name: 'BatchError', errors: [outer, new RangeError('too big')] });
    const back = rebuild(several) as Error & { errors: unknown[] };
    assert.equal(back.name, 'BatchError');
    assert.equal(back.message, 'several failures');
    const [first, second] = back.errors as Error[];
    assert.equal(first?.message, 'could not save');
    assert.equal((first?.cause as Error & { code: string }).message, 'disk full');
    assert.equal((first?.cause as Error & { code: string }).code, 'ENOSPC');
    assert.equal(second?.name, 'RangeError');
  });

  test('an AggregateError keeps its non-enumerable errors', () => {
    const back = rebuild(new AggregateError([new Error('a'), new TypeError('b')], 'both failed')) as Error & { errors: Error[] };
    assert.equal(back.name, 'AggregateError');
    assert.equal(back.message, 'both failed');
    assert.deepEqual(back.errors.map((e) => [e.name, e.message]), [['Error', 'a'], ['TypeError', 'b']]);
  });

  test('thrown non-errors come back as the same value when storable', () => {
    assert.equal(rebuild('just a string'), 'just a string');
    assert.deepStrictEqual(rebuild({ reason: 'nope', at: new Date(7) }), { reason: 'nope', at: new Date(7) });
    assert.equal(rebuild(undefined), undefined);
    const fn = rebuild(() => 1) as Error;
    assert.ok(fn instanceof Error);
    assert.equal(fn.name, 'NonErrorThrown');
  });

  for (const name of names) {
    test(`${name} keeps its class, code and fields`, () => {
      const original = samples[name]();
      const back = rebuild(original);
      assert.ok(back instanceof CairnError, `${name} was not rebuilt as a CairnError`);
      assert.ok(back instanceof (exported[name] as new (...args: never[]) => CairnError), `${name} lost its class`);
      assert.equal(back.name, name);
      assert.equal(back.code, ERROR_CODES[name]);
      assert.equal(back.message, original.message);
      assert.equal(back.retryable, original.retryable);
      assert.equal(back.stack, original.stack);
      for (const key of Object.keys(original)) {
        if (key === 'errors') continue;
        assert.deepStrictEqual((back as unknown as Record<string, unknown>)[key], (original as unknown as Record<string, unknown>)[key], key);
      }
    });
  }

  test('InvalidArgumentError keeps argument; SerializationError keeps path', () => {
    const arg = rebuild(new InvalidArgumentError('timeoutMs', 'timeoutMs must be >= 0')) as InvalidArgumentError;
    assert.equal(arg.argument, 'timeoutMs');
    assert.equal(arg.code, 'INVALID_ARGUMENT');
    const ser = rebuild(new SerializationError('$.a.b[1]', 'the output', 'a function')) as SerializationError;
    assert.ok(ser instanceof SerializationError);
    assert.equal(ser.path, '$.a.b[1]');
    assert.equal(ser.what, 'the output');
  });

  test('StepRetriesExceededError keeps each attempt and its cause', () => {
    const original = new StepRetriesExceededError('charge', [new Error('timeout'), Object.assign(new Error('declined'), { code: 'E_CARD' })]);
    const back = rebuild(original) as StepRetriesExceededError;
    assert.ok(back instanceof StepRetriesExceededError);
    assert.equal(back.stepName, 'charge');
    assert.deepEqual(
      back.errors.map((e) => [(e as Error).message, (e as { code?: string }).code]),
      [
        ['timeout', undefined],
        ['declined', 'E_CARD'],
      ],
    );
    assert.equal((back.cause as Error).message, 'declined');
  });

  test('rebuilding twice gives the same error, as replays do', () => {
    const text = serializeError(new WorkflowConflictError('wf-9', 'alpha', 'beta'));
    const a = deserializeError(text) as WorkflowConflictError;
    const b = deserializeError(serializeError(a)) as WorkflowConflictError;
    assert.ok(b instanceof WorkflowConflictError);
    assert.deepStrictEqual(
      [b.name, b.message, b.code, b.workflowId, b.existingName, b.requestedName],
      [a.name, a.message, a.code, a.workflowId, a.existingName, a.requestedName],
    );
  });
});
