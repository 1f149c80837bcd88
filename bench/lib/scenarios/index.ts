import type { Scenario } from '../scenario.js';
import { floor } from './floor.js';
import { parkedMemory } from './memory.js';
import { queueDrain } from './queue.js';
import { recovery } from './recovery.js';
import { sequentialWorkflow } from './sequential.js';
import { throughput } from './throughput.js';
import { wake } from './wake.js';

/**
 * Every scenario, in the project's numbering. Scenarios run in this order on each target; a later
 * scenario may read figures an earlier one left in `ctx.shared` (the floor, above all).
 * To add one: write a module exporting a `Scenario` and list it here (a scenario whose engine
 * feature is missing is listed as `notBuilt(...)`, one honest row without numbers).
 */
export const scenarios: readonly Scenario[] = [
  floor,
  sequentialWorkflow,
  throughput,
  queueDrain,
  recovery,
  parkedMemory,
  wake,
];
