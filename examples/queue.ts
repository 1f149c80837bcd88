/**
 * Queues: a worker engine drains a queue within its limits while a Client (as a web server
 * would) enqueues work by name and waits for the results.
 *
 *   npm run demo:queue                                (SQLite file ./cairn-queue-demo.db)
 *   DATABASE_URL=postgres://... npm run demo:queue
 */
import { rmSync } from 'node:fs';
import { Client, Engine } from '../src/index.js';

const database = process.env.DATABASE_URL ?? 'sqlite:./cairn-queue-demo.db';
if (database.startsWith('sqlite:')) {
  for (const suffix of ['', '-wal', '-shm']) rmSync(`./cairn-queue-demo.db${suffix}`, { force: true });
}

const engine = await Engine.open({ database });
let running = 0;
let peak = 0;
const thumbnail = engine.workflow('thumbnail', async (ctx, image: { name: string; tenant: string }) => {
  const size = await ctx.step('render', async () => {
    peak = Math.max(peak, ++running);
    await new Promise((resolve) => setTimeout(resolve, 50));
    running--;
    return image.name.length * 100;
  });
  return `${image.tenant}/${image.name}: ${size} bytes`;
});
engine.queue('thumbnails', { concurrency: 3, rateLimit: { limit: 20, periodMs: 1_000 } });
await engine.recover();
await engine.launch();

// The Client registers no workflow: it enqueues by name, as another process would.
const client = await Client.open({ database });
const started = Date.now();
const handles = await Promise.all(
  ['a.png', 'b.png', 'c.png', 'd.png', 'e.png', 'f.png'].map((name, i) =>
    client.enqueue<string>(thumbnail.name, { name, tenant: i % 2 ? 'acme' : 'globex' }, { queue: 'thumbnails', priority: i % 3 }),
  ),
);
for (const h of handles) console.log(await h.result());
console.log(`6 workflows in ${Date.now() - started} ms, at most ${peak} running at once (limit 3)`);

// Deduplication: a second enqueue with the same dedupId while the first is unfinished is refused.
const first = await thumbnail.start({ name: 'logo.png', tenant: 'acme' }, { queue: 'thumbnails', dedupId: 'logo' });
const again = await thumbnail.start({ name: 'logo.png', tenant: 'acme' }, { queue: 'thumbnails', dedupId: 'logo', onDuplicate: 'return-existing' });
console.log(`dedup: second enqueue returned the same workflow: ${first.id === again.id}`);
await first.result();

await client.close();
await engine.close();
