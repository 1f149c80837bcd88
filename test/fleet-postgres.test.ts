import { defineFleetSuite } from './fleet.js';
import { postgresTarget } from './helpers/targets.js';

defineFleetSuite(await postgresTarget('fleet'));
