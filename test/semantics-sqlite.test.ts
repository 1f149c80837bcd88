import { defineSemanticsSuite } from './semantics.js';
import { sqliteTarget } from './helpers/targets.js';

defineSemanticsSuite(sqliteTarget());
