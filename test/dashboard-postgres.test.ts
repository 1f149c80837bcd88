import { defineDashboardSuite } from './dashboard.js';
import { postgresTarget } from './helpers/targets.js';

defineDashboardSuite(await postgresTarget('dashboard'));
