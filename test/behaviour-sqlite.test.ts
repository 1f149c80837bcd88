import { defineBehaviourSuite } from './behaviour.js';
import { sqliteTarget } from './helpers/targets.js';

defineBehaviourSuite(sqliteTarget());
