import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { DataError } from '../../core/errors';
import { isGzip, mnistPackageDir, parseIdx, readIdx } from '../../core/data';
import { expectThrowExact, idxBytes, makeTempDir, removeDir } from './helpers';

describe('IDX reader', () => {
  // 3 images of 2×2: values 0..11 in row-major order.
  const images = idxBytes([3, 2, 2], Array.from({ length: 12 }, (_, i) => i));

  it('Should parse the header dims big-endian and return the data row-major', () => {
    const a = parseIdx(images, 'tiny-idx3-ubyte');
    expect(a.dims).to.deep.equal([3, 2, 2]);
    expect(Array.from(a.data)).to.deep.equal(Array.from({ length: 12 }, (_, i) => i));
  });

  it('Should read dims above 255 (big-endian, all four bytes)', () => {
    // 300 = 0x0000012c: the low byte alone would read 44.
    const a = parseIdx(idxBytes([300], new Array(300).fill(7)), 'labels');
    expect(a.dims).to.deep.equal([300]);
    expect(a.data.length).to.equal(300);
  });

  it('Should gunzip a gzipped file and give the same array', () => {
    const gz = zlib.gzipSync(images);
    expect(isGzip(gz)).to.equal(true);
    expect(isGzip(images)).to.equal(false);
    const a = parseIdx(gz, 'tiny-idx3-ubyte.gz');
    expect(a.dims).to.deep.equal([3, 2, 2]);
    expect(Array.from(a.data)).to.deep.equal(Array.from(parseIdx(images, 'x').data));
  });

  describe('errors', () => {
    const cases: [string, Buffer, string][] = [
      [
        'truncated data',
        images.subarray(0, 16 + 5), // header of 4 + 3*4 = 16 bytes, then 5 of the 12 data bytes
        'f: IDX header says 3×2×2 = 12 bytes of data; file has 5 after the 16-byte header',
      ],
      [
        'trailing bytes',
        Buffer.concat([images, Buffer.from([1, 2])]),
        'f: IDX header says 3×2×2 = 12 bytes of data; file has 14 after the 16-byte header',
      ],
      [
        'truncated header',
        images.subarray(0, 10),
        'f: IDX header declares 3 dimensions, so 16 header bytes; file has 10',
      ],
      ['too short', Buffer.from([0, 0]), 'f: too short for an IDX header: expected at least 4 bytes; got 2'],
      [
        'bad magic',
        Buffer.from('P5 28 28', 'ascii'),
        'f: not an IDX file: expected magic bytes 00 00 <type> <rank>; got 50 35 20 32',
      ],
      [
        'float32 elements',
        Buffer.from([0, 0, 0x0d, 1, 0, 0, 0, 0]),
        'f: unsupported IDX element type 0x0d (float32); expected 0x08 (unsigned byte)',
      ],
      ['rank 0', Buffer.from([0, 0, 8, 0]), 'f: IDX header declares 0 dimensions; expected at least 1'],
      [
        'gzipped truncated data',
        zlib.gzipSync(images.subarray(0, 20)),
        'f: IDX header says 3×2×2 = 12 bytes of data; file has 4 after the 16-byte header, once gunzipped',
      ],
      [
        'cut gzip stream',
        zlib.gzipSync(images).subarray(0, 12),
        'f: cannot gunzip: unexpected end of file',
      ],
    ];
    for (const [what, bytes, message] of cases) {
      it(`Should reject ${what} with a DataError naming the file, expected and got`, () => {
        expectThrowExact(() => parseIdx(bytes, 'f'), DataError, message);
      });
    }
  });

  describe('files', () => {
    let dir = '';
    before(() => {
      dir = makeTempDir('idx');
    });
    after(() => removeDir(dir));

    it('Should name the file when a real MNIST file is cut short', () => {
      // The first 16 bytes of MNIST's training images are its header: 60000 images of 28×28.
      const header = fs.readFileSync(path.join(mnistPackageDir(), 'train-images-idx3-ubyte')).subarray(0, 16);
      const file = path.join(dir, 'train-images-idx3-ubyte');
      fs.writeFileSync(file, Buffer.concat([header, Buffer.alloc(1000)]));
      expectThrowExact(
        () => readIdx(file),
        DataError,
        `${file}: IDX header says 60000×28×28 = 47040000 bytes of data; file has 1000 after the 16-byte header`,
      );
    });

    it('Should say which file is missing', () => {
      const file = path.join(dir, 'nope');
      expectThrowExact(() => readIdx(file), DataError, `${file}: cannot read: ENOENT`);
    });

    it('Should return the cached arrays for an unchanged file and re-read a changed one', () => {
      const file = path.join(dir, 'cached-idx1-ubyte');
      fs.writeFileSync(file, idxBytes([3], [1, 2, 3]));
      const first = readIdx(file);
      expect(readIdx(file)).to.equal(first); // same object: no second read
      fs.writeFileSync(file, idxBytes([4], [1, 2, 3, 4]));
      expect(readIdx(file).dims).to.deep.equal([4]);
    });
  });
});
