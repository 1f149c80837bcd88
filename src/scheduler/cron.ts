import { CronExpressionParser } from 'cron-parser';
import { InvalidArgumentError } from '../engine/errors.js';
import { assertName, describe } from '../engine/validate.js';

/** Checks a cron expression: 5 fields, 6 fields (seconds first), or an alias such as `@hourly`. */
export function assertCron(expression: unknown): string {
  if (typeof expression !== 'string' || expression.trim() === '') {
    throw new InvalidArgumentError('cron', `cron must be a cron expression string, got ${describe(expression)}`);
  }
  assertName('cron', expression, 1_000);
  const cron = expression.trim();
  const fields = cron.split(/\s+/).length;
  if (!cron.startsWith('@') && fields !== 5 && fields !== 6) {
    throw new InvalidArgumentError('cron', `cron expression '${cron}' has ${fields} fields; use 5 (minute hour day month weekday) or 6 (seconds first)`);
  }
  try {
    CronExpressionParser.parse(cron, { strict: false });
  } catch (cause) {
    throw new InvalidArgumentError('cron', `cron expression '${cron}' is invalid: ${(cause as Error).message}`, { cause });
  }
  return cron;
}

/** Checks an IANA time zone name, such as `Europe/Paris` or `UTC`. */
export function assertTimezone(timezone: unknown): string {
  if (typeof timezone !== 'string' || timezone === '') {
    throw new InvalidArgumentError('timezone', `timezone must be an IANA time zone name, got ${describe(timezone)}`);
  }
  assertName('timezone', timezone);
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch (cause) {
    throw new InvalidArgumentError('timezone', `time zone '${timezone}' is unknown; use an IANA name such as 'UTC' or 'Europe/Paris'`, { cause });
  }
  return timezone;
}

/** The first tick strictly after `after` (epoch ms). */
export function nextTick(cron: string, timezone: string, after: number): number {
  return CronExpressionParser.parse(cron, { currentDate: after, tz: timezone }).next().getTime();
}

/** Ticks in (after, until], in order, at most `limit` of them (the earliest). */
export function ticksBetween(cron: string, timezone: string, after: number, until: number, limit: number): number[] {
  const ticks: number[] = [];
  if (until <= after) return ticks;
  const it = CronExpressionParser.parse(cron, { currentDate: after, tz: timezone });
  while (ticks.length < limit) {
    const t = it.next().getTime();
    if (t > until) break;
    ticks.push(t);
  }
  return ticks;
}

/** The latest `limit` ticks in (after, until], in order. */
export function latestTicks(cron: string, timezone: string, after: number, until: number, limit: number): number[] {
  const ticks: number[] = [];
  if (until <= after) return ticks;
  const it = CronExpressionParser.parse(cron, { currentDate: until + 1, tz: timezone });
  while (ticks.length < limit) {
    const t = it.prev().getTime();
    if (t <= after) break;
    ticks.unshift(t);
  }
  return ticks;
}

/**
 * What is wrong with a stored schedule's cron expression and time zone, or undefined when they
 * work. Rows are checked when created, but the table can be edited by hand, and a time zone can
 * disappear from the runtime's database.
 */
export function scheduleProblem(cron: unknown, timezone: unknown): string | undefined {
  try {
    assertTimezone(timezone);
    assertCron(cron);
    nextTick(cron as string, timezone as string, Date.now());
    return undefined;
  } catch (err) {
    return `${(err as Error).message}`;
  }
}
