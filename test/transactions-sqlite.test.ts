import { defineTransactionSuite } from './transactions.js';
import { sqliteTarget } from './helpers/targets.js';

defineTransactionSuite(sqliteTarget());
