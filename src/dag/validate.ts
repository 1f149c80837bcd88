import { MAX_DURATION_MS } from '../engine/validate.js';
import type { DagProblem } from '../types.js';
import { isTriggerRule, TRIGGER_RULES } from './triggers.js';

/** A task as declared, before `build()` checks the pipeline. */
export interface DraftTask {
  key: string;
  dependsOn: string[];
  trigger: unknown;
  timeoutMs: unknown;
}

const quote = (key: string): string => JSON.stringify(key);

/**
 * Every problem of a pipeline, in one pass: blank and duplicate keys, dependencies on keys no task
 * has, timeouts that are not a positive number of milliseconds, unknown triggers, and one cycle per
 * group of tasks that depend on each other in a circle.
 */
export function findProblems(tasks: readonly DraftTask[]): DagProblem[] {
  const problems: DagProblem[] = [];
  const positions = new Map<string, number[]>();
  tasks.forEach((task, i) => {
    if (task.key.trim() === '') {
      problems.push({ kind: 'blank-key', keys: [task.key], message: `task #${i + 1} has a blank key (${quote(task.key)}); give every task a key` });
      return;
    }
    positions.set(task.key, [...(positions.get(task.key) ?? []), i + 1]);
  });
  for (const [key, at] of positions) {
    if (at.length > 1) {
      problems.push({ kind: 'duplicate-key', keys: [key], message: `key ${quote(key)} is used by ${at.length} tasks (#${at.join(', #')}); keys must be unique` });
    }
  }
  for (const task of tasks) {
    for (const dep of task.dependsOn) {
      if (!positions.has(dep)) {
        problems.push({
          kind: 'missing-dependency',
          keys: [task.key, dep],
          message: `task ${quote(task.key)} depends on ${quote(dep)}, which is not a task of this pipeline`,
        });
      }
    }
    const t = task.timeoutMs;
    if (t !== undefined && !(typeof t === 'number' && Number.isFinite(t) && t > 0 && t <= MAX_DURATION_MS)) {
      problems.push({
        kind: 'invalid-timeout',
        keys: [task.key],
        message: `task ${quote(task.key)} has timeoutMs ${typeof t === 'number' ? String(t) : quote(String(t))}; it must be a number of milliseconds above 0 (at most ${MAX_DURATION_MS})`,
      });
    }
    if (task.trigger !== undefined && !isTriggerRule(task.trigger)) {
      problems.push({
        kind: 'invalid-trigger',
        keys: [task.key],
        message: `task ${quote(task.key)} has trigger ${typeof task.trigger === 'string' ? quote(task.trigger) : `of type ${typeof task.trigger}`}, which is not a rule; use one of ${TRIGGER_RULES.map(quote).join(', ')} or a function of the dependencies' outcomes`,
      });
    }
  }
  for (const cycle of findCycles(tasks)) {
    problems.push({ kind: 'cycle', keys: cycle, message: `cycle: ${[...cycle, cycle[0]!].map(quote).join(' → ')} (each runs after the one before it)` });
  }
  return problems;
}

/**
 * One cycle per strongly connected group of tasks (Tarjan's algorithm, over the first task of each
 * key, edges from a dependency to the task that depends on it). Each cycle starts at the group's
 * first declared task and follows the shortest way back to it, so the report is the same on every
 * build.
 */
function findCycles(tasks: readonly DraftTask[]): string[][] {
  const index = new Map<string, number>();
  tasks.forEach((t, i) => {
    if (!index.has(t.key)) index.set(t.key, i);
  });
  const dependents: number[][] = tasks.map(() => []);
  index.forEach((i) => {
    for (const dep of new Set(tasks[i]!.dependsOn)) {
      const from = index.get(dep);
      if (from !== undefined) dependents[from]!.push(i);
    }
  });
  const order = new Map<number, number>();
  const low = new Map<number, number>();
  const stack: number[] = [];
  const onStack = new Set<number>();
  const groups: number[][] = [];
  const visit = (v: number): void => {
    order.set(v, order.size);
    low.set(v, order.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of dependents[v]!) {
      if (!order.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, order.get(w)!));
      }
    }
    if (low.get(v) === order.get(v)) {
      const group: number[] = [];
      let w: number;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        group.push(w);
      } while (w !== v);
      if (group.length > 1 || dependents[v]!.includes(v)) groups.push(group);
    }
  };
  index.forEach((i) => {
    if (!order.has(i)) visit(i);
  });
  return groups
    .map((group) => shortestLoop(Math.min(...group), new Set(group), dependents))
    .sort((a, b) => a[0]! - b[0]!)
    .map((loop) => loop.map((i) => tasks[i]!.key));
}

/** The shortest path from `start` back to itself inside `group` (breadth first, in declaration order). */
function shortestLoop(start: number, group: ReadonlySet<number>, dependents: readonly number[][]): number[] {
  const cameFrom = new Map<number, number>();
  const queue = [start];
  for (let head = 0; head < queue.length; head++) {
    const v = queue[head]!;
    for (const w of [...dependents[v]!].sort((a, b) => a - b)) {
      if (!group.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (path[0] !== start) path.unshift(cameFrom.get(path[0]!)!);
        return path;
      }
      if (!cameFrom.has(w)) {
        cameFrom.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start];
}
