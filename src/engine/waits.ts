import type { Provider } from '../providers/provider.js';

/**
 * Waiting without polling: every waiter of the engine registers under the change keys it cares
 * about, and one subscription to the provider's notifications wakes it. A slow fallback poll
 * covers notifications that were lost, and writers that cannot notify this process (SQLite in
 * another process).
 */
export class Waits {
  private readonly byKey = new Map<string, Set<() => void>>();
  private subscription: Promise<() => Promise<void>> | undefined;

  constructor(
    private readonly provider: Provider,
    readonly pollMs: number,
    private readonly closeSignal: AbortSignal,
  ) {}

  /**
   * Runs `check` until it returns something other than undefined: again after each notification
   * on one of `keys`, and at least every `pollMs`. Returns undefined once `deadline` (epoch ms)
   * passes; rejects with the abort reason when `signal` or the engine's close signal aborts.
   * `check` receives how many times it ran before.
   */
  async until<T>(
    keys: string[],
    check: (attempt: number) => Promise<T | undefined>,
    options: { deadline?: number; signal?: AbortSignal } = {},
  ): Promise<T | undefined> {
    await this.ready();
    for (let attempt = 0; ; attempt++) {
      let woken = false;
      let wake!: () => void;
      const wakeUp = new Promise<void>((resolve) => {
        wake = () => {
          woken = true;
          resolve();
        };
      });
      for (const key of keys) this.add(key, wake);
      try {
        const value = await check(attempt);
        if (value !== undefined) return value;
        const now = Date.now();
        if (options.deadline !== undefined && now >= options.deadline) return undefined;
        if (!woken) await this.pause(wakeUp, Math.min(this.pollMs, (options.deadline ?? Infinity) - now), options.signal);
      } finally {
        for (const key of keys) this.remove(key, wake);
      }
    }
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
    const unsubscribe = await this.subscription?.catch(() => undefined);
    await unsubscribe?.();
  }

  /** Wakes the waiters of `key` in this process (`*` wakes all). */
  notify(key: string): void {
    if (key === '*') {
      for (const set of this.byKey.values()) for (const wake of set) wake();
      return;
    }
    const set = this.byKey.get(key);
    if (set) for (const wake of set) wake();
  }

  private add(key: string, wake: () => void): void {
    let set = this.byKey.get(key);
    if (!set) this.byKey.set(key, (set = new Set()));
    set.add(wake);
  }

  private remove(key: string, wake: () => void): void {
    const set = this.byKey.get(key);
    if (!set) return;
    set.delete(wake);
    if (set.size === 0) this.byKey.delete(key);
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
