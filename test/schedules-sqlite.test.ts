import { sqliteTarget } from './helpers/targets.js';
import { defineScheduleSuite } from './schedules.js';

defineScheduleSuite(sqliteTarget());
