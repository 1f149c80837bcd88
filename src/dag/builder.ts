import { createHash } from 'node:crypto';
import { DagValidationError, InvalidArgumentError } from '../engine/errors.js';
import { stepPolicy } from '../engine/step-runner.js';
import { assertName, assertOptions, assertPositiveInteger, describe, MAX_DURATION_MS } from '../engine/validate.js';
import type { Context, DagOptions, DagWorkflow, RetryOptions, StepOptions, TaskArgs, TaskOptions, TriggerRule, Workflow } from '../types.js';
import type { DagShape } from './protocol.js';
import { runDag, type Plan, type PlannedTask } from './run.js';
import { triggerName } from './triggers.js';
import { findProblems, type DraftTask } from './validate.js';

/** Registers the pipeline's workflow function (the engine's `workflow`). */
export type RegisterWorkflow = (name: string, fn: (ctx: Context, input: unknown) => Promise<unknown>) => Workflow<unknown, unknown>;

/** The outputs of the dependencies a task names: typed for those declared before it. */
type DepsOf<O, D extends string> = { [P in D]: P extends keyof O ? O[P] : unknown };

const TASK_OPTIONS: ReadonlySet<string> = new Set(['dependsOn', 'trigger', 'retry', 'timeoutMs', 'external']);
const DAG_OPTIONS: ReadonlySet<string> = new Set(['maxParallel']);
/** Task keys are step names, with room for the `cairn.skipped:` prefix of a skip record. */
const MAX_KEY_LENGTH = 200;

interface Declared extends DraftTask {
  fn: (args: TaskArgs<unknown, Record<string, unknown>>) => unknown;
  retry: RetryOptions | undefined;
  external: boolean;
}

/**
 * Declares a pipeline: tasks with dependencies, run as one workflow. Each `task` adds one; `build`
 * checks the whole graph, reporting every problem at once, and registers the workflow. Obtained
 * from `engine.dag(name, options)`.
 *
 * @example
 * const etl = engine.dag<{ day: string }>('etl', { maxParallel: 4 })
 *   .task('extract', ({ input }) => source.rows(input.day))
 *   .task('clean', ({ deps }) => clean(deps.extract), { dependsOn: ['extract'] })
 *   .task('load', ({ deps }) => warehouse.load(deps.clean), { dependsOn: ['clean'], retry: { maxAttempts: 3 } })
 *   .build();
 * const { outputs } = await etl.run({ day: '2024-06-01' });
 */
export class DagBuilder<I = unknown, O extends Record<string, unknown> = Record<never, never>> {
  private readonly name: string;
  private readonly maxParallel: number;
  private readonly declared: Declared[] = [];
  private built = false;

  /** Made by `engine.dag(name, options)`, which registers the built pipeline on that engine. */
  constructor(
    name: string,
    options: DagOptions | undefined,
    private readonly register: RegisterWorkflow,
  ) {
    this.name = assertName('pipeline name', name);
    assertOptions('pipeline options', options);
    refuseUnknown(`options of pipeline '${this.name}'`, options, DAG_OPTIONS);
    this.maxParallel = options?.maxParallel === undefined ? Infinity : assertPositiveInteger('maxParallel', options.maxParallel);
  }

  /**
   * Adds a task. `fn` receives `{ input, deps, outcomes, signal, attempt }` and runs as a step once
   * its trigger holds; its output goes to the tasks that depend on it, under its key. Argument
   * types are checked here; the graph (keys, dependencies, triggers, timeouts) by `build`.
   */
  task<K extends string, D extends string = never>(
    key: K,
    fn: (args: TaskArgs<I, DepsOf<O, D>>) => unknown,
    options: TaskOptions<D> & { external: true },
  ): DagBuilder<I, O & Record<K, unknown>>;
  task<K extends string, T, D extends string = never>(
    key: K,
    fn: (args: TaskArgs<I, DepsOf<O, D>>) => Promise<T> | T,
    options?: TaskOptions<D>,
  ): DagBuilder<I, O & Record<K, Awaited<T>>>;
  task(key: string, fn: (args: TaskArgs<I, never>) => unknown, options?: TaskOptions): DagBuilder<I, Record<string, unknown>> {
    if (this.built) throw new InvalidArgumentError('key', `pipeline '${this.name}' was already built; declare every task before build()`);
    if (typeof key !== 'string') throw new InvalidArgumentError('key', `a task key must be a string, got ${describe(key)}`);
    if (key.trim() !== '') assertName('task key', key, MAX_KEY_LENGTH);
    const what = `task '${key}' of pipeline '${this.name}'`;
    if (typeof fn !== 'function') throw new InvalidArgumentError('fn', `the function of ${what} must be a function, got ${describe(fn)}`);
    if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) {
      throw new InvalidArgumentError('options', `the options of ${what} must be an object, got ${describe(options)}`);
    }
    refuseUnknown(`the options of ${what}`, options, TASK_OPTIONS);
    const o: TaskOptions = options ?? {};
    if (o.dependsOn !== undefined && !Array.isArray(o.dependsOn)) {
      throw new InvalidArgumentError('dependsOn', `dependsOn of ${what} must be an array of task keys, got ${describe(o.dependsOn)}`);
    }
    const dependsOn = [...new Set(o.dependsOn ?? [])];
    dependsOn.forEach((dep, i) => {
      if (typeof dep !== 'string') throw new InvalidArgumentError('dependsOn', `dependsOn[${i}] of ${what} must be a task key, got ${describe(dep)}`);
    });
    if (o.external !== undefined && typeof o.external !== 'boolean') {
      throw new InvalidArgumentError('external', `external of ${what} must be true or false, got ${describe(o.external)}`);
    }
    if (o.retry !== undefined) stepPolicy({ retry: o.retry });
    this.declared.push({
      key,
      fn: fn as Declared['fn'],
      dependsOn,
      trigger: o.trigger,
      timeoutMs: o.timeoutMs,
      retry: o.retry,
      external: o.external === true,
    });
    return this as unknown as DagBuilder<I, Record<string, unknown>>;
  }

  /**
   * Checks the pipeline and registers it as a workflow named after it, usable like any other
   * (start, run, queues, schedules, children). Throws DagValidationError listing every problem.
   */
  build(): DagWorkflow<I, O> {
    if (this.built) throw new InvalidArgumentError('build', `pipeline '${this.name}' was already built`);
    if (this.declared.length === 0) {
      throw new InvalidArgumentError('tasks', `pipeline '${this.name}' has no tasks; add them with .task(key, fn, options) before build()`);
    }
    const problems = findProblems(this.declared);
    if (problems.length > 0) throw new DagValidationError(this.name, problems);
    const plan = this.plan();
    const fn = (ctx: Context, input: unknown) => runDag(ctx, plan, input);
    // The default appVersion hashes each workflow function's source: here, the shape and every task's code.
    const source = [`pipeline ${this.name} ${plan.version}`, ...this.declared.map((t) => `${t.key}: ${t.fn.toString()}`)].join('\n');
    Object.defineProperty(fn, 'toString', { value: () => source });
    const workflow = this.register(this.name, fn);
    this.built = true;
    Object.defineProperties(workflow, {
      version: { value: plan.version, enumerable: true },
      tasks: { value: Object.freeze(this.declared.map((t) => t.key)), enumerable: true },
    });
    return workflow as unknown as DagWorkflow<I, O>;
  }

  private plan(): Plan {
    const position = new Map(this.declared.map((t, i) => [t.key, i]));
    const shape: DagShape = {
      name: this.name,
      version: '',
      tasks: this.declared.map((t) => ({ key: t.key, dependsOn: [...t.dependsOn].sort(), trigger: triggerName(trigger(t)), external: t.external })),
    };
    shape.version = contentVersion(shape, this.declared);
    const tasks: PlannedTask[] = this.declared.map((t, index) => {
      const step: StepOptions = t.retry === undefined ? {} : { retry: t.retry };
      const timeoutMs = t.timeoutMs === undefined ? undefined : Math.ceil(t.timeoutMs as number);
      if (timeoutMs !== undefined && !t.external) step.timeoutMs = timeoutMs;
      return {
        key: t.key,
        index,
        fn: t.fn,
        deps: t.dependsOn.map((d) => position.get(d)!),
        trigger: trigger(t),
        step,
        external: t.external,
        waitMs: t.external ? (timeoutMs ?? MAX_DURATION_MS) : 0,
      };
    });
    return { name: this.name, version: shape.version, maxParallel: this.maxParallel, tasks, shape };
  }
}

function trigger(t: Declared): TriggerRule {
  return (t.trigger as TriggerRule | undefined) ?? 'all_success';
}

/**
 * The content version: a hash of the keys in declaration order (a task's position fixes the ids of
 * its checkpoints), each task's dependencies, trigger (a function's source text) and whether it is
 * external. Retries and timeouts are not part of it: they change how a task runs, not the shape.
 */
function contentVersion(shape: DagShape, declared: readonly Declared[]): string {
  const parts = shape.tasks.map((t, i) => {
    const rule = declared[i]!.trigger;
    return [t.key, t.dependsOn, typeof rule === 'function' ? `function ${rule.toString()}` : t.trigger, t.external];
  });
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

function refuseUnknown(what: string, options: object | undefined, known: ReadonlySet<string>): void {
  for (const key of Object.keys(options ?? {})) {
    if (!known.has(key)) {
      throw new InvalidArgumentError(key, `${what} have no option '${key}'; the options are ${[...known].join(', ')}`);
    }
  }
}
