/**
 * Checkpoint files: one file per checkpoint, written atomically.
 * Layout: the 8 bytes "VAELABCK", a uint32 (little-endian) header length, the UTF-8 JSON
 * header, padding to a multiple of 4, then the float32 data of every tensor in header order.
 * The header holds everything needed to continue exactly: step, epoch, position in the epoch,
 * optimizer step counts, early-stopping state, partial epoch sums, callbacks' state, and the
 * tensor index.
 *
 * Tensor namespaces: `model/<key>` every trainable variable (frozen ones and parameter groups'
 * included), `state/<key>` non-trainable state (Trainable.state), `adam/m/<key>` and
 * `adam/v/<key>` the main group's Adam moments, `adam/<group>/m/<key>` and `adam/<group>/v/<key>`
 * those of each parameter group.
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { TrainingError } from '../errors';
import { writeFileAtomic } from '../tracking/files';

const MAGIC = 'VAELABCK';

/** Where in training a checkpoint was taken, and the state beside the tensors. */
export interface CheckpointMeta {
  version: 1;
  /** Optimisation steps done. */
  step: number;
  /** The epoch in progress (0-based); equals the number of finished epochs at an epoch boundary. */
  epoch: number;
  /** Batches of `epoch` already done (0 at an epoch boundary). */
  batchInEpoch: number;
  /** Adam's step count (the main group's). */
  optimizerT: number;
  /** Each parameter group's Adam step count, by group name (absent: no groups). */
  groups?: Record<string, { optimizerT: number }>;
  /** Early-stopping state. */
  best: { value: number | null; epoch: number | null; evalsWithoutImprovement: number };
  /** Sums of the current epoch's training values so far (weighted by batch size), and the examples they cover. */
  epochSums: Record<string, number>;
  epochCount: number;
  /**
   * Examples each of epochSums' entries covers, where it differs from epochCount (a term that
   * exists only on some steps, a group that steps every k steps). Absent in older checkpoints.
   */
  epochCounts?: Record<string, number>;
  /** State of the run's named callbacks (TrainerCallback.state), by name. */
  callbacks?: Record<string, unknown>;
  /** Wall time spent in training before this checkpoint, seconds. */
  trainSeconds: number;
  seed: number;
  /** Why it was written: end of an epoch, Ctrl-C, a new best, or the end of a run cut by train.maxSteps. */
  reason: 'epoch' | 'interrupt' | 'best' | 'final';
  createdAt: string;
}

interface TensorEntry {
  name: string;
  shape: number[];
  offset: number;
  size: number;
}

/** A checkpoint read from disk. */
export interface LoadedCheckpoint {
  meta: CheckpointMeta;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

/** Writes tensors and meta to `file` atomically. */
export function saveCheckpoint(file: string, meta: CheckpointMeta, tensors: Map<string, tf.Tensor>): void {
  const entries: TensorEntry[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    entries.push({ name, shape: t.shape.slice(), offset, size: t.size });
    offset += t.size;
  }
  const header = Buffer.from(JSON.stringify({ meta, tensors: entries }), 'utf8');
  const headerPadded = Math.ceil((12 + header.length) / 4) * 4;
  const out = Buffer.alloc(headerPadded + offset * 4);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(header.length, 8);
  header.copy(out, 12);
  const floats = new Float32Array(out.buffer, out.byteOffset + headerPadded, offset);
  for (const e of entries) floats.set(tensors.get(e.name)!.dataSync() as Float32Array, e.offset);
  writeFileAtomic(file, out);
}

/** Reads a checkpoint; a damaged file gives a TrainingError naming it. */
export function loadCheckpoint(file: string): LoadedCheckpoint {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new TrainingError(`checkpoint ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== MAGIC) {
    throw new TrainingError(`checkpoint ${file}: not a vaelab checkpoint (bad magic)`);
  }
  const len = buf.readUInt32LE(8);
  const headerPadded = Math.ceil((12 + len) / 4) * 4;
  let parsed: { meta: CheckpointMeta; tensors: TensorEntry[] };
  try {
    parsed = JSON.parse(buf.toString('utf8', 12, 12 + len));
  } catch {
    throw new TrainingError(`checkpoint ${file}: damaged header`);
  }
  if (parsed.meta?.version !== 1) {
    throw new TrainingError(`checkpoint ${file}: format version ${JSON.stringify(parsed.meta?.version)} is not supported (this vaelab reads version 1)`);
  }
  const total = parsed.tensors.reduce((s, e) => s + e.size, 0);
  if (buf.length !== headerPadded + total * 4) {
    throw new TrainingError(`checkpoint ${file}: expected ${headerPadded + total * 4} bytes; file has ${buf.length}`);
  }
  const aligned = new Float32Array(total);
  aligned.set(new Float32Array(buf.buffer.slice(buf.byteOffset + headerPadded, buf.byteOffset + headerPadded + total * 4)));
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const e of parsed.tensors) {
    tensors.set(e.name, { shape: e.shape, data: aligned.subarray(e.offset, e.offset + e.size) });
  }
  return { meta: parsed.meta, tensors };
}

/** True when `key` starts with one of `prefixes`; an empty list selects every key. */
export function matchesPrefix(key: string, prefixes: readonly string[]): boolean {
  return prefixes.length === 0 || prefixes.some((p) => key.startsWith(p));
}

/**
 * Assigns checkpoint values to variables by name; every variable must be present with its shape.
 * `prefix` selects a namespace of the checkpoint ("model/", "adam/m/").
 */
export function restoreVariables(ck: LoadedCheckpoint, prefix: string, vars: Map<string, tf.Variable>, file: string): void {
  for (const [name, v] of vars) {
    const entry = ck.tensors.get(prefix + name);
    if (!entry) {
      throw new TrainingError(`checkpoint ${file}: has no tensor ${prefix + name}; was it written by another experiment?`);
    }
    if (entry.shape.join(',') !== v.shape.join(',')) {
      throw new TrainingError(
        `checkpoint ${file}: ${prefix + name} is [${entry.shape.join(', ')}] there but [${v.shape.join(', ')}] in this model`,
      );
    }
    tf.tidy(() => v.assign(tf.tensor(entry.data, entry.shape, 'float32')));
  }
}
