import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { bytes, ms } from '../format.js';
import type { ParkJob, ParkReport, ParkWait } from '../parked-child.js';
import { withStore, type Row, type Scenario } from '../scenario.js';
import { round } from '../stats.js';

const CHILD = fileURLToPath(new URL('../parked-child.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
/** The project's target: a parked workflow costs at most 4 KiB. */
const TARGET_BYTES = 4096;
/** Starts in flight while parking (and the child's pg.Pool max). */
const CONCURRENCY = 16;

const CALLS: Record<ParkWait, string> = { sleep: 'ctx.sleep(1 day)', recv: 'ctx.recv(topic, 1 day)' };

/** Runs the parking child on a job and returns its report. */
function runChild(job: ParkJob): Promise<ParkReport> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', CHILD, JSON.stringify(job)],
      { cwd: ROOT, maxBuffer: 16 * 1024 * 1024, timeout: 10 * 60_000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`the memory child failed: ${err.message}\n${stderr}`));
        const line = stdout.trim().split('\n').pop() ?? '';
        try {
          resolve(JSON.parse(line) as ParkReport);
        } catch {
          reject(new Error(`the memory child printed no report: ${JSON.stringify(stdout.slice(-500))}\n${stderr}`));
        }
      },
    );
  });
}

/**
 * 6. Memory per parked workflow: a child process (node --expose-gc) takes a reading after full
 * collections, parks `warmup` workflows (as many as it measures, in a full run) and reads again,
 * parks N more in a long `ctx.sleep` (or a long `ctx.recv` that gets no message), takes a third
 * reading, and closes the engine with `{ timeoutMs: 0 }`. The growth of rss and of heapUsed over the
 * N, divided by N, is each held to 4 KiB (ratio to 4096 bytes): what one more parked workflow costs
 * once the process has reached its working size. The first batch's rss per workflow, which also
 * carries V8's one-time growth of its young generation, is reported beside it.
 */
export const parkedMemory: Scenario = {
  id: '6',
  name: 'parked memory',
  async run(ctx) {
    const { workflows: n, warmup } = ctx.budgets.memory;
    const rows: Row[] = [];
    for (const wait of ['sleep', 'recv'] as const) {
      ctx.progress(`child process: ${warmup} + ${n} workflows parked in ${CALLS[wait]}`);
      const report = await withStore(ctx, `parked ${wait}`, (store) =>
        runChild({ location: store.location, wait, workflows: n, warmup, concurrency: CONCURRENCY }),
      );
      const heap = (report.after.heapUsed - report.before.heapUsed) / n;
      const rss = (report.after.rss - report.before.rss) / n;
      const external = (report.after.external - report.before.external) / n;
      const firstRss = (report.before.rss - report.initial.rss) / warmup;
      const common =
        `N=${n.toLocaleString('en-US')} after ${warmup.toLocaleString('en-US')} warm-up (kept parked); ${report.gcExposed ? 'readings after gc()' : 'gc not exposed'}; parked in ${ms(report.parkMs)}` +
        (wait === 'recv' ? '; default pollIntervalMs (each parked recv polls on its own, backing off)' : '');
      const data = {
        wait,
        workflows: n,
        warmup,
        gcExposed: report.gcExposed,
        parkMs: round(report.parkMs),
        pollIntervalMs: report.pollIntervalMs,
        initial: report.initial,
        before: report.before,
        after: report.after,
        heapUsedBytesPerWorkflow: round(heap, 1),
        rssBytesPerWorkflow: round(rss, 1),
        externalBytesPerWorkflow: round(external, 1),
      };
      rows.push(
        {
          id: '6',
          scenario: 'parked memory',
          measure: `${CALLS[wait]}: heapUsed per workflow`,
          value: bytes(heap),
          ratio: { value: heap / TARGET_BYTES, of: 'bytes / 4096', target: { op: '<=', value: 1 } },
          note: `${common}; external ${bytes(external)} per workflow`,
          status: 'measured',
          data,
        },
        {
          id: '6',
          scenario: 'parked memory',
          measure: `${CALLS[wait]}: rss per workflow`,
          value: bytes(rss),
          ratio: { value: rss / TARGET_BYTES, of: 'bytes / 4096', target: { op: '<=', value: 1 } },
          note:
            `rss ${bytes(report.before.rss)} -> ${bytes(report.after.rss)} in the child; ` +
            `the first ${warmup.toLocaleString('en-US')}, from ${bytes(report.initial.rss)}: ${bytes(firstRss)} per workflow`,
          status: 'measured',
          data: { wait, rssBytesPerWorkflow: round(rss, 1), firstBatchRssBytesPerWorkflow: round(firstRss, 1) },
        },
      );
    }
    return rows;
  },
};
