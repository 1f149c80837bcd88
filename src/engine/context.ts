import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { TransactionBodyError, type CheckpointMiss, type CheckpointOutcome, type StepRow } from '../providers/provider.js';
import type { RetryListener, RunObserver } from '../observability/observer.js';
import type { AllOptions, AllResults, ChildOptions, Context, StepAttempt, StepOptions, Workflow, WorkflowHandle } from '../types.js';
import type { ChildStart, EngineCore } from './core.js';
import {
  CairnError,
  ContextUsageError,
  EngineClosedError,
  ExecutionInterruptedError,
  ExecutionSupersededError,
  InvalidArgumentError,
  NonDeterminismError,
  RETURNED,
  WorkflowCancelledError,
  WorkflowNotFoundError,
} from './errors.js';
import { userCallSite } from './call-site.js';
import { deserialize, deserializeError, roundTrip, serialize, serializeError } from './serialization.js';
import { persist } from './persist.js';
import { assertNotInStep } from './step-scope.js';
import { runStep, stepPolicy, type StepPolicy, type StepResult } from './step-runner.js';
import type { ExecutionSignal } from './execution.js';
import { alarm } from './timers.js';
import { assertDate, assertDuration, assertFunction, assertName, assertOptions, assertPositiveInteger, describe } from './validate.js';

/** How long recv and getEvent wait when no timeout is given. */
export const DEFAULT_WAIT_MS = 60_000;

type WriteOutcome = CheckpointOutcome | { kind: 'no-destination' };
type Writer = (step: StepRow) => Promise<WriteOutcome>;
/** What a recv's wait ends with (undefined: its timeout passed). */
type RecvOutcome = CheckpointMiss | { kind: 'received'; body: string };

/** The suffix of the row a wait records, under its negated step id, when it parks. */
const DEADLINE = '.deadline';
const PATCH = 'cairn.patch:';

/** How an execution treats the history it replays, beyond returning its checkpoints. */
export interface ReplayOptions {
  /**
   * Another app version recorded the workflow: once the replay reaches a call with no checkpoint,
   * without diverging, the workflow is stamped with this version (the current one).
   */
  claimVersion?: string;
  /** Replay only (checkReplay): nothing runs or is written; the replay stops at the first new call. */
  probe?: ReplayProbe;
  /** The execution is observed (hooks, spans, metrics): its steps report to this. */
  observed?: RunObserver;
}

export interface ReplayProbe {
  /** The replay met every completed checkpoint and reached a call with none. */
  reachedEnd(): void;
}

/** Thrown into a workflow function replayed by checkReplay once its replay has reached the end. */
export class ReplayStopped extends Error {}

/**
 * The Context of one execution. Each call takes the next counter value synchronously, so calls
 * started together get ids in call order on every replay. A call whose checkpoint exists returns
 * it; otherwise it runs and writes its checkpoint in one statement, which also tells it whether
 * the workflow was cancelled meanwhile.
 */
export class WorkflowContext implements Context {
  private counter = 0;
  /** Context calls made so far, in every lane of ctx.all too. */
  private made = 0;
  /** Set once ctx.all has run: from then on each call looks up the lane it is made in. */
  private lanesUsed = false;
  /** Set while a ctx.all runs over the workflow function's own calls (not from inside a thunk). */
  private forked = false;
  private finished = false;
  /** Set when the database kept failing: the execution stops and is run again later. */
  interrupted: ExecutionInterruptedError | undefined;
  /** Step bodies running and writes in flight: while there are some, the execution is working, not parked. */
  private busy = 0;
  /** Set by `release`: the reason to stop with as soon as the execution is parked. */
  private releasing: unknown;
  /** Set when a call did not match the history: the execution stops, and writes nothing more. */
  diverged: NonDeterminismError | undefined;
  /** The highest step id with a completed checkpoint. */
  private lastRecorded = 0;
  /** The highest step id the history mentions, waits parked (negated ids) included. */
  private replayEnd = 0;
  /** While a new call may still sit among recorded ones: new calls are checked against the history. */
  private checking = false;
  private claimVersion: string | undefined;
  private readonly probe: ReplayProbe | undefined;
  private readonly observed: RunObserver | undefined;
  /** Patch ids checked in this execution, with the step at which each was. */
  private patches: Map<string, number> | undefined;

  constructor(
    private readonly core: EngineCore,
    readonly workflowId: string,
    private replay: Map<number, StepRow> | null,
    /** Aborts on cancellation, timeout and interruption; makes `signal` only when it is read. */
    private readonly cancellation: ExecutionSignal,
    /** The workflow's recovery count when this execution began; progress resets it. */
    private recoveriesWithoutProgress = 0,
    options: ReplayOptions = {},
  ) {
    this.claimVersion = options.claimVersion;
    this.probe = options.probe;
    this.observed = options.observed;
    if (replay) this.measure(replay);
  }

  /** Reads the bounds of a history: its last completed checkpoint and the last step it mentions. */
  private measure(replay: Map<number, StepRow>): void {
    for (const id of replay.keys()) {
      if (id > this.lastRecorded) this.lastRecorded = id;
      if (Math.abs(id) > this.replayEnd) this.replayEnd = Math.abs(id);
    }
    // A workflow another version recorded is checked up to its first new call, which claims it.
    this.checking = this.replayEnd > this.counter || this.claimVersion !== undefined;
  }

  /** Context calls made so far. */
  get calls(): number {
    return this.made;
  }

  get signal(): AbortSignal {
    return this.cancellation.signal;
  }

  /** Called when the workflow function has returned; later Context calls are refused. */
  finish(): void {
    this.finished = true;
  }

  /**
   * Stops the execution with `reason` once it is parked (sleeping, waiting for a message, an event
   * or a child) rather than running a step or writing: at once if it is parked now, else when it
   * next parks. Used by `close()`, which lets steps finish but need not wait out a sleep.
   */
  release(reason: unknown): void {
    this.releasing = reason;
    this.releaseIfParked();
  }

  private releaseIfParked(): void {
    if (this.releasing === undefined || this.busy > 0 || this.finished) return;
    // A turn later: a step that just ended hands over to the workflow's next call in microtasks.
    setImmediate(() => {
      if (this.busy === 0 && !this.finished) this.cancellation.abort(this.releasing);
    });
  }

  /** Counts work in flight (a step body, a write): a parked execution is one with none. */
  private busyStart(): void {
    this.busy++;
  }

  private busyEnd(): void {
    if (--this.busy === 0 && this.releasing !== undefined) this.releaseIfParked();
  }


  /** Checks every Context call makes before it takes a counter value. */
  private enter(call: string): void {
    assertNotInStep(call);
    if (this.finished) {
      throw new ContextUsageError(`ctx.${call} was called after workflow '${this.workflowId}' returned; await every Context call inside the workflow function`);
    }
    if (this.lanesUsed) this.assertLaneOpen(call);
  }

  step<T>(name: string, fn: (attempt: StepAttempt) => Promise<T> | T, options?: StepOptions): Promise<T> {
    this.enter(`step('${String(name)}')`);
    assertName('step name', name);
    assertFunction('step function', fn);
    const policy = stepPolicy(options);
    const observed = this.observed;
    const run = observed
      ? (stepId: number) => observed.step(stepId, name, (retried) => runStep(this.workflowId, name, fn, policy, this.cancellation, retried))
      : () => runStep(this.workflowId, name, fn, policy, this.cancellation);
    return this.checkpoint(name, run, undefined, undefined, true);
  }

  transaction<T, Tx = unknown>(name: string, fn: (tx: Tx) => Promise<T> | T, options?: StepOptions): Promise<T> {
    this.enter(`transaction('${String(name)}')`);
    assertName('transaction name', name);
    assertFunction('transaction function', fn);
    const policy = stepPolicy(options);
    const observed = this.observed;
    const body = fn as (tx: unknown) => unknown;
    const run = observed
      ? (stepId: number, startedAt: number) => observed.step(stepId, name, (retried) => this.runTransaction<T>(stepId, startedAt, name, body, policy, retried))
      : (stepId: number, startedAt: number) => this.runTransaction<T>(stepId, startedAt, name, body, policy);
    return this.checkpoint(name, run, undefined, undefined, true);
  }

  /**
   * The attempts of a transactional step: each runs `fn` in a transaction that also writes the
   * checkpoint, so its writes and the checkpoint commit together. A failed attempt rolled back;
   * the step's retry policy decides whether another runs.
   */
  private async runTransaction<T>(
    stepId: number, startedAt: number, name: string, fn: (tx: unknown) => unknown, policy: StepPolicy, retried?: RetryListener,
  ): Promise<StepResult<T>> {
    let value: T | undefined;
    let recorded: CheckpointOutcome | undefined;
    const result = await runStep(
      this.workflowId,
      name,
      async ({ attempt }) => {
        try {
          recorded = await this.core.provider.transactionStep(this.workflowId, this.core.executorId, fn, (returned) => {
            let stored: { text: string; value: T };
            try {
              stored = roundTrip(returned as T, `the output of transaction '${name}' in workflow '${this.workflowId}'`, this.core.maxPayloadBytes);
            } catch (err) {
              // Running it again would store the same value: no retry.
              Object.defineProperty(err, 'nonRetryable', { value: true });
              throw err;
            }
            value = stored.value;
            return { stepId, name, output: stored.text, error: null, childId: null, attempts: attempt, startedAt, completedAt: Date.now() };
          });
        } catch (err) {
          if (err instanceof TransactionBodyError) throw err.error;
          // The database failed, not the function: the execution stops and runs again later.
          this.interrupted ??= new ExecutionInterruptedError(this.workflowId, err);
          this.cancellation.abort(this.interrupted);
          throw this.interrupted;
        }
      },
      policy,
      this.cancellation,
      retried,
    );
    if (recorded !== undefined) return { ok: true, value: value as T, attempts: result.attempts, recorded };
    // Every attempt failed (each rolled back): the error is recorded as any step's is.
    return result.ok ? { ok: false, error: new Error(`transaction '${name}' recorded nothing`), attempts: result.attempts } : result;
  }

  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.enter('sleep');
      assertDuration('sleep duration', ms);
      this.napUntil(computed(() => Date.now() + ms), resolve, reject);
    });
  }

  sleepUntil(date: Date): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.enter('sleepUntil');
      const at = assertDate('sleepUntil date', date);
      this.napUntil(computed(() => at), resolve, reject);
    });
  }

  /**
   * Records the wake-up instant, then parks in the shared timer queue. A parked sleep is the
   * caller's promise and one queue entry: no async frame or timer of its own.
   */
  private napUntil(wakeAt: () => Promise<StepResult<number>>, resolve: () => void, reject: (reason: unknown) => void): void {
    this.checkpoint('cairn.sleep', wakeAt).then((at) => (this.probe ? resolve() : alarm(at, this.cancellation, resolve, reject)), reject);
  }

  now(): Promise<Date> {
    this.enter('now');
    return this.checkpoint('cairn.now', computed(() => new Date()));
  }

  random(): Promise<number> {
    this.enter('random');
    return this.checkpoint('cairn.random', computed(() => Math.random()));
  }

  uuid(): Promise<string> {
    this.enter('uuid');
    return this.checkpoint('cairn.uuid', computed(() => randomUUID()));
  }

  patched(patchId: string): Promise<boolean> {
    this.enter('patched');
    const name = this.patchName(patchId);
    const stepId = this.peek();
    const recorded = this.replay?.get(stepId);
    // A history made before the patch holds another checkpoint here (or a wait parked here, or a
    // call still in flight): it takes the old path, and the marker takes no counter value.
    if (recorded ? recorded.name !== name : this.replay?.has(-stepId) || (this.checking && stepId < this.lastRecorded)) {
      return Promise.resolve(false);
    }
    return this.checkpoint(name, computed(() => true));
  }

  async deprecatePatch(patchId: string): Promise<void> {
    this.enter('deprecatePatch');
    const name = this.patchName(patchId);
    // Histories made with the patch hold its marker here: step over it. Others have none.
    if (this.replay?.get(this.peek())?.name === name) this.next();
  }

  /** The checkpoint name of a patch marker, after checking the id and that it is checked once per execution. */
  private patchName(patchId: unknown): string {
    const id = assertName('patch id', patchId);
    this.patches ??= new Map();
    const at = this.patches.get(id);
    if (at !== undefined) {
      throw new InvalidArgumentError(
        'patchId',
        `patch '${id}' was already checked at step ${at} of workflow '${this.workflowId}'; check each patch id at one place in a workflow, once per execution`,
      );
    }
    this.patches.set(id, this.peek());
    return `${PATCH}${id}`;
  }

  async send(destinationId: string, message: unknown, topic?: string): Promise<void> {
    this.enter('send');
    assertName('destination workflow id', destinationId);
    const t = topicOf(topic);
    const body = serialize(message, `the message to workflow '${destinationId}'`, this.core.maxPayloadBytes);
    await this.checkpoint(
      'cairn.send',
      computed(() => undefined),
      (step) => this.core.provider.recordStepWithEffect(this.workflowId, step, { kind: 'send', destinationId, topic: t, body }, this.core.executorId),
      destinationId,
    );
  }

  recv<T = unknown>(topic?: string, timeoutMs: number = DEFAULT_WAIT_MS): Promise<T | null> {
    // Not an async function: a parked recv is this promise and its wait, with no suspended frame.
    return new Promise<T | null>((resolve, reject) => {
      this.enter('recv');
      const t = topicOf(topic);
      assertDuration('recv timeoutMs', timeoutMs);
      const stepId = this.next();
      const recorded = this.replay?.get(stepId);
      if (recorded) return resolve(this.adopt<T | null>(stepId, 'cairn.recv', recorded));
      this.assertRunnable('cairn.recv');
      if (this.checking) {
        this.beforeNew(stepId, 'cairn.recv').then(() => this.awaitMessage<T>(stepId, t, timeoutMs, resolve, reject), reject);
      } else {
        this.awaitMessage<T>(stepId, t, timeoutMs, resolve, reject);
      }
    });
  }

  /** The wait of a recv with no checkpoint: a message, or the recorded null once its deadline passes. */
  private awaitMessage<T>(stepId: number, t: string, timeoutMs: number, resolve: (v: T | null | Promise<T | null>) => void, reject: (e: unknown) => void): void {
    const startedAt = Date.now();
    const deadline = this.recordedDeadline(stepId, 'cairn.recv') ?? startedAt + timeoutMs;
    const id = this.workflowId;
    this.core.waits.wait<RecvOutcome>(
      [`m:${id}`, `w:${id}`],
      async (attempt) => {
        const r = await this.write(() => this.core.provider.recordRecv(id, { stepId, name: 'cairn.recv', startedAt, completedAt: Date.now() }, t, this.core.executorId));
        if (r.kind !== 'empty') return r;
        if (attempt === 0) await this.holdDeadline(stepId, 'cairn.recv', deadline, startedAt);
        // Woken without a message: maybe the workflow was cancelled from another process.
        if (attempt > 0) {
          const row = await this.core.provider.getWorkflow(id);
          if (row?.status !== 'PENDING') return { kind: 'not-pending' as const, status: row?.status };
        }
        return undefined;
      },
      { deadline, signal: this.cancellation },
      (got) => resolve(this.received<T>(got, stepId, startedAt)),
      reject,
    );
  }

  /** The end of a recv: the message, or the recorded null of its timeout, or why it stopped. */
  private async received<T>(got: RecvOutcome | undefined, stepId: number, startedAt: number): Promise<T | null> {
    if (got?.kind === 'received') {
      await this.progressed();
      return deserialize<T>(got.body, `the message received at step ${stepId} of workflow '${this.workflowId}'`);
    }
    if (got !== undefined) return this.settleMiss<T | null>(stepId, 'cairn.recv', got);
    // Timed out: the null is recorded too, so a replay returns it without waiting.
    const step: StepRow = { stepId, name: 'cairn.recv', output: serialize(null, 'recv'), error: null, childId: null, attempts: 1, startedAt, completedAt: Date.now() };
    const outcome = await this.write(() => this.core.provider.recordStep(this.workflowId, step, this.core.executorId));
    if (outcome.kind !== 'recorded') return this.settleMiss<T | null>(stepId, 'cairn.recv', outcome);
    await this.progressed();
    return null;
  }

  async setEvent(key: string, value: unknown): Promise<void> {
    this.enter('setEvent');
    assertName('event key', key);
    const text = serialize(value, `event '${key}' of workflow '${this.workflowId}'`, this.core.maxPayloadBytes);
    await this.checkpoint(
      'cairn.setEvent',
      computed(() => undefined),
      (step) => this.core.provider.recordStepWithEffect(this.workflowId, step, { kind: 'set-event', key, value: text }, this.core.executorId),
    );
  }

  getEvent<T = unknown>(workflowId: string, key: string, timeoutMs: number = DEFAULT_WAIT_MS): Promise<T | null> {
    this.enter('getEvent');
    assertName('workflow id', workflowId);
    assertName('event key', key);
    assertDuration('getEvent timeoutMs', timeoutMs);
    return this.checkpoint('cairn.getEvent', async (stepId) => {
      try {
        const startedAt = Date.now();
        const deadline = this.recordedDeadline(stepId, 'cairn.getEvent') ?? startedAt + timeoutMs;
        const text = await this.core.waitForEvent(workflowId, key, deadline, this.signal, () =>
          this.holdDeadline(stepId, 'cairn.getEvent', deadline, startedAt),
        );
        return { ok: true, value: text === undefined ? null : deserialize<T>(text, `event '${key}' of workflow '${workflowId}'`), attempts: 1 };
      } catch (error) {
        return { ok: false, error, attempts: 1 };
      }
    });
  }

  async writeStream(key: string, value: unknown): Promise<void> {
    this.enter('writeStream');
    assertName('stream key', key);
    const text = serialize(value, `a value of stream '${key}' of workflow '${this.workflowId}'`, this.core.maxPayloadBytes);
    await this.checkpoint(
      'cairn.writeStream',
      computed(() => undefined),
      (step) => this.core.provider.recordStepWithEffect(this.workflowId, step, { kind: 'stream', key, value: text, closed: false }, this.core.executorId),
    );
  }

  async closeStream(key: string): Promise<void> {
    this.enter('closeStream');
    assertName('stream key', key);
    await this.checkpoint(
      'cairn.closeStream',
      computed(() => undefined),
      (step) => this.core.provider.recordStepWithEffect(this.workflowId, step, { kind: 'stream', key, value: null, closed: true }, this.core.executorId),
    );
  }

  async startChild<I, O>(workflow: Workflow<I, O>, input: I, options?: ChildOptions): Promise<WorkflowHandle<O>> {
    this.enter('startChild');
    if (typeof workflow !== 'object' || workflow === null || typeof workflow.name !== 'string') {
      throw new ContextUsageError('ctx.startChild needs a workflow returned by engine.workflow(name, fn)');
    }
    assertOptions('child options', options);
    const timeoutMs = options?.timeoutMs === undefined ? undefined : assertDuration('timeoutMs', options.timeoutMs);
    const given = options?.id === undefined ? undefined : assertName('child id', options.id);
    const queue = options?.queue === undefined ? undefined : assertName('queue', options.queue);
    if (queue === undefined) {
      for (const key of ['priority', 'partitionKey'] as const) {
        if (options?.[key] !== undefined) throw new InvalidArgumentError(key, `${key} applies to a child started on a queue; pass a queue as well`);
      }
    }
    const text = serialize(input, `the input of child workflow '${workflow.name}'`, this.core.maxPayloadBytes);
    const name = `cairn.child:${workflow.name}`;
    const stepId = this.next();
    const recorded = this.replay?.get(stepId);
    if (recorded) return this.core.handle<O>(this.adopt<string>(stepId, name, recorded));
    this.assertRunnable(name);
    if (this.checking) await this.beforeNew(stepId, name);
    if (this.core.leaseLapsed()) await this.confirmOwnership();
    const childId = given ?? `${this.workflowId}-${stepId}`;
    const startedAt = Date.now();
    // The child's id is fixed by the parent's counter, so a crash between these two writes is
    // harmless: the replay finds the child already stored and records the step.
    const start: ChildStart = { parentId: this.workflowId, name: workflow.name, input: text, childId, timeoutMs };
    if (queue !== undefined) start.queue = { name: queue, priority: options?.priority, partitionKey: options?.partitionKey };
    await this.write(() => this.core.startChild(start));
    const step: StepRow = { stepId, name, output: serialize(childId, 'child id'), error: null, childId, attempts: 1, startedAt, completedAt: Date.now() };
    const outcome = await this.write(() => this.core.provider.recordStep(this.workflowId, step, this.core.executorId));
    if (outcome.kind === 'recorded') {
      await this.progressed();
      return this.core.handle<O>(childId);
    }
    return this.core.handle<O>(await this.settleMiss<string>(stepId, name, outcome));
  }

  async runChild<I, O>(workflow: Workflow<I, O>, input: I, options?: ChildOptions): Promise<O> {
    const handle = await this.startChild(workflow, input, options);
    return this.checkpoint(`cairn.childResult`, async () => {
      try {
        return { ok: true, value: (await handle.result()) as O, attempts: 1 };
      } catch (error) {
        return { ok: false, error, attempts: 1 };
      }
    });
  }

  /**
   * Runs thunks in lanes of their own (see {@link Lane}), at most `concurrency` at once, started in
   * order. Every thunk runs to its end, whatever the others do, so the calls a replay makes are
   * the calls the first execution made; then the results come back in order, or the error of the
   * first failed thunk by position.
   */
  all<T extends readonly (() => unknown)[] | []>(thunks: T, options?: AllOptions): Promise<AllResults<T>> {
    this.enter('all');
    if (!Array.isArray(thunks)) throw new InvalidArgumentError('thunks', `ctx.all needs an array of functions, got ${describe(thunks)}`);
    thunks.forEach((thunk, i) => assertFunction(`thunks[${i}]`, thunk));
    assertOptions('ctx.all options', options);
    const concurrency = options?.concurrency === undefined ? thunks.length : assertPositiveInteger('concurrency', options.concurrency);
    if (thunks.length === 0) return Promise.resolve([]) as Promise<AllResults<T>>;
    return this.runLanes(thunks as readonly (() => unknown)[], concurrency) as Promise<AllResults<T>>;
  }

  private async runLanes(thunks: readonly (() => unknown)[], concurrency: number): Promise<unknown[]> {
    const parent = this.lane();
    const width = thunks.length;
    const base = parent ? parent.made : this.counter;
    const own = thunks.map((_, i) => new Lane(this, parent, base, width, i));
    this.lanesUsed = true;
    if (parent) parent.forked = true;
    else this.forked = true;
    const results: unknown[] = new Array<unknown>(width);
    const failures = new Map<number, unknown>();
    await new Promise<void>((resolve) => {
      let started = 0;
      let settled = 0;
      const startNext = (): void => {
        while (started < width && started - settled < concurrency) {
          const i = started++;
          void lanes.run(own[i]!, async () => thunks[i]!()).then(
            (value) => void (results[i] = value),
            (error: unknown) => void failures.set(i, error),
          ).finally(() => {
            if (++settled === width) resolve();
            else startNext();
          });
        }
      };
      startNext();
    });
    // The block of ids the lanes hold ends after the longest lane: the caller's calls go on past it.
    const longest = own.reduce((max, lane) => Math.max(max, lane.made), 0);
    for (const lane of own) lane.closed = true;
    if (parent) {
      parent.forked = false;
      parent.made = base + width * longest;
    } else {
      this.forked = false;
      this.counter = base + width * longest;
    }
    this.checkLanesEnded(own, longest);
    if (failures.size > 0) throw failures.get([...failures.keys()].reduce((a, b) => Math.min(a, b)));
    return results;
  }

  /** A replayed thunk that ended before a checkpoint its lane holds diverged, as a function that returns early does. */
  private checkLanesEnded(own: Lane[], longest: number): void {
    if (!this.replay || this.diverged || this.cancellation.aborted) return;
    for (const lane of own) {
      if (lane.made >= longest) continue;
      const id = lane.idOf(lane.made);
      const row = this.replay.get(id);
      if (row) throw this.diverge(id, row.name, RETURNED);
    }
  }

  /** The lane of ctx.all the current call is made in, if any. */
  private lane(): Lane | undefined {
    if (!this.lanesUsed) return undefined;
    const lane = lanes.getStore();
    return lane?.owner === this ? lane : undefined;
  }

  /** Refuses a call that would take an id a running ctx.all holds, or one its block no longer has. */
  private assertLaneOpen(call: string): void {
    const lane = this.lane();
    if (lane?.closed) {
      throw new ContextUsageError(`ctx.${call} was called by a thunk of ctx.all in workflow '${this.workflowId}' after that ctx.all had settled; await every Context call inside the thunk`);
    }
    if (lane ? lane.forked : this.forked) {
      throw new ContextUsageError(
        `ctx.${call} was called in workflow '${this.workflowId}' while a ctx.all it started was running; await the ctx.all first, or make the call inside one of its thunks`,
      );
    }
  }

  /**
   * Takes the next step id; synchronous, so calls started together get ids in call order. Inside
   * a thunk of ctx.all, the next id of its lane.
   */
  private next(): number {
    this.made++;
    const lane = this.lane();
    return lane ? lane.idOf(lane.made++) : ++this.counter;
  }

  /** The step id the next call will take. */
  private peek(): number {
    const lane = this.lane();
    return lane ? lane.idOf(lane.made) : this.counter + 1;
  }

  /**
   * Writes progress, riding out passing database failures. If the database keeps failing, the
   * execution is interrupted: its signal aborts and every later Context call throws, so the
   * workflow cannot carry on past a step it could not record.
   */
  private async write<T>(fn: () => Promise<T>): Promise<T> {
    if (this.diverged) throw this.diverged;
    if (this.interrupted) throw this.interrupted;
    this.busyStart();
    try {
      return await persist(fn, `writing a checkpoint of workflow '${this.workflowId}'`, this.core.logger, () => this.core.closed);
    } catch (err) {
      if (err instanceof CairnError || this.core.closed) throw err;
      this.interrupted ??= new ExecutionInterruptedError(this.workflowId, err);
      this.cancellation.abort(this.interrupted);
      throw this.interrupted;
    } finally {
      this.busyEnd();
    }
  }

  private assertRunnable(name: string): void {
    if (this.interrupted) throw this.interrupted;
    if (this.cancellation.aborted) throw this.cancellation.reason;
    if (this.core.closed) throw new EngineClosedError(`step '${name}' of workflow '${this.workflowId}' was not started`);
  }

  /**
   * The one path Context calls take: next counter value, replay if recorded, else run and record
   * (with `write`, when the checkpoint carries an effect). The counter advances before the first await.
   */
  private async checkpoint<T>(
    name: string,
    run: (stepId: number, startedAt: number) => Promise<StepResult<T>>,
    write?: Writer,
    destinationId?: string,
    /** A step body: counted as work (not a wait) while it runs. */
    body = false,
  ): Promise<T> {
    const stepId = this.next();
    const recorded = this.replay?.get(stepId);
    if (recorded) return this.adopt<T>(stepId, name, recorded);
    this.assertRunnable(name);
    if (this.checking) await this.beforeNew(stepId, name);
    if (this.core.leaseLapsed()) await this.confirmOwnership();
    const startedAt = Date.now();
    let result: StepResult<T>;
    if (body) {
      this.busyStart();
      try {
        result = await run(stepId, startedAt);
      } finally {
        this.busyEnd();
      }
    } else {
      result = await run(stepId, startedAt);
    }
    // Past the close deadline the step was abandoned, possibly aborted by the shutdown itself:
    // that outcome is not the step's, so it must not become its checkpoint. Nor is a wait the
    // closing engine stopped (a parked execution released at close).
    if (this.core.closed) throw new EngineClosedError(`step '${name}' of workflow '${this.workflowId}' was abandoned`);
    if (!result.ok && result.error instanceof EngineClosedError && this.core.closing) throw result.error;
    // A transaction wrote its checkpoint itself, with its effects.
    if (result.recorded) {
      if (result.recorded.kind !== 'recorded') return this.settleMiss<T>(stepId, name, result.recorded);
      await this.progressed();
      return (result as { value: T }).value;
    }
    let output: string | null = null;
    let error: string | null = null;
    let value: T | undefined;
    if (result.ok) {
      try {
        ({ text: output, value } = roundTrip(result.value, `the output of step '${name}' in workflow '${this.workflowId}'`, this.core.maxPayloadBytes));
      } catch (err) {
        error = serializeError(err);
      }
    } else {
      error = serializeError(result.error);
    }
    const step: StepRow = { stepId, name, output, error, childId: null, attempts: result.attempts, startedAt, completedAt: Date.now() };
    let outcome = await this.write(() => (write && error === null ? write(step) : this.core.provider.recordStep(this.workflowId, step, this.core.executorId)));
    if (outcome.kind === 'no-destination') {
      // The failure is this call's outcome: recorded, so a replay fails the same way even if the
      // destination exists by then.
      const failure = serializeError(new WorkflowNotFoundError(destinationId ?? ''));
      error = failure;
      outcome = await this.write(() => this.core.provider.recordStep(this.workflowId, { ...step, output: null, error: failure }, this.core.executorId));
    }
    if (outcome.kind === 'not-pending' && outcome.status === 'CANCELLED' && !write && error === null) {
      await this.keepCancelledStep(step);
    }
    if (outcome.kind !== 'recorded') return this.settleMiss<T>(stepId, name, outcome);
    await this.progressed();
    if (error !== null) throw deserializeError(error);
    return value as T;
  }

  /**
   * The workflow was cancelled while this step ran, and the step succeeded: its effect happened,
   * so it is recorded all the same, and a resume returns it rather than running the body twice.
   * (A step that failed, possibly because of the cancellation, is left to run again.)
   */
  private async keepCancelledStep(step: StepRow): Promise<void> {
    try {
      await this.write(() => this.core.provider.recordCancelledStep(this.workflowId, step));
    } catch (err) {
      this.core.logger.warn({ err, workflowId: this.workflowId, stepId: step.stepId }, 'could not record a step that finished after its workflow was cancelled');
    }
  }

  /**
   * The deadline a wait recorded when it first parked in an earlier execution, so a wait resumed
   * after a crash keeps its original deadline instead of starting its timeout again. Stored under
   * the wait's negated step id, outside the counter.
   */
  private recordedDeadline(stepId: number, name: string): number | undefined {
    const row = this.replay?.get(-stepId);
    return row && row.name === `${name}${DEADLINE}` ? deserialize<number>(row.output, `the deadline of step ${stepId} of workflow '${this.workflowId}'`) : undefined;
  }

  /** Records a wait's deadline as it parks (once; a replayed wait already has it). */
  private async holdDeadline(stepId: number, name: string, deadline: number, startedAt: number): Promise<void> {
    if (this.replay?.has(-stepId)) return;
    const step: StepRow = {
      stepId: -stepId, name: `${name}${DEADLINE}`, output: serialize(deadline, 'deadline'), error: null, childId: null, attempts: 1, startedAt, completedAt: Date.now(),
    };
    // A miss (cancelled, or recorded by a racing execution) changes nothing: the wait itself sees it.
    await this.write(() => this.core.provider.recordStep(this.workflowId, step, this.core.executorId));
  }

  /** A checkpoint was not written: adopt the one another execution wrote, or stop. */
  private async settleMiss<T>(stepId: number, name: string, outcome: CheckpointMiss): Promise<T> {
    if (outcome.kind === 'conflict') {
      await this.catchUp();
      return this.adopt<T>(stepId, name, outcome.existing);
    }
    if (outcome.kind === 'superseded') throw this.superseded(outcome.owner);
    throw await this.stopped(outcome.status);
  }

  /** The workflow now belongs to another executor: stop here, steps in flight included. */
  private superseded(owner: string | null): ExecutionSupersededError {
    const err = new ExecutionSupersededError(this.workflowId, 'PENDING', owner);
    this.cancellation.abort(err);
    return err;
  }

  /**
   * Called before a step body runs when this process's lease may have lapsed (it was paused, or
   * could not heartbeat): renews it and makes sure the workflow was not adopted meanwhile, so a
   * step body does not start for a workflow another executor owns. While the lease is fresh, the
   * caller's check of it is the whole cost.
   */
  private async confirmOwnership(): Promise<void> {
    await this.core.renewLease();
    const row = await this.write(() => this.core.provider.getWorkflow(this.workflowId));
    if (row?.status === 'PENDING' && row.executorId !== this.core.executorId) throw this.superseded(row.executorId);
  }

  /**
   * The recovery cap is about crash loops: a recovered execution that records a new checkpoint is
   * making progress, so its count starts again (one statement, once per recovery).
   */
  private async progressed(): Promise<void> {
    if (this.recoveriesWithoutProgress === 0) return;
    this.recoveriesWithoutProgress = 0;
    await this.write(() => this.core.provider.resetRecoveryAttempts(this.workflowId));
  }

  /** Returns (or rethrows) a recorded checkpoint, after checking it belongs to this call. */
  private adopt<T>(stepId: number, name: string, row: StepRow): T {
    if (row.name !== name) throw this.diverge(stepId, row.name, name);
    const what = `the recorded outcome of step ${stepId} ('${name}') of workflow '${this.workflowId}'`;
    if (row.error !== null) throw deserializeError(row.error, what);
    return deserialize<T>(row.output, what);
  }

  /** Another execution is ahead of this one: load its checkpoints so the next calls replay them. */
  private async catchUp(): Promise<void> {
    const rows = await this.core.provider.listSteps(this.workflowId);
    this.replay = new Map(rows.map((r) => [r.stepId, r]));
    this.measure(this.replay);
  }

  /**
   * The checks a call with no checkpoint passes while the history may still hold later ones, before
   * it runs or writes anything. A wait of another name parked here in the recorded execution is a
   * divergence. A call in a hole (later checkpoints exist: calls made together with this one
   * finished first) waits a turn, so a divergence among its siblings stops it before it runs.
   * Past the last completed checkpoint the replay has held: a workflow another version recorded
   * is stamped with this one. The first part runs synchronously, within the caller's call.
   */
  private async beforeNew(stepId: number, name: string): Promise<void> {
    const parked = this.replay?.get(-stepId);
    if (parked && parked.name !== `${name}${DEADLINE}`) throw this.diverge(stepId, parked.name.slice(0, -DEADLINE.length), name);
    if (this.probe) {
      // Nothing runs in a probe: a call inside the history never returns (its siblings go on being
      // checked); the first call past it ends the replay.
      if (stepId < this.lastRecorded) return new Promise<void>(() => undefined);
      this.probe.reachedEnd();
      throw new ReplayStopped(`the replay of workflow '${this.workflowId}' reached step ${stepId}, which it has no checkpoint for`);
    }
    if (stepId < this.lastRecorded && !parked) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.diverged) throw this.diverged;
      return;
    }
    if (stepId > this.lastRecorded && this.claimVersion !== undefined) {
      const version = this.claimVersion;
      this.claimVersion = undefined;
      await this.write(() => this.core.provider.setAppVersion(this.workflowId, version, this.core.executorId));
    }
    if (stepId >= this.replayEnd) this.checking = false;
  }

  /**
   * A call did not match the history. The first divergence is kept, with the call site of the
   * workflow code that made the call; the signal aborts so step bodies in flight can stop, and no
   * later call runs or writes anything.
   */
  private diverge(stepId: number, recordedName: string, calledName: string): NonDeterminismError {
    if (!this.diverged) {
      this.diverged = new NonDeterminismError(this.workflowId, stepId, recordedName, calledName, calledName === RETURNED ? undefined : userCallSite());
      this.cancellation.abort(this.diverged);
    }
    return this.diverged;
  }

  /**
   * Once the function has ended: the divergence met, or one if it ended before reaching checkpoints
   * its history holds (code that dropped steps the recorded execution had made).
   */
  divergence(): NonDeterminismError | undefined {
    if (this.diverged || this.counter >= this.lastRecorded) return this.diverged;
    let next = this.counter + 1;
    while (!this.replay?.has(next)) next++;
    return this.diverge(next, this.replay.get(next)!.name, RETURNED);
  }

  /** Why the workflow is no longer PENDING, as the error its function sees. */
  private async stopped(status: string | undefined): Promise<unknown> {
    if (status === undefined) return new WorkflowNotFoundError(this.workflowId);
    if (status === 'CANCELLED') {
      const row = await this.core.provider.getWorkflow(this.workflowId);
      const reason = row?.error ? deserializeError(row.error, `the cancellation reason of workflow '${this.workflowId}'`) : new WorkflowCancelledError(this.workflowId);
      this.cancellation.abort(reason);
      return reason;
    }
    return new ExecutionSupersededError(this.workflowId, status);
  }
}

/** A step outcome computed on first execution only (a replay returns the recorded one instead). */
function computed<T>(make: () => T): () => Promise<StepResult<T>> {
  return async () => ({ ok: true, value: make(), attempts: 1 });
}

function topicOf(topic: unknown): string {
  return topic === undefined ? '' : assertName('topic', topic);
}

/** The lane each thunk of a ctx.all runs in, found by the calls it makes. */
const lanes = new AsyncLocalStorage<Lane>();

/**
 * The step ids of one thunk of `ctx.all`. The `width` thunks of a ctx.all share the ids its caller
 * (the workflow function, or an enclosing thunk) would take from position `base` on: thunk
 * `index` takes every `width`-th, so its n-th call has the same id whatever the other thunks do,
 * and a replay finds each checkpoint where the first execution put it. Unused ids stay holes.
 */
class Lane {
  /** Calls made in this lane. */
  made = 0;
  /** Set while a ctx.all started in this lane runs: until it settles, this lane makes no call of its own. */
  forked = false;
  /** Set once its ctx.all has settled: the ids after its last call belong to its caller again. */
  closed = false;

  constructor(
    readonly owner: WorkflowContext,
    private readonly parent: Lane | undefined,
    private readonly base: number,
    private readonly width: number,
    private readonly index: number,
  ) {}

  /** The step id of this lane's call number `n` (from 0). */
  idOf(n: number): number {
    const position = this.base + n * this.width + this.index;
    return this.parent ? this.parent.idOf(position) : position + 1;
  }
}
