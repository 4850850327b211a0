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

  it('Should mark the hidden quadrants as the target (1) and the visible ones as given (0) under visible-quadrants', () => {
    const data = (condition: Record<string, unknown>) => ({ use: 'synthetic', condition, synthetic: { kind: 'shapes', size: 64 } });
    const s = openSession(experimentFromObject({ ...raw('none'), data: data({ use: 'visible-quadrants', visibleQuadrants: [0, 3] }) }, builtins()));
    const mask = s.info.targetMask!;
    expect(mask.length).to.equal(14 * 14);
    // 14x14 images: rows and columns 0..6 are the top and left halves; quadrants 1 (top-right)
    // and 2 (bottom-left) are hidden, 0 (top-left) and 3 (bottom-right) shown
    const at = (r: number, c: number) => mask[r * 14 + c];
    expect([at(0, 0), at(6, 6), at(0, 7), at(6, 13), at(7, 0), at(13, 6), at(7, 7), at(13, 13)]).to.deep.equal([0, 0, 1, 1, 1, 1, 0, 0]);
    // half the pixels are hidden: two of four 7x7 quadrants
    expect(mask.reduce((a, v) => a + v, 0)).to.equal(2 * 49);
    const none = openSession(experimentFromObject({ ...raw('none'), data: data({ use: 'labels' }) }, builtins()));
    expect(none.info.targetMask).to.equal(undefined);
  });

  it('Should count the labelled training examples: all of them, or data.labelledSize', () => {
    const data = (labelledSize: number) => ({ use: 'synthetic', labelledSize, validationSize: 16, synthetic: { kind: 'shapes', size: 128 } });
    const all = openSession(experimentFromObject({ ...raw('none'), data: data(0) }, builtins()));
    // 128 examples, 16 of them carved out for validation
    expect(all.info.trainSize).to.equal(112);
    expect(all.info.labelledTrainSize).to.equal(112);
    const some = openSession(experimentFromObject({ ...raw('none'), data: data(8) }, builtins()));
    expect(some.info.labelledTrainSize).to.equal(8);
  });
});
