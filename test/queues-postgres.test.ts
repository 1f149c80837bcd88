import { defineQueueSuite } from './queues.js';
import { postgresTarget } from './helpers/targets.js';

defineQueueSuite(await postgresTarget('queues'));
