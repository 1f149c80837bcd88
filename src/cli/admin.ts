/** `cairn queues | schedules | executors | versions | export | gc`: the rest of what an operator sees and steers. */
import { Option } from 'commander';
import { WORKFLOW_STATUSES, type WorkflowStatus } from '../types.js';
import { count, duration, instant, UsageError } from './args.js';
import { confirm } from './bulk.js';
import { age, time } from './format.js';
import type { Shell } from './shell.js';

export function adminCommands(sh: Shell): void {
  sh.program
    .command('queues')
    .description('declared queues: ready, delayed and running workflows, and limits')
    .action(async () => {
      sh.printRows(
        await sh.withClient((c) => c.listQueues()),
        ['QUEUE', 'ENQUEUED', 'DELAYED', 'RUNNING', 'CONCURRENCY', 'PER WORKER', 'RATE LIMIT', 'PARTITIONED'],
        (q) => [
          q.name, String(q.enqueued), String(q.delayed), String(q.running), q.concurrency === null ? '-' : String(q.concurrency),
          q.workerConcurrency === null ? '-' : String(q.workerConcurrency), q.rateLimit ? `${q.rateLimit.limit} per ${q.rateLimit.periodMs} ms` : '-',
          q.partitioned ? 'yes' : 'no',
        ],
        'no queues are declared',
      );
    });

  const schedules = sh.program.command('schedules').description('list, pause, resume, trigger and backfill cron schedules');
  schedules
    .command('list')
    .description('every schedule with its next tick')
    .action(async () => {
      sh.printRows(
        await sh.withClient((c) => c.schedules.list()),
        ['SCHEDULE', 'CRON', 'TIMEZONE', 'WORKFLOW', 'QUEUE', 'PAUSED', 'LAST TICK', 'NEXT TICK'],
        (s) => [s.name, s.cron, s.timezone, s.workflowName, s.queue ?? '', s.paused ? 'yes' : 'no', time(s.lastTickAt), s.problem ? `broken: ${s.problem}` : time(s.nextTickAt)],
        'no schedules',
      );
    });
  for (const verb of ['pause', 'resume'] as const) {
    schedules
      .command(`${verb} <name>`)
      .description(verb === 'pause' ? 'stop firing until resumed' : 'fire again from the next tick on')
      .action(async (name: string) => {
        const s = await sh.withClient((c) => c.schedules[verb](name));
        sh.print(s, () => `schedule '${s.name}' is ${s.paused ? 'paused' : `active; next tick ${time(s.nextTickAt)}`}`);
      });
  }
  schedules
    .command('trigger <name>')
    .description("run the schedule's workflow once now")
    .action(async (name: string) => {
      const id = await sh.withClient(async (c) => (await c.schedules.trigger(name)).id);
      sh.print({ schedule: name, id }, () => `schedule '${name}' started workflow '${id}'`);
    });
  schedules
    .command('backfill <name>')
    .description('fire every tick in [--from, --to) that has not run yet')
    .requiredOption('--from <time>', 'an ISO time, or a duration ago such as 1d')
    .requiredOption('--to <time>', 'an ISO time, or a duration ago such as 1h')
    .action(async (name: string, o: { from: string; to: string }) => {
      const from = instant('--from', o.from);
      const to = instant('--to', o.to);
      const ids = await sh.withClient(async (c) => (await c.schedules.backfill(name, from, to)).map((h) => h.id));
      sh.print({ schedule: name, ids }, () => (ids.length === 0 ? `no ticks of '${name}' in that range` : [`schedule '${name}' fired ${ids.length} tick${ids.length === 1 ? '' : 's'}:`, ...ids.map((id) => `  ${id}`)].join('\n')));
    });

  sh.program
    .command('executors')
    .description('the engines of the fleet: alive, heartbeat age, pending workflows')
    .action(async () => {
      sh.printRows(
        await sh.withClient((c) => c.listExecutors()),
        ['ID', 'HOST', 'PID', 'VERSION', 'ALIVE', 'HEARTBEAT', 'PENDING'],
        (e) => [e.id, e.hostname, String(e.pid), e.appVersion, e.alive ? 'yes' : 'no', `${age(e.heartbeatAt)} ago`, String(e.pending)],
      );
    });
  sh.program
    .command('versions')
    .description('app versions seen, with live executors and pending workflows')
    .action(async () => {
      sh.printRows(
        await sh.withClient((c) => c.listVersions()),
        ['VERSION', 'EXECUTORS', 'PENDING', 'FIRST SEEN', 'LAST SEEN'],
        (v) => [v.appVersion, String(v.executors), String(v.pending), time(v.firstSeenAt), time(v.lastSeenAt)],
      );
    });
  sh.program
    .command('export <id>')
    .description("a workflow's history as JSON, for checkReplay from cairn/testing")
    .action(async (id: string) => {
      const history = await sh.withClient((c) => c.exportHistory(id));
      sh.out(JSON.stringify(history, null, 2));
    });

  sh.program
    .command('gc')
    .description('delete finished workflows completed before --older-than, with everything stored under them')
    .requiredOption('--older-than <time>', 'a duration (30d, 12h) or an ISO time')
    .addOption(new Option('--status <status...>', 'which finished statuses (default SUCCESS ERROR CANCELLED)').choices([...WORKFLOW_STATUSES]))
    .option('--batch-size <n>', 'workflows deleted per transaction', '1000')
    .option('-y, --yes', 'delete without asking')
    .action(async (o: { olderThan: string; status?: WorkflowStatus[]; batchSize: string; yes?: boolean }) => {
      const ms = duration(o.olderThan);
      const cutoff = ms === undefined ? instant('--older-than', o.olderThan) : new Date(Date.now() - ms);
      const batchSize = count('--batch-size', o.batchSize);
      const statuses = o.status ?? ['SUCCESS', 'ERROR', 'CANCELLED'];
      const bad = statuses.find((s) => s === 'PENDING' || s === 'ENQUEUED' || s === 'DELAYED');
      if (bad) throw new UsageError(`gc deletes only finished workflows, so --status cannot include ${bad}`);
      if (!o.yes && !(await confirm(`delete every ${statuses.join(', ')} workflow completed before ${time(cutoff)}?`))) {
        throw new Error('not confirmed; nothing was done');
      }
      const started = Date.now();
      const result = await sh.withClient((c) =>
        c.gc({ olderThan: cutoff, statuses, batchSize, onProgress: (deleted) => process.stderr.write(`gc: ${deleted} deleted so far\n`) }),
      );
      sh.print({ ...result, cutoff }, () => `deleted ${result.deleted} workflow${result.deleted === 1 ? '' : 's'} completed before ${time(cutoff)} in ${Date.now() - started} ms`);
    });
}
