import type { TaskOutcome, TriggerRule, TriggerRuleName } from '../types.js';

/** The built-in trigger rules, for validation and messages. */
export const TRIGGER_RULES: readonly TriggerRuleName[] = ['all_success', 'all_done', 'one_success', 'one_failed', 'none_failed'];

export function isTriggerRule(value: unknown): value is TriggerRule {
  return typeof value === 'function' || (TRIGGER_RULES as readonly unknown[]).includes(value);
}

/** What a trigger says of a task given the dependencies settled so far. */
export type Verdict = { kind: 'run' } | { kind: 'skip' } | { kind: 'wait' } | { kind: 'fail'; error: unknown };

const RUN: Verdict = { kind: 'run' };
const SKIP: Verdict = { kind: 'skip' };
const WAIT: Verdict = { kind: 'wait' };

/**
 * Decides a task from the outcomes of the dependencies that have settled (`total` in all). A
 * built-in rule decides as soon as its answer cannot change: `one_success` runs at the first
 * success, `all_success` is skipped at the first failure or skip. Each answer only ever moves
 * from wait to run or skip, so a replay, where dependencies settle in another order, reaches the
 * same one. A trigger function is called once every dependency has settled; if it throws, the
 * task fails with its error.
 */
export function decide(rule: TriggerRule, total: number, settled: ReadonlyMap<string, TaskOutcome>): Verdict {
  let success = 0;
  let failed = 0;
  for (const outcome of settled.values()) {
    if (outcome === 'success') success++;
    else if (outcome === 'failed') failed++;
  }
  const pending = total - settled.size;
  const notSuccess = settled.size - success;
  if (typeof rule === 'function') {
    if (pending > 0) return WAIT;
    try {
      return rule(Object.fromEntries(settled)) ? RUN : SKIP;
    } catch (error) {
      return { kind: 'fail', error };
    }
  }
  switch (rule) {
    case 'all_success':
      return notSuccess > 0 ? SKIP : pending === 0 ? RUN : WAIT;
    case 'all_done':
      return pending === 0 ? RUN : WAIT;
    case 'one_success':
      return success > 0 ? RUN : pending === 0 ? SKIP : WAIT;
    case 'one_failed':
      return failed > 0 ? RUN : pending === 0 ? SKIP : WAIT;
    case 'none_failed':
      return failed > 0 ? SKIP : pending === 0 ? RUN : WAIT;
  }
}

/** How a trigger is named in a run's shape and in skip records. */
export function triggerName(rule: TriggerRule): string {
  return typeof rule === 'function' ? 'function' : rule;
}
