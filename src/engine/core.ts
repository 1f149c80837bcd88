import type { Observer } from '../observability/observer.js';
import type { Provider } from '../providers/provider.js';
import type { Logger, WorkflowHandle } from '../types.js';
import type { NonDeterminismError } from './errors.js';
import type { Waits } from './waits.js';

export interface ChildStart {
  parentId: string;
  name: string;
  input: string;
  childId: string;
  timeoutMs: number | undefined;
  /** Set for a child enqueued on a queue rather than started here. */
  queue?: { name: string; priority: number | undefined; partitionKey: string | undefined };
}

/** What the engine shares with the executions and handles it creates. */
export interface EngineCore {
  readonly provider: Provider;
  /** This engine's executor: the owner every checkpoint and end is written for (fencing). */
  readonly executorId: string;
  /** Whether this executor's lease may have expired (no heartbeat got through for about a lease). */
  leaseLapsed(): boolean;
  /** Heartbeats now, so the lease is held again from here on. */
  renewLease(): Promise<void>;
  readonly logger: Logger;
  /** @internal Hooks, spans and metrics; undefined when there are none, and then nothing is reported. */
  readonly observer: Observer | undefined;
  readonly waits: Waits;
  /** The most bytes one stored value may take. */
  readonly maxPayloadBytes: number;
  /** True once close() has passed its deadline: executions still running are abandoned, not ended. */
  readonly closed: boolean;
  /** True from the moment close() is called. */
  readonly closing: boolean;
  /** Stores a child workflow (or finds it under its id) and runs it here when new. */
  startChild(start: ChildStart): Promise<void>;
  handle<O>(id: string): WorkflowHandle<O>;
  /**
   * An execution's replay diverged from its workflow's history: report it, and hand the workflow
   * back under `recordedVersion` (undefined: this engine's version recorded it). Never throws.
   */
  diverged(id: string, err: NonDeterminismError, recordedVersion: string | null | undefined): Promise<void>;
  awaitResult(id: string): Promise<unknown>;
  /** Waits for an event; undefined after the deadline. `parking` runs once, when the first look finds none. */
  waitForEvent(workflowId: string, key: string, deadline: number, signal?: AbortSignal, parking?: () => Promise<void>): Promise<string | undefined>;
}
