import { defineHostileSuite } from './hostile.js';
import { sqliteTarget } from './helpers/targets.js';

defineHostileSuite(sqliteTarget());
