import { defineTransactionSuite } from './transactions.js';
import { postgresTarget } from './helpers/targets.js';

defineTransactionSuite(await postgresTarget('transactions'));
