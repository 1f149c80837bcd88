/** `cairn workflows …`: list, inspect and steer workflows, one by id or many by filter. */
import { Option, type Command } from 'commander';
import type { Client } from '../engine/client.js';
import { WORKFLOW_STATUSES, type ListWorkflowsFilter, type WorkflowStatus } from '../types.js';
import { count, duration, instant, UsageError } from './args.js';
import { confirm, runEach, selectIds, type BulkResult } from './bulk.js';
import { fields, summary, time } from './format.js';
import type { Shell } from './shell.js';

interface FilterOptions {
  status?: WorkflowStatus[];
  name?: string;
  queue?: string;
  idPrefix?: string;
  olderThan?: string;
  yes?: boolean;
}

export function workflowCommands(sh: Shell): void {
  const workflows = sh.program.command('workflows').description('list, inspect and steer workflows');
  workflows
    .command('list')
    .description('stored workflows, newest first')
    .addOption(new Option('--status <status...>', 'only these statuses').choices([...WORKFLOW_STATUSES]))
    .option('--name <name>', 'only this workflow name')
    .option('--queue <queue>', 'only this queue')
    .option('--id-prefix <text>', 'only ids starting with this text')
    .option('--executor <id>', 'only workflows owned by this executor')
    .option('--app-version <version>', 'only workflows recorded by this app version')
    .option('--parent <id>', 'only children of this workflow')
    .option('--created-after <time>', 'an ISO time, or a duration ago such as 1h or 2d')
    .option('--created-before <time>', 'an ISO time, or a duration ago such as 30m')
    .option('--limit <n>', 'at most this many', '50')
    .addOption(new Option('--order <order>', 'by creation time').choices(['asc', 'desc']).default('desc'))
    .action(async (o: FilterOptions & { executor?: string; appVersion?: string; parent?: string; createdAfter?: string; createdBefore?: string; limit: string; order: 'asc' | 'desc' }) => {
      const filter: ListWorkflowsFilter = { ...selection(o), limit: count('--limit', o.limit), order: o.order };
      if (o.executor !== undefined) filter.executorId = o.executor;
      if (o.appVersion !== undefined) filter.appVersion = o.appVersion;
      if (o.parent !== undefined) filter.parentId = o.parent;
      if (o.createdAfter !== undefined) filter.createdAfter = instant('--created-after', o.createdAfter);
      if (o.createdBefore !== undefined) filter.createdBefore = instant('--created-before', o.createdBefore);
      sh.printRows(
        await sh.withClient((c) => c.listWorkflows(filter)),
        ['ID', 'NAME', 'STATUS', 'QUEUE', 'EXECUTOR', 'VERSION', 'CREATED'],
        (w) => [w.id, w.name, w.status, w.queue ?? '', w.executorId ?? '', w.appVersion ?? '', time(w.createdAt)],
        'no workflows match',
      );
    });
  workflows
    .command('get <id>')
    .description('one workflow: status, input, output or error')
    .action(async (id: string) => {
      const w = await sh.withClient((c) => c.getWorkflow(id));
      sh.print(w, () =>
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
      sh.printRows(
        await sh.withClient((c) => c.listSteps(id)),
        ['STEP', 'NAME', 'ATTEMPTS', 'MS', 'RESULT'],
        (s) => [
          String(s.stepId), s.name, String(s.attempts), String(s.completedAt.getTime() - s.startedAt.getTime()),
          s.error !== null && s.error !== undefined ? `error ${summary(s.error)}` : s.childId ? `child ${s.childId}` : summary(s.output),
        ],
        `workflow '${id}' has no checkpoints`,
      );
    });

  steering(sh, workflows, 'cancel', 'cancel workflows and their unfinished children', (c, id) => c.cancel(id));
  steering(sh, workflows, 'resume', 'run CANCELLED or ERROR workflows again from their checkpoints, on a live engine that registers them', (c, id) => c.resume(id));
  steering(sh, workflows, 'retry', 'run failed or cancelled workflows again under their ids, from the failed step or --from-step', (c, id, o) =>
    c.retry(id, o.fromStep === undefined ? {} : { fromStep: count('--from-step', o.fromStep) }),
  ).option('--from-step <n>', 'the first step to run again');
  steering(sh, workflows, 'delete', 'delete finished workflows with their steps, messages, events and streams', (c, id) => c.deleteWorkflow(id));

  workflows
    .command('fork <id>')
    .description('start a new workflow with the same name and input, reusing the checkpoints before --from-step')
    .requiredOption('--from-step <n>', 'the first step to run again')
    .option('--new-id <id>', 'the id of the new workflow (default: a UUID)')
    .action(async (id: string, o: { fromStep: string; newId?: string }) => {
      const fromStep = count('--from-step', o.fromStep);
      const { newId, status } = await sh.withClient(async (c) => {
        const handle = await c.fork(id, { fromStep, ...(o.newId !== undefined && { id: o.newId }) });
        return { newId: handle.id, status: (await c.getWorkflow(handle.id)).status };
      });
      sh.print({ id: newId, forkedFrom: id, status }, () => `workflow '${newId}' forked from '${id}' is ${status}; a live engine that registers it adopts it at its next heartbeat`);
    });
}

/**
 * An action on workflows named by id, or selected by a filter: a filter lists them first and asks
 * for confirmation unless --yes, then acts on each with a progress bar.
 */
function steering(
  sh: Shell,
  parent: Command,
  verb: string,
  description: string,
  action: (client: Client, id: string, options: { fromStep?: string }) => Promise<unknown>,
): Command {
  return parent
    .command(`${verb} [ids...]`)
    .description(`${description}; name ids, or select by filter`)
    .addOption(new Option('--status <status...>', 'select workflows in these statuses').choices([...WORKFLOW_STATUSES]))
    .option('--name <name>', 'select workflows of this name')
    .option('--queue <queue>', 'select workflows of this queue')
    .option('--id-prefix <text>', 'select ids starting with this text')
    .option('--older-than <duration>', 'select workflows created longer ago than this (30m, 1h, 7d)')
    .option('-y, --yes', 'act on what the filter selects without asking')
    .action(async (ids: string[], o: FilterOptions & { fromStep?: string }) => {
      const filter = selection(o);
      const filtered = Object.keys(filter).length > 0;
      if (ids.length > 0 && filtered) throw new UsageError(`name workflow ids or give a filter, not both`);
      if (ids.length === 0 && !filtered) throw new UsageError(`${verb} needs workflow ids or a filter (--status, --name, --queue, --id-prefix, --older-than)`);
      if (o.fromStep !== undefined) count('--from-step', o.fromStep);
      await sh.withClient(async (c) => {
        if (ids.length === 1) {
          const [id] = ids as [string];
          await action(c, id, o);
          const status = verb === 'delete' ? 'DELETED' : (await c.getWorkflow(id)).status;
          sh.print({ id, status }, () =>
            verb === 'delete' ? `workflow '${id}' deleted` : `workflow '${id}' is ${status}${status === 'PENDING' ? '; a live engine that registers it adopts it at its next heartbeat' : ''}`,
          );
          return;
        }
        const chosen = filtered ? await selectIds(c, filter) : ids;
        if (filtered && chosen.length > 0 && !o.yes && !(await confirm(`${verb} ${chosen.length} workflow${chosen.length === 1 ? '' : 's'} (${describeFilter(o)})?`))) {
          throw new Error('not confirmed; nothing was done');
        }
        const result = await runEach(verb, chosen, (id) => action(c, id, o));
        sh.print(result, () => report(result));
        if (result.failed.length > 0) sh.markFailed();
      });
    });
}

/** The filter a bulk command selects by. */
function selection(o: FilterOptions): ListWorkflowsFilter {
  const filter: ListWorkflowsFilter = {};
  if (o.status) filter.status = o.status;
  if (o.name !== undefined) filter.name = o.name;
  if (o.queue !== undefined) filter.queue = o.queue;
  if (o.idPrefix !== undefined) filter.idPrefix = o.idPrefix;
  if (o.olderThan !== undefined) {
    const ms = duration(o.olderThan);
    if (ms === undefined) throw new UsageError(`--older-than must be a duration such as 30m, 1h or 7d, got '${o.olderThan}'`);
    filter.createdBefore = new Date(Date.now() - ms);
  }
  return filter;
}

function describeFilter(o: FilterOptions): string {
  const parts: string[] = [];
  if (o.status) parts.push(`status ${o.status.join(' or ')}`);
  if (o.name !== undefined) parts.push(`name ${o.name}`);
  if (o.queue !== undefined) parts.push(`queue ${o.queue}`);
  if (o.idPrefix !== undefined) parts.push(`ids starting ${o.idPrefix}`);
  if (o.olderThan !== undefined) parts.push(`created over ${o.olderThan} ago`);
  return parts.join(', ');
}

function report(r: BulkResult): string {
  const lines = [`${r.action}: ${r.done} of ${r.matched} workflow${r.matched === 1 ? '' : 's'} done${r.failed.length ? `, ${r.failed.length} failed` : ''}`];
  for (const f of r.failed) lines.push(`  ${f.id}: ${f.error}`);
  return lines.join('\n');
}
