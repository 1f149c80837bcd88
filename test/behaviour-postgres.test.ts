import { defineBehaviourSuite } from './behaviour.js';
import { postgresTarget } from './helpers/targets.js';

defineBehaviourSuite(await postgresTarget('behaviour'));
