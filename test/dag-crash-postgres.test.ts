import { defineDagCrashSuite } from './dag-crash.js';
import { postgresTarget } from './helpers/targets.js';

defineDagCrashSuite(await postgresTarget('dag_crash'));
