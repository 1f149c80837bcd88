import { defineOperationsSuite } from './operations.js';
import { sqliteTarget } from './helpers/targets.js';

defineOperationsSuite(sqliteTarget());
