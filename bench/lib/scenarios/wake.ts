import { setTimeout as sleep } from 'node:timers/promises';
import type { Engine } from '../../../src/index.js';
import { observeCalls, withEngine } from '../engine.js';
import { ms } from '../format.js';
import type { SequentialBudget } from '../load.js';
import { withPair, withStore, type Row, type Scenario } from '../scenario.js';
import { latencyData, round, summarize, type Summary } from '../stats.js';
import type { FloorDriver } from '../targets.js';

/**
 * The engine's fallback poll here: far longer than any round trip, so a wake-up that arrives is
 * the notification's doing (a lost one would show as a round trip of a minute, and fail the run).
 */
const POLL_MS = 60_000;
/** A round trip longer than this means a notification was lost. */
const LOST_MS = 10_000;
/** Quiet time before each round trip, once the waiter has parked. */
const IDLE_MS = 1;

interface Measured {
  latency: Summary;
  floor: Summary;
}

/** A waiter that can be awaited until it has parked (its first look found nothing). */
class ParkSignal {
  private resolve: () => void = () => undefined;
  private armed: Promise<void> = Promise.resolve();
  arm(): Promise<void> {
    this.armed = new Promise<void>((r) => (this.resolve = r));
    return this.armed;
  }
  fire(): void {
    this.resolve();
  }
}

/**
 * Runs `round` one at a time (`warmup` unmeasured), each returning its own latency in ms, with
 * `floorPerSample` floor commits timed after each.
 */
async function rounds(budget: SequentialBudget & { floorPerSample: number }, floor: FloorDriver, round: (k: number) => Promise<number>): Promise<Measured> {
  const latencies: number[] = [];
  const floorLatencies: number[] = [];
  const end = performance.now() + budget.maxMs;
  for (let k = 0; k < budget.warmup + budget.samples; k++) {
    if (k >= budget.warmup + 20 && performance.now() > end) break;
    const latency = await round(k);
    if (latency > LOST_MS) throw new Error(`a wake-up took ${ms(latency)}: a notification was lost`);
    if (k < budget.warmup) continue;
    latencies.push(latency);
    for (let f = 0; f < budget.floorPerSample; f++) {
      const f0 = performance.now();
      await floor.insert();
      floorLatencies.push(performance.now() - f0);
    }
  }
  return { latency: summarize(latencies), floor: summarize(floorLatencies) };
}

/** send -> recv: a workflow loops on ctx.recv; each round, engine.send wakes it once it has parked. */
async function sendRecv(engine: Engine, parked: ParkSignal, budget: SequentialBudget & { floorPerSample: number }, floor: FloorDriver): Promise<Measured> {
  const total = budget.warmup + budget.samples;
  let received: (at: number, message: number) => void = () => undefined;
  const wf = engine.workflow('wake_recv', async (ctx, n: number) => {
    for (let i = 0; i < n; i++) {
      const message = await ctx.recv<number>('ping', 3_600_000);
      received(performance.now(), message ?? -1);
    }
    return n;
  });
  let isParked = parked.arm();
  const handle = await wf.start(total);
  const measured = await rounds(budget, floor, async (k) => {
    await isParked;
    await sleep(IDLE_MS);
    const got = new Promise<{ at: number; message: number }>((resolve) => (received = (at, message) => resolve({ at, message })));
    isParked = parked.arm();
    const t0 = performance.now();
    await engine.send(handle.id, k, 'ping');
    const { at, message } = await got;
    if (message !== k) throw new Error(`recv returned ${message}, expected ${k}`);
    return at - t0;
  });
  // Rounds cut short by the time cap leave the workflow waiting: finish it.
  for (let k = measured.latency.n + budget.warmup; k < total; k++) await engine.send(handle.id, k, 'ping');
  if ((await handle.result()) !== total) throw new Error('the receiving workflow returned a wrong count');
  return measured;
}

/** setEvent -> getEvent: engine.getEvent waits on a fresh key; the workflow then sets it. */
async function setGetEvent(engine: Engine, parked: ParkSignal, budget: SequentialBudget & { floorPerSample: number }, floor: FloorDriver): Promise<Measured> {
  const total = budget.warmup + budget.samples;
  // One gate per round: the workflow sets event k once the bench opens gate k.
  const gates = Array.from({ length: total }, () => {
    let open: () => void = () => undefined;
    const opened = new Promise<void>((resolve) => (open = resolve));
    return { opened, open };
  });
  let setAt = 0;
  const wf = engine.workflow('wake_event', async (ctx, n: number) => {
    for (let i = 0; i < n; i++) {
      // Not a Context call: the bench opens each gate once the reader has parked.
      await gates[i]!.opened;
      setAt = performance.now();
      await ctx.setEvent(`k${i}`, i);
    }
    return n;
  });
  const handle = await wf.start(total);
  let done = 0;
  const measured = await rounds(budget, floor, async (k) => {
    const isParked = parked.arm();
    const value = engine.getEvent<number>(handle.id, `k${k}`, 3_600_000);
    await isParked;
    await sleep(IDLE_MS);
    gates[k]!.open();
    const got = await value;
    const t1 = performance.now();
    if (got !== k) throw new Error(`getEvent returned ${got}, expected ${k}`);
    done = k + 1;
    return t1 - setAt;
  });
  // Rounds cut short by the time cap leave the workflow waiting: finish it.
  for (let k = done; k < total; k++) gates[k]!.open();
  if ((await handle.result()) !== total) throw new Error('the event workflow returned a wrong count');
  return measured;
}

/**
 * 7. Wake-up latency, one round trip at a time. send -> recv: from just before `engine.send` to
 * `ctx.recv` returning inside the workflow, which was parked in it. setEvent -> getEvent: from just
 * before `ctx.setEvent` to `engine.getEvent` returning outside, which was parked in it. Each round
 * starts once the waiter has looked and found nothing. The engine's fallback poll is 60 s, so the
 * wake-ups come from notifications (LISTEN/NOTIFY on Postgres, in-process on SQLite). The ratio is
 * to the floor's single-commit latency, timed between the round trips on the same connections.
 */
export const wake: Scenario = {
  id: '7',
  name: 'wake latency',
  async run(ctx) {
    const budget = ctx.budgets.wake;
    const pool = ctx.target.poolLabel(1);
    const run = (label: string, body: (engine: Engine, parked: ParkSignal, floor: FloorDriver) => Promise<Measured>) =>
      withStore(ctx, label, (store) =>
        withPair(store, 1, async (pair) => {
          const parked = new ParkSignal();
          // A waiter has parked once its look finds nothing (recv: no message; getEvent: no event).
          observeCalls<{ kind: string }>(pair.provider, 'recordRecv', (r) => r.kind === 'empty' && parked.fire());
          observeCalls<string | undefined>(pair.provider, 'getEvent', (r) => r === undefined && parked.fire());
          return withEngine(pair.provider, { pollIntervalMs: POLL_MS }, ({ engine }) => body(engine, parked, pair.floor));
        }),
      );

    ctx.progress(`send -> recv, up to ${budget.samples} round trips`);
    const recv = await run('wake recv', (engine, parked, floor) => sendRecv(engine, parked, budget, floor));
    ctx.progress(`setEvent -> getEvent, up to ${budget.samples} round trips`);
    const event = await run('wake event', (engine, parked, floor) => setGetEvent(engine, parked, budget, floor));

    const row = (measure: string, m: Measured, path: string): Row => {
      const ratio = m.latency.p50 / m.floor.p50;
      return {
        id: '7',
        scenario: 'wake latency',
        measure: `${measure} p50 / p99`,
        value: `${ms(m.latency.p50)} / ${ms(m.latency.p99)}`,
        ratio: { value: ratio, of: 'p50 / floor commit p50' },
        note: `n=${m.latency.n}, ${pool}; ${path}; floor p50 ${ms(m.floor.p50)} interleaved (n=${m.floor.n}); pollIntervalMs ${POLL_MS.toLocaleString('en-US')}`,
        status: 'measured',
        data: {
          samples: m.latency.n,
          ...latencyData(m.latency),
          floorInterleaved: { commits: m.floor.n, p50Ms: round(m.floor.p50), p99Ms: round(m.floor.p99) },
          ratioP50ToFloorP50: round(ratio),
          pollIntervalMs: POLL_MS,
          poolSize: ctx.target.kind === 'postgres' ? 1 : null,
        },
      };
    };
    return [
      row('send -> recv wake', recv, 'send commit + notification + recv checkpoint commit'),
      row('setEvent -> getEvent wake', event, 'setEvent checkpoint commit + notification + one read'),
    ];
  },
};
