/** A system running the 10-step workflow: one durable workflow of ten trivial steps per call. */
export interface TenSteps {
  system: string;
  settings: Record<string, unknown>;
  /** Starts one workflow and resolves with its result once it has completed. */
  runOne(): Promise<void>;
  close(): Promise<void>;
}

/** One drain: `jobs` trivial jobs preloaded, then timed from starting the workers to the last committed completion. */
export interface DrainRun {
  system: string;
  jobs: number;
  preloadMs: number;
  drainMs: number;
  settings: Record<string, unknown>;
}

export interface DrainOptions {
  /** Database URL of the run's database. */
  url: string;
  /** A schema of its own for this drain. */
  schema: string;
  jobs: number;
  /** Most connections the system may open (pool size). */
  pool: number;
}

export const STEPS = 10;
