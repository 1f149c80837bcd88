import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnFixture } from '../fixtures/spawn.js';
import type { Store } from './targets.js';

export type WorkerEvent = { ev: string; pid?: number; executorId?: string; recovered?: string[]; level?: string; msg?: string; fields?: Record<string, unknown> };

/** A fixture process (under test/fixtures/), read through the JSON lines it prints. */
export class Worker {
  readonly events: WorkerEvent[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private readonly listeners = new Set<() => void>();

  constructor(file: string, store: Store, env: Record<string, string> = {}) {
    this.child = spawnFixture(file, store, env);
    let buffer = '';
    this.child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.startsWith('{')) this.events.push(JSON.parse(line) as WorkerEvent);
        for (const l of this.listeners) l();
      }
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** The first event `ev`, waiting for it up to `ms`. */
  async next(ev: string, ms = 60_000): Promise<WorkerEvent> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.events.find((e) => e.ev === ev);
      if (found) return found;
      assert.ok(Date.now() < deadline, `worker ${this.pid} printed no '${ev}' within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const l = () => (this.listeners.delete(l), resolve());
        this.listeners.add(l);
        setTimeout(l, 100);
      });
    }
  }

  logs(pattern: RegExp): WorkerEvent[] {
    return this.events.filter((e) => e.ev === 'log' && pattern.test(e.msg ?? ''));
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  async stop(): Promise<void> {
    this.child.kill('SIGCONT');
    this.child.kill('SIGTERM');
    const res = await this.exited;
    assert.equal(res.code, 0, `worker ${this.pid} exited with ${res.code ?? res.signal}`);
  }

  /** Kills it if it still runs (cleanup after a failed test). */
  dispose(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGCONT');
      this.child.kill('SIGKILL');
    }
  }
}

/** Polls `check` every 50 ms until it holds, failing after `ms`. */
export async function until(what: string, check: () => Promise<boolean> | boolean, ms = 60_000): Promise<number> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out after ${ms} ms waiting until ${what}`);
    await sleep(50);
  }
  return Date.now();
}
