/** What every command of the `cairn` program shares: its output, the global options and a client. */
import type { Command } from 'commander';
import { Client } from '../engine/client.js';
import { target } from './args.js';
import { table, toJson } from './format.js';

export interface Globals {
  database?: string;
  schema?: string;
  json?: boolean;
}

export interface Shell {
  readonly program: Command;
  out(text: string): void;
  /** `--json` was given. */
  json(): boolean;
  /** The database and schema to use, from the options or the environment. */
  target(): { database: string; schema?: string };
  /** JSON for scripts, or the human rendering. */
  print(json: unknown, human: () => string): void;
  /** A list as JSON, or as a table with a row per item (`empty` said instead of an empty table). */
  printRows<T>(items: T[], header: string[], row: (item: T) => string[], empty?: string): void;
  /** Runs `fn` with a client on the database, closed afterwards. */
  withClient<T>(fn: (client: Client) => Promise<T>): Promise<T>;
  /** Some of the work failed (after it was reported): the command exits with code 1. */
  markFailed(): void;
  readonly failed: boolean;
}

export function shell(program: Command, out: (text: string) => void): Shell {
  const globals = (): Globals => program.opts<Globals>();
  const print = (json: unknown, human: () => string) => out(globals().json ? toJson(json) : human());
  let failed = false;
  return {
    get failed() {
      return failed;
    },
    markFailed: () => void (failed = true),
    program,
    out,
    json: () => globals().json === true,
    target: () => target(globals()),
    print,
    printRows: (items, header, row, empty) => print(items, () => (items.length === 0 && empty !== undefined ? empty : table(header, items.map(row)))),
    async withClient(fn) {
      const client = await Client.open({ ...target(globals()), migrate: false });
      try {
        return await fn(client);
      } finally {
        await client.close();
      }
    },
  };
}
