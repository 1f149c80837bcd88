import { defineMessagingSuite } from './messaging.js';
import { sqliteTarget } from './helpers/targets.js';

defineMessagingSuite(sqliteTarget());
