// Builds dist/ from src/: JavaScript, declarations with @internal members left out, and source
// maps whose sources (../src) ship in the package. Run by `npm run build` and by the `prepare`
// script, so a git checkout, `npm pack`, `npm publish` and `npm install <git url>` all build it.
// Needs the dev dependencies (TypeScript), which npm installs before it runs `prepare`.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = fileURLToPath(new URL('../dist/', import.meta.url));

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  console.error('cairn: building dist/ needs TypeScript, a dev dependency; run `npm install` (with dev dependencies) first.');
  process.exit(1);
}

// A clean build: files of modules since removed from src/ must not linger in the package.
rmSync(dist, { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });

// `stripInternal` drops the @internal members that Client implements for handles (HandleSource),
// but keeps the `implements HandleSource` clause, which a project compiling with
// `skipLibCheck: false` would then report as broken (TS2420). HandleSource is internal: drop the
// clause from the published declaration.
const clientDts = `${dist}engine/client.d.ts`;
const text = readFileSync(clientDts, 'utf8');
const fixed = text.replace(/(export declare class Client) implements HandleSource \{/, '$1 {');
if (fixed !== text) writeFileSync(clientDts, fixed);
else if (/implements HandleSource/.test(text)) throw new Error(`scripts/build.mjs: could not drop 'implements HandleSource' from ${clientDts}`);

if (!existsSync(`${dist}index.js`) || !existsSync(`${dist}index.d.ts`)) throw new Error('scripts/build.mjs: dist/index.js or dist/index.d.ts is missing after the build');
