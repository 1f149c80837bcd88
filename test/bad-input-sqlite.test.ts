import { defineBadInputSuite } from './bad-input.js';
import { sqliteTarget } from './helpers/targets.js';

defineBadInputSuite(sqliteTarget());
