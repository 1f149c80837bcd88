import pRetry, { AbortError } from 'p-retry';
import type { RetryListener } from '../observability/observer.js';
import type { CheckpointOutcome } from '../providers/provider.js';
import type { RetryOptions, StepAttempt } from '../types.js';
import { InvalidArgumentError, StepRetriesExceededError, StepTimeoutError } from './errors.js';
import { runInStep } from './step-scope.js';
import { callAt, type CancelWatcher, type Cancellation } from './timers.js';
import { assertDuration, assertOptions, assertPositiveInteger, describe } from './validate.js';

/** The longest retry delay: p-retry waits with a plain Node timer, which holds at most 2^31 - 1 ms. */
export const MAX_RETRY_DELAY_MS = 2_147_483_647;

export type StepBody<T> = (attempt: StepAttempt) => Promise<T> | T;

export interface StepPolicy {
  retry?: Required<Omit<RetryOptions, 'retryIf'>> & Pick<RetryOptions, 'retryIf'>;
  timeoutMs?: number;
}

export type StepResult<T> = ({ ok: true; value: T } | { ok: false; error: unknown }) & {
  attempts: number;
  /** Set when the run wrote its own checkpoint (a transactional step): how that write went. */
  recorded?: CheckpointOutcome;
};

/** Checks step options once, before the step takes a counter value. */
export function stepPolicy(options: unknown): StepPolicy {
  assertOptions('step options', options);
  const o = (options ?? {}) as { retry?: RetryOptions; timeoutMs?: number };
  const policy: StepPolicy = {};
  if (o.timeoutMs !== undefined) policy.timeoutMs = assertDuration('timeoutMs', o.timeoutMs);
  if (o.retry !== undefined) {
    assertOptions('retry', o.retry);
    const r = o.retry;
    if (r.retryIf !== undefined && typeof r.retryIf !== 'function') {
      throw new InvalidArgumentError('retry.retryIf', 'retry.retryIf must be a function');
    }
    const factor = r.factor ?? 2;
    if (typeof factor !== 'number' || !Number.isFinite(factor) || factor < 1) {
      throw new InvalidArgumentError('retry.factor', `retry.factor must be a finite number >= 1, got ${String(factor)}`);
    }
    policy.retry = {
      maxAttempts: assertPositiveInteger('retry.maxAttempts', r.maxAttempts),
      minDelayMs: retryDelay('retry.minDelayMs', r.minDelayMs ?? 100),
      factor,
      maxDelayMs: retryDelay('retry.maxDelayMs', r.maxDelayMs ?? 60_000),
      ...(r.retryIf && { retryIf: r.retryIf }),
    };
  }
  return policy;
}

function retryDelay(argument: string, value: unknown): number {
  const ms = assertDuration(argument, value);
  if (ms > MAX_RETRY_DELAY_MS) {
    throw new InvalidArgumentError(argument, `${argument} must be at most ${MAX_RETRY_DELAY_MS} ms (about 24.8 days), got ${describe(value)}`);
  }
  return ms;
}

/**
 * Runs a step body under its policy: per-attempt timeouts and retries with backoff. Never throws;
 * the outcome (value or the error to record) comes back with the number of attempts made.
 */
export async function runStep<T>(
  workflowId: string,
  name: string,
  body: StepBody<T>,
  policy: StepPolicy,
  cancellation: Cancellation,
  /** Told of each failed attempt that another follows (only when the execution is observed). */
  retried?: RetryListener,
): Promise<StepResult<T>> {
  const attemptOnce = (attempt: number) => runInStep(workflowId, name, () => runAttempt(name, body, attempt, policy.timeoutMs, cancellation));
  const retry = policy.retry;
  if (!retry || retry.maxAttempts === 1) {
    try {
      return { ok: true, value: await attemptOnce(1), attempts: 1 };
    } catch (error) {
      return { ok: false, error, attempts: 1 };
    }
  }
  const errors: unknown[] = [];
  /** Set when retryIf itself threw: the step fails with that error. */
  let refused: { error: unknown } | undefined;
  try {
    const value = await pRetry(
      async (attempt) => {
        try {
          return await attemptOnce(attempt);
        } catch (err) {
          errors.push(err);
          if (cancellation.aborted || !isRetryable(err)) throw new AbortError(asError(err));
          if (retry.retryIf) {
            let again: boolean;
            try {
              again = Boolean(retry.retryIf(err));
            } catch (thrown) {
              refused = { error: withCause(thrown, err) };
              throw new AbortError(asError(err));
            }
            if (!again) throw new AbortError(asError(err));
          }
          if (retried && attempt < retry.maxAttempts) retried(attempt, Math.min(retry.maxDelayMs, Math.round(retry.minDelayMs * retry.factor ** (attempt - 1))), err);
          throw asError(err);
        }
      },
      {
        retries: retry.maxAttempts - 1,
        factor: retry.factor,
        minTimeout: retry.minDelayMs,
        maxTimeout: retry.maxDelayMs,
        randomize: false,
        // Retries wait between attempts, and an abort must cut that short: this needs the signal itself.
        signal: cancellation.signal,
      },
    );
    return { ok: true, value, attempts: errors.length + 1 };
  } catch (err) {
    if (refused) return { ok: false, error: refused.error, attempts: errors.length };
    if (errors.length >= retry.maxAttempts) return { ok: false, error: new StepRetriesExceededError(name, errors), attempts: errors.length };
    return { ok: false, error: errors.length > 0 ? errors[errors.length - 1] : err, attempts: Math.max(errors.length, 1) };
  }
}

function isRetryable(err: unknown): boolean {
  if (typeof err === 'object' && err !== null && (err as { nonRetryable?: unknown }).nonRetryable === true) return false;
  return true;
}

/** The error retryIf threw, with the attempt's error as its cause when it has none of its own. */
function withCause(thrown: unknown, attemptError: unknown): unknown {
  if (thrown instanceof Error && thrown.cause === undefined) {
    try {
      Object.defineProperty(thrown, 'cause', { value: attemptError, writable: true, configurable: true, enumerable: false });
    } catch {
      // A frozen error keeps no cause; it is still the error the step fails with.
    }
  }
  return thrown;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

async function runAttempt<T>(name: string, body: StepBody<T>, attempt: number, timeoutMs: number | undefined, parent: Cancellation): Promise<T> {
  if (timeoutMs === undefined) return body(lazyAttempt(parent, attempt));
  const controller = new AbortController();
  const link: CancelWatcher = { cancelled: (reason) => controller.abort(reason) };
  parent.watch(link);
  let cancelTimer: (() => void) | undefined;
  // The shared timer queue, not a plain setTimeout: it reaches instants past 2^31 - 1 ms in hops.
  const timedOut = new Promise<never>((_, reject) => {
    cancelTimer = callAt(Date.now() + Math.max(timeoutMs, 1), () => {
      // Settle the race before aborting, so a body that resolves on abort cannot win it.
      const err = new StepTimeoutError(name, timeoutMs);
      reject(err);
      controller.abort(err);
    });
  });
  try {
    return await Promise.race([Promise.resolve(body({ signal: controller.signal, attempt })), timedOut]);
  } finally {
    cancelTimer?.();
    parent.unwatch(link);
  }
}

/** The attempt a step body receives; the execution's signal is made only if the body reads it. */
function lazyAttempt(cancellation: Cancellation, attempt: number): StepAttempt {
  return {
    get signal() {
      return cancellation.signal;
    },
    attempt,
  };
}
