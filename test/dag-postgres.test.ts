import { defineDagSuite } from './dag.js';
import { defineFanOutSuite } from './dag-all.js';
import { postgresTarget } from './helpers/targets.js';

defineDagSuite(await postgresTarget('dag'));
defineFanOutSuite(await postgresTarget('dag_all'));
