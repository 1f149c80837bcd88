import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import {
  CairnError,
  Engine,
  SerializationError,
  type Context,
  type EngineOptions,
  type StepRow,
  type WorkflowRow,
} from '../src/index.js';
import { cairnError } from './helpers/assertions.js';
import type { Store, Target } from './helpers/targets.js';

/** Rejects with the abort reason once the signal fires, so closing the engine leaves the workflow PENDING. */
function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_, reject) => {
    if (signal.aborted) reject(signal.reason as Error);
    signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
  });
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}


const invalid = (argument: string, message: RegExp) => cairnError('INVALID_ARGUMENT', message, { argument });

interface Snapshot {
  workflows: WorkflowRow[];
  steps: Record<string, StepRow[]>;
}

/** Every stored workflow and step of a store, read through a bare provider (no migrations run). */
async function snapshot(target: Target, store: Store): Promise<Snapshot> {
  const provider = target.provider(store);
  try {
    const workflows = await provider.listWorkflows({ order: 'asc' });
    const steps: Record<string, StepRow[]> = {};
    for (const w of workflows) steps[w.id] = await provider.listSteps(w.id);
    return { workflows, steps };
  } finally {
    await provider.close();
  }
}

/** Runs SQL against a store directly, outside Cairn. */
async function rawQuery(target: Target, store: Store, sql: { sqlite: string; postgres: string }): Promise<unknown[]> {
  if (target.kind === 'sqlite') {
    const db = new Database(store.database.slice('sqlite:'.length));
    try {
      const stmt = db.prepare(sql.sqlite);
      return stmt.reader ? stmt.all() : (stmt.run(), []);
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: store.database });
  await client.connect();
  try {
    return (await client.query(sql.postgres.replaceAll('$schema', `"${store.schema ?? 'cairn'}"`))).rows;
  } finally {
    await client.end();
  }
}

/** The schemas present in the Postgres database, or [] on SQLite. */
async function schemas(target: Target, store: Store): Promise<string[]> {
  if (target.kind !== 'postgres') return [];
  const rows = (await rawQuery(target, store, { sqlite: '', postgres: 'SELECT nspname FROM pg_namespace ORDER BY nspname' })) as Array<{
    nspname: string;
  }>;
  return rows.map((r) => r.nspname);
}

/**
 * Bad input is rejected with a CairnError that names the problem and has a stable code, and
 * nothing already stored changes. Written once and run on every provider.
 */
export function defineBadInputSuite(target: Target): void {
  describe(`bad input on ${target.kind}`, { skip: target.skip }, () => {
    afterEach(() => target.closeAll());
    after(() => target.dispose());

    /**
     * A migrated store holding one finished workflow with two steps, plus an engine open on it.
     * The explicit appVersion lets a test register more workflows after the seed has run.
     */
    async function seeded(): Promise<{ store: Store; engine: Engine; before: Snapshot }> {
      const store = await target.fresh();
      const engine = await target.open(store, { appVersion: 'v1' });
      const seed = engine.workflow('seed', async (ctx: Context, n: number) => {
        const a = await ctx.step('double', () => n * 2);
        const b = await ctx.step('when', () => new Date(a));
        return { a, b };
      });
      await seed.run(21, { id: 'seed-1' });
      const before = await snapshot(target, store);
      assert.equal(before.workflows.length, 1);
      assert.equal(before.steps['seed-1']?.length, 2);
      return { store, engine, before };
    }

    async function assertUnchanged(store: Store, before: Snapshot): Promise<void> {
      assert.deepEqual(await snapshot(target, store), before);
    }

    describe('database URL', () => {
      const cases: Array<[string, unknown, RegExp]> = [
        ['a malformed Postgres URL', 'postgres://user@host:notaport/db', /database URL .* is malformed/],
        ['a malformed postgresql URL', 'postgresql://user@host:notaport/db', /is malformed/],
        ['an unsupported scheme', 'mysql://x', /scheme 'mysql:' is not supported/],
        ['a URL without a scheme', 'just-a-file.db', /has no scheme/],
        ['an empty string', '', /database must be a URL string or a Provider, got an empty string/],
        ['blank text', '   ', /database must be a URL string or a Provider/],
        ['a number', 42, /database must be a URL string or a Provider, got number/],
        ['null', null, /database must be a URL string or a Provider, got null/],
        ['undefined', undefined, /database must be a URL string or a Provider/],
        ['an object that is not a Provider', { url: 'sqlite::memory:' }, /database must be a URL string or a Provider/],
        ['an SQLite URL with no path', 'sqlite:', /SQLite URL 'sqlite:' names no file/],
        ['an SQLite URL with only slashes', 'sqlite://', /names no file/],
        ['an unknown SQLite option', 'sqlite::memory:?mode=ro', /SQLite URL option 'mode' is not supported/],
        ['an SQLite file in a missing directory', 'sqlite:/nonexistent-cairn-dir/app.db', /cannot open SQLite database '\/nonexistent-cairn-dir\/app\.db'/],
      ];
      for (const [label, database, message] of cases) {
        test(`rejects ${label} and leaves the store alone`, async () => {
          const { store, before } = await seeded();
          const schemasBefore = await schemas(target, store);
          await assert.rejects(Engine.open({ database } as unknown as EngineOptions), invalid('database', message));
          await assertUnchanged(store, before);
          assert.deepEqual(await schemas(target, store), schemasBefore);
        });
      }

      test('does not echo a password from a malformed URL', async () => {
        await assert.rejects(Engine.open({ database: 'postgres://user:s3cret@host:notaport/db' }), (err: unknown) => {
          invalid('database', /malformed/)(err);
          assert.doesNotMatch((err as Error).message, /s3cret/);
          return true;
        });
      });
    });

    describe('schema name', () => {
      const unsafe: Array<[string, string]> = [
        ['an injection attempt', "Robert'); DROP TABLE"],
        ['a leading digit', '1abc'],
        ['upper case', 'UPPER'],
        ['64 characters', 'a'.repeat(64)],
        ['49 characters, one past the limit', 'a'.repeat(49)],
        ['an empty name', ''],
        ['a quote', 'a"b'],
      ];
      for (const [label, schema] of unsafe) {
        test(`rejects ${label} and leaves the store alone`, async () => {
          const { store, before } = await seeded();
          const schemasBefore = await schemas(target, store);
          await assert.rejects(
            Engine.open({ database: store.database, schema }),
            invalid('schema', /is not a safe identifier: use 1 to 48 characters of a-z, 0-9 and _, not starting with a digit/),
          );
          await assertUnchanged(store, before);
          assert.deepEqual(await schemas(target, store), schemasBefore);
        });
      }

      test('accepts a 48-character name', { skip: target.kind !== 'postgres' && 'schemas exist only on Postgres' }, async () => {
        const store = await target.fresh();
        const engine = await target.open({ ...store, schema: `s${process.pid}_`.padEnd(48, 'x') });
        assert.ok(engine instanceof Engine);
      });

      test('a schema next to a Provider instance is refused', async () => {
        const { store, before } = await seeded();
        const provider = target.provider(store);
        try {
          await assert.rejects(
            Engine.open({ database: provider, schema: 'tenant_a' }),
            invalid('schema', /schema applies to a database URL; with a Provider instance, set the schema on the provider/),
          );
        } finally {
          await provider.close();
        }
        await assertUnchanged(store, before);
      });
    });

    test('unknown workflow met during recovery: the handle rejects and the row stays as it was', async () => {
      const store = await target.fresh();
      const a = await target.open(store, { executorId: 'node-a', appVersion: 'v1' });
      const reached = deferred();
      const ghost = a.workflow('ghost', async (ctx: Context, n: number) => {
        await ctx.step('before', () => n + 1);
        reached.resolve();
        return untilAborted(ctx.signal);
      });
      await ghost.start(1, { id: 'ghost-1' });
      await reached.promise;
      await a.close({ timeoutMs: 0 });

      const b = await target.open(store, { executorId: 'node-a', appVersion: 'v1' });
      b.workflow('other', async () => 'other');
      const before = await snapshot(target, store);
      assert.equal(before.workflows[0]?.status, 'PENDING');
      assert.equal(before.steps['ghost-1']?.length, 1);

      const handles = await b.recover();
      const handle = handles.find((h) => h.id === 'ghost-1');
      assert.ok(handle, 'recover() returns a handle for the unknown workflow');
      await assert.rejects(
        handle.result(),
        cairnError('UNKNOWN_WORKFLOW', /workflow 'ghost-1' runs 'ghost', which is not registered/, {
          workflowName: 'ghost',
          workflowId: 'ghost-1',
        }),
      );
      await assertUnchanged(store, before);
      const info = await b.getWorkflow('ghost-1');
      assert.equal(info.status, 'PENDING');
      assert.equal(info.recoveryAttempts, before.workflows[0]?.recoveryAttempts);

      await b.recover();
      await assertUnchanged(store, before);
    });

    describe('unserializable values', () => {
      test('a step output with a nested function is recorded as the step error, and a replay rethrows it', async () => {
        const store = await target.fresh();
        let calls = 0;
        const seen: unknown[] = [];
        const reached = deferred();
        const define = (engine: Engine, block: boolean) =>
          engine.workflow('leaky', async (ctx: Context) => {
            let caught: unknown;
            try {
              await ctx.step('make', () => {
                calls++;
                return { a: { b: [1, () => 2] } };
              });
            } catch (err) {
              caught = err;
            }
            const e = caught as SerializationError;
            const view = {
              isSerializationError: caught instanceof SerializationError,
              isCairnError: caught instanceof CairnError,
              name: e?.name,
              code: e?.code,
              path: e?.path,
              message: e?.message,
            };
            seen.push(view);
            if (block) {
              reached.resolve();
              await untilAborted(ctx.signal);
            }
            return view;
          });

        const a = await target.open(store, { executorId: 'node-s', appVersion: 'v1' });
        await define(a, true).start(undefined, { id: 'leaky-1' });
        await reached.promise;
        await a.close({ timeoutMs: 0 });

        const first = seen[0] as { message: string };
        assert.deepEqual(first, {
          isSerializationError: true,
          isCairnError: true,
          name: 'SerializationError',
          code: 'SERIALIZATION',
          path: '$.a.b[1]',
          message: first.message,
        });
        assert.match(first.message, /the output of step 'make' in workflow 'leaky-1' cannot be stored: a function at \$\.a\.b\[1\]/);

        const b = await target.open(store, { executorId: 'node-s', appVersion: 'v1' });
        define(b, false);
        const [step] = await b.listSteps('leaky-1');
        assert.equal(step?.name, 'make');
        assert.equal(step?.output, undefined);
        assert.ok(step?.error instanceof SerializationError);
        assert.equal(step.error.code, 'SERIALIZATION');
        assert.equal(step.error.path, '$.a.b[1]');

        const handles = await b.recover();
        assert.deepEqual(
          handles.map((h) => h.id),
          ['leaky-1'],
        );
        assert.deepEqual(await handles[0]!.result(), first, 'the replay rethrows the recorded error');
        assert.equal(calls, 1, 'the step function ran once');
      });

      test('an uncaught unserializable step output fails the workflow with SERIALIZATION', async () => {
        const { store, engine, before } = await seeded();
        const wf = engine.workflow('leaky', async (ctx: Context) => ctx.step('make', () => ({ a: { b: [1, () => 2] } })));
        await assert.rejects(wf.run(undefined, { id: 'leaky-2' }), cairnError('SERIALIZATION', /a function at \$\.a\.b\[1\]/, { path: '$.a.b[1]' }));
        const info = await engine.getWorkflow('leaky-2');
        assert.equal(info.status, 'ERROR');
        assert.ok(info.error instanceof SerializationError);
        const after = await snapshot(target, store);
        assert.deepEqual(after.workflows.find((w) => w.id === 'seed-1'), before.workflows[0]);
        assert.deepEqual(after.steps['seed-1'], before.steps['seed-1']);
      });

      test('an unserializable workflow output fails the workflow with SERIALIZATION', async () => {
        const { engine } = await seeded();
        const wf = engine.workflow('bad_output', async () => ({ callback: () => 1 }));
        await assert.rejects(
          wf.run(undefined, { id: 'out-1' }),
          cairnError('SERIALIZATION', /output of workflow 'out-1' cannot be stored: a function at \$\.callback/, { path: '$.callback' }),
        );
        assert.equal((await engine.getWorkflow('out-1')).status, 'ERROR');
      });

      const inputs: Array<[string, unknown, string, RegExp]> = [
        ['a nested function', { order: { cb: () => 1 } }, '$.order.cb', /a function/],
        ['a symbol', [Symbol('s')], '$[0]', /a symbol/],
        ['a Buffer', { file: Buffer.from('x') }, '$.file', /Buffer/],
        ['a Promise', Promise.resolve(1), '$', /Promise/],
      ];
      for (const [label, input, path, reason] of inputs) {
        test(`a workflow input holding ${label} rejects start and stores nothing`, async () => {
          const { store, engine, before } = await seeded();
          const wf = engine.workflow('takes_input', async (_ctx: Context, _input: unknown) => 'ran');
          await assert.rejects(
            wf.start(input, { id: 'in-1' }),
            cairnError('SERIALIZATION', new RegExp(`the input of workflow 'takes_input' cannot be stored: .*${reason.source}.* at ${path.replace(/[$.[\]]/g, '\\$&')}$`), {
              path,
            }),
          );
          await assertUnchanged(store, before);
          await assert.rejects(engine.getWorkflow('in-1'), cairnError('WORKFLOW_NOT_FOUND', /no workflow with id 'in-1'/));
        });
      }
    });

    describe('registration and options', () => {
      test('a duplicate workflow name is refused and the first registration still works', async () => {
        const { store, engine, before } = await seeded();
        const first = engine.workflow('dup', async () => 'first');
        assert.throws(() => engine.workflow('dup', async () => 'second'), invalid('name', /a workflow named 'dup' is already registered/));
        assert.throws(() => engine.workflow('seed', async () => 'again'), invalid('name', /'seed' is already registered/));
        await assertUnchanged(store, before);
        assert.equal(await first.run(undefined), 'first');
      });

      test('an empty or non-string workflow name is refused', async () => {
        const { store, engine, before } = await seeded();
        assert.throws(() => engine.workflow('', async () => 1), invalid('workflow name', /workflow name must be a non-empty string, got an empty string/));
        assert.throws(() => engine.workflow(7 as unknown as string, async () => 1), invalid('workflow name', /non-empty string, got 7/));
        assert.throws(
          () => engine.workflow('no_fn', 'not a function' as unknown as () => Promise<void>),
          invalid('workflow function', /workflow function must be a function/),
        );
        await assertUnchanged(store, before);
      });

      test('an empty step name fails the workflow with INVALID_ARGUMENT and records no step', async () => {
        const { store, engine, before } = await seeded();
        const wf = engine.workflow('nameless', async (ctx: Context) => ctx.step('', () => 1));
        await assert.rejects(wf.run(undefined, { id: 'nameless-1' }), invalid('step name', /step name must be a non-empty string/));
        const info = await engine.getWorkflow('nameless-1');
        assert.equal(info.status, 'ERROR');
        assert.ok(info.error instanceof CairnError);
        assert.equal((info.error as CairnError & { argument: string }).argument, 'step name');
        assert.deepEqual(await engine.listSteps('nameless-1'), []);
        const after = await snapshot(target, store);
        assert.deepEqual(after.workflows.find((w) => w.id === 'seed-1'), before.workflows[0]);
        assert.deepEqual(after.steps['seed-1'], before.steps['seed-1']);
      });

      test('non-object step options fail the workflow with INVALID_ARGUMENT', async () => {
        const { engine } = await seeded();
        const wf = engine.workflow('step_opts', async (ctx: Context) => ctx.step('s', () => 1, 5 as never));
        await assert.rejects(wf.run(undefined), invalid('step options', /step options must be an object, got 5/));
      });

      test('an empty workflow id is refused everywhere', async () => {
        const { store, engine, before } = await seeded();
        const wf = engine.workflow('ids', async () => 'ran');
        await assert.rejects(wf.start(undefined, { id: '' }), invalid('workflow id', /workflow id must be a non-empty string, got an empty string/));
        await assert.rejects(wf.run(undefined, { id: '' }), invalid('workflow id', /non-empty string/));
        assert.throws(() => engine.handle(''), invalid('workflow id', /non-empty string/));
        await assert.rejects(engine.getWorkflow(''), invalid('workflow id', /non-empty string/));
        await assert.rejects(engine.listSteps(''), invalid('workflow id', /non-empty string/));
        await assertUnchanged(store, before);
      });

      test('non-object start options are refused', async () => {
        const { store, engine, before } = await seeded();
        const wf = engine.workflow('opts', async () => 'ran');
        await assert.rejects(wf.start(undefined, 'seed-1' as never), invalid('start options', /start options must be an object, got "seed-1"/));
        await assert.rejects(wf.start(undefined, null as never), invalid('start options', /must be an object, got null/));
        await assertUnchanged(store, before);
      });

      for (const [label, timeoutMs, shown] of [
        ['negative', -1, '-1'],
        ['NaN', Number.NaN, 'NaN'],
        ['a string', '5', '"5"'],
      ] as const) {
        test(`a ${label} close timeoutMs is refused and the engine stays open`, async () => {
          const { store, engine, before } = await seeded();
          await assert.rejects(
            engine.close({ timeoutMs: timeoutMs as number }),
            invalid('timeoutMs', new RegExp(`timeoutMs must be a finite number of milliseconds >= 0, got ${shown}`)),
          );
          await assertUnchanged(store, before);
          const wf = engine.workflow('still_open', async () => 'yes');
          assert.equal(await wf.run(undefined), 'yes');
        });
      }

      test('non-object close options are refused', async () => {
        const { engine } = await seeded();
        await assert.rejects(engine.close(1000 as never), invalid('close options', /close options must be an object, got 1000/));
      });

      for (const [label, value, shown] of [
        ['0', 0, '0'],
        ['negative', -3, '-3'],
        ['fractional', 1.5, '1.5'],
        ['NaN', Number.NaN, 'NaN'],
      ] as const) {
        test(`maxRecoveryAttempts ${label} is refused`, async () => {
          const { store, before } = await seeded();
          await assert.rejects(
            target.open(store, { maxRecoveryAttempts: value }),
            invalid('maxRecoveryAttempts', new RegExp(`maxRecoveryAttempts must be an integer >= 1, got ${shown}`)),
          );
          await assertUnchanged(store, before);
        });
      }

      for (const [label, logger] of [
        ['an empty object', {}],
        ['a string', 'debug'],
        ['an object missing error()', { info() {}, warn() {} }],
      ] as const) {
        test(`a logger that is ${label} is refused at open, not when it is first used`, async () => {
          const { store, before } = await seeded();
          await assert.rejects(
            target.open(store, { logger: logger as never }),
            invalid('logger', /logger must be .*info.*warn.*error/),
          );
          await assertUnchanged(store, before);
        });
      }

      test('an empty executorId or appVersion is refused', async () => {
        const { store, before } = await seeded();
        await assert.rejects(target.open(store, { executorId: '' }), invalid('executorId', /executorId must be a non-empty string/));
        await assert.rejects(target.open(store, { appVersion: '' }), invalid('appVersion', /appVersion must be a non-empty string/));
        await assertUnchanged(store, before);
      });

      for (const [label, options, shown] of [
        ['null', null, 'null'],
        ['a string', 'sqlite::memory:', '"sqlite::memory:"'],
        ['a number', 3, '3'],
        ['undefined', undefined, 'undefined'],
      ] as const) {
        test(`Engine.open with ${label} for options is refused`, async () => {
          await assert.rejects(
            Engine.open(options as unknown as EngineOptions),
            invalid('options', new RegExp(`Engine.open needs an options object, got ${shown}`)),
          );
        });
      }

      test('invalid listWorkflows filters are refused', async () => {
        const { store, engine, before } = await seeded();
        await assert.rejects(engine.listWorkflows({ status: 'DONE' as never }), invalid('status', /status "DONE" is not one of PENDING, ENQUEUED/));
        await assert.rejects(engine.listWorkflows({ status: ['SUCCESS', 'done' as never] }), invalid('status', /status "done" is not one of/));
        await assert.rejects(engine.listWorkflows({ limit: -1 }), invalid('limit', /limit must be an integer >= 0, got -1/));
        await assert.rejects(engine.listWorkflows({ limit: 2.5 }), invalid('limit', /limit must be an integer >= 0, got 2.5/));
        await assert.rejects(engine.listWorkflows({ offset: -1 }), invalid('offset', /offset must be an integer >= 0/));
        await assert.rejects(engine.listWorkflows({ createdAfter: new Date('not a date') }), invalid('createdAfter', /createdAfter must be a valid Date/));
        await assert.rejects(
          engine.listWorkflows({ createdBefore: '2024-01-01' as never }),
          invalid('createdBefore', /createdBefore must be a valid Date, got "2024-01-01"/),
        );
        await assert.rejects(engine.listWorkflows({ order: 'up' as never }), invalid('order', /order must be 'asc' or 'desc', got "up"/));
        await assert.rejects(engine.listWorkflows({ name: '' }), invalid('name', /name must be a non-empty string/));
        await assert.rejects(engine.listWorkflows('PENDING' as never), invalid('listWorkflows filter', /listWorkflows filter must be an object/));
        await assertUnchanged(store, before);
        assert.equal((await engine.listWorkflows({ limit: 0 })).length, 0);
      });
    });

    test('starting an existing id under another workflow name is a conflict and changes nothing', async () => {
      const { store, engine } = await seeded();
      const alpha = engine.workflow('alpha', async (ctx: Context, n: number) => ctx.step('one', () => n));
      const beta = engine.workflow('beta', async (ctx: Context, n: number) => ctx.step('two', () => n * 10));
      assert.equal(await alpha.run(1, { id: 'shared' }), 1);
      const before = await snapshot(target, store);
      const conflict = cairnError('WORKFLOW_CONFLICT', /workflow id 'shared' is already used by workflow 'alpha', so it cannot start 'beta'/, {
        workflowId: 'shared',
        existingName: 'alpha',
        requestedName: 'beta',
      });
      await assert.rejects(beta.start(2, { id: 'shared' }), conflict);
      await assert.rejects(beta.run(2, { id: 'shared' }), conflict);
      await assertUnchanged(store, before);
      const again = await alpha.start(99, { id: 'shared' });
      assert.equal(await again.result(), 1, 'the same name gets the stored workflow back');
      await assertUnchanged(store, before);
    });

    test('a Context call inside a step is a CONTEXT_USAGE error recorded as that step’s error', async () => {
      const { store, engine, before } = await seeded();
      let innerRan = false;
      const wf = engine.workflow('nested', async (ctx: Context) => {
        await ctx.step('outer', async () => {
          await ctx.step('inner', () => {
            innerRan = true;
          });
          return 'unreachable';
        });
        return 'done';
      });
      const usage = cairnError('CONTEXT_USAGE', /ctx\.step\('inner'\) was called inside step 'outer' of workflow 'nested-1'/);
      await assert.rejects(wf.run(undefined, { id: 'nested-1' }), usage);
      assert.equal(innerRan, false);
      const steps = await engine.listSteps('nested-1');
      assert.deepEqual(
        steps.map((s) => s.name),
        ['outer'],
      );
      usage(steps[0]!.error);
      assert.equal((await engine.getWorkflow('nested-1')).status, 'ERROR');
      const after = await snapshot(target, store);
      assert.deepEqual(after.workflows.find((w) => w.id === 'seed-1'), before.workflows[0]);
      assert.deepEqual(after.steps['seed-1'], before.steps['seed-1']);
    });

    test('a database migrated by a newer version is refused with MIGRATION and left alone', async () => {
      const { store, engine, before } = await seeded();
      await engine.close();
      await rawQuery(target, store, {
        sqlite: `INSERT INTO cairn_migrations (version, name, applied_at) VALUES (999, 'from_the_future', ${Date.now()})`,
        postgres: "INSERT INTO $schema.migrations (version, name) VALUES (999, 'from_the_future')",
      });
      const migrationsSql = { sqlite: 'SELECT version, name FROM cairn_migrations ORDER BY version', postgres: 'SELECT version, name FROM $schema.migrations ORDER BY version' };
      const migrationsBefore = await rawQuery(target, store, migrationsSql);

      await assert.rejects(target.open(store), cairnError('MIGRATION', /is at migration 999, newer than the \d+ this version of Cairn knows; upgrade Cairn/));
      await assert.rejects(target.open(store, { migrate: true }), cairnError('MIGRATION', /999/));

      await assertUnchanged(store, before);
      assert.deepEqual(await rawQuery(target, store, migrationsSql), migrationsBefore);
    });
  });
}
