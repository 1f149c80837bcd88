import type { Provider } from '../providers/provider.js';
import { Timed, timers, type CancelWatcher, type Cancellation } from './timers.js';

/** The longest pause between a waiter's polls where notifications reach every process. */
const MAX_QUIET_POLL_MS = 60_000;
/** The first pause before a check that failed on a passing database error is made again; it doubles. */
const FIRST_RETRY_MS = 100;
/** The longest pause between such checks. */
const MAX_RETRY_MS = 2_000;

export interface WaitOptions {
  /** Epoch ms past which the wait ends with undefined. */
  deadline?: number;
  /** Stops the wait with its reason (an execution's cancellation, or any AbortSignal). */
  signal?: AbortSignal | Cancellation;
}

/** What is registered under a change key: a waiter of `until`, or a function given to `listen`. */
type Entry = Waiter<unknown> | (() => void);

/**
 * Waiting without polling: every waiter of the engine registers under the change keys it cares
 * about, and one subscription to the provider's notifications wakes it. A slow fallback poll
 * covers notifications that were lost, and writers that cannot notify this process (SQLite in
 * another process). Polls go through the shared timer queue: no Node timer per waiter.
 */
export class Waits {
  /** One entry per key in the usual case; a set when several share it. */
  private readonly byKey = new Map<string, Entry | Set<Entry>>();
  private subscription: Promise<() => Promise<void>> | undefined;
  /** True once the subscription is up: waits start without a turn through `ready()`. */
  private subscribed = false;
  /** The check for other processes' commits, where the provider offers one. */
  private watch: NodeJS.Timeout | undefined;

  constructor(
    private readonly provider: Provider,
    readonly pollMs: number,
    readonly closeSignal: AbortSignal,
  ) {
    // One listener for every waiter: closing stops them all.
    closeSignal.addEventListener('abort', () => this.stopAll(closeSignal.reason), { once: true });
  }

  /**
   * Runs `check` until it returns something other than undefined: again after each notification
   * on one of `keys`, and on a fallback poll (every `pollMs`, backing off where notifications
   * reach every process: see `pollDelay`). Returns undefined once `deadline` (epoch ms)
   * passes; rejects with the abort reason when `signal` or the engine's close signal aborts.
   * `check` receives how many times it ran before.
   *
   * A check that fails with a database error the provider calls transient (a dropped or refused
   * connection, a restarting server, a busy lock) is made again after a pause (100 ms doubling to
   * 2 s), so a wait rides out an outage; it rejects with that error only if the deadline comes
   * first. Any other error rejects at once.
   */
  until<T>(keys: [string, ...string[]], check: (attempt: number) => Promise<T | undefined>, options: WaitOptions = {}): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve, reject) => this.wait(keys, check, options, resolve, reject));
  }

  /**
   * `until` for a caller that settles a promise of its own with the outcome, so a parked wait
   * holds no promise or reaction besides the caller's.
   */
  wait<T>(
    keys: [string, ...string[]],
    check: (attempt: number) => Promise<T | undefined>,
    options: WaitOptions,
    settle: (value: T | undefined) => void,
    fail: (reason: unknown) => void,
  ): void {
    const waiter = new Waiter<T>(this, keys, check, options.deadline, options.signal, settle, fail);
    if (this.subscribed) waiter.start();
    else this.ready().then(() => waiter.start(), fail);
  }

  /**
   * How long a waiter pauses after `quietPolls` polls in a row found nothing without a notification.
   * Where other processes' changes reach this one (notified on Postgres, where a reconnect wakes
   * every waiter anyway; watched for on SQLite), the poll only covers what those miss: the pause
   * doubles after each quiet poll, up to a minute, so thousands of parked waits cost the database
   * little. Otherwise it stays `pollMs`.
   */
  pollDelay(quietPolls: number): number {
    if (!this.seesOtherProcesses) return this.pollMs;
    return Math.min(this.pollMs * 2 ** Math.min(quietPolls, 16), Math.max(this.pollMs, MAX_QUIET_POLL_MS));
  }

  /** Whether a failed check may pass when made again (the provider's verdict on its own errors). */
  isTransient(err: unknown): boolean {
    try {
      return this.provider.isTransient?.(err) === true;
    } catch {
      return false;
    }
  }

  /** Whether changes made by other processes reach this one: notified (Postgres), or watched for (SQLite). */
  private get seesOtherProcesses(): boolean {
    return this.provider.capabilities.crossProcessNotifications || this.provider.committedElsewhere !== undefined;
  }

  /**
   * Where other processes cannot notify (SQLite), one check every `pollMs` for commits made
   * elsewhere, waking every waiter once when there were some, stands in for each waiter polling.
   * It does not keep the process alive.
   */
  private watchOtherProcesses(): void {
    if (this.watch || !this.provider.committedElsewhere) return;
    this.watch = setInterval(() => {
      try {
        if (this.provider.committedElsewhere?.()) this.notify('*');
      } catch {
        // A failed check is a missed one: the waiters' own polls still run.
      }
    }, this.pollMs);
    this.watch.unref();
  }

  /** Resolves once notifications are being received (connecting on first use). */
  async ready(): Promise<void> {
    if (!this.subscription) {
      const subscribing = this.provider.subscribe((key) => this.notify(key));
      this.subscription = subscribing;
      // A failed connection is tried again by the next wait instead of failing every wait after it.
      subscribing.catch(() => {
        if (this.subscription === subscribing) this.subscription = undefined;
      });
    }
    await this.subscription;
    this.subscribed = true;
    this.watchOtherProcesses();
  }

  /**
   * Calls `fn` on every notification of `key` until the returned function is called. For loops that
   * live as long as the engine: a notification that comes while they are busy is not lost.
   */
  listen(key: string, fn: () => void): () => void {
    this.add(key, fn);
    return () => this.remove(key, fn);
  }

  async close(): Promise<void> {
    clearInterval(this.watch);
    this.watch = undefined;
    const unsubscribe = await this.subscription?.catch(() => undefined);
    await unsubscribe?.();
  }

  /** Wakes the waiters of `key` in this process (`*` wakes all). */
  notify(key: string): void {
    if (key === '*') {
      for (const entry of this.byKey.values()) wakeAll(entry);
      return;
    }
    const entry = this.byKey.get(key);
    if (entry) wakeAll(entry);
  }

  /** @internal Registers a waiter or listener under `key`. */
  add(key: string, entry: Entry): void {
    const current = this.byKey.get(key);
    if (current === undefined) this.byKey.set(key, entry);
    else if (current instanceof Set) current.add(entry);
    else if (current !== entry) this.byKey.set(key, new Set([current, entry]));
  }

  /** @internal Unregisters what `add` registered. */
  remove(key: string, entry: Entry): void {
    const current = this.byKey.get(key);
    if (current === entry) this.byKey.delete(key);
    else if (current instanceof Set) {
      current.delete(entry);
      if (current.size === 0) this.byKey.delete(key);
    }
  }

  private stopAll(reason: unknown): void {
    const waiters = new Set<Waiter<unknown>>();
    for (const entry of this.byKey.values()) {
      if (entry instanceof Waiter) waiters.add(entry);
      else if (entry instanceof Set) for (const e of entry) if (e instanceof Waiter) waiters.add(e);
    }
    for (const waiter of waiters) waiter.cancelled(reason);
  }

  /** Resolves on wake-up or after `ms`; rejects when either signal aborts. */
  pause(wakeUp: Promise<void>, ms: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const signals = signal ? [signal, this.closeSignal] : [this.closeSignal];
      const aborted = signals.find((s) => s.aborted);
      if (aborted) return reject(aborted.reason as Error);
      const done = () => {
        clearTimeout(timer);
        for (const s of signals) s.removeEventListener('abort', onAbort);
      };
      const onAbort = (event: Event) => {
        done();
        reject((event.target as AbortSignal).reason as Error);
      };
      const timer = setTimeout(() => (done(), resolve()), Math.max(0, ms));
      for (const s of signals) s.addEventListener('abort', onAbort, { once: true });
      void wakeUp.then(() => (done(), resolve()));
    });
  }
}

function wakeAll(entry: Entry | Set<Entry>): void {
  if (entry instanceof Set) for (const e of entry) wake(e);
  else wake(entry);
}

function wake(entry: Entry): void {
  if (entry instanceof Waiter) entry.wake();
  else entry();
}

/**
 * One call of `until`, as one object: registered under its keys, queued in the shared timer queue
 * while it pauses, and told of aborts directly. Between checks it holds no closure, promise or
 * timer of its own, so thousands of parked waits stay cheap.
 *
 * Each check runs with the waiter registered, so a notification that lands during a check makes
 * it look again at once; aborts are noticed when it would pause, as a check in flight finishes.
 */
class Waiter<T> extends Timed implements CancelWatcher {
  private attempt = 0;
  private checking = false;
  private woken = false;
  private settled = false;
  /** Polls in a row that came from the timer rather than a notification. */
  private quietPolls = 0;
  /** Checks in a row that failed on a passing database error; 0 once one succeeds. */
  private failures = 0;

  constructor(
    private readonly waits: Waits,
    private readonly keys: readonly string[],
    private readonly check: (attempt: number) => Promise<T | undefined>,
    private readonly deadline: number | undefined,
    private readonly signal: AbortSignal | Cancellation | undefined,
    private readonly settle: (value: T | undefined) => void,
    private readonly reject: (reason: unknown) => void,
  ) {
    super();
  }

  start(): void {
    for (const key of this.keys) this.waits.add(key, this as Waiter<unknown>);
    if (this.signal instanceof AbortSignal) this.signal.addEventListener('abort', this);
    else this.signal?.watch(this);
    this.look();
  }

  /** A notification on one of the keys. */
  wake(): void {
    if (this.settled) return;
    if (!this.queued) {
      this.woken = true;
      return;
    }
    // Not from inside the notifier, which may be in the middle of a database call.
    this.quietPolls = 0;
    timers.remove(this);
    this.checking = true;
    queueMicrotask(() => this.look());
  }

  /** The pause is over: the poll interval, the deadline, or the pause after a failed check. */
  due(): void {
    if (this.failures === 0) this.quietPolls++;
    this.look();
  }

  cancelled(reason: unknown): void {
    if (this.settled || this.checking) return;
    timers.remove(this);
    this.fail(reason);
  }

  handleEvent(event: Event): void {
    this.cancelled((event.target as AbortSignal).reason);
  }

  private look(): void {
    this.checking = true;
    this.woken = false;
    let looked: Promise<T | undefined>;
    try {
      looked = this.check(this.attempt++);
    } catch (err) {
      return this.fail(err);
    }
    looked.then(
      (value) => this.checked(value),
      (err: unknown) => this.failed(err),
    );
  }

  /**
   * A check failed. A passing database error is tried again after a pause (sooner on a
   * notification, which a reconnect sends), until the deadline; anything else ends the wait.
   */
  private failed(err: unknown): void {
    this.checking = false;
    const now = Date.now();
    if (!this.waits.isTransient(err) || (this.deadline !== undefined && now >= this.deadline)) return this.fail(err);
    const close = this.waits.closeSignal;
    const stop = this.signal?.aborted ? this.signal : close.aborted ? close : undefined;
    if (stop) return this.fail(stop.reason);
    const pause = Math.min(FIRST_RETRY_MS * 2 ** Math.min(this.failures, 10), MAX_RETRY_MS);
    this.failures++;
    this.woken = false;
    timers.add(this, Math.min(now + pause, this.deadline ?? Number.POSITIVE_INFINITY));
  }

  private checked(value: T | undefined): void {
    this.checking = false;
    this.failures = 0;
    if (value !== undefined) return this.finish(value);
    const now = Date.now();
    if (this.deadline !== undefined && now >= this.deadline) return this.finish(undefined);
    if (this.woken) return this.look();
    const close = this.waits.closeSignal;
    const stop = this.signal?.aborted ? this.signal : close.aborted ? close : undefined;
    if (stop) return this.fail(stop.reason);
    timers.add(this, Math.min(now + this.waits.pollDelay(this.quietPolls), this.deadline ?? Number.POSITIVE_INFINITY));
  }

  private finish(value: T | undefined): void {
    this.release();
    this.settle(value);
  }

  private fail(err: unknown): void {
    this.release();
    this.reject(err);
  }

  private release(): void {
    this.settled = true;
    for (const key of this.keys) this.waits.remove(key, this as Waiter<unknown>);
    if (this.signal instanceof AbortSignal) this.signal.removeEventListener('abort', this);
    else this.signal?.unwatch(this);
  }
}
