#!/usr/bin/env node
/**
 * npm run test:stress [-- --rounds N] [--busy M] [--files a.test.ts,b.test.ts] [file ...]
 *
 * Runs the unit suite (the files `npm run test:unit` runs, or the ones given) N times in a row
 * (default 3) while M child processes (default 2) spin the CPU beside it, as a busy CI machine
 * would. At the end it names every test that failed in any round, with the rounds it failed in,
 * and prints the totals of each round. Exits 1 if any test failed in any round.
 *
 * This file is also the reporter the rounds run with (node --test-reporter=scripts/stress.mjs):
 * it writes one JSON line per finished test, with the names of the suites around it. A readable
 * log of each round (node's spec reporter) is kept in a temporary directory, named at the end of the round.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const ROOT = resolve(dirname(SELF), '..');

/**
 * The reporter: the test runner's events in; a JSON line per finished test appended to the file
 * named by STRESS_RESULTS, and progress out (a dot per test, the full name of each failure).
 */
export default async function* stressReporter(source) {
  const results = process.env.STRESS_RESULTS;
  // Per file, the names of the tests and suites that have started, by nesting level.
  const stacks = new Map();
  let dots = 0;
  for await (const event of source) {
    const { type, data } = event;
    if (type !== 'test:start' && type !== 'test:pass' && type !== 'test:fail') continue;
    const file = data.file ?? '';
    let stack = stacks.get(file);
    if (!stack) stacks.set(file, (stack = []));
    if (type === 'test:start') {
      stack.length = data.nesting;
      stack[data.nesting] = data.name;
      continue;
    }
    const path = [...stack.slice(0, data.nesting), data.name];
    const error = data.details?.error;
    const cause = error?.cause ?? error;
    const entry = {
      file: file && relative(ROOT, file),
      path,
      outcome: type === 'test:pass' ? (data.skip !== undefined ? 'skip' : data.todo !== undefined ? 'todo' : 'pass') : 'fail',
      suite: data.details?.type === 'suite',
      ms: data.details?.duration_ms,
      message: cause ? String(cause.message ?? cause).split('\n').filter((l) => l.trim() !== '').slice(0, 6).join('\n') : undefined,
    };
    if (results) appendFileSync(results, `${JSON.stringify(entry)}\n`);
    if (entry.suite) continue;
    if (entry.outcome === 'fail') {
      yield `${dots > 0 ? '\n' : ''}✖ ${path.join(' › ')}  [${entry.file}]\n`;
      dots = 0;
    } else {
      dots++;
      yield dots % 60 === 0 ? '.\n' : '.';
    }
  }
  if (dots % 60 !== 0) yield '\n';
}

function usage(problem) {
  if (problem) console.error(`stress: ${problem}`);
  console.error('usage: npm run test:stress -- [--rounds N] [--busy M] [--files a.test.ts,b.test.ts] [file ...]');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { rounds: 3, busy: 2, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    const count = (min) => {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) usage(`${flag} must be an integer >= ${min}, got '${v}'`);
      return n;
    };
    if (flag === '--rounds') opts.rounds = count(1);
    else if (flag === '--busy') opts.busy = count(0);
    else if (flag === '--files') opts.files.push(...value().split(',').filter(Boolean));
    else if (flag === '--help' || flag === '-h') usage();
    else if (flag.startsWith('-')) usage(`unknown option ${flag}`);
    else opts.files.push(arg);
  }
  if (opts.files.length === 0) {
    opts.files = readdirSync(join(ROOT, 'test'))
      .filter((f) => f.endsWith('.test.ts'))
      .sort()
      .map((f) => `test/${f}`);
  }
  for (const f of opts.files) if (!existsSync(resolve(ROOT, f))) usage(`no such file: ${f}`);
  return opts;
}

const children = new Set();

function startChild(args, options) {
  const child = spawn(process.execPath, args, { cwd: ROOT, detached: true, ...options });
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

/** Each child leads its own process group, so this also ends the test files the runner started. */
function killAll() {
  for (const child of children) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** One round: the suite under node's test runner, results to a JSON-lines file, a readable log beside it. */
function runRound(round, files, outDir) {
  const results = join(outDir, `round-${round}.jsonl`);
  const log = join(outDir, `round-${round}.log`);
  const args = [
    '--import', 'tsx', '--test', '--test-concurrency=2',
    `--test-reporter=${SELF}`, '--test-reporter-destination=stdout',
    '--test-reporter=spec', `--test-reporter-destination=${log}`,
    ...files,
  ];
  const began = Date.now();
  return new Promise((resolveRound) => {
    const child = startChild(args, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, STRESS_RESULTS: results } });
    child.on('exit', (code, signal) => {
      const wallMs = Date.now() - began;
      const lines = existsSync(results) ? readFileSync(results, 'utf8').split('\n').filter(Boolean) : [];
      resolveRound({ round, code, signal, wallMs, log, entries: lines.map((l) => JSON.parse(l)) });
    });
  });
}

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const outDir = mkdtempSync(join(tmpdir(), 'cairn-stress-'));
  const onSignal = (signal) => {
    killAll();
    console.error(`\nstress: ${signal}; busy processes and the test run stopped`);
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAll);

  console.log(`stress: ${opts.rounds} round(s) of ${opts.files.length} file(s), ${opts.busy} busy process(es) beside them`);
  for (let i = 0; i < opts.busy; i++) startChild(['-e', 'for (;;) {}'], { stdio: 'ignore' });

  const rounds = [];
  try {
    for (let round = 1; round <= opts.rounds; round++) {
      console.log(`\n--- round ${round}/${opts.rounds}`);
      const r = await runRound(round, opts.files, outDir);
      rounds.push(r);
      console.log(`\n--- round ${round}: exit ${r.signal ?? r.code} after ${seconds(r.wallMs)}; log in ${r.log}`);
    }
  } finally {
    killAll();
  }

  // Failures by full name, with the rounds they failed in.
  const failed = new Map();
  const note = (name, round, message) => {
    const f = failed.get(name) ?? { rounds: [], message };
    if (!f.rounds.includes(round)) f.rounds.push(round);
    f.message ??= message;
    failed.set(name, f);
  };
  const totals = rounds.map((r) => {
    const t = { round: r.round, tests: 0, pass: 0, fail: 0, skip: 0, wallMs: r.wallMs };
    const failedPaths = [];
    for (const e of r.entries.filter((e) => !e.suite)) {
      t.tests++;
      if (e.outcome === 'fail') {
        t.fail++;
        failedPaths.push(e.path);
        note(`${e.path.join(' › ')}  [${e.file}]`, r.round, e.message);
      } else if (e.outcome === 'pass') t.pass++;
      else t.skip++;
    }
    // A suite that failed with none of its tests failing: a hook, or a file that did not load.
    for (const e of r.entries.filter((e) => e.suite && e.outcome === 'fail')) {
      const inside = failedPaths.some((p) => e.path.every((part, i) => p[i] === part));
      if (!inside) note(`${e.path.join(' › ')}  [${e.file}] (suite)`, r.round, e.message);
    }
    if ((r.code !== 0 || r.signal) && t.fail === 0 && ![...failed.values()].some((f) => f.rounds.includes(r.round))) {
      note(`(test run of round ${r.round} exited with ${r.signal ?? `code ${r.code}`})`, r.round, undefined);
    }
    return t;
  });

  console.log('\n=== stress summary');
  if (failed.size === 0) console.log('no test failed in any round');
  for (const [name, f] of failed) {
    console.log(`FAILED in round(s) ${f.rounds.join(', ')} of ${rounds.length}: ${name}`);
    if (f.message) console.log(`    ${f.message.split('\n').join('\n    ')}`);
  }
  console.log('');
  for (const t of totals) {
    console.log(`round ${t.round}: ${t.tests} tests, ${t.pass} passed, ${t.fail} failed, ${t.skip} skipped, ${seconds(t.wallMs)}`);
  }
  const sum = (k) => totals.reduce((a, t) => a + t[k], 0);
  console.log(`total: ${rounds.length} round(s), ${sum('pass')} passed, ${sum('fail')} failed, ${sum('skip')} skipped, ${seconds(sum('wallMs'))}; busy processes: ${opts.busy}`);
  process.exitCode = failed.size > 0 ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === SELF) await main();
