import { defineCrashSuite } from './crash.js';
import { postgresTarget } from './helpers/targets.js';

defineCrashSuite(await postgresTarget('crash'));
