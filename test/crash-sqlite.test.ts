import { defineCrashSuite } from './crash.js';
import { sqliteTarget } from './helpers/targets.js';

defineCrashSuite(sqliteTarget());
