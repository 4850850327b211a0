export { registerDashboardCommand } from './cli';
export { startDashboard, resolveRunFile, type Dashboard, type DashboardOptions } from './server';
