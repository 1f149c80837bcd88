#!/usr/bin/env node
/**
 * The `cairn` command: see and steer workflows without writing code. It talks to the database
 * through a Client, so it needs none of the workflow code: actions that run a workflow (resume,
 * retry) hand it to a live engine that registers it.
 *
 * Exit codes: 0 done, 1 failed (a database error, a workflow not found), 2 bad usage.
 */
import { CommanderError, Command, Option } from 'commander';
import { Client } from '../engine/client.js';
import { CairnError, InvalidArgumentError } from '../engine/errors.js';
import { migrate } from '../providers/migrate.js';
import { WORKFLOW_STATUSES, type ListWorkflowsFilter, type WorkflowStatus } from '../types.js';
import { age, fields, summary, table, time, toJson } from './format.js';

/** Bad usage: exit code 2. */
class UsageError extends Error {}

interface Globals {
  database?: string;
  schema?: string;
  json?: boolean;
}

async function main(argv: string[], out: (text: string) => void = (t) => process.stdout.write(`${t}\n`)): Promise<number> {
  const program = new Command('cairn')
    .description('See and steer Cairn workflows in a PostgreSQL or SQLite database.')
    .option('--database <url>', 'postgres://… or sqlite:<path> (default: $CAIRN_DATABASE_URL, else $DATABASE_URL)')
    .option('--schema <name>', 'the PostgreSQL schema (default: cairn)')
    .option('--json', 'print JSON for scripts instead of tables')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => out(s.trimEnd()), writeErr: (s) => process.stderr.write(s) });

  const globals = (): Globals => program.opts<Globals>();
  const print = (json: unknown, human: () => string) => out(globals().json ? toJson(json) : human());
  /** A list as JSON, or as a table with a row per item (`empty` said instead of an empty table). */
  const printRows = <T>(items: T[], header: string[], row: (item: T) => string[], empty?: string) =>
    print(items, () => (items.length === 0 && empty !== undefined ? empty : table(header, items.map(row))));
  const withClient = async <T>(fn: (client: Client) => Promise<T>): Promise<T> => {
    const client = await Client.open({ ...target(globals()), migrate: false });
    try {
      return await fn(client);
    } finally {
      await client.close();
    }
  };

  /** Runs an action on one workflow, then reports the status it is left in. */
  const steer = async (id: string, action: (client: Client) => Promise<unknown>) => {
    const status = await withClient(async (c) => (await action(c), (await c.getWorkflow(id)).status));
    print({ id, status }, () => `workflow '${id}' is ${status}${status === 'PENDING' ? '; a live engine that registers it adopts it at its next heartbeat' : ''}`);
  };

  program
    .command('migrate')
    .description('apply pending schema migrations')
    .action(async () => {
      await migrate(target(globals()));
      print({ migrated: true }, () => 'the schema is up to date');
    });

  const workflows = program.command('workflows').description('list, inspect and steer workflows');
  workflows
    .command('list')
    .description('stored workflows, newest first')
    .addOption(new Option('--status <status...>', 'only these statuses').choices([...WORKFLOW_STATUSES]))
    .option('--name <name>', 'only this workflow name')
    .option('--queue <queue>', 'only this queue')
    .option('--created-after <time>', 'an ISO time, or a duration ago such as 1h or 2d')
    .option('--created-before <time>', 'an ISO time, or a duration ago such as 30m')
    .option('--limit <n>', 'at most this many', '50')
    .addOption(new Option('--order <order>', 'by creation time').choices(['asc', 'desc']).default('desc'))
    .action(async (o: { status?: WorkflowStatus[]; name?: string; queue?: string; createdAfter?: string; createdBefore?: string; limit: string; order: 'asc' | 'desc' }) => {
      const filter: ListWorkflowsFilter = { limit: count('--limit', o.limit), order: o.order };
      if (o.status) filter.status = o.status;
      if (o.name !== undefined) filter.name = o.name;
      if (o.queue !== undefined) filter.queue = o.queue;
      if (o.createdAfter !== undefined) filter.createdAfter = instant('--created-after', o.createdAfter);
      if (o.createdBefore !== undefined) filter.createdBefore = instant('--created-before', o.createdBefore);
      const list = await withClient((c) => c.listWorkflows(filter));
      printRows(
        list,
        ['ID', 'NAME', 'STATUS', 'QUEUE', 'EXECUTOR', 'VERSION', 'CREATED'],
        (w) => [w.id, w.name, w.status, w.queue ?? '', w.executorId ?? '', w.appVersion ?? '', time(w.createdAt)],
        'no workflows match',
      );
    });
  workflows
    .command('get <id>')
    .description('one workflow: status, input, output or error')
    .action(async (id: string) => {
      const w = await withClient((c) => c.getWorkflow(id));
      print(w, () =>
        fields([
          ['id', w.id], ['name', w.name], ['status', w.status], ['queue', w.queue ?? ''], ['executor', w.executorId ?? ''],
          ['app version', w.appVersion ?? ''], ['parent', w.parentId ?? ''], ['created', time(w.createdAt)], ['started', time(w.startedAt)],
          ['completed', time(w.completedAt)], ['recoveries', String(w.recoveryAttempts)], ['input', summary(w.input, 200)],
          ...(w.status === 'SUCCESS' ? [['output', summary(w.output, 200)] as [string, string]] : []),
          ...(w.error !== undefined && w.error !== null ? [['error', summary(w.error, 200)] as [string, string]] : []),
          ...(w.problem ? [['problem', w.problem.message] as [string, string]] : []),
        ]),
      );
    });
  workflows
    .command('steps <id>')
    .description("a workflow's checkpoints in order")
    .action(async (id: string) => {
      const steps = await withClient((c) => c.listSteps(id));
      printRows(
        steps,
        ['STEP', 'NAME', 'ATTEMPTS', 'MS', 'RESULT'],
        (s) => [
          String(s.stepId), s.name, String(s.attempts), String(s.completedAt.getTime() - s.startedAt.getTime()),
          s.error !== null && s.error !== undefined ? `error ${summary(s.error)}` : s.childId ? `child ${s.childId}` : summary(s.output),
        ],
        `workflow '${id}' has no checkpoints`,
      );
    });
  workflows
    .command('cancel <id>')
    .description('cancel a workflow and its unfinished children')
    .action((id: string) => steer(id, (c) => c.cancel(id)));
  workflows
    .command('resume <id>')
    .description('run a CANCELLED or ERROR workflow again from its checkpoints, on a live engine that registers it')
    .action((id: string) => steer(id, (c) => c.resume(id)));
  workflows
    .command('retry <id>')
    .description('run a failed or cancelled workflow again under its id, from the failed step or --from-step')
    .option('--from-step <n>', 'the first step to run again')
    .action(async (id: string, o: { fromStep?: string }) => {
      const fromStep = o.fromStep === undefined ? undefined : count('--from-step', o.fromStep);
      await steer(id, (c) => c.retry(id, fromStep === undefined ? {} : { fromStep }));
    });

  program
    .command('executors')
    .description('the engines of the fleet: alive, heartbeat age, pending workflows')
    .action(async () => {
      printRows(
        await withClient((c) => c.listExecutors()),
        ['ID', 'HOST', 'PID', 'VERSION', 'ALIVE', 'HEARTBEAT', 'PENDING'],
        (e) => [e.id, e.hostname, String(e.pid), e.appVersion, e.alive ? 'yes' : 'no', `${age(e.heartbeatAt)} ago`, String(e.pending)],
      );
    });
  program
    .command('versions')
    .description('app versions seen, with live executors and pending workflows')
    .action(async () => {
      printRows(
        await withClient((c) => c.listVersions()),
        ['VERSION', 'EXECUTORS', 'PENDING', 'FIRST SEEN', 'LAST SEEN'],
        (v) => [v.appVersion, String(v.executors), String(v.pending), time(v.firstSeenAt), time(v.lastSeenAt)],
      );
    });
  program
    .command('export <id>')
    .description("a workflow's history as JSON, for checkReplay from cairn/testing")
    .action(async (id: string) => {
      const history = await withClient((c) => c.exportHistory(id));
      out(JSON.stringify(history, null, 2));
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    const usage = err instanceof UsageError || err instanceof InvalidArgumentError;
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`cairn: ${err instanceof CairnError ? `${err.code}: ` : ''}${message}\n`);
    return usage ? 2 : 1;
  }
}

/** The database and schema from the options or the environment. */
function target(g: Globals): { database: string; schema?: string } {
  const database = g.database ?? process.env.CAIRN_DATABASE_URL ?? process.env.DATABASE_URL;
  if (!database) throw new UsageError('no database: pass --database <url>, or set CAIRN_DATABASE_URL or DATABASE_URL');
  return { database, ...(g.schema !== undefined && { schema: g.schema }) };
}

function count(flag: string, text: string): number {
  if (!/^[1-9]\d{0,8}$/.test(text)) throw new UsageError(`${flag} must be a positive whole number, got '${text}'`);
  return Number(text);
}

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** An ISO time, or a duration ago ("90s", "15m", "1h", "7d"). */
function instant(flag: string, text: string): Date {
  const ago = /^(\d+)([smhd])$/.exec(text);
  if (ago) return new Date(Date.now() - Number(ago[1]) * UNITS[ago[2]!]!);
  const at = /^\d{4}-\d{2}-\d{2}/.test(text) ? new Date(text) : new Date(NaN);
  if (Number.isNaN(at.getTime())) throw new UsageError(`${flag} must be an ISO time (2026-01-31T12:00:00Z) or a duration ago (30m, 1h, 7d), got '${text}'`);
  return at;
}

process.exitCode = await main(process.argv.slice(2));
