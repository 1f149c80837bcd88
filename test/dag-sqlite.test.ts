import { defineDagSuite } from './dag.js';
import { defineFanOutSuite } from './dag-all.js';
import { sqliteTarget } from './helpers/targets.js';

defineDagSuite(sqliteTarget());
defineFanOutSuite(sqliteTarget());
