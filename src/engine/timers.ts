/** Node timers hold at most 2^31 - 1 ms (about 24.8 days); longer waits are chained. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * Resolves at the instant `at` (epoch ms), or rejects with `signal.reason` when the signal aborts.
 * Waits longer than a timer can hold are split into several timers.
 */
export function waitUntil(at: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const arm = () => {
      const left = at - Date.now();
      if (left <= 0) {
        signal.removeEventListener('abort', onAbort);
        return resolve();
      }
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    arm();
  });
}

/** Calls `fn` at the instant `at` unless cancelled; returns the cancel function. */
export function callAt(at: number, fn: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const left = at - Date.now();
    if (left <= 0) return fn();
    timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
  };
  arm();
  return () => clearTimeout(timer);
}
