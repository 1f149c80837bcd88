import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertCron, assertTimezone, latestTicks, nextTick, ticksBetween } from '../src/scheduler/cron.js';
import { tickId } from '../src/scheduler/schedules.js';

const iso = (ms: number) => new Date(ms).toISOString();
const at = (s: string) => Date.parse(s);

describe('next-fire computation', () => {
  test('a daily 02:30 in New York on the spring-forward day fires once, at 03:30 EDT, then back at 02:30', () => {
    // 2026-03-08 02:00 EST jumps to 03:00 EDT, so 02:30 does not exist that day.
    const ticks = ticksBetween('30 2 * * *', 'America/New_York', at('2026-03-07T12:00:00Z'), at('2026-03-10T12:00:00Z'), 10);
    assert.deepEqual(ticks.map(iso), ['2026-03-08T07:30:00.000Z', '2026-03-09T06:30:00.000Z', '2026-03-10T06:30:00.000Z']);
  });

  test('a daily 01:30 in New York on the fall-back day fires once, not at both 01:30s', () => {
    // 2026-11-01 02:00 EDT falls back to 01:00 EST, so 01:30 happens twice that day.
    const ticks = ticksBetween('30 1 * * *', 'America/New_York', at('2026-10-31T12:00:00Z'), at('2026-11-02T12:00:00Z'), 10);
    assert.deepEqual(ticks.map(iso), ['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z']);
  });

  test('an hourly schedule follows real hours through the fall-back hour', () => {
    const ticks = ticksBetween('0 * * * *', 'America/New_York', at('2026-11-01T04:30:00Z'), at('2026-11-01T07:30:00Z'), 10);
    assert.deepEqual(ticks.map(iso), ['2026-11-01T05:00:00.000Z', '2026-11-01T06:00:00.000Z', '2026-11-01T07:00:00.000Z']);
  });

  test('the same cron in two zones fires at different instants', () => {
    const after = at('2026-06-01T00:00:00Z');
    assert.equal(iso(nextTick('0 9 * * *', 'Europe/Paris', after)), '2026-06-01T07:00:00.000Z');
    assert.equal(iso(nextTick('0 9 * * *', 'Asia/Tokyo', after)), '2026-06-02T00:00:00.000Z');
  });

  test('six fields count seconds; the next tick is strictly after the given instant', () => {
    assert.equal(iso(nextTick('*/20 * * * * *', 'UTC', at('2026-01-01T00:00:20Z'))), '2026-01-01T00:00:40.000Z');
    assert.deepEqual(ticksBetween('*/20 * * * * *', 'UTC', at('2026-01-01T00:00:00Z'), at('2026-01-01T00:01:00Z'), 10).map(iso), [
      '2026-01-01T00:00:20.000Z',
      '2026-01-01T00:00:40.000Z',
      '2026-01-01T00:01:00.000Z',
    ]);
  });

  test('latestTicks keeps the most recent ticks of a long gap', () => {
    const ticks = latestTicks('* * * * *', 'UTC', at('2026-01-01T00:00:00Z'), at('2026-01-01T10:00:00Z'), 3);
    assert.deepEqual(ticks.map(iso), ['2026-01-01T09:58:00.000Z', '2026-01-01T09:59:00.000Z', '2026-01-01T10:00:00.000Z']);
  });

  test('tick ids are the same in every process', () => {
    assert.equal(tickId('nightly', at('2026-03-08T07:30:00Z')), 'nightly@2026-03-08T07:30:00.000Z');
  });
});

describe('cron and time zone validation', () => {
  test('accepts 5 and 6 fields and aliases', () => {
    for (const cron of ['*/5 * * * *', '0 30 9 * * 1-5', '@hourly']) assert.equal(assertCron(cron), cron);
  });

  test('refuses other field counts and bad values with InvalidArgumentError', () => {
    for (const [cron, pattern] of [
      ['* * * *', /has 4 fields; use 5/],
      ['* * * * * * *', /has 7 fields/],
      ['61 * * * *', /'61 \* \* \* \*' is invalid/],
      ['every day', /has 2 fields/],
      ['', /must be a cron expression string/],
    ] as const) {
      assert.throws(() => assertCron(cron), (err: Error & { code: string; argument: string }) => {
        assert.equal(err.code, 'INVALID_ARGUMENT');
        assert.equal(err.argument, 'cron');
        assert.match(err.message, pattern);
        return true;
      });
    }
  });

  test('refuses unknown time zones', () => {
    assert.equal(assertTimezone('Europe/Paris'), 'Europe/Paris');
    assert.throws(() => assertTimezone('Mars/Olympus'), { code: 'INVALID_ARGUMENT', argument: 'timezone', message: /time zone 'Mars\/Olympus' is unknown/ });
  });
});
