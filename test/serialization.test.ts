import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import superjson from 'superjson';
import { deserialize, roundTrip, serialize } from '../src/engine/serialization.js';
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
