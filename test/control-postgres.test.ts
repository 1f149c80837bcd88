import { defineControlSuite } from './control.js';
import { postgresTarget } from './helpers/targets.js';

defineControlSuite(await postgresTarget('control'));
