import { sqliteTarget } from './helpers/targets.js';
import { defineVersionsSuite } from './versions.js';

defineVersionsSuite(sqliteTarget());
