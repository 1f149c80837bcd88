import { createHash } from 'node:crypto';
import type { WorkflowFunction } from '../types.js';
import { InvalidArgumentError } from './errors.js';
import { assertFunction, assertName } from './validate.js';

export interface Registration {
  name: string;
  fn: WorkflowFunction<unknown, unknown>;
}

/** The registration behind each Workflow object an engine returned (read by checkReplay). */
const byWorkflow = new WeakMap<object, Registration>();

export function rememberWorkflow(workflow: object, reg: Registration): void {
  byWorkflow.set(workflow, reg);
}

export function registrationOf(workflow: unknown): Registration | undefined {
  return typeof workflow === 'object' && workflow !== null ? byWorkflow.get(workflow) : undefined;
}

/**
 * The workflows this process can run. When no appVersion is given, the version is a hash of the
 * registered sources, fixed the first time it is needed; registering later would change it under
 * workflows already stored, so that is refused.
 */
export class Registry {
  private readonly byName = new Map<string, Registration>();
  private version: string | undefined;

  constructor(private readonly explicitVersion: string | undefined) {}

  register(rawName: unknown, fn: unknown): Registration {
    const name = assertName('workflow name', rawName);
    assertFunction('workflow function', fn);
    if (this.byName.has(name)) {
      throw new InvalidArgumentError('name', `a workflow named '${name}' is already registered; workflow names must be unique`);
    }
    if (this.explicitVersion === undefined && this.version !== undefined) {
      throw new InvalidArgumentError(
        'name',
        `workflow '${name}' was registered after this engine started or recovered work; register every workflow first, ` +
          'because the default appVersion is derived from them (or pass appVersion to Engine.open)',
      );
    }
    const reg = { name, fn: fn as WorkflowFunction<unknown, unknown> };
    this.byName.set(name, reg);
    return reg;
  }

  get(name: string): Registration | undefined {
    return this.byName.get(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** The app version if it is fixed already (given, or derived once work began), without fixing it. */
  knownVersion(): string | undefined {
    return this.explicitVersion ?? this.version;
  }

  appVersion(): string {
    if (this.explicitVersion !== undefined) return this.explicitVersion;
    if (this.version === undefined) {
      const hash = createHash('sha256');
      for (const name of [...this.byName.keys()].sort()) {
        hash.update(name).update('\0').update(this.byName.get(name)!.fn.toString()).update('\0');
      }
      this.version = hash.digest('hex').slice(0, 32);
    }
    return this.version;
  }
}
