/**
 * The child process of scenario 6: parks workflows in `ctx.sleep` or `ctx.recv` and reports the
 * growth of `process.memoryUsage()` per parked workflow as one JSON line on stdout. It runs in a
 * process of its own, started with --expose-gc, so the heap holds nothing from earlier scenarios
 * and each reading follows full collections.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { PostgresProvider, SqliteProvider, type Provider, type Workflow } from '../../src/index.js';
import { observeCalls, openEngine } from './engine.js';
import { mapLimit } from './load.js';
import type { StoreLocation } from './targets.js';

export type ParkWait = 'sleep' | 'recv';

export interface ParkJob {
  location: StoreLocation;
  wait: ParkWait;
  /** Parked workflows measured. */
  workflows: number;
  /**
   * Parked (and kept parked) before the baseline reading, so one-time growth lands in the baseline:
   * V8 enlarges its young generation (up to a fixed cap) while many objects survive, which on
   * SQLite, where parking allocates little else, shows as rss out of proportion to the heap used.
   */
  warmup: number;
  /** Starts in flight at once (and the pg.Pool max). */
  concurrency: number;
}

export interface MemoryReading {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export interface ParkReport {
  gcExposed: boolean;
  /** Before anything was parked, with the engine open. */
  initial: MemoryReading;
  /** After the warm-up workflows parked: the baseline of the measured ones. */
  before: MemoryReading;
  after: MemoryReading;
  /** Time to start and park the measured workflows. */
  parkMs: number;
  pollIntervalMs: string;
}

const DAY_MS = 86_400_000;
const ID_PREFIX = 'park-';

const gc = (globalThis as { gc?: () => void }).gc;

async function reading(): Promise<MemoryReading> {
  if (gc) {
    for (let i = 0; i < 4; i++) {
      gc();
      await sleep(20);
    }
  }
  const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, heapTotal, external, arrayBuffers };
}

function providerAt(location: StoreLocation, poolSize: number): Provider {
  return location.kind === 'postgres'
    ? new PostgresProvider({ connectionString: location.url, schema: location.schema, max: poolSize })
    : new SqliteProvider({ path: location.path });
}

async function main(job: ParkJob): Promise<ParkReport> {
  const total = job.warmup + job.workflows;
  // One flag per workflow, allocated before the baseline: set once its wait has parked.
  const parkedFlags = new Uint8Array(total);
  let parked = 0;
  let target = 0;
  let reached: () => void = () => undefined;
  const mark = (id: unknown) => {
    if (typeof id !== 'string' || !id.startsWith(ID_PREFIX)) return;
    const i = Number(id.slice(ID_PREFIX.length));
    if (parkedFlags[i] === 1) return;
    parkedFlags[i] = 1;
    if (++parked === target) reached();
  };

  const provider = providerAt(job.location, job.concurrency);
  if (job.wait === 'sleep') {
    // A sleep has parked once its wake-up checkpoint is recorded; its timer is armed right after.
    observeCalls<{ kind: string }>(provider, 'recordStep', (result, args) => {
      if (result.kind === 'recorded' && (args[1] as { name?: string }).name === 'cairn.sleep') mark(args[0]);
    });
  } else {
    // A recv has parked once its first look found no message; it then waits for a notification.
    observeCalls<{ kind: string }>(provider, 'recordRecv', (result, args) => {
      if (result.kind === 'empty') mark(args[0]);
    });
  }

  const bench = await openEngine(provider, { executorId: 'bench-memory', appVersion: 'bench-memory' });
  const { engine } = bench;
  try {
    const wf: Workflow<null, number> =
      job.wait === 'sleep'
        ? engine.workflow('park_sleep', async (ctx) => {
            await ctx.sleep(DAY_MS);
            return 0;
          })
        : engine.workflow('park_recv', async (ctx) => {
            await ctx.recv('never', DAY_MS);
            return 0;
          });

    const park = async (from: number, to: number): Promise<void> => {
      target = to;
      const all = new Promise<void>((resolve) => (reached = resolve));
      await mapLimit(
        Array.from({ length: to - from }, (_, k) => from + k),
        job.concurrency,
        (i) => wf.start(null, { id: `${ID_PREFIX}${i}` }),
      );
      await all;
      // Let every execution get from its last database call into its timer or wait.
      await sleep(100);
    };

    const initial = await reading();
    await park(0, job.warmup);
    const before = await reading();
    const t0 = performance.now();
    await park(job.warmup, total);
    const parkMs = performance.now() - t0;
    const after = await reading();
    bench.assertClean();
    return { gcExposed: gc !== undefined, initial, before, after, parkMs, pollIntervalMs: 'engine default' };
  } finally {
    await engine.close({ timeoutMs: 0 });
  }
}

const job = JSON.parse(process.argv[2] ?? '') as ParkJob;
main(job).then(
  (report) => {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
