import { postgresTarget } from './helpers/targets.js';
import { defineVersionsSuite } from './versions.js';

defineVersionsSuite(await postgresTarget('versions'));
