/**
 * Cairn's benchmark harness: `npm run bench` (add `-- --quick` for a run of about two minutes).
 *
 * Every figure is measured against the database's own floor — the same driver doing bare
 * single-row insert commits — in the same run, and reported as a ratio to it, because absolute
 * numbers drift with whatever else the machine is doing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, USAGE, type Args } from './lib/args.js';
import { cairnVersion, gitCommit, machine, packageVersion, sqliteVersion } from './lib/environment.js';
import type { Budgets, Row, ScenarioContext, Shared } from './lib/scenario.js';
import { scenarios } from './lib/scenarios/index.js';
import { renderTable } from './lib/table.js';
import { PostgresTarget, SqliteTarget, type Target, type TargetKind } from './lib/targets.js';

const QUICK: Budgets = {
  concurrency: [1, 8, 32, 64],
  floorSequential: { warmup: 50, samples: 300, maxMs: 2_000 },
  load: { warmupMs: 300, measureMs: 1_500 },
  paired: { warmupMs: 300, measureMs: 2_000, rounds: 4 },
  workflowSteps: 10,
  sequentialWorkflows: { warmup: 10, samples: 100, maxMs: 3_000, floorPerSample: 3 },
  recovery: { workflows: 1_000, concurrency: 64, baseline: { warmupMs: 300, measureMs: 1_000 } },
  queue: { workflows: 2_000, poolSize: 64, floor: { warmupMs: 200, measureMs: 800 }, latency: { warmup: 10, samples: 100, maxMs: 2_000, floorPerSample: 3 } },
  memory: { workflows: 2_000, warmup: 10_000 },
  wake: { warmup: 10, samples: 200, maxMs: 2_000, floorPerSample: 3 },
};

const FULL: Budgets = {
  concurrency: [1, 8, 32, 64],
  floorSequential: { warmup: 200, samples: 2_000, maxMs: 20_000 },
  load: { warmupMs: 2_000, measureMs: 10_000 },
  paired: { warmupMs: 2_000, measureMs: 12_000, rounds: 12 },
  workflowSteps: 10,
  sequentialWorkflows: { warmup: 30, samples: 600, maxMs: 30_000, floorPerSample: 3 },
  recovery: { workflows: 10_000, concurrency: 64, baseline: { warmupMs: 2_000, measureMs: 5_000 } },
  queue: { workflows: 10_000, poolSize: 64, floor: { warmupMs: 1_000, measureMs: 4_000 }, latency: { warmup: 30, samples: 500, maxMs: 15_000, floorPerSample: 3 } },
  memory: { workflows: 10_000, warmup: 10_000 },
  wake: { warmup: 30, samples: 1_000, maxMs: 20_000, floorPerSample: 3 },
};

/** Checkpoint group commit, as every scenario but the one extra row of scenario 3 runs it. */
const GROUP_COMMIT = 'on (default)';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));

interface TargetReport {
  headline?: string;
  concurrencyNote?: string;
  info?: Record<string, unknown>;
  skipped?: string;
  /** Wall time of each scenario, by id. */
  scenarioSeconds?: Record<string, number>;
  rows: Row[];
}

let active: Target | undefined;
let interrupted = false;

async function openTarget(kind: TargetKind): Promise<Target> {
  return kind === 'postgres' ? PostgresTarget.create(DATABASE_URL) : new SqliteTarget();
}

function redact(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

async function runTarget(kind: TargetKind, args: Args, budgets: Budgets): Promise<TargetReport> {
  let target: Target;
  try {
    target = await openTarget(kind);
  } catch (err) {
    const reason = `${kind} is not available at ${redact(DATABASE_URL)}: ${(err as Error).message}`;
    if (args.explicitProvider) throw new Error(reason, { cause: err });
    process.stderr.write(`\n*** ${kind} SKIPPED: ${reason}; set DATABASE_URL to measure it\n\n`);
    return { skipped: reason, rows: [] };
  }
  active = target;
  const rows: Row[] = [];
  const scenarioSeconds: Record<string, number> = {};
  try {
    const shared: Shared = { floorRate: new Map() };
    for (const scenario of scenarios) {
      if (interrupted) break;
      if (args.only && !args.only.includes(scenario.id)) continue;
      const ctx: ScenarioContext = {
        target,
        budgets,
        shared,
        progress: (message) => process.stderr.write(`[${kind}] ${scenario.id} ${scenario.name}: ${message}\n`),
      };
      const t0 = performance.now();
      try {
        rows.push(...(await scenario.run(ctx)));
        scenarioSeconds[scenario.id] = Math.round((performance.now() - t0) / 100) / 10;
      } catch (err) {
        if (interrupted) break;
        process.exitCode = 1;
        const message = err instanceof Error ? err.message : String(err);
        process.stderr.write(`[${kind}] ${scenario.id} ${scenario.name} FAILED: ${err instanceof Error ? err.stack : message}\n`);
        rows.push({ id: scenario.id, scenario: scenario.name, measure: 'failed', value: 'error', note: message, status: 'error' });
      }
    }
  } finally {
    active = undefined;
    await target.teardown();
  }
  const notes = [
    target.concurrencyNote,
    `ratios: scenarios 2, 3, 4 and 7 time their floor on the same connections as the engine, interleaved with it or just before and after (scenario 1's floor, measured alone, is in the JSON next to each); a ${budgets.workflowSteps}-step workflow makes ${budgets.workflowSteps + 2} commits (start, steps, completion); scenario 5 divides by the same engine's fresh workflows, scenario 6 by its 4 KiB target`,
    `group commit: ${GROUP_COMMIT}; scenario 3 measures C=${Math.max(...budgets.concurrency)} once more with groupCommit: false`,
  ];
  process.stdout.write(`\n${renderTable(`${kind} — ${target.headline}${args.quick ? ' — quick run' : ''}`, rows, notes)}\n`);
  return { headline: target.headline, concurrencyNote: target.concurrencyNote, info: target.info, scenarioSeconds, rows };
}

async function main(): Promise<void> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const budgets = args.quick ? QUICK : FULL;
  const started = new Date();
  const t0 = performance.now();
  const loadStart = os.loadavg();
  process.stderr.write(`cairn bench (${args.quick ? 'quick' : 'full'}): ${args.providers.join(', ')}\n`);

  const reports: Partial<Record<TargetKind, TargetReport>> = {};
  for (const kind of args.providers) reports[kind] = await runTarget(kind, args, budgets);

  const wallSeconds = (performance.now() - t0) / 1000;
  const pgInfo = reports.postgres?.info as { server?: string; settings?: Record<string, string> } | undefined;
  const sqliteInfo = reports.sqlite?.info;
  const report = {
    benchmark: 'cairn',
    mode: args.quick ? 'quick' : 'full',
    date: started.toISOString(),
    wallSeconds: Math.round(wallSeconds * 10) / 10,
    commit: gitCommit(),
    node: process.version,
    machine: { ...machine(), loadAverage: { start: loadStart, end: os.loadavg() } },
    versions: {
      cairn: cairnVersion(),
      postgresServer: pgInfo?.server ?? null,
      sqlite: sqliteVersion(),
      pg: packageVersion('pg'),
      betterSqlite3: packageVersion('better-sqlite3'),
    },
    settings: {
      groupCommit: GROUP_COMMIT,
      groupCommitOff: `scenario 3 only: C=${Math.max(...budgets.concurrency)} again with PostgresProvider({ ..., groupCommit: false }) / SqliteProvider({ path, groupCommit: false })`,
      budgets,
      postgres: {
        url: redact(DATABASE_URL),
        poolSize: 'pg.Pool max = C at concurrency C, for the floor and the engine alike (scenario 3: one pool shared by both); max = 1 for sequential latency; max = 64 for recovery',
        server: pgInfo?.settings ?? null,
      },
      sqlite: {
        driver: 'better-sqlite3; the engine uses one SqliteProvider connection, the floor its own connection with the same pragmas (on the same file in scenarios 2 and 3)',
        concurrency: 'C async loops interleaving on one connection; each floor insert a separate fsync\'d autocommit',
        ...(sqliteInfo ?? { synchronous: 'FULL', journal_mode: 'wal' }),
      },
    },
    results: reports,
  };
  const out = args.out ? resolve(args.out) : resolve(RESULTS_DIR, `${started.toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`\nJSON: ${out}\nwall time: ${wallSeconds.toFixed(1)} s\n`);
}

// An interrupted run still drops its database and temporary files.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`\n${signal}: dropping the bench database and temporary files\n`);
    const target = active;
    active = undefined;
    void (target ? target.teardown() : Promise.resolve())
      .catch(() => undefined)
      .finally(() => process.exit(130));
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
