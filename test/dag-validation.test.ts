import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CairnError, DagValidationError, Engine, type DagProblem } from '../src/index.js';
import { cairnError } from './helpers/assertions.js';

/** What build() checks and what task() refuses; an in-memory engine, nothing runs. */

let engine: Engine;
before(async () => {
  engine = await Engine.open({ database: 'sqlite::memory:', appVersion: 'validation' });
});
after(() => engine.close());

let names = 0;
const fresh = () => engine.dag(`p${++names}`);
const task = () => 'x';

/** The problems build() reports, as [kind, keys] pairs. */
function problemsOf(build: () => unknown): Array<[string, string[]]> {
  let thrown: unknown;
  try {
    build();
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown instanceof DagValidationError, `build() did not throw DagValidationError: ${String(thrown)}`);
  assert.ok(thrown instanceof CairnError);
  assert.equal(thrown.code, 'DAG_INVALID');
  for (const p of thrown.problems) assert.ok(thrown.message.includes(p.message), `the message lists: ${p.message}`);
  return thrown.problems.map((p: DagProblem) => [p.kind, p.keys]);
}

describe('pipeline validation at build()', () => {
  test('a 3-cycle is reported with its keys in order, from its first declared task', () => {
    const dag = fresh()
      .task('root', task)
      .task('c', task, { dependsOn: ['b', 'root'] })
      .task('a', task, { dependsOn: ['c'] })
      .task('b', task, { dependsOn: ['a'] });
    assert.deepEqual(problemsOf(() => dag.build()), [['cycle', ['c', 'a', 'b']]]);
  });

  test('a task depending on itself is a cycle of one; two separate cycles are both reported', () => {
    const dag = fresh()
      .task('self', task, { dependsOn: ['self'] })
      .task('x', task, { dependsOn: ['y'] })
      .task('y', task, { dependsOn: ['x'] });
    assert.deepEqual(problemsOf(() => dag.build()), [['cycle', ['self']], ['cycle', ['x', 'y']]]);
  });

  test('a missing dependency names the task and the key it named', () => {
    const dag = fresh().task('extract', task).task('load', task, { dependsOn: ['extract', 'transfrom'] });
    assert.deepEqual(problemsOf(() => dag.build()), [['missing-dependency', ['load', 'transfrom']]]);
  });

  test('duplicate keys are reported once per key, blank keys once per task', () => {
    const dag = fresh().task('a', task).task('a', task).task('a', task).task('', task).task('   ', task).task('b', task);
    assert.deepEqual(problemsOf(() => dag.build()), [['blank-key', ['']], ['blank-key', ['   ']], ['duplicate-key', ['a']]]);
  });

  test('a timeout of 0, a negative one, or one that is not a number is invalid', () => {
    const dag = fresh()
      .task('zero', task, { timeoutMs: 0 })
      .task('negative', task, { timeoutMs: -5 })
      .task('nan', task, { timeoutMs: Number.NaN })
      .task('text', task, { timeoutMs: '100' as unknown as number })
      .task('fine', task, { timeoutMs: 1 });
    assert.deepEqual(problemsOf(() => dag.build()), [
      ['invalid-timeout', ['zero']],
      ['invalid-timeout', ['negative']],
      ['invalid-timeout', ['nan']],
      ['invalid-timeout', ['text']],
    ]);
  });

  test('an unknown trigger rule, or a trigger that is neither a rule nor a function, is invalid', () => {
    const dag = fresh()
      .task('a', task)
      .task('typo', task, { dependsOn: ['a'], trigger: 'all_sucess' as 'all_success' })
      .task('number', task, { dependsOn: ['a'], trigger: 42 as unknown as 'all_done' })
      .task('fine', task, { dependsOn: ['a'], trigger: (o) => o.a === 'success' });
    assert.deepEqual(problemsOf(() => dag.build()), [['invalid-trigger', ['typo']], ['invalid-trigger', ['number']]]);
  });

  test('several problems at once are all reported, and nothing is registered', () => {
    const dag = fresh()
      .task('a', task, { dependsOn: ['c'] })
      .task('b', task, { dependsOn: ['a', 'ghost'], timeoutMs: 0 })
      .task('c', task, { dependsOn: ['b'], trigger: 'sometimes' as 'all_done' })
      .task('c', task)
      .task('', task);
    const name = `p${names}`;
    assert.deepEqual(problemsOf(() => dag.build()), [
      ['blank-key', ['']],
      ['duplicate-key', ['c']],
      ['missing-dependency', ['b', 'ghost']],
      ['invalid-timeout', ['b']],
      ['invalid-trigger', ['c']],
      ['cycle', ['a', 'b', 'c']],
    ]);
    assert.throws(() => dag.build(), cairnError('DAG_INVALID', /^pipeline 'p\d+' is invalid \(6 problems\): task #5 has a blank key \(""\); .*; cycle: "a" → "b" → "c" → "a"/));
    assert.doesNotThrow(() => engine.workflow(name, async () => 1), 'a pipeline that failed to build registered no workflow');
  });

  test('the content version follows keys, dependencies, triggers and external tasks, not retries or timeouts', async () => {
    const other = await Engine.open({ database: 'sqlite::memory:', appVersion: 'other' });
    try {
      const shape = (e: Engine, name: string, options: { trigger?: 'all_done'; retry?: { maxAttempts: number }; timeoutMs?: number; external?: boolean } = {}) =>
        e.dag(name).task('a', task).task('b', task, { dependsOn: ['a'], ...options }).build().version;
      const base = shape(engine, 'v-base');
      assert.equal(shape(other, 'v-same'), base, 'the same shape has the same version in another engine');
      assert.equal(shape(other, 'v-retry', { retry: { maxAttempts: 3 }, timeoutMs: 500 }), base);
      assert.notEqual(shape(other, 'v-trigger', { trigger: 'all_done' }), base);
      assert.notEqual(shape(other, 'v-external', { external: true }), base);
      assert.notEqual(other.dag('v-order').task('b', task, { dependsOn: ['a'] }).task('a', task).build().version, base);
    } finally {
      await other.close();
    }
  });
});

describe('pipeline bad input', () => {
  const refused = (fn: () => unknown, message: RegExp, argument: string) => assert.throws(fn, cairnError('INVALID_ARGUMENT', message, { argument }));

  test('task() refuses a task that is not a function, a key that is not a string, bad options', () => {
    refused(() => fresh().task('a', 'run' as unknown as () => 1), /the function of task 'a' of pipeline 'p\d+' must be a function, got "run"/, 'fn');
    refused(() => fresh().task(7 as unknown as string, task), /a task key must be a string, got 7/, 'key');
    refused(() => fresh().task('x'.repeat(201), task), /task key must be at most 200 characters/, 'task key');
    refused(() => fresh().task('a', task, { dependsOn: 'b' as unknown as string[] }), /dependsOn of task 'a' .* must be an array of task keys, got "b"/, 'dependsOn');
    refused(() => fresh().task('a', task, { dependsOn: [3 as unknown as string] }), /dependsOn\[0\] of task 'a' .* must be a task key, got 3/, 'dependsOn');
    refused(() => fresh().task('a', task, { dependOn: ['b'] } as never), /have no option 'dependOn'; the options are dependsOn, trigger, retry, timeoutMs, external/, 'dependOn');
    refused(() => fresh().task('a', task, { external: 'yes' as unknown as true }), /external of task 'a' .* must be true or false, got "yes"/, 'external');
    refused(() => fresh().task('a', task, { retry: { maxAttempts: 0 } }), /retry.maxAttempts must be an integer >= 1, got 0/, 'retry.maxAttempts');
    refused(() => fresh().task('a', task, [] as never), /the options of task 'a' .* must be an object, got an array/, 'options');
  });

  test('dag() and build() refuse bad names, options, an empty pipeline, and building twice', () => {
    refused(() => engine.dag(''), /pipeline name must be a non-empty string/, 'pipeline name');
    refused(() => engine.dag('p-opts', { maxParallel: 0 }), /maxParallel must be an integer >= 1, got 0/, 'maxParallel');
    refused(() => engine.dag('p-opts', { parallel: 2 } as never), /options of pipeline 'p-opts' have no option 'parallel'; the options are maxParallel/, 'parallel');
    refused(() => fresh().build(), /has no tasks; add them with .task/, 'tasks');
    const dag = fresh().task('a', task);
    dag.build();
    refused(() => dag.build(), /was already built/, 'build');
    refused(() => dag.task('b', task), /was already built; declare every task before build\(\)/, 'key');
    refused(() => engine.dag(`p${names}`).task('a', task).build(), /a workflow named 'p\d+' is already registered/, 'name');
  });
});
