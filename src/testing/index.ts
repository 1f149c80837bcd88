/**
 * Test helpers, imported from `cairn/testing`: they need no database.
 */
export { checkReplay } from '../versions/replay.js';
export type { ReplayCheck, ReplayDivergence, WorkflowHistory } from '../types.js';
