/**
 * Bulk actions of the `cairn` command: the workflows a filter selects are listed first (by keyset
 * pages), the user confirms unless `--yes`, then each is acted on with a progress bar on standard
 * error. A workflow the action fails on is reported and the rest go on.
 */
import { createInterface } from 'node:readline';
import type { Client } from '../engine/client.js';
import type { ListWorkflowsFilter, WorkflowInfo } from '../types.js';
import { printable } from './format.js';

/** Most workflows one bulk command acts on; narrow the filter for more. */
export const MAX_BULK = 100_000;
const PAGE = 500;

/** The ids a filter selects, oldest first; refuses more than MAX_BULK. */
export async function selectIds(client: Client, filter: ListWorkflowsFilter): Promise<string[]> {
  const ids: string[] = [];
  let last: WorkflowInfo | undefined;
  for (;;) {
    const page = await client.listWorkflows({ ...filter, order: 'asc', limit: PAGE, ...(last && { after: last }) });
    for (const w of page) ids.push(w.id);
    if (ids.length > MAX_BULK) throw new Error(`the filter selects more than ${MAX_BULK} workflows; narrow it`);
    if (page.length < PAGE) return ids;
    last = page.at(-1);
  }
}

/** Asks `question` on the terminal (or whatever stdin is); true only for an answer starting with y. */
export async function confirm(question: string): Promise<boolean> {
  process.stderr.write(`${question} [y/N] `);
  const rl = createInterface({ input: process.stdin, terminal: false });
  try {
    for await (const line of rl) return /^y(es)?$/i.test(line.trim());
    return false;
  } finally {
    rl.close();
  }
}

/**
 * A progress bar on standard error: redrawn in place on a terminal, else one line per tenth so
 * logs show it moving.
 */
export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private shownTenth = -1;

  constructor(
    private readonly label: string,
    private readonly total: number,
  ) {}

  update(done: number, failed = 0): void {
    const tenth = this.total === 0 ? 10 : Math.floor((done * 10) / this.total);
    if (!this.tty && tenth === this.shownTenth) return;
    this.shownTenth = tenth;
    const width = 30;
    const filled = this.total === 0 ? width : Math.round((done / this.total) * width);
    const line = `${this.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${this.total}${failed ? ` (${failed} failed)` : ''}`;
    process.stderr.write(this.tty ? `\r${line}${done === this.total ? '\n' : ''}` : `${line}\n`);
  }
}

export interface BulkResult {
  action: string;
  matched: number;
  done: number;
  failed: Array<{ id: string; error: string }>;
}

/** Runs `action` on each id in order, with the progress bar; failures are collected, not thrown. */
export async function runEach(label: string, ids: string[], action: (id: string) => Promise<unknown>): Promise<BulkResult> {
  const progress = new Progress(label, ids.length);
  const result: BulkResult = { action: label, matched: ids.length, done: 0, failed: [] };
  progress.update(0);
  for (const id of ids) {
    try {
      await action(id);
      result.done++;
    } catch (err) {
      result.failed.push({ id, error: printable(err instanceof Error ? err.message : String(err)) });
    }
    progress.update(result.done + result.failed.length, result.failed.length);
  }
  return result;
}
