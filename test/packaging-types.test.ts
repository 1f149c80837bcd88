/**
 * Typing of the public API: input and output types flow through start/run/result/handle, a
 * workflow without input starts with no argument, and client.enqueue takes a typed reference.
 * The type assertions are checked by `npm run typecheck` (a wrong one fails the compile); the
 * tests run the same calls on an in-memory database to show they also work at run time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Engine } from '../src/index.js';
import type { Context, StartArgs, Workflow, WorkflowHandle, WorkflowInfo, WorkflowInput, WorkflowOutput, WorkflowRef } from '../src/index.js';

/** true when A and B are the same type (not merely assignable either way). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Compiles only when given `true`. */
function expectTrue<T extends true>(_proof?: T): void {}

interface Order {
  id: string;
  cents: number;
}
interface Receipt {
  orderId: string;
  charged: number;
}

describe('typed workflows', () => {
  let engine: Engine;
  let order: Workflow<Order, Receipt>;
  let tick: Workflow<void, number>;
  let maybe: Workflow<string | undefined, string>;
  let parent: Workflow<Order, number>;

  before(async () => {
    engine = await Engine.open({ database: 'sqlite::memory:' });
    const registered = engine.workflow('order', async (ctx: Context, input: Order) => {
      const charged = await ctx.step('charge', () => input.cents);
      return { orderId: input.id, charged };
    });
    expectTrue<Equal<typeof registered, Workflow<Order, Receipt>>>();
    order = registered;
    tick = engine.workflow('tick', async (ctx: Context) => ctx.step('one', () => 1));
    maybe = engine.workflow('maybe', async (_ctx: Context, input: string | undefined) => input ?? 'none');
    parent = engine.workflow('typed-parent', async (ctx: Context, input: Order) => {
      const receipt = await ctx.runChild(order, input);
      expectTrue<Equal<typeof receipt, Receipt>>();
      const child = await ctx.runChild(tick, undefined);
      expectTrue<Equal<typeof child, number>>();
      return receipt.charged + child;
    });
    engine.queue('orders');
    await engine.launch();
  });
  after(() => engine.close());

  test('input and output flow through start, run, result, status and handle', async () => {
    const handle = await order.start({ id: 'o-1', cents: 250 }, { id: 'typed-o-1' });
    expectTrue<Equal<typeof handle, WorkflowHandle<Receipt>>>();
    const receipt = await handle.result();
    expectTrue<Equal<typeof receipt, Receipt>>();
    assert.deepEqual(receipt, { orderId: 'o-1', charged: 250 });

    const ran = await order.run({ id: 'o-2', cents: 5 });
    expectTrue<Equal<typeof ran, Receipt>>();
    assert.equal(ran.charged, 5);

    const again = order.handle('typed-o-1');
    expectTrue<Equal<typeof again, WorkflowHandle<Receipt>>>();
    assert.equal(again.id, 'typed-o-1');
    assert.deepEqual(await again.result(), receipt);
    const info = await again.status();
    expectTrue<Equal<typeof info, WorkflowInfo<unknown, Receipt>>>();
    assert.equal(info.output?.charged, 250);

    expectTrue<Equal<WorkflowInput<typeof order>, Order>>();
    expectTrue<Equal<WorkflowOutput<typeof order>, Receipt>>();

    if (Math.random() > 2) {
      // Never run: the lines only have to be refused by the compiler.
      // @ts-expect-error the input is required
      await order.start();
      // @ts-expect-error the input has the wrong shape
      await order.start({ id: 'o-3' });
      // @ts-expect-error the input has the wrong type
      await order.run('o-3');
    }
  });

  test('a workflow without input starts and runs with no argument', async () => {
    expectTrue<[] extends StartArgs<void> ? true : false>();
    expectTrue<[] extends StartArgs<undefined> ? true : false>();
    expectTrue<[] extends StartArgs<Order> ? false : true>();
    const handle = await tick.start();
    expectTrue<Equal<typeof handle, WorkflowHandle<number>>>();
    assert.equal(await handle.result(), 1);
    assert.equal(await tick.run(undefined, { id: 'typed-tick-2' }), 1);
    assert.equal(await tick.run(), 1);
    // An optional input may be left out too.
    assert.equal(await maybe.run(), 'none');
    assert.equal(await maybe.run('given'), 'given');
  });

  test('client.enqueue takes a typed reference and keeps the by-name call', async () => {
    const ref: WorkflowRef<Order, Receipt> = { name: 'order' };
    const typed = await engine.enqueue(ref, { id: 'o-4', cents: 7 }, { queue: 'orders', id: 'typed-o-4' });
    expectTrue<Equal<typeof typed, WorkflowHandle<Receipt>>>();
    assert.deepEqual(await typed.result(), { orderId: 'o-4', charged: 7 });

    // The registered workflow is a reference too.
    const viaWorkflow = await engine.enqueue(order, { id: 'o-5', cents: 8 }, { queue: 'orders' });
    expectTrue<Equal<typeof viaWorkflow, WorkflowHandle<Receipt>>>();
    assert.equal((await viaWorkflow.result()).charged, 8);

    const byName = await engine.enqueue('order', { id: 'o-6', cents: 9 }, { queue: 'orders' });
    expectTrue<Equal<typeof byName, WorkflowHandle<unknown>>>();
    const byNameTyped = await engine.enqueue<Receipt>('order', { id: 'o-7', cents: 10 }, { queue: 'orders' });
    expectTrue<Equal<typeof byNameTyped, WorkflowHandle<Receipt>>>();
    assert.equal((await byNameTyped.result()).charged, 10);
    assert.deepEqual(await byName.result(), { orderId: 'o-6', charged: 9 });

    if (Math.random() > 2) {
      // @ts-expect-error the input does not match the reference's input type
      await engine.enqueue(ref, { id: 'o-8' }, { queue: 'orders' });
      // @ts-expect-error a queue is required
      await engine.enqueue(ref, { id: 'o-8', cents: 1 }, {});
    }
  });

  test('child workflows keep their types', async () => {
    assert.equal(await parent.run({ id: 'o-9', cents: 40 }), 41);
  });
});
