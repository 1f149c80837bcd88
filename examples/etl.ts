/**
 * A pipeline: extract → three transforms in parallel → an approval from outside → load.
 *
 *   npm run demo:etl                                  (SQLite file ./cairn-etl-demo.db)
 *   DATABASE_URL=postgres://... npm run demo:etl
 *
 * The pipeline runs as one workflow. Its three transforms depend only on `extract`, so they run
 * at the same time; `approve` is an external task: it asks for an approval, then waits until
 * `completeTask` is called, here by a Client standing for the web handler behind an "Approve"
 * button. The timeline at the end is read back from the checkpoints.
 */
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Engine, TaskNotWaitingError } from '../src/index.js';

const database = process.env.DATABASE_URL ?? 'sqlite:./cairn-etl-demo.db';
if (database.startsWith('sqlite:')) {
  for (const suffix of ['', '-wal', '-shm']) rmSync(`./cairn-etl-demo.db${suffix}`, { force: true });
}

interface Sale {
  sku: string;
  quantity: number;
  cents: number;
  refunded: boolean;
}

/** Stands for the email or chat message the approval task sends to the approver. */
let notifyApprover!: (message: string) => void;
const inbox = new Promise<string>((resolve) => (notifyApprover = resolve));

const engine = await Engine.open({ database });
const etl = engine
  .dag<{ day: string }>('nightly_etl', { maxParallel: 4 })
  .task('extract', async ({ input }): Promise<Sale[]> => {
    await sleep(100);
    const skus = ['TENT-2P', 'STOVE', 'TENT-2P', 'LAMP', 'STOVE', 'TENT-2P', 'MAT'];
    return skus.map((sku, i) => ({ sku, quantity: 1 + (i % 3), cents: 1_999 + 1_000 * i + input.day.length, refunded: i === 4 }));
  })
  .task('revenue', async ({ deps }) => {
    await sleep(300);
    return deps.extract.filter((s) => !s.refunded).reduce((sum, s) => sum + s.quantity * s.cents, 0);
  }, { dependsOn: ['extract'] })
  .task('top_sku', async ({ deps }) => {
    await sleep(250);
    const units = new Map<string, number>();
    for (const s of deps.extract) units.set(s.sku, (units.get(s.sku) ?? 0) + s.quantity);
    return [...units.entries()].sort((a, b) => b[1] - a[1])[0]![0];
  }, { dependsOn: ['extract'] })
  .task('refunds', async ({ deps }) => (await sleep(200), deps.extract.filter((s) => s.refunded).length), { dependsOn: ['extract'] })
  .task('approve', ({ deps }) => {
    notifyApprover(`revenue $${(deps.revenue / 100).toFixed(2)}, top ${deps.top_sku}, ${deps.refunds} refund(s): approve?`);
    return 'asked finance';
  }, { dependsOn: ['revenue', 'top_sku', 'refunds'], external: true, timeoutMs: 60_000 })
  .task('load', async ({ deps }) => {
    await sleep(50);
    return { loaded: ['revenue', 'top_sku', 'refunds'], approvedBy: (deps.approve as { by: string }).by };
  }, { dependsOn: ['approve'] })
  .build();
await engine.recover();

console.log(`1. pipeline '${etl.name}', version ${etl.version}, tasks: ${etl.tasks.join(', ')}`);
const run = await etl.start({ day: '2024-06-01' }, { id: 'etl-2024-06-01' });

// The approver reads the request; the web handler behind the button (here a Client) completes the task.
console.log(`2. the approver receives: "${await inbox}"`);
const client = await Client.open({ database });
console.log(`   task 'approve' is ${await client.getEvent(run.id, 'cairn.task:approve', 10_000)}; approving`);
await client.completeTask(run.id, 'approve', { by: 'ada@example.com' });
try {
  await client.completeTask(run.id, 'approve', { by: 'mallory@example.com' });
} catch (err) {
  if (!(err instanceof TaskNotWaitingError)) throw err;
  console.log(`   a second approval is refused (${err.code}, ${err.reason})`);
}

const result = await run.result();
console.log(`3. run ${run.id} ended: ${JSON.stringify(result.outputs.load)}`);
const steps = await engine.listSteps(run.id);
const t0 = steps[0]!.startedAt.getTime();
console.log('   timeline from the checkpoints (step id, name, ms from the start):');
for (const s of [...steps].sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime())) {
  if (s.name.startsWith('cairn.')) continue;
  const from = s.startedAt.getTime() - t0;
  const to = s.completedAt.getTime() - t0;
  console.log(`   ${String(s.stepId).padStart(3)} ${s.name.padEnd(8)} ${String(from).padStart(5)}–${String(to).padEnd(5)} ${'·'.repeat(Math.round(from / 20))}${'█'.repeat(Math.max(1, Math.round((to - from) / 20)))}`);
}
console.log(`   first checkpoint: ${steps[0]!.name} (the shape this run had)`);

await client.close();
await engine.close();
