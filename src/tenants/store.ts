import type { Tenant } from '../types.js';

/** What each database offers a TenantAdmin; names arrive validated. */
export interface TenantStore {
  create(name: string): Promise<Tenant>;
  list(): Promise<Tenant[]>;
  drop(name: string, force: boolean): Promise<void>;
  close(): Promise<void>;
}
