import { defineDashboardSuite } from './dashboard.js';
import { sqliteTarget } from './helpers/targets.js';

defineDashboardSuite(sqliteTarget());
