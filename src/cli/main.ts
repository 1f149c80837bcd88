#!/usr/bin/env node
/**
 * The `cairn` command: see and steer workflows without writing code. It talks to the database
 * through a Client, so it needs none of the workflow code: actions that run a workflow (resume,
 * retry, fork, a schedule's trigger) hand it to a live engine that registers it.
 *
 * Exit codes: 0 done, 1 failed (a database error, a workflow not found, part of a bulk action,
 * not confirmed), 2 bad usage.
 */
import { CommanderError, Command } from 'commander';
import { CairnError, InvalidArgumentError } from '../engine/errors.js';
import { migrate } from '../providers/migrate.js';
import { adminCommands } from './admin.js';
import { serveDashboard } from '../dashboard/serve.js';
import { port, UsageError } from './args.js';
import { shell } from './shell.js';
import { workflowCommands } from './workflows.js';

async function main(argv: string[], out: (text: string) => void = (t) => process.stdout.write(`${t}\n`)): Promise<number> {
  const program = new Command('cairn')
    .description('See and steer Cairn workflows in a PostgreSQL or SQLite database.')
    .option('--database <url>', 'postgres://… or sqlite:<path> (default: $CAIRN_DATABASE_URL, else $DATABASE_URL)')
    .option('--schema <name>', 'the PostgreSQL schema (default: cairn)')
    .option('--json', 'print JSON for scripts instead of tables')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => out(s.trimEnd()), writeErr: (s) => process.stderr.write(s) });
  const sh = shell(program, out);

  program
    .command('migrate')
    .description('apply pending schema migrations')
    .action(async () => {
      await migrate(sh.target());
      sh.print({ migrated: true }, () => 'the schema is up to date');
    });
  workflowCommands(sh);
  adminCommands(sh);
  program
    .command('dashboard')
    .description('serve the web dashboard until interrupted (127.0.0.1 unless --host says otherwise)')
    .option('--host <address>', 'the address to listen on', '127.0.0.1')
    .option('--port <port>', 'the port (0: any free one)', '4000')
    .option('--base-path <path>', 'the path to serve under', '/')
    .option('--read-only', 'show no actions and refuse every change')
    .action(async (o: { host: string; port: string; basePath: string; readOnly?: boolean }) => {
      const served = await serveDashboard({ ...sh.target(), host: o.host, port: port('--port', o.port), basePath: o.basePath, readOnly: o.readOnly === true });
      sh.print({ url: served.url }, () => `cairn dashboard at ${served.url}${o.readOnly ? ' (read-only)' : ''}; Ctrl-C stops it`);
      await new Promise<void>((resolve) => {
        const stop = () => void served.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return sh.failed ? 1 : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    const usage = err instanceof UsageError || err instanceof InvalidArgumentError;
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`cairn: ${err instanceof CairnError ? `${err.code}: ` : ''}${message}\n`);
    return usage ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
