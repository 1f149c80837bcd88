import { defineSemanticsSuite } from './semantics.js';
import { postgresTarget } from './helpers/targets.js';

defineSemanticsSuite(await postgresTarget('semantics'));
