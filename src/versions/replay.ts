import type { EngineCore } from '../engine/core.js';
import { ReplayStopped, WorkflowContext } from '../engine/context.js';
import type { Engine } from '../engine/engine.js';
import { CairnError, InvalidArgumentError, type NonDeterminismError, UnknownWorkflowError } from '../engine/errors.js';
import { ExecutionSignal } from '../engine/execution.js';
import { registrationOf, type Registration } from '../engine/registry.js';
import { deserialize, MAX_PAYLOAD_BYTES } from '../engine/serialization.js';
import { runOutsideStep } from '../engine/step-scope.js';
import type { StepRow } from '../providers/provider.js';
import type { ReplayCheck, Workflow, WorkflowHistory, WorkflowStatus } from '../types.js';

/** Macrotask turns without a new Context call after which a replay is taken to be waiting on a call in flight. */
const STALL_TURNS = 5;

/**
 * Replays exported histories against the current workflow code, with no database and no step
 * body run: every Context call is matched against the history, and the replay stops at the first
 * call the history has no checkpoint for. A history replays `ok` when every recorded checkpoint met
 * a call of the same name at the same position; otherwise its `divergence` names the step id, the
 * recorded and the called names, and the call site in the workflow's code.
 *
 * `target` is a workflow (every history must be of it) or an engine (each history is replayed
 * against the workflow of its name registered there).
 *
 * @example
 * import { checkReplay } from 'cairn/testing';
 * const results = await checkReplay(engine, histories);
 * assert.deepEqual(results.filter((r) => !r.ok), []);
 */
export async function checkReplay(target: Workflow<never, unknown> | Engine, histories: WorkflowHistory | readonly WorkflowHistory[]): Promise<ReplayCheck[]> {
  const lookup = resolver(target);
  const list = Array.isArray(histories) ? (histories as readonly WorkflowHistory[]) : [histories as WorkflowHistory];
  list.forEach((h, i) => assertHistory(h, i));
  const results: ReplayCheck[] = [];
  for (const history of list) {
    const reg = lookup(history.name);
    if (!reg) throw new UnknownWorkflowError(history.name, history.workflowId);
    results.push(await replayOne(reg, history));
  }
  return results;
}

function resolver(target: unknown): (name: string) => Registration | undefined {
  const reg = registrationOf(target);
  if (reg) {
    return (name) => {
      if (name !== reg.name) {
        throw new InvalidArgumentError('histories', `a history of workflow '${name}' was given to checkReplay with workflow '${reg.name}'; pass the engine to replay histories of several workflows`);
      }
      return reg;
    };
  }
  const engine = target as Partial<Engine> | null;
  if (typeof engine?.registered === 'function') return (name) => engine.registered!(name);
  throw new InvalidArgumentError('target', 'checkReplay needs a workflow returned by engine.workflow(name, fn), or the engine its workflows are registered in');
}

const STATUSES: ReadonlySet<WorkflowStatus> = new Set(['PENDING', 'ENQUEUED', 'DELAYED', 'SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED']);

/** Checks a history has the shape exportHistory gives, so a wrong file fails with a clear message. */
function assertHistory(h: unknown, index: number): asserts h is WorkflowHistory {
  const where = `history ${index} given to checkReplay`;
  const bad = (what: string): never => {
    throw new InvalidArgumentError('histories', `${where} ${what}; pass what engine.exportHistory(id) returned (parsed from JSON)`);
  };
  if (typeof h !== 'object' || h === null) return bad('is not an object');
  const x = h as Record<string, unknown>;
  if (x.format !== 'cairn.history') bad(`has format ${JSON.stringify(x.format)}, not 'cairn.history'`);
  if (x.formatVersion !== 1) bad(`has formatVersion ${JSON.stringify(x.formatVersion)}; this version of Cairn reads formatVersion 1`);
  if (typeof x.workflowId !== 'string' || typeof x.name !== 'string') bad('has no workflowId or name');
  if (typeof x.status !== 'string' || !STATUSES.has(x.status as WorkflowStatus)) bad(`has status ${JSON.stringify(x.status)}`);
  if (x.input !== null && typeof x.input !== 'string') bad('has an input that is not stored text');
  if (!Array.isArray(x.steps)) return bad('has no steps array');
  for (const st of x.steps as unknown[]) {
    const step = st as Record<string, unknown> | null;
    const ok =
      typeof step === 'object' && step !== null && Number.isInteger(step.stepId) && step.stepId !== 0 && typeof step.name === 'string' &&
      (step.output === null || typeof step.output === 'string') && (step.error === null || typeof step.error === 'string');
    if (!ok) bad(`has a malformed step: ${JSON.stringify(st)}`);
  }
}

async function replayOne(reg: Registration, history: WorkflowHistory): Promise<ReplayCheck> {
  const id = history.workflowId;
  const rows = new Map<number, StepRow>(
    history.steps.map((s) => [s.stepId, { stepId: s.stepId, name: s.name, output: s.output, error: s.error, childId: s.childId ?? null, attempts: 1, startedAt: 0, completedAt: 0 }]),
  );
  let reachedEnd = false;
  const ctx = new WorkflowContext(offline(id), id, rows, new ExecutionSignal(), 0, { probe: { reachedEnd: () => void (reachedEnd = true) } });
  let settled: { ok: true } | { ok: false; error: unknown } | undefined;
  runOutsideStep(() => {
    void (async () => {
      await Promise.resolve();
      return reg.fn(ctx, deserialize(history.input, `the input of workflow '${id}'`));
    })().then(
      () => void (settled = { ok: true }),
      (error: unknown) => void (settled = { ok: false, error }),
    );
  });
  // Replayed calls settle in microtasks; a replay still unsettled after a few turns with no new
  // call waits on a call the history has in flight (the first missing checkpoint).
  for (let idle = 0, calls = ctx.calls; idle < STALL_TURNS && !settled && !reachedEnd && !ctx.diverged; ) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (ctx.calls === calls) idle++;
    else (idle = 0), (calls = ctx.calls);
  }
  ctx.finish();
  let divergence = ctx.diverged;
  if (!divergence && !reachedEnd && settled) {
    const failedOwn = !settled.ok && (settled.error instanceof ReplayStopped || settled.error instanceof CairnError);
    if (!failedOwn) divergence = ctx.divergence();
  }
  if (!divergence) return { id, ok: true };
  return { id, ok: false, divergence: describe(divergence) };
}

function describe(err: NonDeterminismError): NonNullable<ReplayCheck['divergence']> {
  return { stepId: err.stepId, recordedName: err.recordedName, calledName: err.calledName, callSite: err.callSite, message: err.message };
}

/** The engine a replay sees: none. Anything that would reach a database or start work fails loudly. */
function offline(workflowId: string): EngineCore {
  const refuse = (what: string) => () => {
    throw new Error(`checkReplay of workflow '${workflowId}' tried to ${what}; a replay runs nothing (this is a bug in Cairn)`);
  };
  const nothing = new Proxy({}, { get: (_t, key) => refuse(`use the database (${String(key)})`) });
  return {
    provider: nothing as EngineCore['provider'],
    executorId: 'cairn.checkReplay',
    maxPayloadBytes: MAX_PAYLOAD_BYTES,
    leaseLapsed: () => false,
    renewLease: async () => undefined,
    logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined } as unknown as EngineCore['logger'],
    waits: nothing as EngineCore['waits'],
    observer: undefined,
    closed: false,
    closing: false,
    startChild: refuse('start a child workflow'),
    handle: (childId: string) => ({ workflowId: childId }) as unknown as ReturnType<EngineCore['handle']>,
    diverged: async () => undefined,
    awaitResult: refuse('wait for a workflow'),
    waitForEvent: refuse('wait for an event'),
  } as EngineCore;
}
