import { defineControlSuite } from './control.js';
import { sqliteTarget } from './helpers/targets.js';

defineControlSuite(sqliteTarget());
