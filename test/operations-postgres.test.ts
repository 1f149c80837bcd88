import { defineOperationsSuite } from './operations.js';
import { postgresTarget } from './helpers/targets.js';

defineOperationsSuite(await postgresTarget('operations'));
