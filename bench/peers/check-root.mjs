// Cairn is measured from this repository's source, which needs the repository's own dependencies.
import { existsSync } from 'node:fs';

const missing = ['pg', 'better-sqlite3', 'superjson', 'cron-parser', 'p-retry'].filter(
  (name) => !existsSync(new URL(`../../node_modules/${name}/package.json`, import.meta.url)),
);
if (missing.length > 0) {
  process.stderr.write(`The repository's dependencies are not installed (missing: ${missing.join(', ')}).\nRun \`npm ci\` at the repository root first.\n`);
  process.exit(1);
}
