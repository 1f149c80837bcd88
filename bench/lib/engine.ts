import { Engine, type Logger, type Provider, type Workflow } from '../../src/index.js';
import type { Meter } from './load.js';

/** A logger that keeps what the engine reports, so a run with engine errors is not published as clean. */
export class RecordingLogger implements Logger {
  readonly errors: string[] = [];
  readonly warnings: string[] = [];
  info(): void {}
  warn(obj: object, msg?: string): void {
    this.warnings.push(describe(obj, msg));
  }
  error(obj: object, msg?: string): void {
    this.errors.push(describe(obj, msg));
  }
}

function describe(obj: object, msg?: string): string {
  const err = (obj as { err?: unknown }).err;
  const detail = err instanceof Error ? `${err.name}: ${err.message}` : '';
  return [msg, detail].filter(Boolean).join(' — ');
}

export interface BenchEngine {
  engine: Engine;
  logger: RecordingLogger;
  /** Throws when the engine logged an error: such a measurement is not valid. */
  assertClean(): void;
}

export interface OpenOptions {
  executorId?: string;
  appVersion?: string;
  /** The engine's fallback poll (default: the engine's own default). */
  pollIntervalMs?: number;
}

/** Opens an engine on a provider (whose pool size the caller chose). */
export async function openEngine(provider: Provider, options: OpenOptions = {}): Promise<BenchEngine> {
  const logger = new RecordingLogger();
  const engine = await Engine.open({
    database: provider,
    executorId: options.executorId ?? 'bench',
    appVersion: options.appVersion ?? 'bench',
    logger,
    ...(options.pollIntervalMs !== undefined && { pollIntervalMs: options.pollIntervalMs }),
  });
  return {
    engine,
    logger,
    assertClean() {
      if (logger.errors.length > 0) {
        throw new Error(`the engine logged ${logger.errors.length} error(s); first: ${logger.errors[0]}`);
      }
    },
  };
}

/** Opens an engine, runs `fn`, and closes the engine whatever happens. */
export async function withEngine<T>(provider: Provider, options: OpenOptions, fn: (bench: BenchEngine) => Promise<T>): Promise<T> {
  const bench = await openEngine(provider, options);
  try {
    const out = await fn(bench);
    bench.assertClean();
    return out;
  } finally {
    await bench.engine.close();
  }
}

/**
 * Registers a workflow of `steps` trivial steps (each returns its index); it returns `steps`.
 * With a meter, each step is marked once `ctx.step` has resolved, that is once its checkpoint
 * is committed.
 */
export function trivialSteps(engine: Engine, name: string, steps: number, meter?: Meter): Workflow<null, number> {
  const names = Array.from({ length: steps }, (_, i) => `step${i}`);
  return engine.workflow(name, async (ctx) => {
    for (let i = 0; i < steps; i++) {
      await ctx.step(names[i]!, () => i);
      meter?.mark();
    }
    return steps;
  });
}

/** Checks a workflow's result, so a broken run cannot pass for a fast one. */
export function expectResult(actual: unknown, expected: unknown): void {
  if (actual !== expected) throw new Error(`workflow returned ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
}

/**
 * Calls `seen` with the result of each call of an async method of `target` (a provider, for
 * instance) once it resolves: how a scenario learns, without polling, that a completion has been
 * committed or that a waiter found nothing and is about to park.
 */
export function observeCalls<R>(target: object, method: string, seen: (result: R, args: unknown[]) => void): void {
  const methods = target as Record<string, unknown>;
  const original = methods[method];
  if (typeof original !== 'function') throw new Error(`no method ${method} to observe`);
  const call = original as (...args: unknown[]) => Promise<R>;
  methods[method] = async (...args: unknown[]): Promise<R> => {
    const result = await call.apply(target, args);
    seen(result, args);
    return result;
  };
}

/** Keeps count of the calls of an async method of `target` in flight, and of when the last one ended. */
export class InFlight {
  running = 0;
  lastEndedAt = 0;
  constructor(target: object, method: string) {
    const methods = target as Record<string, unknown>;
    const original = methods[method];
    if (typeof original !== 'function') throw new Error(`no method ${method} to track`);
    const call = original as (...args: unknown[]) => Promise<unknown>;
    methods[method] = async (...args: unknown[]): Promise<unknown> => {
      this.running++;
      try {
        return await call.apply(target, args);
      } finally {
        this.running--;
        this.lastEndedAt = performance.now();
      }
    };
  }

  /** Resolves once no call has been in flight for `quietMs`. */
  async quiet(quietMs: number): Promise<void> {
    for (;;) {
      const wait = this.lastEndedAt + quietMs - performance.now();
      if (this.running === 0 && wait <= 0) return;
      await new Promise((resolve) => setTimeout(resolve, Math.max(1, wait)));
    }
  }
}
