/**
 * The Cairn dashboard, imported from `cairn/dashboard`: a request handler for node:http, Express
 * and Fastify, and a server of its own for `cairn dashboard`.
 */
export { dashboardHandler } from './handler.js';
export type { DashboardHandler, DashboardOptions } from './handler.js';
export { serveDashboard } from './serve.js';
export type { ServeDashboardOptions, ServedDashboard } from './serve.js';
