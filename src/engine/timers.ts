/** Node timers hold at most 2^31 - 1 ms (about 24.8 days); later instants are reached in hops. */
const MAX_TIMER_MS = 2_147_483_647;

/** Told once, when the cancellation it watches aborts. */
export interface CancelWatcher {
  cancelled(reason: unknown): void;
}

/**
 * A cancellation that parked waits can watch without an event listener each: `aborted` and
 * `reason` as on an AbortSignal, and `signal`, an AbortSignal that follows it.
 */
export interface Cancellation {
  readonly aborted: boolean;
  readonly reason: unknown;
  readonly signal: AbortSignal;
  /** `watcher` is told when this aborts; a watcher added after the abort is never told. */
  watch(watcher: CancelWatcher): void;
  unwatch(watcher: CancelWatcher): void;
}

/**
 * Something due at an instant, held in a {@link TimerQueue}. Parked waits extend it, so being
 * queued costs no allocation beyond the waiter itself.
 */
export abstract class Timed {
  /** Epoch ms at which `due()` is called. */
  at = 0;
  /** Index in the queue's heap; -1 when not queued. */
  slot = -1;
  /** Queue order, so entries due at the same instant run in the order they were added. */
  order = 0;

  get queued(): boolean {
    return this.slot >= 0;
  }

  /** Called once the instant has passed; the entry is out of the queue by then. */
  abstract due(): void;
}

/**
 * Many deadlines behind one Node timer: a binary min-heap ordered by instant, with the timer
 * armed for the earliest. Adding and removing are O(log n). Like a plain setTimeout, the armed
 * timer keeps the process alive, and only while something is queued.
 */
export class TimerQueue {
  private readonly heap: Timed[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (epoch ms). */
  private armedFor = Number.POSITIVE_INFINITY;
  private added = 0;
  private readonly maxHopMs: number;

  /** `maxHopMs` caps a single timer (tests shorten it to exercise waits longer than a hop). */
  constructor(options: { maxHopMs?: number } = {}) {
    this.maxHopMs = options.maxHopMs ?? MAX_TIMER_MS;
  }

  get size(): number {
    return this.heap.length;
  }

  /** Queues `entry` to be due at `at` (moving it when it is queued already). */
  add(entry: Timed, at: number): void {
    if (entry.queued) this.remove(entry);
    entry.at = at;
    entry.order = this.added++;
    entry.slot = this.heap.length;
    this.heap.push(entry);
    this.up(entry.slot);
    if (entry.slot === 0) this.arm();
  }

  /** Takes `entry` out of the queue; nothing happens when it is not queued. */
  remove(entry: Timed): void {
    const i = entry.slot;
    if (i < 0) return;
    const last = this.heap.pop()!;
    entry.slot = -1;
    if (last !== entry) {
      this.heap[i] = last;
      last.slot = i;
      this.down(i);
      this.up(last.slot);
    }
    // An earlier timer left armed fires, finds nothing due and re-arms; an empty queue holds none.
    if (this.heap.length === 0) this.disarm();
  }

  private readonly fire = (): void => {
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = Date.now();
    try {
      for (let first = this.heap[0]; first !== undefined && first.at <= now; first = this.heap[0]) {
        this.remove(first);
        first.due();
      }
    } finally {
      this.arm();
    }
  };

  private arm(): void {
    const first = this.heap[0];
    if (first === undefined) return this.disarm();
    if (this.timer !== undefined && this.armedFor <= first.at) return;
    clearTimeout(this.timer);
    const now = Date.now();
    const delay = Math.min(Math.max(first.at - now, 1), this.maxHopMs);
    this.armedFor = now + delay;
    this.timer = setTimeout(this.fire, delay);
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
  }

  private before(a: Timed, b: Timed): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order);
  }

  private up(i: number): void {
    const heap = this.heap;
    const entry = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const above = heap[parent]!;
      if (!this.before(entry, above)) break;
      heap[i] = above;
      above.slot = i;
      i = parent;
    }
    heap[i] = entry;
    entry.slot = i;
  }

  private down(i: number): void {
    const heap = this.heap;
    const entry = heap[i]!;
    const n = heap.length;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && this.before(heap[child + 1]!, heap[child]!)) child++;
      const below = heap[child]!;
      if (!this.before(below, entry)) break;
      heap[i] = below;
      below.slot = i;
      i = child;
    }
    heap[i] = entry;
    entry.slot = i;
  }
}

/** The queue every timer of the engine goes through: sleeps, deadlines and the waits' polls. */
export const timers = new TimerQueue();

/** A sleep: settles the promise of whoever waits, at its instant or when cancelled. */
class Alarm extends Timed implements CancelWatcher {
  constructor(
    private readonly cancel: Cancellation | undefined,
    private readonly resolve: () => void,
    private readonly reject: (reason: unknown) => void,
  ) {
    super();
  }

  due(): void {
    this.cancel?.unwatch(this);
    this.resolve();
  }

  cancelled(reason: unknown): void {
    timers.remove(this);
    this.reject(reason);
  }
}

/**
 * Calls `resolve` at the instant `at` (epoch ms), or `reject` with the reason when `cancel`
 * aborts first (at once when it already has). An instant already past resolves at once.
 */
export function alarm(at: number, cancel: Cancellation | undefined, resolve: () => void, reject: (reason: unknown) => void): void {
  if (cancel?.aborted) return reject(cancel.reason);
  if (at <= Date.now()) return resolve();
  const entry = new Alarm(cancel, resolve, reject);
  cancel?.watch(entry);
  timers.add(entry, at);
}

/** Resolves at the instant `at` (epoch ms), or rejects with `cancel.reason` when it aborts. */
export function waitUntil(at: number, cancel?: Cancellation): Promise<void> {
  return new Promise<void>((resolve, reject) => alarm(at, cancel, resolve, reject));
}

class Call extends Timed {
  constructor(private readonly fn: () => void) {
    super();
  }

  due(): void {
    this.fn();
  }
}

/** Calls `fn` at the instant `at` (at once when it has passed) unless cancelled; returns the cancel function. */
export function callAt(at: number, fn: () => void): () => void {
  if (at <= Date.now()) {
    fn();
    return () => undefined;
  }
  const entry = new Call(fn);
  timers.add(entry, at);
  return () => timers.remove(entry);
}
