/**
 * A crash, for real, in the middle of an order.
 *
 *   npm run demo
 *
 * The parent process runs the story in three acts, each in its own OS process:
 *   1. a worker starts the `process_order` workflow and is killed with SIGKILL right after the
 *      card is charged, before the confirmation email goes out;
 *   2. a fresh worker opens the same SQLite file, registers the same workflow and calls
 *      `engine.recover()`, which finishes the order from its checkpoints;
 *   3. the parent counts, from the database, how many times each step body ran.
 *
 * Every step body appends a row to `demo_side_effects`, a table of the demo's own in the same
 * file, written through a separate connection: that table is the outside world the steps act on.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Engine, type Context } from '../src/index.js';

const DB_FILE = './cairn-demo.db';
const DATABASE = `sqlite:${DB_FILE}`;
/** Both worker processes must agree on the version, or recovery would not pick the workflow up. */
const APP_VERSION = 'order-demo-1';
const EXECUTOR_ID = 'order-demo';
const ORDER_ID = 'order-1001';
const CRASH_ENV = 'CAIRN_DEMO_CRASH_AFTER';

interface Order {
  orderId: string;
  sku: string;
  quantity: number;
  amountCents: number;
  email: string;
}

const dim = (s: string): string => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[22m` : s);
const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[22m` : s);

function openSideTable(): Database.Database {
  const db = new Database(DB_FILE, { timeout: 5_000 });
  db.pragma('journal_mode = WAL');
  db.exec(`CREATE TABLE IF NOT EXISTS demo_side_effects (
    step TEXT NOT NULL, workflow_id TEXT NOT NULL, pid INTEGER NOT NULL, at INTEGER NOT NULL)`);
  return db;
}

/** Opens the engine and registers the workflow; both workers call this, so they run the same code. */
async function openEngine() {
  const side = openSideTable();
  const effect = side.prepare('INSERT INTO demo_side_effects (step, workflow_id, pid, at) VALUES (?, ?, ?, ?)');
  const sideEffect = (step: string, workflowId: string, what: string): void => {
    effect.run(step, workflowId, process.pid, Date.now());
    console.log(`     ${what}`);
  };

  const engine = await Engine.open({ database: DATABASE, appVersion: APP_VERSION, executorId: EXECUTOR_ID });
  const processOrder = engine.workflow('process_order', async (ctx: Context, order: Order) => {
    const reservation = await ctx.step('reserve_inventory', () => {
      sideEffect('reserve_inventory', ctx.workflowId, `reserved ${order.quantity} x ${order.sku}`);
      return { reservationId: `res_${randomUUID().slice(0, 8)}` };
    });
    const charge = await ctx.step('charge_card', () => {
      sideEffect('charge_card', ctx.workflowId, `charged $${(order.amountCents / 100).toFixed(2)}`);
      return { chargeId: `ch_${randomUUID().slice(0, 8)}` };
    });
    // The charge checkpoint is committed once ctx.step returns; dying here is the worst moment
    // for the customer, who has paid and heard nothing. (Crash injection, not workflow logic.)
    if (process.env[CRASH_ENV] === 'charge_card') {
      console.log(`     ${bold('crashing')} (SIGKILL) before the confirmation email`);
      process.kill(process.pid, 'SIGKILL');
    }
    const email = await ctx.step('send_confirmation', () => {
      sideEffect('send_confirmation', ctx.workflowId, `emailed ${order.email}`);
      return { messageId: `msg_${randomUUID().slice(0, 8)}` };
    });
    return { ...reservation, ...charge, ...email };
  });
  return { engine, side, processOrder };
}

/** Act 1: start the order and die after the charge. */
async function crashingWorker(): Promise<void> {
  const { processOrder } = await openEngine();
  const order: Order = { orderId: ORDER_ID, sku: 'TENT-2P', quantity: 1, amountCents: 24_900, email: 'ada@example.com' };
  const handle = await processOrder.start(order, { id: ORDER_ID });
  await handle.result();
  throw new Error('the worker should have been killed before the order finished');
}

/** Act 2: a new process finishes whatever the dead one left PENDING. */
async function recoveringWorker(): Promise<void> {
  const { engine, side } = await openEngine();
  const handles = await engine.recover();
  console.log(`     recover() found ${handles.length} unfinished workflow${handles.length === 1 ? '' : 's'}`);
  for (const handle of handles) {
    const result = await handle.result();
    const info = await handle.status();
    console.log(`     ${handle.id}: ${info.status} in the second process, result ${JSON.stringify(result)}`);
  }
  await engine.close();
  side.close();
}

function runWorker(mode: 'crash' | 'recover'): Promise<{ code: number | null; signal: NodeJS.Signals | null; pid: number | undefined }> {
  const env = { ...process.env };
  delete env[CRASH_ENV];
  if (mode === 'crash') env[CRASH_ENV] = 'charge_card';
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), mode], { stdio: 'inherit', env });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal, pid: child.pid }));
  });
}

async function main(): Promise<number> {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(DB_FILE + suffix, { force: true });
  openSideTable().close();
  console.log(bold(`Cairn demo: one order, one crash, on ${DATABASE}`));

  console.log(`\n1. worker starts workflow ${ORDER_ID}`);
  const first = await runWorker('crash');
  if (first.signal !== 'SIGKILL') {
    console.error(`   expected the worker to die of SIGKILL, but it exited with code ${first.code} signal ${first.signal}`);
    return 1;
  }
  const observer = await Engine.open({ database: DATABASE, appVersion: APP_VERSION, executorId: EXECUTOR_ID });
  const stored = await observer.getWorkflow(ORDER_ID);
  const checkpoints = (await observer.listSteps(ORDER_ID)).map((s) => s.name);
  await observer.close();
  console.log(`   worker ${first.pid} was killed by ${first.signal}`);
  console.log(dim(`     ${ORDER_ID} is ${stored.status} with checkpoints: ${checkpoints.join(', ')}`));

  console.log('\n2. a new worker opens the database and calls engine.recover()');
  const second = await runWorker('recover');
  if (second.code !== 0) {
    console.error(`   the recovering worker failed (code ${second.code}, signal ${second.signal})`);
    return 1;
  }

  const side = new Database(DB_FILE, { readonly: true });
  const counts = new Map(
    (side.prepare('SELECT step, count(*) AS n FROM demo_side_effects WHERE workflow_id = ? GROUP BY step').all(ORDER_ID) as { step: string; n: number }[]).map(
      (r) => [r.step, r.n],
    ),
  );
  side.close();
  const ran = (step: string): number => counts.get(step) ?? 0;
  console.log(`\n3. step bodies run, counted from demo_side_effects:`);
  console.log(dim(`     reserve_inventory ${ran('reserve_inventory')}, charge_card ${ran('charge_card')}, send_confirmation ${ran('send_confirmation')}`));
  if (ran('charge_card') !== 1) {
    console.error(bold(`   charge ran ${ran('charge_card')} times: the customer was charged ${ran('charge_card') === 0 ? 'never' : 'twice or more'}`));
    return 1;
  }
  if (ran('send_confirmation') !== 1) {
    console.error(bold(`   the confirmation email ran ${ran('send_confirmation')} times, expected once`));
    return 1;
  }
  console.log(bold('   charge ran exactly once.'));
  return 0;
}

const mode = process.argv[2];
if (mode === 'crash') await crashingWorker();
else if (mode === 'recover') await recoveringWorker();
else process.exitCode = await main();
