import { defineCliSuite } from './cli.js';
import { sqliteTarget } from './helpers/targets.js';

defineCliSuite(sqliteTarget());
