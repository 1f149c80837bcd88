import { defineObservabilitySuite } from './observability.js';
import { sqliteTarget } from './helpers/targets.js';

defineObservabilitySuite(sqliteTarget());
