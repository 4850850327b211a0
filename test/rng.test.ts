import { expect } from 'chai';
import { Rng } from '../core/rng';

describe('Rng', () => {
  it('Should give the same stream for the same (seed, name, counters) and different ones otherwise', () => {
    const a = Rng.derive(0, 'train', 5);
    const b = Rng.derive(0, 'train', 5);
    const c = Rng.derive(0, 'train', 6);
    const d = Rng.derive(1, 'train', 5);
    const draw = (r: Rng) => Array.from({ length: 8 }, () => r.nextUint32());
    const da = draw(a);
    expect(draw(b)).to.deep.equal(da);
    expect(draw(c)).to.not.deep.equal(da);
    expect(draw(d)).to.not.deep.equal(da);
  });

  it('Should restore a saved state exactly, spare normal included', () => {
    const r = Rng.derive(3, 'x');
    r.normal(); // leaves a spare normal cached
    const st = r.getState();
    const next = [r.normal(), r.uniform(), r.nextUint32()];
    const r2 = new Rng(99);
    r2.setState(st);
    expect([r2.normal(), r2.uniform(), r2.nextUint32()]).to.deep.equal(next);
  });

  it('Should fill arrays with exactly the normals normal() gives one by one, and leave the same state', () => {
    const cases: Array<{ from: Rng; spare: boolean; n: number }> = [];
    for (const n of [0, 1, 2, 3, 7, 64, 2561]) for (const spare of [false, true]) cases.push({ from: Rng.derive(n, 'fill', spare ? 1 : 0), spare, n });
    // A state whose first word is 0 (a + b + d = 0): u is drawn again, as in normal().
    const zeroFirst = new Rng(0);
    zeroFirst.setState({ s: [0, 0, 5, 0], spare: null });
    cases.push({ from: zeroFirst, spare: false, n: 5 });
    for (const { from, spare, n } of cases) {
      if (spare) from.normal();
      const twin = new Rng(0);
      twin.setState(from.getState());
      const filled = from.fillNormal(new Float32Array(n));
      const oneByOne = Float32Array.from({ length: n }, () => twin.normal());
      expect(Array.from(filled), `n=${n}, spare=${spare}`).to.deep.equal(Array.from(oneByOne));
      expect(from.getState(), `n=${n}, spare=${spare}`).to.deep.equal(twin.getState());
    }
    expect(zeroFirst.getState().s).to.not.deep.equal([0, 0, 5, 0]);
  });

  it('Should draw uniforms with mean 1/2 and normals with mean 0, variance 1 within 4 standard errors', () => {
    const n = 200000;
    const r = Rng.derive(0, 'moments');
    let su = 0;
    let sn = 0;
    let sn2 = 0;
    for (let i = 0; i < n; i++) {
      su += r.uniform();
      const z = r.normal();
      sn += z;
      sn2 += z * z;
    }
    // uniform sd = 1/sqrt(12); normal mean sd = 1; variance of z^2 is 2 so sd(mean z^2) = sqrt(2/n)
    expect(Math.abs(su / n - 0.5)).to.be.below((4 / Math.sqrt(12)) / Math.sqrt(n));
    expect(Math.abs(sn / n)).to.be.below(4 / Math.sqrt(n));
    expect(Math.abs(sn2 / n - 1)).to.be.below(4 * Math.sqrt(2 / n));
  });

  it('Should produce a permutation of 0..n-1', () => {
    const p = Array.from(Rng.derive(1, 'perm').permutation(1000));
    expect([...p].sort((x, y) => x - y)).to.deep.equal(Array.from({ length: 1000 }, (_, i) => i));
    expect(p).to.not.deep.equal(Array.from({ length: 1000 }, (_, i) => i));
  });
});
