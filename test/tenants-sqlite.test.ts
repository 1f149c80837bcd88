import { sqliteTenants } from './fixtures/tenant-harness.js';
import { defineTenantsSuite } from './tenants.js';

defineTenantsSuite(sqliteTenants());
