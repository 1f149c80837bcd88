import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WorkflowNotFoundError, type StepInfo, type WorkflowHandle, type WorkflowStatus } from '../src/index.js';
import {
  APP_VERSION,
  CONFIG_ENV,
  EXECUTOR_ID,
  STEP_COUNT,
  WORKFLOW_NAME,
  expectedOutput,
  expectedValues,
  openEffects,
  registerChain,
  stepName,
  type ChildConfig,
  type Effects,
  type KillSpec,
  type StartMode,
} from './fixtures/crash-child.js';
import { connectionsGone } from './helpers/assertions.js';
import type { Store, Target } from './helpers/targets.js';

/**
 * Crash recovery with real processes. A child process runs chain workflows (five steps, each
 * output derived from the previous one, each step body logging one committed row per execution
 * in an `effects` table) and is killed by SIGKILL at a named point. The test then reads the
 * checkpoints, recovers in a fresh engine (same executor id and app version), and checks that
 * every workflow ends with the right output, that no checkpointed step ran again, and that each
 * unfinished step ran exactly once more.
 */

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHILD = 'test/fixtures/crash-child.ts';
const CHILD_TIMEOUT_MS = 20_000;

interface Scenario {
  name: string;
  /** Number of workflows the child starts (ids wf-1 … wf-N). */
  count: number;
  starts: StartMode;
  /** One child per kill; after the last one the test process recovers. */
  kills: KillSpec[];
}

const self = (point: string, workflowId?: string): KillSpec => ({ point, by: 'self', ...(workflowId !== undefined && { workflowId }) });
const byParent = (point: string, workflowId?: string, stall = true): KillSpec => ({
  point,
  by: 'parent',
  stall,
  ...(workflowId !== undefined && { workflowId }),
});

function describeKill(k: KillSpec): string {
  const who = k.by === 'self' ? 'by itself' : k.stall === false ? 'by the parent, work still running' : 'by the parent, parked there';
  return `${k.point}${k.workflowId === undefined ? '' : ` of ${k.workflowId}`}, killed ${who}`;
}

const single = (kill: KillSpec): Scenario => ({ name: `one workflow: ${describeKill(kill)}`, count: 1, starts: 'sequential', kills: [kill] });

const SCENARIOS: Scenario[] = [
  // During start, and before the first step.
  single(self('after-start', 'wf-1')),
  single(self('before-step:1', 'wf-1')),
  // Inside a step, before its effect.
  ...[1, 2, 3, 4, 5].map((k) => single(self(`before-effect:${k}`, 'wf-1'))),
  // Inside a step, after its effect committed, before the step returns (so before its checkpoint).
  ...[1, 2, 4, 5].map((k) => single(self(`after-effect:${k}`, 'wf-1'))),
  single(byParent('after-effect:3', 'wf-1')),
  // Between steps, after step k's checkpoint; after-step:5 is after the last step, before completion.
  ...[1, 3, 4].map((k) => single(self(`after-step:${k}`, 'wf-1'))),
  single(byParent('after-step:2', 'wf-1')),
  single(self('after-step:5', 'wf-1')),
  // Many workflows, starts in flight.
  { name: '12 parallel starts: killed when the first start resolves', count: 12, starts: 'parallel', kills: [self('starts-resolved:1')] },
  { name: '16 staggered starts: killed when the 6th start resolves', count: 16, starts: 'staggered', kills: [self('starts-resolved:6')] },
  {
    name: '16 staggered starts: killed by the parent after the 8th start resolves, work still running',
    count: 16,
    starts: 'staggered',
    kills: [byParent('starts-resolved:8', undefined, false)],
  },
  { name: '8 parallel workflows: wf-4 parked after-effect:3, killed by the parent', count: 8, starts: 'parallel', kills: [byParent('after-effect:3', 'wf-4')] },
  { name: '8 staggered workflows: killed at after-step:2 of wf-2', count: 8, starts: 'staggered', kills: [self('after-step:2', 'wf-2')] },
  { name: '10 parallel workflows: killed at before-effect:4 of wf-7', count: 10, starts: 'parallel', kills: [self('before-effect:4', 'wf-7')] },
  // Crashes during recovery.
  {
    name: '3 workflows: killed at after-effect:2 of wf-1, then right after recover() resolves',
    count: 3,
    starts: 'parallel',
    kills: [self('after-effect:2', 'wf-1'), self('recovered')],
  },
  { name: 'one workflow: killed at after-effect:2, then at after-effect:4 while recovering', count: 1, starts: 'sequential', kills: [self('after-effect:2', 'wf-1'), self('after-effect:4', 'wf-1')] },
  { name: 'one workflow: killed at after-step:1, then at before-effect:3 while recovering', count: 1, starts: 'sequential', kills: [self('after-step:1', 'wf-1'), self('before-effect:3', 'wf-1')] },
  { name: 'one workflow: killed at after-step:3, then at after-step:2 while replaying', count: 1, starts: 'sequential', kills: [self('after-step:3', 'wf-1'), self('after-step:2', 'wf-1')] },
  {
    name: 'one workflow: killed at after-effect:5, then parked at after-step:5 while recovering and killed by the parent',
    count: 1,
    starts: 'sequential',
    kills: [self('after-effect:5', 'wf-1'), byParent('after-step:5', 'wf-1')],
  },
];

/** What the parent sees of one workflow between runs. */
interface WorkflowView {
  status: WorkflowStatus | 'ABSENT';
  output: unknown;
  steps: StepInfo[];
  /** For step k (index k-1), the pid of each execution of its body, in commit order. */
  effects: number[][];
}
type View = Map<string, WorkflowView>;

interface Planned {
  id: string;
  seed: number;
}

/** Exact progress of one workflow: checkpointed prefix length and effect count per step. */
interface Progress {
  checkpoints: number;
  effects: number[];
}

/**
 * Where one execution of the chain, resumed from `from`, stops when killed at a workflow point
 * (the model of registerChain: replayed steps skip their body, every step passes after-step:k).
 */
function simulate(from: Progress, point: string): Progress {
  const effects = [...from.effects];
  let checkpoints = from.checkpoints;
  const [kind, n] = point.split(':') as [string, string | undefined];
  const k = Number(n);
  if (kind === 'before-step' || kind === 'after-start' || kind === 'recovered') return { checkpoints, effects };
  for (let j = 1; j <= STEP_COUNT; j++) {
    if (j > checkpoints) {
      if (kind === 'before-effect' && k === j) return { checkpoints, effects };
      effects[j - 1]!++;
      if (kind === 'after-effect' && k === j) return { checkpoints, effects };
      checkpoints = j;
    }
    if (kind === 'after-step' && k === j) return { checkpoints, effects };
  }
  throw new Error(`the chain never passes ${point} from ${JSON.stringify(from)}`);
}

const progressOf = (v: WorkflowView): Progress => ({ checkpoints: v.steps.length, effects: v.effects.map((e) => e.length) });

/**
 * The kill point seen from one workflow, when its progress at the kill is known exactly: the
 * workflow that triggered the kill (killed synchronously there, or parked there), every workflow
 * when the kill is right after recover() (nothing has run yet), the workflow whose start just resolved.
 */
function exactPointFor(kill: KillSpec, id: string, before: WorkflowView): string | undefined {
  // A workflow with every checkpoint may finish by replay alone (no step body runs), so only the others are exact.
  if (kill.point === 'recovered') return before.steps.length < STEP_COUNT ? kill.point : undefined;
  if (kill.workflowId !== id) return undefined;
  if (kill.by === 'parent' && kill.stall === false) return undefined;
  if (kill.point === 'after-start') return before.status === 'ABSENT' ? kill.point : undefined;
  return kill.point;
}

/** e.g. `wf-1 P3:11110` — status initial, checkpoints, effect count per step. */
function summarize(plan: Planned[], view: View): string {
  return plan
    .map((w) => {
      const v = view.get(w.id)!;
      return `${w.id} ${v.status[0]}${v.steps.length}:${v.effects.map((e) => e.length).join('')}`;
    })
    .join(' ');
}

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export function defineCrashSuite(target: Target): void {
  describe(`crash recovery on ${target.kind}`, { skip: target.skip }, () => {
    const live = new Set<ChildProcess>();
    let children = 0;

    after(async () => {
      for (const child of live) child.kill('SIGKILL');
      await target.dispose();
    });

    function runChild(cfg: ChildConfig): Promise<ChildResult> {
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
          cwd: ROOT,
          env: { ...process.env, [CONFIG_ENV]: JSON.stringify(cfg) },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        live.add(child);
        let stdout = '';
        let stderr = '';
        let timedOut = false;
        let killed = false;
        const timer = setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, CHILD_TIMEOUT_MS);
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          stdout += chunk;
          if (cfg.kill.by === 'parent' && !killed && /^REACHED /m.test(stdout)) {
            killed = true;
            child.kill('SIGKILL');
          }
        });
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
          stderr += chunk;
        });
        child.on('error', (err) => {
          clearTimeout(timer);
          live.delete(child);
          reject(err);
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          live.delete(child);
          resolve({ code, signal, stdout, stderr, timedOut });
        });
      });
    }


    /** Reads every planned workflow through a freshly opened engine, and the effects log. */
    async function observe(store: Store, effects: Effects, plan: Planned[]): Promise<View> {
      const engine = await target.open(store, { executorId: EXECUTOR_ID, appVersion: APP_VERSION });
      const view: View = new Map();
      try {
        const rows = await effects.all();
        const known = new Set(plan.map((w) => w.id));
        for (const r of rows) {
          assert.ok(known.has(r.workflowId), `effect of unknown workflow ${r.workflowId}`);
          assert.match(r.step, /^s[1-5]$/, `effect of unknown step ${r.step}`);
        }
        for (const wf of await engine.listWorkflows()) {
          assert.ok(known.has(wf.id), `unexpected workflow ${wf.id}`);
          assert.equal(wf.name, WORKFLOW_NAME);
        }
        for (const w of plan) {
          const mine = rows.filter((r) => r.workflowId === w.id);
          const effectsByStep = Array.from({ length: STEP_COUNT }, (_, i) => mine.filter((r) => r.step === stepName(i + 1)).map((r) => r.pid));
          try {
            const info = await engine.getWorkflow(w.id);
            assert.equal(info.executorId, EXECUTOR_ID);
            assert.equal(info.appVersion, APP_VERSION);
            view.set(w.id, { status: info.status, output: info.output, steps: await engine.listSteps(w.id), effects: effectsByStep });
          } catch (err) {
            if (!(err instanceof WorkflowNotFoundError)) throw err;
            view.set(w.id, { status: 'ABSENT', output: undefined, steps: [], effects: effectsByStep });
          }
        }
      } finally {
        await engine.close();
      }
      return view;
    }

    /** What must hold at every observation, and between consecutive ones. */
    function checkConsistent(plan: Planned[], now: View, before: View | undefined, label: string): void {
      for (const w of plan) {
        const v = now.get(w.id)!;
        const at = `${label}, ${w.id}`;
        const c = v.steps.length;
        const values = expectedValues(w.seed);
        // Checkpoints are a prefix s1..sc holding the chained values.
        assert.deepEqual(
          v.steps.map((s) => [s.stepId, s.name, s.output, s.error]),
          values.slice(0, c).map((value, i) => [i + 1, stepName(i + 1), value, undefined]),
          `${at}: checkpoints`,
        );
        if (v.status === 'ABSENT') {
          assert.equal(c, 0, `${at}: checkpoints of a workflow that does not exist`);
        } else if (v.status === 'SUCCESS') {
          assert.equal(c, STEP_COUNT, `${at}: SUCCESS before its last checkpoint`);
          assert.deepEqual(v.output, expectedOutput(w.id, w.seed), `${at}: output`);
        } else {
          assert.equal(v.status, 'PENDING', `${at}: status`);
        }
        for (let k = 1; k <= STEP_COUNT; k++) {
          const n = v.effects[k - 1]!.length;
          assert.ok(n <= 2, `${at}: step ${stepName(k)} ran ${n} times`);
          if (k <= c) assert.ok(n >= 1, `${at}: step ${stepName(k)} is checkpointed but never ran`);
          // The workflow is sequential: only the step after the checkpointed prefix can have run unrecorded.
          if (k > c + 1) assert.equal(n, 0, `${at}: step ${stepName(k)} ran before step ${stepName(c + 1)} was checkpointed`);
        }
        if (before) {
          const b = before.get(w.id)!;
          assert.ok(c >= b.steps.length, `${at}: checkpoints lost`);
          if (b.status === 'SUCCESS') assert.equal(v.status, 'SUCCESS', `${at}: a finished workflow changed status`);
          for (let k = 1; k <= b.steps.length; k++) {
            assert.deepEqual(v.effects[k - 1], b.effects[k - 1], `${at}: checkpointed step ${stepName(k)} ran again`);
          }
        }
      }
    }

    async function runScenario(sc: Scenario, note: (message: string) => void): Promise<void> {
      const store = await target.fresh();
      const effects = await openEffects(store, { create: true });
      const plan: Planned[] = Array.from({ length: sc.count }, (_, i) => ({ id: `wf-${i + 1}`, seed: 101 + 37 * i }));
      const absent: WorkflowView = { status: 'ABSENT', output: undefined, steps: [], effects: Array.from({ length: STEP_COUNT }, () => []) };
      let view: View = new Map(plan.map((w) => [w.id, absent]));
      let first: View | undefined;
      const childPids = new Set<number>();
      try {
        for (const [i, kill] of sc.kills.entries()) {
          const label = `kill ${i + 1} (${describeKill(kill)})`;
          const applicationName = `crash_${process.pid}_${++children}`;
          const res = await runChild({ store, applicationName, workflows: plan, starts: sc.starts, kill });
          const report = `${label}\n--- child stdout\n${res.stdout}--- child stderr\n${res.stderr}`;
          assert.ok(!res.timedOut, `child never reached the kill point: ${report}`);
          assert.equal(res.signal, 'SIGKILL', `child did not die of SIGKILL (exit code ${res.code}): ${report}`);
          assert.doesNotMatch(res.stdout, /^DONE$/m, report);
          if (kill.by === 'parent') assert.match(res.stdout, /^REACHED /m, report);
          await connectionsGone(store, applicationName);

          const now = await observe(store, effects, plan);
          checkConsistent(plan, now, view, label);
          note(`${label}: ${summarize(plan, now)}`);
          for (const w of plan) {
            const v = now.get(w.id)!;
            for (const pids of v.effects) for (const pid of pids) childPids.add(pid);
            const point = exactPointFor(kill, w.id, view.get(w.id)!);
            if (point === undefined) continue;
            const expected = simulate(progressOf(view.get(w.id)!), point);
            assert.deepEqual(progressOf(v), expected, `${label}, ${w.id}: progress at the kill`);
            // Every exact point is before the workflow's completion; right after recover() nothing changed at all.
            assert.equal(v.status, point === 'recovered' ? view.get(w.id)!.status : 'PENDING', `${label}, ${w.id}: status at the kill`);
          }
          view = now;
          first ??= now;
        }
        assert.ok(!childPids.has(process.pid));

        // Recovery in a fresh engine, same executor and app version.
        const engine = await target.open(store, { executorId: EXECUTOR_ID, appVersion: APP_VERSION });
        const chain = registerChain(engine, effects);
        const handles: WorkflowHandle<unknown>[] = await engine.recover();
        const pending = plan.filter((w) => view.get(w.id)!.status === 'PENDING').map((w) => w.id);
        assert.deepEqual(handles.map((h) => h.id).sort(), [...pending].sort(), 'recover() resumes exactly the PENDING workflows');
        // The caller re-submits every start it made (idempotent by id): starts the kill prevented
        // from being stored run now; the others return their handle and run nothing again.
        const started = await Promise.all(plan.map((w) => chain.start({ seed: w.seed }, { id: w.id })));
        const outputs = await Promise.all([...handles, ...started].map((h) => h.result()));
        const byId = [...handles, ...started].map((h, i) => [h.id, outputs[i]] as const);
        for (const [id, output] of byId) {
          const w = plan.find((p) => p.id === id)!;
          assert.deepEqual(output, expectedOutput(w.id, w.seed), `${id}: result()`);
        }
        await engine.close();

        const final = await observe(store, effects, plan);
        checkConsistent(plan, final, view, 'after recovery');
        for (const w of plan) {
          const v = final.get(w.id)!;
          const b = view.get(w.id)!;
          assert.equal(v.status, 'SUCCESS', `${w.id}: status after recovery`);
          for (let k = 1; k <= STEP_COUNT; k++) {
            const runs = v.effects[k - 1]!;
            const prior = b.effects[k - 1]!;
            const where = `${w.id} step ${stepName(k)} (checkpointed at the kill: ${k <= b.steps.length}, effects at the kill: ${prior.length})`;
            assert.ok(runs.length >= 1 && runs.length <= 2, `${where}: ran ${runs.length} times`);
            if (k <= first!.get(w.id)!.steps.length) {
              assert.equal(runs.length, 1, `${where}: a step checkpointed before the first kill must have run exactly once`);
            }
            if (k <= b.steps.length) {
              // Checkpointed before the last kill: replayed, never run again (a step killed mid-way
              // by an earlier kill keeps that one extra run).
              assert.deepEqual(runs, prior, `${where}: replayed, not run`);
            } else {
              // Not checkpointed at the kill: recovery runs it exactly once more, in this process.
              assert.deepEqual(runs, [...prior, process.pid], `${where}: recovery runs it once`);
            }
          }
        }
      } finally {
        await effects.close();
      }
    }

    for (const sc of SCENARIOS) {
      test(sc.name, { timeout: 60_000 }, (t) => runScenario(sc, (m) => t.diagnostic(m)));
    }

    test('covers at least 20 distinct kill points', () => {
      const points = new Set(SCENARIOS.flatMap((s) => s.kills.map((k) => `${k.point}/${k.by}`)));
      assert.ok(points.size >= 20, `${points.size} distinct kill points`);
    });
  });
}
