import type { Provider } from '../providers/provider.js';
import type { Logger } from '../types.js';

/** What the engine shares with the executions and handles it creates. */
export interface EngineCore {
  readonly provider: Provider;
  readonly logger: Logger;
  /** True once close() has passed its deadline: executions still running are abandoned, not ended. */
  readonly closed: boolean;
}
