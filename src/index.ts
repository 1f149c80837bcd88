export { Client } from './engine/client.js';
export { Engine } from './engine/engine.js';
export { Queue } from './queues/queue.js';
export { Schedules } from './scheduler/schedules.js';
export {
  CairnError,
  ContextUsageError,
  CorruptValueError,
  DatabaseConnectionError,
  DuplicateQueueEntryError,
  ERROR_CODES,
  EngineClosedError,
  ExecutionInterruptedError,
  ExecutionSupersededError,
  InvalidArgumentError,
  MaxRecoveryAttemptsError,
  MigrationError,
  NonDeterminismError,
  SerializationError,
  StepRetriesExceededError,
  StepTimeoutError,
  UnknownWorkflowError,
  WorkflowCancelledError,
  WorkflowConflictError,
  WorkflowNotFoundError,
  WorkflowTimeoutError,
} from './engine/errors.js';
export type { CairnErrorCode } from './engine/errors.js';
export { migrate } from './providers/migrate.js';
export { providerFromUrl } from './providers/open.js';
export { PostgresProvider } from './providers/postgres/provider.js';
export type { PostgresProviderOptions } from './providers/postgres/provider.js';
export type {
  CancelResult,
  ChangeListener,
  CheckpointMiss,
  CheckpointOutcome,
  ClaimRequest,
  ClaimResult,
  DebounceRequest,
  InsertConflict,
  QueueDefinition,
  ScheduleRow,
  StepEffect,
  StreamEntry,
  ListFilter,
  NewWorkflow,
  Provider,
  ProviderCapabilities,
  RecoveryClaim,
  SchemaVersion,
  StatementObserver,
  StepRow,
  WorkflowRow,
} from './providers/provider.js';
export { SqliteProvider } from './providers/sqlite/provider.js';
export type { SqliteProviderOptions, SqliteSynchronous } from './providers/sqlite/provider.js';
export { WORKFLOW_STATUSES } from './types.js';
export type {
  ChildOptions,
  ClientOptions,
  CloseOptions,
  Context,
  DebounceOptions,
  EngineOptions,
  EnqueueOptions,
  ForkOptions,
  ListWorkflowsFilter,
  Logger,
  QueueOptions,
  RetryOptions,
  ScheduledInput,
  ScheduleInfo,
  ScheduleOptions,
  ScheduleUpdate,
  SendOptions,
  StartArgs,
  StartOptions,
  StepAttempt,
  StepInfo,
  StepOptions,
  Workflow,
  WorkflowFunction,
  WorkflowHandle,
  WorkflowInfo,
  WorkflowInput,
  WorkflowOutput,
  WorkflowRef,
  WorkflowStatus,
} from './types.js';
