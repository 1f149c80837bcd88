import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ExecutionSignal } from '../src/engine/execution.js';
import { Timed, TimerQueue, callAt, timers, waitUntil } from '../src/engine/timers.js';

/** An entry that writes down when it came due. */
class Mark extends Timed {
  firedAt: number | undefined;
  constructor(
    readonly label: string,
    private readonly log: string[],
  ) {
    super();
  }
  due(): void {
    this.firedAt = Date.now();
    this.log.push(this.label);
  }
}

const activeTimeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

/** Resolves once `check` holds, polling every few ms. */
async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    assert.ok(Date.now() < deadline, 'timed out');
    await sleep(5);
  }
}

describe('the timer queue', () => {
  test('entries come due in the order of their instants, ties in the order they were added', async () => {
    const queue = new TimerQueue();
    const log: string[] = [];
    const now = Date.now();
    for (const [label, ms] of [['c', 40], ['a', 10], ['b', 25], ['a2', 10], ['d', 60]] as const) queue.add(new Mark(label, log), now + ms);
    assert.equal(queue.size, 5);
    await until(() => log.length === 5);
    assert.deepEqual(log, ['a', 'a2', 'b', 'c', 'd']);
    assert.equal(queue.size, 0);
  });

  test('an entry never comes due before its instant', async () => {
    const queue = new TimerQueue();
    const log: string[] = [];
    const at = Date.now() + 30;
    const mark = new Mark('m', log);
    queue.add(mark, at);
    await until(() => log.length === 1);
    assert.ok(mark.firedAt! >= at, `due ${at - mark.firedAt!} ms early`);
  });

  test('removed entries never come due, wherever they sat in the heap', async () => {
    const queue = new TimerQueue();
    const log: string[] = [];
    const now = Date.now();
    const marks = Array.from({ length: 300 }, (_, i) => new Mark(String(i), log));
    // A scattered order of instants, so removals hit the root, leaves and inner nodes.
    marks.forEach((m, i) => queue.add(m, now + 20 + ((i * 7919) % 300) / 10));
    const removed = new Set<string>();
    for (let i = 0; i < marks.length; i += 3) {
      queue.remove(marks[i]!);
      removed.add(marks[i]!.label);
    }
    queue.remove(marks[0]!); // twice is harmless
    assert.equal(queue.size, 200);
    await until(() => log.length === 200);
    assert.deepEqual(log.filter((l) => removed.has(l)), []);
    const instants = log.map((l) => marks[Number(l)]!.at);
    assert.deepEqual(instants, [...instants].sort((x, y) => x - y));
  });

  test('adding a queued entry again moves it', async () => {
    const queue = new TimerQueue();
    const log: string[] = [];
    const now = Date.now();
    const early = new Mark('early', log);
    queue.add(early, now + 10);
    queue.add(new Mark('middle', log), now + 20);
    queue.add(early, now + 30);
    assert.equal(queue.size, 2);
    await until(() => log.length === 2);
    assert.deepEqual(log, ['middle', 'early']);
  });

  test('a wait longer than one timer can hold is reached in hops, not early', async () => {
    const queue = new TimerQueue({ maxHopMs: 15 });
    const log: string[] = [];
    const at = Date.now() + 120;
    const mark = new Mark('far', log);
    queue.add(mark, at);
    await sleep(40);
    // A loaded machine may oversleep past the instant; a look before it must find nothing due.
    if (Date.now() < at) assert.deepEqual(log, []);
    await until(() => log.length === 1);
    assert.ok(mark.firedAt! >= at);
  });

  test('one Node timer serves the whole queue, and none is left once it is empty', () => {
    const before = activeTimeouts();
    const queue = new TimerQueue();
    const log: string[] = [];
    const marks = Array.from({ length: 1_000 }, (_, i) => new Mark(String(i), log));
    for (const m of marks) queue.add(m, Date.now() + 60_000 + Math.random() * 60_000);
    assert.equal(activeTimeouts(), before + 1);
    for (const m of marks) queue.remove(m);
    assert.equal(activeTimeouts(), before);
  });

  test('instants past 2^31 - 1 ms away are queued without an overflow warning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const queue = new TimerQueue();
      const mark = new Mark('month', []);
      queue.add(mark, Date.now() + 30 * 24 * 3600_000);
      await sleep(10);
      queue.remove(mark);
      assert.equal(queue.size, 0);
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(warnings, []);
  });
});

describe('waitUntil and callAt', () => {
  test('waitUntil resolves at its instant, and at once for an instant already past', async () => {
    const at = Date.now() + 20;
    await waitUntil(at);
    assert.ok(Date.now() >= at);
    await waitUntil(Date.now() - 1_000);
  });

  test('an abort rejects a wait in progress with its reason and takes it out of the queue', async () => {
    const cancel = new ExecutionSignal();
    const size = timers.size;
    const waiting = waitUntil(Date.now() + 60_000, cancel);
    assert.equal(timers.size, size + 1);
    const reason = new Error('stop');
    cancel.abort(reason);
    await assert.rejects(waiting, (err) => err === reason);
    assert.equal(timers.size, size);
  });

  test('a wait started after the abort rejects at once with the same reason', async () => {
    const cancel = new ExecutionSignal();
    const reason = new Error('already');
    cancel.abort(reason);
    await assert.rejects(waitUntil(Date.now() + 60_000, cancel), (err) => err === reason);
  });

  test('waits started together each end with the abort', async () => {
    const cancel = new ExecutionSignal();
    const waits = [waitUntil(Date.now() + 60_000, cancel), waitUntil(Date.now() + 120_000, cancel), waitUntil(Date.now() + 30, cancel)];
    await waits[2];
    cancel.abort(new Error('both'));
    for (const w of waits.slice(0, 2)) await assert.rejects(w, { message: 'both' });
  });

  test('callAt calls at its instant unless cancelled, and at once for an instant already past', async () => {
    const calls: string[] = [];
    callAt(Date.now() + 15, () => calls.push('kept'));
    const cancel = callAt(Date.now() + 10, () => calls.push('cancelled'));
    cancel();
    callAt(Date.now() - 5, () => calls.push('past'));
    assert.deepEqual(calls, ['past']);
    await until(() => calls.length === 2);
    await sleep(20);
    assert.deepEqual(calls, ['past', 'kept']);
  });
});

describe('the execution signal', () => {
  test('a signal read after the abort is aborted with the same reason', () => {
    const cancel = new ExecutionSignal();
    const reason = new Error('cancelled');
    cancel.abort(reason);
    assert.equal(cancel.aborted, true);
    assert.equal(cancel.signal.aborted, true);
    assert.equal(cancel.signal.reason, reason);
  });

  test('a signal read before the abort fires its listeners, once, with the first reason', () => {
    const cancel = new ExecutionSignal();
    const signal = cancel.signal;
    assert.equal(cancel.signal, signal);
    const seen: unknown[] = [];
    signal.addEventListener('abort', () => seen.push(signal.reason));
    const first = new Error('first');
    cancel.abort(first);
    cancel.abort(new Error('second'));
    assert.deepEqual(seen, [first]);
    assert.equal(cancel.reason, first);
  });

  test('an abort without a reason gives an AbortError, as AbortController does', () => {
    const cancel = new ExecutionSignal();
    cancel.abort(undefined);
    assert.equal((cancel.reason as Error).name, 'AbortError');
    assert.equal(cancel.signal.reason, cancel.reason);
  });

  test('watchers are told once; an unwatched one is not', () => {
    const cancel = new ExecutionSignal();
    const told: string[] = [];
    const a = { cancelled: () => told.push('a') };
    const b = { cancelled: () => told.push('b') };
    const c = { cancelled: () => told.push('c') };
    cancel.watch(a);
    cancel.watch(b);
    cancel.watch(c);
    cancel.unwatch(b);
    cancel.abort(new Error('x'));
    cancel.abort(new Error('y'));
    cancel.watch({ cancelled: () => told.push('late') });
    assert.deepEqual(told, ['a', 'c']);
  });
});
