import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import superjson from 'superjson';
import { deserialize, deserializeError, MAX_NESTING, roundTrip, serialize, serializeError } from '../src/engine/serialization.js';
import { CorruptValueError, SerializationError } from '../src/engine/errors.js';
import { newWorkflowId } from '../src/engine/ids.js';

const shared = { x: 1 };
const cyclic: Record<string, unknown> = { name: 'loop' };
cyclic.self = cyclic;
let deep: unknown = 'bottom';
for (let i = 0; i < 40; i++) deep = { down: deep };

/** Values whose stored text must be exactly what superjson writes, whichever path writes it. */
const values: Array<[string, unknown]> = [
  ['number', 42],
  ['float', 0.1],
  ['large number', 1e21],
  ['zero', 0],
  ['negative zero', -0],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['string', 'héllo "quoted" \n line'],
  ['empty string', ''],
  ['boolean', false],
  ['null', null],
  ['undefined', undefined],
  ['bigint', 12n],
  ['plain object', { a: 1, b: 'two', c: [true, null, { d: 0.5 }] }],
  ['object with undefined', { a: undefined, b: 1 }],
  ['array with undefined', [1, undefined, 3]],
  ['sparse array', [1, , 3]],
  ['null-prototype object', Object.assign(Object.create(null) as object, { k: 'v' })],
  ['Date', new Date(0)],
  ['nested Date', { at: new Date(86_400_000), tags: ['a'] }],
  ['Map', new Map([['k', 1]])],
  ['Set', new Set([1, 2])],
  ['RegExp', /a+b/gi],
  ['class instance', new URL('https://example.com/a')],
  ['shared reference', { p: shared, q: shared }],
  ['cycle', cyclic],
  ['deep nesting', deep],
  ['empty object', {}],
  ['empty array', []],
];

describe('serialization', () => {
  for (const [label, value] of values) {
    test(`${label}: stored text equals superjson's, and reads back as superjson reads it`, () => {
      const text = serialize(value, 'a test value');
      assert.equal(text, superjson.stringify(value));
      assert.deepEqual(deserialize(text), superjson.parse(text));
    });
  }

  test('plain values come back equal and fresh, not the same object', () => {
    const input = { order: 7, items: [{ sku: 'a', qty: 2 }] };
    const { value } = roundTrip(input, 'order');
    assert.deepEqual(value, input);
    assert.notEqual(value, input);
    assert.notEqual(value.items, input.items);
  });

  test('a shared reference stays shared after the round trip, as superjson records it', () => {
    const { value } = roundTrip({ p: shared, q: shared }, 'shared');
    assert.equal(value.p, value.q);
  });

  test('text written by superjson with annotations reads back through superjson', () => {
    const text = superjson.stringify({ when: new Date(5), n: undefined, big: 3n });
    assert.deepEqual(deserialize(text), { when: new Date(5), n: undefined, big: 3n });
  });

  test('a function inside an otherwise plain value is still refused with its path', () => {
    assert.throws(() => serialize({ a: [1, { f: () => 1 }] }, 'the output of step x'), /\$\.a\[1\]\.f/);
  });
});

function nestedIn(depth: number, leaf: unknown): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
}

describe('values that cannot be stored', () => {
  const refused: Array<[string, () => unknown, RegExp, RegExp]> = [
    ['a value nested 100,000 levels deep', () => nestedIn(100_000, 1), /^\$(\.a){500}$/, /nested more than 500 levels deep/],
    ['a value nested one level too deep', () => nestedIn(MAX_NESTING + 1, 1), /^\$(\.a){500}$/, /nested more than 500 levels deep/],
    ['an invalid Date', () => ({ when: new Date(Number.NaN) }), /^\$\.when$/, /an invalid Date/],
    ['an invalid Date at the top', () => new Date(Number.NaN), /^\$$/, /an invalid Date/],
    ['an invalid Date in a Map', () => new Map([['k', new Date(Number.NaN)]]), /^\$\.get\("k"\)$/, /an invalid Date/],
    ['constructor beside a Date', () => ({ constructor: 'x', at: new Date(0) }), /^\$\.constructor$/, /property named 'constructor'/],
    ['prototype deeper beside a Map', () => ({ m: new Map(), inner: { prototype: 1 } }), /^\$\.inner\.prototype$/, /property named 'prototype'/],
  ];
  for (const [label, make, path, reason] of refused) {
    test(`${label} is refused with SerializationError naming its path`, () => {
      assert.throws(
        () => serialize(make(), 'the input'),
        (err: unknown) => {
          assert.ok(err instanceof SerializationError, `got ${String(err)}`);
          assert.equal(err.code, 'SERIALIZATION');
          assert.match(err.path, path);
          assert.match(err.message, reason);
          return true;
        },
      );
    });
  }

  test('a value nested exactly 500 levels deep (a Date at the bottom) is stored and read back', () => {
    const value = nestedIn(MAX_NESTING - 1, new Date(5));
    assert.deepStrictEqual(roundTrip(value, 'the input').value, value);
  });

  test('a plain value with a constructor property is still stored as JSON', () => {
    assert.deepStrictEqual(roundTrip({ constructor: 'x' }, 'the input').value, { constructor: 'x' });
  });
});

describe('corrupt stored text', () => {
  const corrupt: Array<[string, string]> = [
    ['not JSON', '{"json": '],
    ['JSON that is not an object', '42'],
    ['an object without json', '{"value": 1}'],
    ['superjson meta that does not fit', '{"json": 1, "meta": {"values": ["map"]}}'],
    ['superjson meta of an unknown type', '{"json": 1, "meta": {"values": ["nonsense"]}}'],
  ];
  for (const [label, text] of corrupt) {
    test(`deserialize refuses ${label} with CorruptValueError`, () => {
      assert.throws(
        () => deserialize(text, 'the output of step 1'),
        (err: unknown) => err instanceof CorruptValueError && err.code === 'CORRUPT_VALUE' && err.what === 'the output of step 1' && err.cause !== undefined,
      );
    });
  }

  for (const [label, text] of [...corrupt, ['a value that is not a stored error', '{"json": {"name": 5}}'] as [string, string], ['null', '{"json": null}'] as [string, string]]) {
    test(`deserializeError refuses ${label} with CorruptValueError`, () => {
      assert.throws(
        () => deserializeError(text, 'the error of workflow w'),
        (err: unknown) => err instanceof CorruptValueError && /the error of workflow w is corrupt/.test(err.message),
      );
    });
  }

  test('a stored error still reads back', () => {
    const back = deserializeError(serializeError(new TypeError('boom'))) as Error;
    assert.equal(back.name, 'TypeError');
    assert.equal(back.message, 'boom');
  });
});

describe('workflow ids', () => {
  test('are version 7 UUIDs that sort in the order they were made, across milliseconds and within one', () => {
    const ids: string[] = [];
    for (let i = 0; i < 5_000; i++) ids.push(newWorkflowId(1_700_000_000_000 + Math.floor(i / 1_000)));
    for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual([...ids].sort(), ids);
    assert.equal(new Set(ids).size, ids.length);
    assert.equal(ids[0]!.slice(0, 13).replace('-', ''), (1_700_000_000_000).toString(16).padStart(12, '0'));
  });

  test('more than 4,096 in one millisecond still come out unique and in order', () => {
    const ids = Array.from({ length: 10_000 }, () => newWorkflowId(1_800_000_000_000));
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
  });

  test('a clock that steps back does not break the order', () => {
    const a = newWorkflowId(1_900_000_000_000);
    const b = newWorkflowId(1_899_999_999_000);
    assert.ok(b > a, `${b} should sort after ${a}`);
  });
});
