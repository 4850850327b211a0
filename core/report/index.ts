/** Run reports: one HTML page per run or comparison (see report.ts). */
export { readRun, renderReport, writeReport, type RunRecord } from './report';
export { registerReportCommand } from './cli';
