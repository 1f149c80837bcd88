import assert from 'node:assert/strict';
import { after, afterEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from '../src/index.js';
import { checkReplay } from '../src/testing/index.js';
import type { Target } from './helpers/targets.js';

/** What a workflow caught, as plain data. */
const caught = (err: unknown) => ({ name: (err as Error).name, code: (err as { code?: string }).code, message: (err as Error).message });

/** ctx.all on every provider: the cap, the order of results and errors, the ids its calls take. */
export function defineFanOutSuite(target: Target): void {
  describe(`ctx.all on ${target.kind}`, { skip: target.skip }, () => {
    afterEach(() => target.closeAll());
    after(() => target.dispose());

    test('100 thunks with concurrency 5 never run more than 5 at once, and resolve in order', async () => {
      const engine = await target.open(await target.fresh());
      let running = 0;
      let peak = 0;
      const wf = engine.workflow('fan', async (ctx) =>
        ctx.all(
          Array.from({ length: 100 }, (_, i) => () =>
            ctx.step(`item${i}`, async () => {
              peak = Math.max(peak, ++running);
              await sleep(1 + ((i * 7) % 5));
              running--;
              return i * i;
            }),
          ),
          { concurrency: 5 },
        ),
      );
      const result = await wf.run(undefined, { id: 'fan-1' });
      assert.deepEqual(result, Array.from({ length: 100 }, (_, i) => i * i));
      assert.equal(peak, 5, `at most 5 step bodies ran at once (saw ${peak})`);
    });

    test('each thunk takes its own lane of step ids, whatever order the thunks finish in; calls go on after the block', async () => {
      const engine = await target.open(await target.fresh());
      const wf = engine.workflow('lanes', async (ctx) => {
        const head = await ctx.step('head', () => 'h');
        const pairs = await ctx.all(
          [0, 1, 2].map((i) => async () => {
            const a = await ctx.step(`a${i}`, () => sleep(30 - i * 10).then(() => i));
            if (i === 1) return [a];
            return [a, await ctx.step(`b${i}`, () => a * 10)];
          }),
        );
        const nested = await ctx.all([() => ctx.all([() => ctx.step('n0', () => 0), () => ctx.step('n1', () => 1)]), () => ctx.step('m', () => 'm')]);
        return { head, pairs, nested, tail: await ctx.step('tail', () => 't') };
      });
      assert.deepEqual(await wf.run(undefined, { id: 'lanes-1' }), { head: 'h', pairs: [[0, 0], [1], [2, 20]], nested: [[0, 1], 'm'], tail: 't' });
      const ids = Object.fromEntries((await engine.listSteps('lanes-1')).map((s) => [s.name, s.stepId]));
      // head 1; three lanes from 2 (a0 a1 a2 = 2 3 4, b0 b2 = 5 7, 6 a hole); the nested ctx.all's two
      // lanes from 8: lane 0 holds an inner ctx.all of two lanes (n0, n1 at its calls 0 and 1 = ids 8, 10),
      // lane 1 holds m (9); tail after the block (8..11) at 12.
      assert.deepEqual(ids, { head: 1, a0: 2, a1: 3, a2: 4, b0: 5, b2: 7, n0: 8, n1: 10, m: 9, tail: 12 });
    });

    test('every thunk runs to its end; the error is the first failed thunk by position', async () => {
      const engine = await target.open(await target.fresh());
      const finished: number[] = [];
      const wf = engine.workflow('failing-fan', async (ctx) => {
        try {
          await ctx.all(
            Array.from({ length: 8 }, (_, i) => async () => {
              await ctx.step(`s${i}`, () => sleep(i === 6 ? 1 : 40).then(() => (i === 2 || i === 6 ? Promise.reject(new Error(`thunk ${i} failed`)) : i)));
              finished.push(i);
            }),
            { concurrency: 3 },
          );
          return 'no error';
        } catch (err) {
          return caught(err).message;
        }
      });
      assert.equal(await wf.run(undefined, { id: 'ff-1' }), 'thunk 2 failed');
      assert.deepEqual(finished.sort(), [0, 1, 3, 4, 5, 7]);
      assert.equal((await engine.listSteps('ff-1')).length, 8);
    });

    test('Context calls outside its thunks while it runs, or from a thunk after it settled, are refused', async () => {
      const engine = await target.open(await target.fresh());
      let leaked: Promise<unknown> | undefined;
      const wf = engine.workflow('misuse', async (ctx: Context) => {
        const running = ctx.all([() => ctx.step('slow', () => sleep(50))]);
        let outside: unknown;
        try {
          await ctx.step('outside', () => 1);
        } catch (err) {
          outside = caught(err);
        }
        await running;
        await ctx.all([
          async () => {
            leaked = sleep(20).then(() => ctx.step('late', () => 1));
            leaked.catch(() => undefined);
          },
        ]);
        await sleep(40);
        return { outside, late: await leaked!.then(() => 'ran', (err: unknown) => caught(err)), after: await ctx.step('after', () => 'ok') };
      });
      const result = await wf.run(undefined, { id: 'mis-1' });
      assert.equal((result.outside as { code: string }).code, 'CONTEXT_USAGE');
      assert.equal((result.late as { code: string }).code, 'CONTEXT_USAGE');
      assert.match((result.outside as { message: string }).message, /ctx.step\('outside'\) was called in workflow 'mis-1' while a ctx.all it started was running/);
      assert.match((result.late as { message: string }).message, /ctx.step\('late'\) was called by a thunk of ctx.all .* after that ctx.all had settled/);
      assert.equal(result.after, 'ok');
      assert.deepEqual((await engine.listSteps('mis-1')).map((s) => s.name), ['slow', 'after']);
    });

    test('bad arguments are refused: not an array, not functions, a bad concurrency, inside a step', async () => {
      const engine = await target.open(await target.fresh());
      const wf = engine.workflow('bad-all', async (ctx: Context) => {
        const attempts: Array<() => unknown> = [
          () => ctx.all('x' as unknown as []),
          () => ctx.all([() => 1, 2 as unknown as () => number]),
          () => ctx.all([() => 1], { concurrency: 0 }),
          () => ctx.all([() => 1], { concurrency: 1.5 }),
          () => ctx.all([() => 1], null as unknown as object),
        ];
        const out: unknown[] = [];
        for (const attempt of attempts) {
          try {
            await attempt();
            out.push('accepted');
          } catch (err) {
            out.push(caught(err).message);
          }
        }
        out.push(
          await ctx.step('inside', async () => {
            try {
              await ctx.all([]);
              return 'accepted';
            } catch (err) {
              return caught(err).code;
            }
          }),
        );
        out.push(await ctx.all([]));
        return out;
      });
      const out = await wf.run(undefined, { id: 'bad-1' });
      assert.match(out[0] as string, /ctx.all needs an array of functions, got "x"/);
      assert.match(out[1] as string, /thunks\[1\] must be a function, got 2/);
      assert.match(out[2] as string, /concurrency must be an integer >= 1, got 0/);
      assert.match(out[3] as string, /concurrency must be an integer >= 1, got 1.5/);
      assert.match(out[4] as string, /ctx.all options must be an object, got null/);
      assert.deepEqual(out.slice(5), ['CONTEXT_USAGE', []]);
    });

    test('a replay whose thunk stops short of a checkpoint its lane holds is a divergence; the same code replays', async () => {
      const engine = await target.open(await target.fresh());
      const body = (short: boolean) => async (ctx: Context) =>
        ctx.all([0, 1, 2].map((i) => async () => [await ctx.step(`a${i}`, () => i), ...(short && i === 1 ? [] : [await ctx.step(`b${i}`, () => i)])]));
      const wf = engine.workflow('replayed', body(false));
      await wf.run(undefined, { id: 'rep-1' });
      const history = await engine.exportHistory('rep-1');
      assert.deepEqual(await checkReplay(wf, [history]), [{ id: 'rep-1', ok: true }]);
      const other = await target.open(await target.fresh());
      const [check] = await checkReplay(other.workflow('replayed', body(true)), [history]);
      assert.equal(check!.ok, false);
      assert.deepEqual([check!.divergence!.stepId, check!.divergence!.recordedName, check!.divergence!.calledName], [5, 'b1', '(returned)']);
    });
  });
}
