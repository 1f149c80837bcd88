import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExecutionSignal } from '../src/engine/execution.js';
import { timers } from '../src/engine/timers.js';
import { Waits } from '../src/engine/waits.js';
import { SqliteProvider } from '../src/index.js';

/** A Waits on an in-memory SQLite provider (its notifications are in-process), closed after the test. */
function open(t: TestContext, pollMs: number): { waits: Waits; close: AbortController } {
  const provider = new SqliteProvider({ path: ':memory:' });
  const close = new AbortController();
  const waits = new Waits(provider, pollMs, close.signal);
  t.after(async () => {
    close.abort(new Error('test over'));
    await waits.close();
    await provider.close();
  });
  return { waits, close };
}

describe('waits', () => {
  test('the check runs again every poll until it returns a value', async (t) => {
    const { waits } = open(t, 15);
    const started = Date.now();
    const attempts: number[] = [];
    const value = await waits.until(['k'], async (attempt) => {
      attempts.push(attempt);
      return attempt === 3 ? 'found' : undefined;
    });
    assert.equal(value, 'found');
    assert.deepEqual(attempts, [0, 1, 2, 3]);
    assert.ok(Date.now() - started >= 40);
  });

  test('a notification on a key wakes a parked waiter at once', async (t) => {
    const { waits } = open(t, 60_000);
    let ready = false;
    const size = timers.size;
    const waiting = waits.until(['a', 'b'], async () => (ready ? 'woken' : undefined));
    await sleep(10);
    assert.equal(timers.size, size + 1, 'parked in the shared queue');
    ready = true;
    waits.notify('b');
    assert.equal(await waiting, 'woken');
    assert.equal(timers.size, size);
  });

  test('a notification during a check makes it look again without pausing', async (t) => {
    const { waits } = open(t, 60_000);
    const attempts: number[] = [];
    const value = await waits.until(['k'], async (attempt) => {
      attempts.push(attempt);
      if (attempt === 0) {
        waits.notify('k');
        await sleep(5);
      }
      return attempt === 1 ? 'again' : undefined;
    });
    assert.equal(value, 'again');
    assert.deepEqual(attempts, [0, 1]);
  });

  test('past the deadline the wait returns undefined, after one last look', async (t) => {
    const { waits } = open(t, 60_000);
    const deadline = Date.now() + 30;
    let looks = 0;
    const value = await waits.until(['k'], async () => void looks++, { deadline });
    assert.equal(value, undefined);
    assert.ok(Date.now() >= deadline);
    assert.equal(looks, 2);
  });

  test('an abort of the execution rejects a parked wait with its reason, and it looks no more', async (t) => {
    const { waits } = open(t, 60_000);
    const cancel = new ExecutionSignal();
    let looks = 0;
    const size = timers.size;
    const waiting = waits.until(['k'], async () => void looks++, { signal: cancel });
    await sleep(10);
    const reason = new Error('cancelled');
    cancel.abort(reason);
    await assert.rejects(waiting, (err) => err === reason);
    waits.notify('k');
    await sleep(10);
    assert.equal(looks, 1);
    assert.equal(timers.size, size);
  });

  test('an abort during a check lets a found value through, and otherwise stops the wait where it would pause', async (t) => {
    const { waits } = open(t, 60_000);
    const found = new ExecutionSignal();
    const value = await waits.until(
      ['k'],
      async () => {
        found.abort(new Error('late'));
        await sleep(5);
        return 'found';
      },
      { signal: found },
    );
    assert.equal(value, 'found');

    const empty = new ExecutionSignal();
    const reason = new Error('stop');
    await assert.rejects(
      waits.until(
        ['k'],
        async () => {
          empty.abort(reason);
          await sleep(5);
          return undefined;
        },
        { signal: empty },
      ),
      (err) => err === reason,
    );
  });

  test('an AbortSignal stops a wait as the execution signal does', async (t) => {
    const { waits } = open(t, 60_000);
    const controller = new AbortController();
    const waiting = waits.until(['k'], async () => undefined, { signal: controller.signal });
    await sleep(10);
    controller.abort(new Error('aborted'));
    await assert.rejects(waiting, { message: 'aborted' });
  });

  test('closing rejects every parked wait with the close reason', async (t) => {
    const { waits, close } = open(t, 60_000);
    const size = timers.size;
    const waiting = Array.from({ length: 50 }, (_, i) => waits.until([`k${i % 5}`, 'all'], async () => undefined));
    await sleep(10);
    assert.equal(timers.size, size + 50);
    close.abort(new Error('closed'));
    for (const w of waiting) await assert.rejects(w, { message: 'closed' });
    assert.equal(timers.size, size);
    await assert.rejects(
      waits.until(['k'], async () => undefined),
      { message: 'closed' },
    );
  });

  test('a check that throws ends the wait with its error', async (t) => {
    const { waits } = open(t, 60_000);
    await assert.rejects(
      waits.until(['k'], async () => {
        throw new Error('broken');
      }),
      { message: 'broken' },
    );
    await assert.rejects(
      waits.until(['k'], () => {
        throw new Error('thrown at once');
      }),
      { message: 'thrown at once' },
    );
  });

  test('listeners and waiters share keys; a listener stays after the waiters are gone', async (t) => {
    const { waits } = open(t, 60_000);
    let heard = 0;
    const stop = waits.listen('k', () => heard++);
    let ready = false;
    const waiting = [waits.until(['k'], async () => (ready ? 1 : undefined)), waits.until(['k'], async () => (ready ? 2 : undefined))];
    await sleep(10);
    ready = true;
    waits.notify('*');
    assert.deepEqual(await Promise.all(waiting), [1, 2]);
    waits.notify('k');
    assert.equal(heard, 2);
    stop();
    waits.notify('k');
    assert.equal(heard, 2);
  });
});
