import { defineBadInputSuite } from './bad-input.js';
import { postgresTarget } from './helpers/targets.js';

defineBadInputSuite(await postgresTarget('bad_input'));
