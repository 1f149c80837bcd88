// Fails when the modules under src/ import each other in a cycle. Type-only imports are erased at
// compile time and cannot form a cycle at run time, so they are left out.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(process.argv[2] ?? 'src');
const files = [];
const walk = (dir) => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path);
    else if (entry.name.endsWith('.ts')) files.push(path);
  }
};
walk(root);

const IMPORT = /^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\s+from\s+)?['"](\.{1,2}\/[^'"]+)['"]/gm;
const graph = new Map();
for (const file of files) {
  const deps = [];
  for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
    deps.push(resolve(dirname(file), match[1].replace(/\.js$/, '.ts')));
  }
  graph.set(file, deps);
}

const state = new Map(); // 1 = on the current path, 2 = done
const stack = [];
let cycle;
const visit = (file) => {
  state.set(file, 1);
  stack.push(file);
  for (const dep of graph.get(file) ?? []) {
    if (cycle) return;
    if (state.get(dep) === 1) cycle = [...stack.slice(stack.indexOf(dep)), dep];
    else if (!state.has(dep) && graph.has(dep)) visit(dep);
  }
  stack.pop();
  state.set(file, 2);
};
for (const file of files) if (!state.has(file) && !cycle) visit(file);

if (cycle) {
  console.error(`import cycle: ${cycle.map((f) => relative(process.cwd(), f)).join(' -> ')}`);
  process.exit(1);
}
console.log(`no import cycles among ${files.length} modules under ${relative(process.cwd(), root) || '.'}`);
