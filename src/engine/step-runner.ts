import pRetry, { AbortError } from 'p-retry';
import type { RetryOptions, StepAttempt } from '../types.js';
import { InvalidArgumentError, StepRetriesExceededError, StepTimeoutError } from './errors.js';
import { runInStep } from './step-scope.js';
import type { CancelWatcher, Cancellation } from './timers.js';
import { assertDuration, assertOptions, assertPositiveInteger } from './validate.js';

export type StepBody<T> = (attempt: StepAttempt) => Promise<T> | T;

export interface StepPolicy {
  retry?: Required<Omit<RetryOptions, 'retryIf'>> & Pick<RetryOptions, 'retryIf'>;
  timeoutMs?: number;
}

export type StepResult<T> = { ok: true; value: T; attempts: number } | { ok: false; error: unknown; attempts: number };

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
      minDelayMs: assertDuration('retry.minDelayMs', r.minDelayMs ?? 100),
      factor,
      maxDelayMs: assertDuration('retry.maxDelayMs', r.maxDelayMs ?? 60_000),
      ...(r.retryIf && { retryIf: r.retryIf }),
    };
  }
  return policy;
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
  try {
    const value = await pRetry(
      async (attempt) => {
        try {
          return await attemptOnce(attempt);
        } catch (err) {
          errors.push(err);
          if (cancellation.aborted || !isRetryable(err) || (retry.retryIf && !retry.retryIf(err))) throw new AbortError(asError(err));
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
    if (errors.length >= retry.maxAttempts) return { ok: false, error: new StepRetriesExceededError(name, errors), attempts: errors.length };
    return { ok: false, error: errors.length > 0 ? errors[errors.length - 1] : err, attempts: Math.max(errors.length, 1) };
  }
}

function isRetryable(err: unknown): boolean {
  if (typeof err === 'object' && err !== null && (err as { nonRetryable?: unknown }).nonRetryable === true) return false;
  return true;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

async function runAttempt<T>(name: string, body: StepBody<T>, attempt: number, timeoutMs: number | undefined, parent: Cancellation): Promise<T> {
  if (timeoutMs === undefined) return body(lazyAttempt(parent, attempt));
  const controller = new AbortController();
  const link: CancelWatcher = { cancelled: (reason) => controller.abort(reason) };
  parent.watch(link);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // Settle the race before aborting, so a body that resolves on abort cannot win it.
      const err = new StepTimeoutError(name, timeoutMs);
      reject(err);
      controller.abort(err);
    }, timeoutMs);
  });
  try {
    return await Promise.race([Promise.resolve(body({ signal: controller.signal, attempt })), timedOut]);
  } finally {
    clearTimeout(timer);
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
