/** Helpers shared by the data tests: tiny IDX files and temporary folders. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** IDX bytes of unsigned bytes: 00 00 08 rank, big-endian dims, then `data`. */
export function idxBytes(dims: number[], data: ArrayLike<number>): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(Array.from(data))]);
}

/** A fresh empty folder under the OS temp folder; remove it with `removeDir`. */
export function makeTempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `vaelab-${prefix}-`));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** Asserts that `fn` throws an instance of `cls` whose message is exactly `message` (the public kit's). */
export { expectThrowExact } from '../../testing/expect-throw';

/** Skips the running test and shows why in its title (mocha's `skip()` takes no reason). */
export function skipBecause(ctx: Mocha.Context, reason: string): never {
  if (ctx.test) ctx.test.title += ` (skipped: ${reason})`;
  ctx.skip();
}
