/**
 * Who is writing a run directory: `owner.json` holds the process id, host and a heartbeat while a
 * trainer runs in it, and is removed when the run ends (summary.json then says how). A run with
 * no summary whose owner process is gone (the process was killed, the machine rebooted) is one
 * whose process died: the run index reports it as such instead of leaving it "running".
 *
 * On the owner's own host the process id decides (signal 0). The heartbeat is for other hosts
 * (a shared file system): it is refreshed by a timer and at every epoch, but a long synchronous
 * evaluation holds the timer back, so only a heartbeat older than `STALE_MS` counts as dead.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { readJsonIfExists, writeJsonAtomic } from './files';

export const OWNER_FILE = 'owner.json';
const BEAT_MS = 30_000;
/** A heartbeat this old, from another host, means the owner is gone. */
export const STALE_MS = 2 * 60 * 60 * 1000;

export interface OwnerRecord {
  pid: number;
  host: string;
  startedAt: string;
  heartbeatAt: string;
}

/** The owner of a run directory while it trains. */
export class RunOwner {
  private timer: NodeJS.Timeout | null = null;
  private readonly rec: OwnerRecord;

  constructor(private readonly file: string) {
    const now = new Date().toISOString();
    this.rec = { pid: process.pid, host: os.hostname(), startedAt: now, heartbeatAt: now };
    this.write();
    this.timer = setInterval(() => this.beat(), BEAT_MS);
    this.timer.unref();
  }

  private write(): void {
    try {
      writeJsonAtomic(this.file, this.rec);
    } catch {
      // a read-only or vanished run directory: training itself reports that when it writes
    }
  }

  /** Refreshes the heartbeat. */
  beat(): void {
    if (!this.timer) return;
    this.rec.heartbeatAt = new Date().toISOString();
    this.write();
  }

  /** The run has ended (its summary is written): the directory has no owner any more. */
  release(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    fs.rmSync(this.file, { force: true });
  }
}

/** Whether a process with this id exists on this host. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to another user
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What owner.json says about a run without a summary. */
export type Liveness = { alive: true; owner: OwnerRecord } | { alive: false; reason: string };

export function ownerLiveness(file: string, now = Date.now()): Liveness {
  let rec: OwnerRecord | undefined;
  try {
    rec = readJsonIfExists<OwnerRecord>(file);
  } catch {
    return { alive: false, reason: `${OWNER_FILE}: not valid JSON` };
  }
  if (!rec || typeof rec.pid !== 'number') return { alive: false, reason: 'no summary.json and no owner process recorded' };
  if (rec.host === os.hostname()) {
    return processAlive(rec.pid) ? { alive: true, owner: rec } : { alive: false, reason: `process ${rec.pid} ended without writing summary.json` };
  }
  const age = now - Date.parse(rec.heartbeatAt);
  if (Number.isFinite(age) && age < STALE_MS) return { alive: true, owner: rec };
  return { alive: false, reason: `owner ${rec.pid} on ${rec.host}: no heartbeat since ${rec.heartbeatAt}` };
}
