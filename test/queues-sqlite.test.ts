import { defineQueueSuite } from './queues.js';
import { sqliteTarget } from './helpers/targets.js';

defineQueueSuite(sqliteTarget());
