import type { LoadBudget, PairedBudget, SequentialBudget } from './load.js';
import type { Summary } from './stats.js';
import type { Pair, ProviderTuning, Store, Target } from './targets.js';

/**
 * The scenario registry's contract. A scenario is a numbered measurement that runs against one
 * target and returns table rows; later scenarios plug in by adding an entry to `scenarios/index.ts`.
 */

/** A ratio to the floor (or to another measurement of the same run) and the project's target for it. */
export interface Ratio {
  value: number;
  /** What was divided by what, e.g. "p50 / floor p50". */
  of: string;
  target?: { op: '<=' | '>='; value: number };
}

export type RowStatus = 'measured' | 'not built yet' | 'error';

export interface Row {
  /** The scenario number, as the project numbers them. */
  id: string;
  scenario: string;
  measure: string;
  /** The value as printed. */
  value: string;
  ratio?: Ratio;
  note?: string;
  status: RowStatus;
  /** Raw figures for the JSON report (ms, per-second rates, counts). */
  data?: Record<string, unknown>;
}

/** Sizes of each measurement; `--quick` picks the small set. */
export interface Budgets {
  concurrency: number[];
  floorSequential: SequentialBudget;
  /** Closed-loop budget of the floor alone at each concurrency level (scenario 1). */
  load: LoadBudget;
  /** Engine and floor measured in alternating windows at each concurrency level (scenario 3). */
  paired: PairedBudget;
  workflowSteps: number;
  /** One workflow at a time, each followed by `floorPerSample` floor commits (scenario 2). */
  sequentialWorkflows: SequentialBudget & { floorPerSample: number };
  /** Recovery of `workflows` PENDING workflows; the comparison runs `baseline` before and after it. */
  recovery: { workflows: number; concurrency: number; baseline: LoadBudget };
  /**
   * Queue drain of `workflows` preloaded workflows on a pool of `poolSize`, against the floor at
   * C = poolSize timed before and after it (`floor`); then enqueue-to-start latency at idle.
   */
  queue: { workflows: number; poolSize: number; floor: LoadBudget; latency: SequentialBudget & { floorPerSample: number } };
  /** Memory of `workflows` parked workflows, after `warmup` parked ones (in the baseline). */
  memory: { workflows: number; warmup: number };
  /** Wake-up round trips, one at a time, each followed by `floorPerSample` floor commits. */
  wake: SequentialBudget & { floorPerSample: number };
}

/** Figures one scenario leaves for later ones in the same run and on the same target. */
export interface Shared {
  /** Floor: sequential single-commit latency. */
  floorSequential?: Summary;
  /** Floor: insert commits/s by concurrency. */
  floorRate: Map<number, number>;
}

export interface ScenarioContext {
  target: Target;
  budgets: Budgets;
  shared: Shared;
  /** A progress line on stderr. */
  progress(message: string): void;
}

export interface Scenario {
  id: string;
  name: string;
  run(ctx: ScenarioContext): Promise<Row[]>;
}

export function meetsTarget(ratio: Ratio): boolean | undefined {
  if (!ratio.target || !Number.isFinite(ratio.value)) return undefined;
  return ratio.target.op === '<=' ? ratio.value <= ratio.target.value : ratio.value >= ratio.target.value;
}

/** A registry entry for a scenario whose engine feature is not there yet: one honest row, no numbers. */
export function notBuilt(id: string, name: string, measure: string): Scenario {
  return {
    id,
    name,
    run: async () => [{ id, scenario: name, measure, value: 'not built yet', status: 'not built yet' }],
  };
}

/** Runs `fn` on a fresh store of the context's target and always disposes of the store. */
export async function withStore<T>(ctx: ScenarioContext, label: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await ctx.target.fresh(label);
  try {
    return await fn(store);
  } finally {
    await store.dispose();
  }
}

/** Runs `fn` on a provider and floor driver sharing connections, and always closes them. */
export async function withPair<T>(store: Store, poolSize: number, fn: (pair: Pair) => Promise<T>, tuning?: ProviderTuning): Promise<T> {
  const pair = await store.pair(poolSize, tuning);
  try {
    return await fn(pair);
  } finally {
    await pair.close();
  }
}
