import { defineFleetSuite } from './fleet.js';
import { sqliteTarget } from './helpers/targets.js';

defineFleetSuite(sqliteTarget());
