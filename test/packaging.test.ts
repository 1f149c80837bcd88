/**
 * The package as users get it: `npm pack` and a fresh `git clone` each installed into temporary
 * projects (in os.tmpdir(), removed afterwards) that run workflows on an SQLite file, from an ES
 * module and from CommonJS (`require`), type-check a consumer with `strict` and
 * `skipLibCheck: false`, and get stack traces that name files that exist.
 *
 * Installs are real `npm install`s against the registry (or npm's cache). better-sqlite3 is not
 * compiled again for each project: its install script (prebuild-install) is pointed at a
 * "local prebuild" made from the copy this repository already built, same version and Node ABI.
 * Without that copy it builds from source as usual, only slower.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const fixtures = join(repo, 'test', 'fixtures', 'packaging');
const require = createRequire(import.meta.url);
const tsc = require.resolve('typescript/bin/tsc');
/** require() of an ES module: Node 20.19+ and 22.12+ (process.features.require_module). */
const requireModule = (process.features as { require_module?: boolean }).require_module === true;
const INSTALL_TIMEOUT_MS = 6 * 60_000;

interface Run {
  stdout: string;
  stderr: string;
}

/**
 * The environment of the npm and node processes started here: without the npm_* variables of the
 * `npm test` that may be running this file (they name this repository as the prefix and package),
 * and with better-sqlite3's install pointed at the local prebuild.
 */
function childEnv(prebuilds: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const keep = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig']);
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) && !keep.has(key.toLowerCase())) continue;
    if (key === 'INIT_CWD' || key === 'NODE_OPTIONS' || key === 'NODE_TEST_CONTEXT') continue;
    env[key] = value;
  }
  if (prebuilds) env.npm_config_better_sqlite3_local_prebuilds = prebuilds;
  env.npm_config_audit = 'false';
  env.npm_config_fund = 'false';
  env.npm_config_update_notifier = 'false';
  return env;
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeout = INSTALL_TIMEOUT_MS): Promise<Run> {
  return new Promise((done, fail) => {
    execFile(command, args, { cwd, env, timeout, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) fail(new Error(`${command} ${args.join(' ')} (in ${cwd}) failed: ${err.message}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`));
      else done({ stdout, stderr });
    });
  });
}

/**
 * A prebuild-install "local prebuild" of the better-sqlite3 this repository built, named as
 * prebuild-install looks for it; undefined when there is none to reuse.
 */
async function localPrebuild(dir: string): Promise<string | undefined> {
  let pkgDir: string;
  try {
    pkgDir = dirname(require.resolve('better-sqlite3/package.json'));
  } catch {
    return undefined;
  }
  if (!existsSync(join(pkgDir, 'build', 'Release', 'better_sqlite3.node'))) return undefined;
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  const libc = process.platform === 'linux' && !report?.header?.glibcVersionRuntime ? 'musl' : '';
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}${libc}-${process.arch}.tar.gz`;
  mkdirSync(dir, { recursive: true });
  await run('tar', ['czf', join(dir, name), 'build/Release/better_sqlite3.node'], pkgDir, process.env, 60_000);
  return dir;
}

/** A new empty project: `module` makes it ESM, `commonjs` is what `npm init` makes. */
function project(dir: string, type: 'module' | 'commonjs'): string {
  mkdirSync(dir, { recursive: true });
  const pkg = {
    name: `cairn-consumer-${type}`,
    version: '1.0.0',
    private: true,
    ...(type === 'module' && { type: 'module' }),
    // What the README tells users: approve better-sqlite3's install script, and Cairn's `prepare`
    // for git installs (npm 11 lists, and may skip, scripts a project has not approved).
    allowScripts: { 'better-sqlite3': true, cairn: true },
  };
  writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  return dir;
}

/** Writes a strict tsconfig with skipLibCheck off for `file` and compiles it. */
async function typeCheck(dir: string, file: string, env: NodeJS.ProcessEnv): Promise<void> {
  const config = {
    compilerOptions: {
      strict: true,
      skipLibCheck: false,
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2022',
      lib: ['es2023'],
      types: ['node'],
      noEmit: true,
    },
    files: [file],
  };
  const name = `tsconfig.${file.replace(/\W/g, '-')}.json`;
  writeFileSync(join(dir, name), JSON.stringify(config, null, 2));
  await run(process.execPath, [tsc, '-p', name], dir, env, 120_000);
}

/** The files a stack trace names (file URLs and absolute paths), node internals left out. */
function stackFiles(stack: string): string[] {
  const files: string[] = [];
  for (const line of stack.split('\n')) {
    const match = /^\s*at (?:.*? \()?(.+?):\d+:\d+\)?$/.exec(line);
    if (!match?.[1] || match[1].startsWith('node:')) continue;
    files.push(match[1].startsWith('file://') ? fileURLToPath(match[1]) : match[1]);
  }
  return files;
}

/** Every file the stack names exists, and some are the installed package's, under `sub`. */
function assertStackResolves(stack: string, projectDir: string, sub: 'dist' | 'src', label: string): void {
  assert.match(stack, /step failed/, `${label}: ${stack}`);
  const files = stackFiles(stack);
  const missing = files.filter((f) => !existsSync(f));
  assert.deepEqual(missing, [], `${label}: the stack names files that do not exist:\n${stack}`);
  const pkg = join(projectDir, 'node_modules', 'cairn', sub) + '/';
  assert.ok(
    files.some((f) => f.startsWith(pkg)),
    `${label}: the stack names no file of the installed package under ${sub}/:\n${stack}`,
  );
}

interface EsmOutput {
  result: { charged: number; shipped: string };
  again: unknown;
  steps: string[];
  ticked: number;
  liveStack: string;
  recordedStack: string;
  resolved: string;
}

interface CjsOutput {
  result: string;
  steps: string[];
  liveStack: string;
  recordedStack: string;
  resolved: string;
}

function lastJsonLine<T>(stdout: string): T {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as T;
}

/** Runs the ESM fixture in `dir` with and without source maps and checks what it prints. */
async function checkEsm(dir: string, env: NodeJS.ProcessEnv): Promise<void> {
  cpSync(join(fixtures, 'run.mjs'), join(dir, 'run.mjs'));
  for (const maps of [false, true]) {
    const args = maps ? ['--enable-source-maps', 'run.mjs'] : ['run.mjs'];
    const out = lastJsonLine<EsmOutput>((await run(process.execPath, args, dir, env, 60_000)).stdout);
    assert.equal(out.result.charged, 42);
    assert.match(out.result.shipped, /^shipped order-/);
    assert.deepEqual(out.again, out.result);
    assert.deepEqual(out.steps, ['charge', 'cairn.sleep', 'ship']);
    assert.equal(out.ticked, 1);
    assert.equal(fileURLToPath(out.resolved), join(dir, 'node_modules', 'cairn', 'dist', 'index.js'));
    const sub = maps ? 'src' : 'dist';
    assertStackResolves(out.liveStack, dir, sub, `ESM${maps ? ' with source maps' : ''}, thrown`);
    assertStackResolves(out.recordedStack, dir, sub, `ESM${maps ? ' with source maps' : ''}, recorded`);
  }
  assert.ok(statSync(join(dir, 'app.db')).size > 0, 'the SQLite file holds the workflows');
  // The `cairn` command is installed as the package's bin, and reads that database.
  const listed = JSON.parse((await run(join(dir, 'node_modules', '.bin', 'cairn'), ['--database', 'sqlite:./app.db', '--json', 'workflows', 'list'], dir, env, 60_000)).stdout) as Array<{ status: string }>;
  assert.deepEqual([...new Set(listed.map((w) => w.status))].sort(), ['ERROR', 'SUCCESS'], `cairn workflows list printed ${JSON.stringify(listed)}`);
}

describe('packaging', { timeout: 15 * 60_000 }, () => {
  let tmp: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'cairn-packaging-'));
    env = childEnv(await localPrebuild(join(tmp, 'prebuilds')));
  });
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  describe('from npm pack', () => {
    let tarball: string;

    test('npm pack builds dist and ships only what users need', { timeout: 5 * 60_000 }, async (t) => {
      const packed = JSON.parse((await run('npm', ['pack', '--json', '--pack-destination', tmp], repo, env)).stdout) as {
        filename: string;
        size: number;
        unpackedSize: number;
        files: { path: string }[];
      }[];
      const info = packed[0]!;
      tarball = join(tmp, info.filename);
      assert.ok(existsSync(tarball));
      // The dry run lists the same files (the build above left dist/ in place).
      const dry = JSON.parse((await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], repo, env)).stdout) as typeof packed;
      const files = info.files.map((f) => f.path).sort();
      assert.deepEqual(dry[0]!.files.map((f) => f.path).sort(), files);
      t.diagnostic(`tarball ${info.filename}: ${info.size} bytes packed, ${info.unpackedSize} bytes unpacked, ${files.length} files`);

      const allowed = /^(dist\/.+\.(js|d\.ts|js\.map|d\.ts\.map)|src\/.+\.ts|migrations\/(postgres|sqlite)\/\d{4}_\w+\.sql|package\.json|README\.md|CHANGELOG\.md|LICENSE(\.\w+)?)$/;
      assert.deepEqual(
        files.filter((f) => !allowed.test(f)),
        [],
        'only dist, src (for the source maps), migrations and the top-level docs are packed',
      );
      for (const needed of ['dist/index.js', 'dist/index.d.ts', 'package.json', 'README.md', 'CHANGELOG.md', 'migrations/sqlite/0001_init.sql', 'migrations/postgres/0001_init.sql']) {
        assert.ok(files.includes(needed), `${needed} is packed`);
      }
      assert.ok(!files.some((f) => /^(test|bench|\.ci|scripts|examples|node_modules)\//.test(f)));
      // Every source map's sources are in the package, so the maps resolve where it is installed.
      for (const map of files.filter((f) => f.endsWith('.map'))) {
        const { sources } = JSON.parse(readFileSync(join(repo, map), 'utf8')) as { sources: string[] };
        for (const source of sources) {
          const target = resolve('/', dirname(map), source).slice(1);
          assert.ok(files.includes(target), `${map} points to ${source}, which is packed`);
        }
      }
    });

    test('an ES module project installs the tarball, runs workflows on SQLite and type-checks strictly', { timeout: INSTALL_TIMEOUT_MS }, async () => {
      assert.ok(tarball, 'the tarball was packed');
      const dir = project(join(tmp, 'esm'), 'module');
      await run('npm', ['install', '--prefer-offline', tarball], dir, env);
      await checkEsm(dir, env);
      cpSync(join(fixtures, 'consumer.mts'), join(dir, 'consumer.mts'));
      await typeCheck(dir, 'consumer.mts', env);
      // The consumer names every export of the package.
      const index = readFileSync(join(dir, 'node_modules', 'cairn', 'dist', 'index.d.ts'), 'utf8');
      const consumer = readFileSync(join(fixtures, 'consumer.mts'), 'utf8');
      const exported = [...index.matchAll(/export (?:type )?\{([^}]*)\}/g)].flatMap((m) =>
        m[1]!.split(',').map((n) => n.trim().split(/\s+as\s+/).at(-1)!).filter(Boolean),
      );
      assert.ok(exported.length > 50, `found the exports of dist/index.d.ts (${exported.length})`);
      assert.deepEqual(
        exported.filter((name) => !new RegExp(`\\b${name}\\b`).test(consumer)),
        [],
        'test/fixtures/packaging/consumer.mts uses every export',
      );
    });

    test('a CommonJS project installs the tarball and require()s it', { timeout: INSTALL_TIMEOUT_MS }, async (t) => {
      assert.ok(tarball, 'the tarball was packed');
      const dir = project(join(tmp, 'cjs'), 'commonjs');
      await run('npm', ['install', '--prefer-offline', tarball], dir, env);
      cpSync(join(fixtures, 'consumer.cts'), join(dir, 'consumer.cts'));
      await typeCheck(dir, 'consumer.cts', env);
      if (!requireModule) {
        t.skip(`Node ${process.version} cannot require() an ES module (needs 20.19+ or 22.12+)`);
        return;
      }
      cpSync(join(fixtures, 'run.cjs'), join(dir, 'run.cjs'));
      for (const maps of [false, true]) {
        const args = maps ? ['--enable-source-maps', 'run.cjs'] : ['run.cjs'];
        const out = lastJsonLine<CjsOutput>((await run(process.execPath, args, dir, env, 60_000)).stdout);
        assert.equal(out.result, 'hello commonjs');
        assert.deepEqual(out.steps, ['hello']);
        assert.equal(out.resolved, join(dir, 'node_modules', 'cairn', 'dist', 'index.js'));
        assertStackResolves(out.liveStack, dir, maps ? 'src' : 'dist', `CommonJS${maps ? ' with source maps' : ''}`);
        assertStackResolves(out.recordedStack, dir, maps ? 'src' : 'dist', `CommonJS${maps ? ' with source maps' : ''}, recorded`);
      }
      assert.ok(statSync(join(dir, 'app.db')).size > 0);
    });
  });

  test('a project installs from a git clone of this repository (prepare builds it) and runs workflows', { timeout: INSTALL_TIMEOUT_MS }, async () => {
    // The committed state: what a clone (CI's, or a user's) holds.
    const head = (await run('git', ['rev-parse', 'HEAD'], repo, env, 30_000)).stdout.trim();
    const clone = join(tmp, 'clone');
    await run('git', ['clone', '--quiet', '--no-hardlinks', repo, clone], tmp, env, 120_000);
    await run('git', ['checkout', '--quiet', head], clone, env, 30_000);
    assert.ok(!existsSync(join(clone, 'dist')), 'a fresh clone has no dist/');
    // npm clones the git URL, installs its dev dependencies, runs `prepare`, then packs and installs it.
    const dir = project(join(tmp, 'git'), 'module');
    await run('npm', ['install', '--prefer-offline', `git+file://${clone}#${head}`], dir, env);
    assert.ok(existsSync(join(dir, 'node_modules', 'cairn', 'dist', 'index.js')), 'the installed package has dist/');
    assert.ok(!existsSync(join(dir, 'node_modules', 'cairn', 'test')), 'and no tests');
    await checkEsm(dir, env);
  });
});
