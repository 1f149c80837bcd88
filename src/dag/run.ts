import {
  EngineClosedError,
  ExecutionInterruptedError,
  ExecutionSupersededError,
  NonDeterminismError,
  StepTimeoutError,
  WorkflowCancelledError,
  WorkflowNotFoundError,
  WorkflowTimeoutError,
} from '../engine/errors.js';
import type { Context, DagResult, StepOptions, TaskArgs, TaskOutcome, TriggerRule } from '../types.js';
import { SHAPE_STEP, SKIPPED_STEP, taskChannel, type Completion, type DagShape, type ExternalState } from './protocol.js';
import { decide, triggerName, type Verdict } from './triggers.js';

/** A task as a run needs it: checked, with its dependencies as positions. */
export interface PlannedTask {
  key: string;
  /** Its position in declaration order, which is also its lane in the run's ctx.all. */
  index: number;
  fn: (args: TaskArgs<unknown, Record<string, unknown>>) => unknown;
  deps: number[];
  trigger: TriggerRule;
  /** For the step of its function (for an external task, retry only). */
  step: StepOptions;
  external: boolean;
  /** How long an external task waits for its completion. */
  waitMs: number;
}

/** A pipeline, checked and ready to run. */
export interface Plan {
  name: string;
  version: string;
  maxParallel: number;
  tasks: PlannedTask[];
  shape: DagShape;
}

type Settled = { outcome: 'success'; output: unknown } | { outcome: 'failed'; error: unknown } | { outcome: 'skipped' };

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  // A run that stops rejects every unsettled task; one nobody depends on must not go unhandled.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * The run of a pipeline, as a workflow function. Its first checkpoint records the shape's version;
 * then every task runs in a lane of one `ctx.all`, in declaration order, so each task's
 * checkpoints have the same step ids whichever tasks finish first, and a replay finds them. A task
 * waits for its dependencies, asks its trigger, then runs its function as a step (or records a
 * skip). The run fails with the error of the first failed task, in declaration order, once every
 * task has settled; it succeeds with the outputs otherwise.
 */
export async function runDag(ctx: Context, plan: Plan, input: unknown): Promise<DagResult<Record<string, unknown>>> {
  await ctx.step(`${SHAPE_STEP}${plan.version}`, () => plan.shape);
  const run = new Run(ctx, plan, input);
  await ctx.all(plan.tasks.map((task) => () => run.task(task)));
  const settled = await Promise.all(run.settled.map((d) => d.promise));
  const failed = settled.find((s) => s.outcome === 'failed');
  if (failed) throw failed.error;
  const outputs: Record<string, unknown> = {};
  const skipped: string[] = [];
  plan.tasks.forEach((task, i) => {
    const s = settled[i]!;
    if (s.outcome === 'success') outputs[task.key] = s.output;
    else skipped.push(task.key);
  });
  return { version: plan.version, outputs, skipped };
}

class Run {
  readonly settled: Deferred<Settled>[];
  /** Outputs of the tasks that succeeded, by position, set before their dependents hear of it. */
  private readonly outputs = new Map<number, unknown>();
  private readonly slots: Slots;

  constructor(
    private readonly ctx: Context,
    private readonly plan: Plan,
    private readonly input: unknown,
  ) {
    this.settled = plan.tasks.map(() => deferred<Settled>());
    this.slots = new Slots(plan.maxParallel);
  }

  /** One task, start to end. Rejects only when the execution stops (and then so do its dependents). */
  async task(task: PlannedTask): Promise<void> {
    const done = this.settled[task.index]!;
    try {
      const { verdict, outcomes } = await this.trigger(task);
      const failure = verdict.kind === 'fail' ? verdict : undefined;
      if (verdict.kind === 'skip') done.resolve(await this.skip(task, outcomes));
      else done.resolve(await (task.external ? this.external(task, outcomes, failure) : this.ownStep(task, outcomes, failure)));
    } catch (err) {
      done.reject(err);
      throw err;
    }
  }

  /** Waits until the task's trigger decides, as its dependencies settle. */
  private trigger(task: PlannedTask): Promise<{ verdict: Verdict; outcomes: Map<string, TaskOutcome> }> {
    const outcomes = new Map<string, TaskOutcome>();
    if (task.deps.length === 0) return Promise.resolve({ verdict: { kind: 'run' }, outcomes });
    return new Promise((resolve, reject) => {
      let decided = false;
      for (const dep of task.deps) {
        this.settled[dep]!.promise.then(
          (s) => {
            if (decided) return;
            outcomes.set(this.plan.tasks[dep]!.key, s.outcome);
            const verdict = decide(task.trigger, task.deps.length, outcomes);
            if (verdict.kind === 'wait') return;
            decided = true;
            resolve({ verdict, outcomes: new Map(outcomes) });
          },
          (err: unknown) => {
            if (!decided) (decided = true), reject(err);
          },
        );
      }
    });
  }

  private args(task: PlannedTask, outcomes: Map<string, TaskOutcome>): Omit<TaskArgs<unknown, Record<string, unknown>>, 'signal' | 'attempt'> {
    const deps: Record<string, unknown> = {};
    for (const dep of task.deps) {
      const key = this.plan.tasks[dep]!.key;
      if (outcomes.get(key) === 'success') deps[key] = this.outputs.get(dep);
    }
    return { input: this.input, deps, outcomes: Object.fromEntries(outcomes) };
  }

  /** The task's function as a step (or, when its trigger function threw, that error recorded as the step's). */
  private async ownStep(task: PlannedTask, outcomes: Map<string, TaskOutcome>, failure?: { error: unknown }): Promise<Settled> {
    const args = this.args(task, outcomes);
    await this.slots.acquire(task.index);
    try {
      const output = await this.ctx.step(
        task.key,
        ({ signal, attempt }) => {
          if (failure) throw failure.error;
          return task.fn({ ...args, signal, attempt });
        },
        failure ? {} : task.step,
      );
      this.outputs.set(task.index, output);
      return { outcome: 'success', output };
    } catch (error) {
      if (this.stopping(error)) throw error;
      return { outcome: 'failed', error };
    } finally {
      this.slots.release();
    }
  }

  /**
   * An external task: publishes that it waits (before its function runs, so a completion sent as
   * soon as it asks is taken), runs its function, then waits for the completion message.
   */
  private async external(task: PlannedTask, outcomes: Map<string, TaskOutcome>, failure?: { error: unknown }): Promise<Settled> {
    const channel = taskChannel(task.key);
    const publish = (state: ExternalState) => this.ctx.setEvent(channel, state);
    if (!failure) await publish('waiting');
    const asked = await this.ownStep(task, outcomes, failure);
    if (asked.outcome === 'failed') {
      await publish('failed');
      return asked;
    }
    const message = await this.ctx.recv<Completion>(channel, task.waitMs);
    if (message === null) {
      await publish('timed-out');
      return { outcome: 'failed', error: new StepTimeoutError(task.key, task.waitMs) };
    }
    await publish('completed');
    this.outputs.set(task.index, message.value);
    return { outcome: 'success', output: message.value };
  }

  /** Records that the task's trigger cannot hold: a checkpoint named `cairn.skipped:<key>`. */
  private async skip(task: PlannedTask, outcomes: Map<string, TaskOutcome>): Promise<Settled> {
    const record = { trigger: triggerName(task.trigger), dependencies: Object.fromEntries(outcomes) };
    await this.ctx.step(`${SKIPPED_STEP}${task.key}`, () => record);
    if (task.external) await this.ctx.setEvent(taskChannel(task.key), 'skipped' satisfies ExternalState);
    return { outcome: 'skipped' };
  }

  /**
   * Whether an error thrown by a Context call stops the execution (cancellation, shutdown, another
   * executor, a divergence) rather than being the task's recorded failure: then it is not a task
   * outcome, and no trigger may act on it.
   */
  private stopping(error: unknown): boolean {
    if (this.ctx.signal.aborted) return true;
    if (error instanceof EngineClosedError || error instanceof ExecutionInterruptedError || error instanceof NonDeterminismError) return true;
    const own = (error as { workflowId?: unknown }).workflowId === this.ctx.workflowId;
    return own && (error instanceof ExecutionSupersededError || error instanceof WorkflowNotFoundError || error instanceof WorkflowCancelledError || error instanceof WorkflowTimeoutError);
  }
}

/**
 * The `maxParallel` limit of one run: task functions take a slot while they run. A freed slot
 * goes to the waiting task declared first; the ids of the tasks' checkpoints never depend on it.
 */
class Slots {
  private free: number;
  private readonly waiting: { index: number; start: () => void }[] = [];

  constructor(limit: number) {
    this.free = limit;
  }

  acquire(index: number): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((start) => this.waiting.push({ index, start }));
  }

  release(): void {
    if (this.waiting.length === 0) {
      this.free++;
      return;
    }
    let first = 0;
    for (let i = 1; i < this.waiting.length; i++) if (this.waiting[i]!.index < this.waiting[first]!.index) first = i;
    this.waiting.splice(first, 1)[0]!.start();
  }
}
