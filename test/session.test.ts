import { expect } from 'chai';
import { experimentFromObject } from '../core/config/experiment';
import { openSession } from '../core/session';
import { builtins, experimentObject } from './kits/build';

describe('session', () => {
  const raw = (binarize: string) =>
    experimentObject({ seed: 2, data: { use: 'synthetic', binarize, validationSize: 32, synthetic: { kind: 'shapes', size: 128 } } });

  it('Should binarise validation and test once, with a fixed stream, under dynamic binarisation', () => {
    const a = openSession(experimentFromObject(raw('dynamic'), builtins()));
    const b = openSession(experimentFromObject(raw('dynamic'), builtins()));
    const grey = openSession(experimentFromObject(raw('none'), builtins()));
    for (const split of ['validation', 'test'] as const) {
      const xa = a.dataset[split]!.x;
      expect(xa.every((v) => v === 0 || v === 1), split).to.equal(true);
      expect(Array.from(b.dataset[split]!.x)).to.deep.equal(Array.from(xa));
      // grey levels in (0, 1) exist before binarisation, so the draw really changed the data
      expect(grey.dataset[split]!.x.some((v) => v > 0 && v < 1)).to.equal(true);
    }
    // training data stays grey: the batcher draws it afresh each epoch
    expect(a.dataset.train.x.some((v) => v > 0 && v < 1)).to.equal(true);
  });

  it('Should give the model the label count as conditioning size when conditioning on labels', () => {
    const s = openSession(experimentFromObject({ ...raw('none'), data: { use: 'synthetic', condition: { use: 'labels' }, synthetic: { kind: 'shapes', size: 64 } } }, builtins()));
    expect(s.info.condDim).to.equal(4);
    expect(s.info.shape).to.deep.equal([14, 14, 1]);
  });
});
