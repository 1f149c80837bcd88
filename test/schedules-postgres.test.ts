import { postgresTarget } from './helpers/targets.js';
import { defineScheduleSuite } from './schedules.js';

defineScheduleSuite(await postgresTarget('schedules'));
