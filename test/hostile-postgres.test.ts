import { defineHostileSuite } from './hostile.js';
import { postgresTarget } from './helpers/targets.js';

defineHostileSuite(await postgresTarget('hostile'));
