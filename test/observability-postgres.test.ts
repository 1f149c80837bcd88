import { defineObservabilitySuite } from './observability.js';
import { postgresTarget } from './helpers/targets.js';

defineObservabilitySuite(await postgresTarget('observability'));
