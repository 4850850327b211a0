/**
 * One pass over a run's outbox: everything the server has not acknowledged, in the order W&B
 * needs it (the run, its rows, its summary, its end), each acknowledgement recorded before the
 * next request. Used while training (core/wandb/logger.ts) and by `vaelab wandb-sync`.
 */
import * as os from 'node:os';
import type { Outbox, Row } from './outbox';
import type { UpsertVars, WireClient } from './wire';

/** Rows per file_stream post (the SDK posts up to 10 000 items; smaller posts fail cheaper). */
export const ROWS_PER_POST = 1000;

/** The run's config in W&B's form: each top-level key as {"value": ..., "desc": null}, as the Python client sends it. */
export function wandbConfig(config: Record<string, unknown>): string {
  return JSON.stringify(Object.fromEntries(Object.entries(config).map(([k, v]) => [k, { desc: null, value: v }])));
}

/** Counts of what one pass sent. */
export interface SendReport {
  run: boolean;
  rows: number;
  summary: boolean;
  complete: boolean;
}

/**
 * Sends what is pending; throws the first WireError (what was acknowledged before it stays
 * acknowledged). `sendEnd`: also the summary and the end of a run that has ended.
 */
export async function sendPending(box: Outbox, client: WireClient, sendEnd = true): Promise<SendReport> {
  const s = box.state;
  const report: SendReport = { run: false, rows: 0, summary: false, complete: false };
  if (!s.entity) {
    s.entity = await client.viewerEntity();
    box.save();
  }
  const ids = { name: s.runId, project: s.project, entity: s.entity };
  if (!s.sent.run) {
    const vars: UpsertVars = {
      ...ids,
      displayName: s.displayName,
      config: wandbConfig(s.config),
      host: os.hostname(),
      state: s.exitCode === null ? 'running' : undefined,
      ...(s.group ? { groupName: s.group } : {}),
      ...(s.tags.length > 0 ? { tags: s.tags } : {}),
      ...(s.notes ? { notes: s.notes } : {}),
    };
    await client.upsertBucket(vars);
    s.sent.run = true;
    box.acknowledged();
    report.run = true;
  }
  for (let rows = box.pending(); rows.length > 0; rows = box.pending()) {
    const chunk: Row[] = rows.slice(0, ROWS_PER_POST);
    const upTo = chunk[chunk.length - 1]._step + 1;
    const running = { ...s.lastValues };
    for (const r of chunk) for (const [k, v] of Object.entries(r)) if (!k.startsWith('_')) running[k] = v;
    await client.fileStream(s.entity, s.project, s.runId, {
      files: {
        'wandb-history.jsonl': { offset: chunk[0]._step, content: chunk.map((r) => JSON.stringify(r)) },
        'wandb-summary.json': { offset: 0, content: [JSON.stringify(running)] },
      },
    });
    box.acknowledgeRows(upTo, chunk);
    report.rows += chunk.length;
  }
  if (!sendEnd || s.exitCode === null) return report;
  if (s.summary && !s.sent.summary) {
    const summary = { ...s.lastValues, ...s.summary };
    await client.fileStream(s.entity, s.project, s.runId, { files: { 'wandb-summary.json': { offset: 0, content: [JSON.stringify(summary)] } } });
    // The SDK has no call for a summary; UpsertBucket's summaryMetrics is where the W&B API keeps it.
    await client.upsertBucket({ ...ids, summaryMetrics: JSON.stringify(summary) });
    s.sent.summary = true;
    box.acknowledged();
    report.summary = true;
  }
  if (!s.sent.complete) {
    await client.fileStream(s.entity, s.project, s.runId, { complete: true, exitcode: s.exitCode });
    s.sent.complete = true;
    box.acknowledged();
    report.complete = true;
  }
  return report;
}
