import { defineDagCrashSuite } from './dag-crash.js';
import { sqliteTarget } from './helpers/targets.js';

defineDagCrashSuite(sqliteTarget());
