import { AsyncLocalStorage } from 'node:async_hooks';
import { ContextUsageError } from './errors.js';

/** Marks code running inside a step function, where Context calls are not allowed. */
const stepScope = new AsyncLocalStorage<{ workflowId: string; stepName: string } | undefined>();

export function runInStep<T>(workflowId: string, stepName: string, fn: () => T): T {
  return stepScope.run({ workflowId, stepName }, fn);
}

/**
 * Runs `fn` outside any step, so a workflow started from inside a step gets a clean scope. Not
 * `exit()`: that switches Node's promise hooks off and on again around every call, while `run`
 * with the store already current (no step) is a plain call.
 */
export function runOutsideStep<T>(fn: () => T): T {
  return stepScope.run(undefined, fn);
}

export function assertNotInStep(call: string): void {
  const scope = stepScope.getStore();
  if (scope) {
    throw new ContextUsageError(
      `ctx.${call} was called inside step '${scope.stepName}' of workflow '${scope.workflowId}'; ` +
        'Context methods may only be called from the workflow function itself, not from inside a step',
    );
  }
}
