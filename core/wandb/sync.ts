/**
 * `vaelab wandb-sync RUN_DIR`: sends what a run kept for W&B and the server never acknowledged
 * (the run, rows, summary, end), as `wandb sync` does for Python users. What it sends is
 * recorded as acknowledged, so a second sync sends nothing; a sync cut short by a failure keeps
 * the rest for the next one. A staged run is synced stage by stage.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { getPath } from '../config/experiment';
import { ConfigError, VaelabError } from '../errors';
import { isStagedRun, stageRunDirs } from '../train/init';
import { RunDir } from '../tracking/run-dir';
import { DEFAULT_BASE_URL } from './logger';
import { Outbox } from './outbox';
import { sendPending, type SendReport } from './send';
import { WireClient, WireError } from './wire';
import { processAlive } from '../tracking/owner';

/** What one run directory's sync sent. */
export interface SyncResult {
  dir: string;
  url: string;
  report: SendReport;
}

const describe = (r: SendReport): string => {
  const parts = [...(r.run ? ['the run'] : []), `${r.rows} row${r.rows === 1 ? '' : 's'}`, ...(r.summary ? ['the summary'] : []), ...(r.complete ? ['the end'] : [])];
  return parts.join(', ');
};

/** Sends every run directory's pending W&B data (see the file's comment). */
export async function wandbSync(dir: string, opts: { env?: NodeJS.ProcessEnv; log?: (line: string) => void } = {}): Promise<SyncResult[]> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => undefined);
  const run = RunDir.open(dir, 'wandb-sync');
  const shown = JSON.stringify(dir);
  const dirs = Outbox.exists(run.dir) ? [run.dir] : isStagedRun(run.dir) ? stageRunDirs(run.dir).filter((d) => Outbox.exists(d)) : [];
  if (dirs.length === 0) {
    throw new ConfigError(`wandb-sync ${shown}: the run has no W&B data (no wandb/state.json): it was trained with W&B off (tracking.wandb.enabled, --wandb, WANDB_API_KEY)`);
  }
  const boxes = dirs.map((d) => ({ dir: d, box: Outbox.open(d)! }));
  for (const { dir: d, box } of boxes) {
    const owner = box.state.owner;
    if (owner && owner.host === os.hostname() && owner.pid !== process.pid && processAlive(owner.pid)) {
      throw new ConfigError(`wandb-sync ${shown}: ${path.relative(run.dir, d) || 'the run'} is still training (process ${owner.pid}), and sends its own W&B data; sync it after it ended`);
    }
  }
  const unsettled = boxes.filter(({ box }) => !box.settled);
  if (unsettled.length === 0) {
    const at = boxes.map(({ box }) => box.state.sent.at).filter(Boolean).sort().pop();
    throw new ConfigError(`wandb-sync ${shown}: nothing to send: the server has acknowledged all of the run's W&B data${at ? ` (last at ${at})` : ''}`);
  }
  const apiKey = env.WANDB_API_KEY ?? '';
  if (!apiKey) throw new ConfigError(`WANDB_API_KEY: not set; wandb-sync needs the API key of the W&B account to send run ${shown} to`);
  const results: SyncResult[] = [];
  for (const { dir: d, box } of unsettled) {
    const baseUrl = env.WANDB_BASE_URL || box.state.baseUrl || DEFAULT_BASE_URL;
    const seconds = getPath(box.state.config, 'tracking.wandb.timeoutSeconds');
    const client = new WireClient({ baseUrl, apiKey, timeoutMs: (typeof seconds === 'number' && seconds > 0 ? seconds : 10) * 1000 });
    const where = path.relative(process.cwd(), d) || d;
    log(`${where}: sending ${box.describePending()}`);
    try {
      const report = await sendPending(box, client, true);
      const s = box.state;
      results.push({ dir: d, url: `${baseUrl.replace(/\/+$/, '')}/${s.entity}/${s.project}/runs/${s.runId}`, report });
      log(`${where}: sent ${describe(report)}`);
    } catch (e) {
      const msg = e instanceof WireError ? `${baseUrl}: ${e.message}` : e instanceof Error ? e.message : String(e);
      throw new VaelabError(`wandb-sync ${shown}: ${msg}; still kept in ${path.join(where, 'wandb')}: ${box.describePending() || 'nothing'}; run wandb-sync again`);
    } finally {
      client.close();
    }
  }
  return results;
}
