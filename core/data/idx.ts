/**
 * Reader of the IDX format (LeCun's MNIST file format), gzipped or not.
 *
 * Layout: bytes 0-1 are zero, byte 2 is the element type (only 0x08, unsigned byte, is
 * supported), byte 3 is the rank r; then r big-endian uint32 dimension sizes; then the
 * elements, row-major, with nothing after them. A file whose first two bytes are the gzip magic
 * 1f 8b is gunzipped first.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { DataError } from '../errors';

/** A parsed IDX file of unsigned bytes. */
export interface IdxArray {
  /** Dimension sizes from the header, e.g. [60000, 28, 28]. */
  dims: number[];
  /** Elements, row-major. Shape: `dims`. A view into the file's bytes, not a copy. */
  data: Uint8Array;
}

const TYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

const hex = (b: number) => b.toString(16).padStart(2, '0');

/** True when `bytes` starts with the gzip magic number 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Parses IDX bytes (gunzipping them first when they start with 1f 8b).
 * `file` names the source in error messages.
 * Throws DataError naming `file`, what the header promised and what was found.
 */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  const gzipped = isGzip(bytes);
  if (gzipped) {
    try {
      bytes = zlib.gunzipSync(bytes);
    } catch (e) {
      throw new DataError(`${file}: cannot gunzip: ${(e as Error).message}`);
    }
  }
  const total = bytes.length;
  if (total < 4) {
    throw new DataError(`${file}: too short for an IDX header: expected at least 4 bytes; got ${total}`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const got = Array.from(bytes.subarray(0, 4), hex).join(' ');
    throw new DataError(`${file}: not an IDX file: expected magic bytes 00 00 <type> <rank>; got ${got}`);
  }
  const type = bytes[2];
  if (type !== 0x08) {
    const name = TYPE_NAMES[type] ?? 'unknown';
    throw new DataError(`${file}: unsupported IDX element type 0x${hex(type)} (${name}); expected 0x08 (unsigned byte)`);
  }
  const rank = bytes[3];
  if (rank === 0) throw new DataError(`${file}: IDX header declares 0 dimensions; expected at least 1`);
  const headerBytes = 4 + 4 * rank;
  if (total < headerBytes) {
    throw new DataError(
      `${file}: IDX header declares ${rank} dimensions, so ${headerBytes} header bytes; file has ${total}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, headerBytes);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const expected = dims.reduce((p, d) => p * d, 1);
  const got = total - headerBytes;
  if (got !== expected) {
    const once = gzipped ? ', once gunzipped' : '';
    throw new DataError(
      `${file}: IDX header says ${dims.join('×')} = ${expected} bytes of data; ` +
        `file has ${got} after the ${headerBytes}-byte header${once}`,
    );
  }
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerBytes, expected) };
}

interface CacheEntry {
  size: number;
  mtimeMs: number;
  value: IdxArray;
}

/** Parsed files of this process, keyed by absolute path; re-read when size or mtime change. */
const cache = new Map<string, CacheEntry>();

/** A file as readIdx found it: its absolute path, size and modification time. */
export interface IdxFileStamp {
  file: string;
  size: number;
  mtimeMs: number;
}

/** The files readIdx is asked for while `recordIdxReads` runs, else null. */
let reads: IdxFileStamp[] | null = null;

/**
 * Runs `fn` and returns, with its value, the IDX files it read (from disk or from the cache),
 * so that a value built from them can be cached and checked later with `idxFilesUnchanged`.
 */
export function recordIdxReads<T>(fn: () => T): { value: T; files: IdxFileStamp[] } {
  const outer = reads;
  const mine: IdxFileStamp[] = [];
  reads = mine;
  try {
    return { value: fn(), files: mine };
  } finally {
    reads = outer;
  }
}

/** True when every file still has the size and modification time it had when it was read. */
export function idxFilesUnchanged(files: readonly IdxFileStamp[]): boolean {
  return files.every((f) => {
    try {
      const st = fs.statSync(f.file);
      return st.size === f.size && st.mtimeMs === f.mtimeMs;
    } catch {
      return false;
    }
  });
}

/**
 * Reads and parses an IDX file, cached per process: a second call for an unchanged file returns
 * the same arrays without touching the disk again (callers must not write into `data`).
 */
export function readIdx(file: string): IdxArray {
  const key = path.resolve(file);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(key);
  } catch (e) {
    throw new DataError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  reads?.push({ file: key, size: stat.size, mtimeMs: stat.mtimeMs });
  const hit = cache.get(key);
  if (hit && hit.size === stat.size && hit.mtimeMs === stat.mtimeMs) return hit.value;
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(key);
  } catch (e) {
    throw new DataError(`${file}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const value = parseIdx(bytes, file);
  cache.set(key, { size: stat.size, mtimeMs: stat.mtimeMs, value });
  return value;
}

/** Forgets every cached file (frees their memory once no data set refers to them). */
export function clearIdxCache(): void {
  cache.clear();
}
