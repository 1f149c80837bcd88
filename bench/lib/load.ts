import { summarize, type Summary } from './stats.js';

/** How long a closed-loop run warms up and measures, and an optional cap on measured operations. */
export interface LoadBudget {
  /** At least this long before the window opens (it also waits for the pipeline to fill; see runWindow). */
  warmupMs: number;
  /**
   * The window's length, stretched to at least MIN_WINDOW_LATENCIES times the time the pipeline
   * took to fill (about one operation's latency at this concurrency), so that operations that
   * finish in bursts are counted fairly.
   */
  measureMs: number;
  /** Stop measuring once this many operations completed in the window. */
  maxOps?: number;
}

export interface LoadResult {
  concurrency: number;
  /** Operations that completed inside the measurement window(s). */
  ops: number;
  /** Units of progress marked inside the window(s); equals `ops` without a meter. */
  units: number;
  /** Total length of the measurement window(s) in seconds. */
  seconds: number;
  /** Operations per second. */
  perSecond: number;
  unitsPerSecond: number;
  /** Latency of the operations counted, in ms. */
  latency: Summary;
}

/**
 * Counts progress made inside an operation, such as each committed step of a workflow, at the
 * instant it happens. Workflows kept in flight on one SQLite connection advance in lockstep and
 * finish in bursts of C; their steps land more evenly, so a window a few latencies long counts
 * them within a few percent, where counting completions could be off by a whole burst.
 */
export class Meter {
  private sink: (() => void) | undefined;
  /** Call when one unit of progress has been committed. */
  mark(): void {
    this.sink?.();
  }
  /** @internal Routes marks to the window being measured. */
  bind(sink: (() => void) | undefined): void {
    this.sink = sink;
  }
}

export interface Workload {
  op: (loop: number) => Promise<unknown>;
  meter?: Meter;
}

const MIN_WINDOW_LATENCIES = 5;

interface Window {
  ops: number;
  units: number;
  seconds: number;
  latencies: number[];
}

/**
 * Keeps `concurrency` operations in flight: each of `concurrency` loops awaits `op` and starts the
 * next at once. The window opens once the warm-up time has passed and the pipeline is full (every
 * loop has finished an operation). The rate is the number of operations (or metered units)
 * completing inside the window divided by its length, which in steady state counts each loop
 * fairly. Deadlines are checked with performance.now() at each iteration, so loops whose operations
 * never leave the microtask queue (better-sqlite3) stop on time as well. `stretch: false` is for
 * unmeasured warm-ups.
 */
async function runWindow(concurrency: number, budget: LoadBudget, work: Workload, stretch = true): Promise<Window> {
  const started = performance.now();
  const earliest = started + budget.warmupMs;
  const meter = work.meter;
  let from = Number.POSITIVE_INFINITY;
  let to = Number.POSITIVE_INFINITY;
  let warmLoops = 0;
  /** When the last loop finished its first operation: about one latency at this concurrency. */
  let filledAt = Number.POSITIVE_INFINITY;
  let ops = 0;
  let units = 0;
  let stop = false;
  let failure: { error: unknown } | undefined;
  const latencies: number[] = [];

  const maybeOpen = (now: number): void => {
    if (from !== Number.POSITIVE_INFINITY || now < earliest || now < filledAt) return;
    from = now;
    to = from + (stretch ? Math.max(budget.measureMs, MIN_WINDOW_LATENCIES * (filledAt - started)) : budget.measureMs);
  };
  const inWindow = (t: number): boolean => t > from && t <= to && !stop;

  meter?.bind(() => {
    if (inWindow(performance.now())) units++;
  });

  const loop = async (index: number): Promise<void> => {
    let first = true;
    while (!stop) {
      const t0 = performance.now();
      if (t0 >= to) break;
      try {
        await work.op(index);
      } catch (error) {
        failure ??= { error };
        stop = true;
        break;
      }
      const t1 = performance.now();
      if (first) {
        first = false;
        if (++warmLoops === concurrency) filledAt = t1;
      }
      maybeOpen(t1);
      if (inWindow(t1)) {
        ops++;
        if (!meter) units++;
        latencies.push(t1 - t0);
        if (budget.maxOps !== undefined && ops >= budget.maxOps) {
          to = t1;
          stop = true;
        }
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: concurrency }, (_, i) => loop(i)));
  } finally {
    meter?.bind(undefined);
  }
  if (failure) throw failure.error;
  if (from === Number.POSITIVE_INFINITY) throw new Error('the measurement window never opened');
  return { ops, units, seconds: (to - from) / 1000, latencies };
}

function result(concurrency: number, windows: Window[]): LoadResult {
  const ops = windows.reduce((n, w) => n + w.ops, 0);
  const units = windows.reduce((n, w) => n + w.units, 0);
  const seconds = windows.reduce((n, w) => n + w.seconds, 0);
  return {
    concurrency,
    ops,
    units,
    seconds,
    perSecond: ops / seconds,
    unitsPerSecond: units / seconds,
    latency: summarize(windows.flatMap((w) => w.latencies)),
  };
}

/** One closed-loop measurement: warm up, then count completions in one window. */
export async function closedLoop(concurrency: number, budget: LoadBudget, work: Workload | Workload['op']): Promise<LoadResult> {
  return result(concurrency, [await runWindow(concurrency, budget, typeof work === 'function' ? { op: work } : work)]);
}

export interface PairedBudget {
  /** Unmeasured warm-up of each side before the first round. */
  warmupMs: number;
  /** Measured time per side, split evenly over the rounds. */
  measureMs: number;
  rounds: number;
}

/**
 * Measures two workloads at the same concurrency in alternating short windows (A B, B A, A B, ...),
 * so that drift in what the machine is doing meanwhile lands on both sides alike. Use it for a
 * ratio of a workload to its floor.
 */
export async function paired(concurrency: number, budget: PairedBudget, a: Workload, b: Workload): Promise<[LoadResult, LoadResult]> {
  await runWindow(concurrency, { warmupMs: budget.warmupMs, measureMs: 0 }, a, false);
  await runWindow(concurrency, { warmupMs: budget.warmupMs, measureMs: 0 }, b, false);
  const slice = { warmupMs: 0, measureMs: budget.measureMs / budget.rounds };
  const wa: Window[] = [];
  const wb: Window[] = [];
  for (let r = 0; r < budget.rounds; r++) {
    if (r % 2 === 0) {
      wa.push(await runWindow(concurrency, slice, a));
      wb.push(await runWindow(concurrency, slice, b));
    } else {
      wb.push(await runWindow(concurrency, slice, b));
      wa.push(await runWindow(concurrency, slice, a));
    }
  }
  return [result(concurrency, wa), result(concurrency, wb)];
}

/** Counts of a one-at-a-time measurement: samples stop at `samples` or once `maxMs` has passed. */
export interface SequentialBudget {
  warmup: number;
  samples: number;
  /** A time cap on the measured part, for a slow disk; at least `MIN_SAMPLES` are always taken. */
  maxMs: number;
}

const MIN_SAMPLES = 20;

/** Runs `op` one at a time: `warmup` unmeasured calls, then timed ones (ms each). */
export async function sequential(budget: SequentialBudget, op: () => Promise<unknown>): Promise<Summary> {
  for (let i = 0; i < budget.warmup; i++) await op();
  const latencies: number[] = [];
  const end = performance.now() + budget.maxMs;
  while (latencies.length < budget.samples && (latencies.length < MIN_SAMPLES || performance.now() < end)) {
    const t0 = performance.now();
    await op();
    latencies.push(performance.now() - t0);
  }
  return summarize(latencies);
}

/**
 * Sequential latency of `op` with `floorPerSample` floor operations timed right after each sample,
 * so both distributions come from the same stretch of time.
 */
export async function sequentialPaired(
  budget: SequentialBudget,
  floorPerSample: number,
  op: () => Promise<unknown>,
  floor: () => Promise<unknown>,
): Promise<[Summary, Summary]> {
  const opLat: number[] = [];
  const floorLat: number[] = [];
  for (let i = 0; i < budget.warmup; i++) {
    await op();
    for (let k = 0; k < floorPerSample; k++) await floor();
  }
  const end = performance.now() + budget.maxMs;
  while (opLat.length < budget.samples && (opLat.length < MIN_SAMPLES || performance.now() < end)) {
    const t0 = performance.now();
    await op();
    opLat.push(performance.now() - t0);
    for (let k = 0; k < floorPerSample; k++) {
      const f0 = performance.now();
      await floor();
      floorLat.push(performance.now() - f0);
    }
  }
  return [summarize(opLat), summarize(floorLat)];
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
