import { defineMessagingSuite } from './messaging.js';
import { postgresTarget } from './helpers/targets.js';

defineMessagingSuite(await postgresTarget('messaging'));
