import { defineCliSuite } from './cli.js';
import { postgresTarget } from './helpers/targets.js';

defineCliSuite(await postgresTarget('cli'));
