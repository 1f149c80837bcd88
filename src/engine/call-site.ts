import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Cairn's own code, from src/ or from the built dist/ (with or without source maps). */
const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OWN = [`${PACKAGE_ROOT}src/`, `${PACKAGE_ROOT}dist/`];
const FRAME = /\(?((?:file:\/\/)?[^\s()]+):(\d+):(\d+)\)?$/;

/**
 * The first frame of the current stack outside Cairn and Node's internals, as `file:line:column`:
 * the line of workflow code that made the Context call being checked. Only read when a replay
 * diverges, so the stack is captured off the normal path.
 */
export function userCallSite(): string | undefined {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 64;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  for (const line of stack.split('\n').slice(1)) {
    const m = FRAME.exec(line.trim());
    if (!m) continue;
    const file = m[1]!.startsWith('file://') ? fileURLToPath(m[1]!) : m[1]!;
    if (!isAbsolute(file) || OWN.some((dir) => file.startsWith(dir))) continue;
    return `${file}:${m[2]}:${m[3]}`;
  }
  return undefined;
}
