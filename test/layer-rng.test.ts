/**
 * PassOptions.layerRng in the generation of every hierarchy (ladder, bottom-up, convolutional):
 * layer l's noise comes from layerRng(l), bottom first, asked top-down for every layer below the
 * top and nothing else, and `rng` is then not drawn from at all.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import { Rng, type PassOptions } from '../core';
import { TINY_IMAGE_INFO, buildParts, disposeParts } from '../testing';
import { plugins } from '../plugins';

const slot = (use: string, cfg: Record<string, unknown>) => ({ use, [use]: cfg });
const HIERARCHIES: Array<[string, Record<string, unknown>]> = [
  ['ladder', { encoder: slot('ladder', { hiddenSizes: [8, 8, 8], blockLayers: 1, batchNorm: false }), latent: slot('ladder', { dims: [3, 2, 2], hiddenSizes: [4, 4], batchNorm: false }), decoder: slot('ladder', { hiddenSizes: [8], batchNorm: false }), objective: slot('ladder', {}) }],
  ['bottom-up', { latent: slot('bottom-up', { dims: [3, 2, 2], hiddenSizes: [4, 4], hiddenLayers: 1 }) }],
  [
    'conv-hierarchy',
    {
      encoder: slot('conv-hierarchy', { channels: [4, 4, 4] }),
      latent: slot('conv-hierarchy', { resolutions: [4, 2], groups: [1, 2], channels: [4, 6], zChannels: 2 }),
      decoder: slot('conv-hierarchy', { channels: [4] }),
      objective: slot('ladder', {}),
    },
  ],
];

describe('layerRng: the noise of each layer of a generated hierarchy', () => {
  for (const [name, over] of HIERARCHIES) {
    it(`Should draw layer l from layerRng(l), top-down, and nothing from rng (${name})`, () => {
      const parts = buildParts(over, TINY_IMAGE_INFO, { plugins });
      const latent = parts.model.latent;
      const L = latent.layers!;
      expect(L).to.equal(3);
      const zTop = tf.tidy(() => parts.model.prior.sample(2, Rng.derive(1, 'top'), null));
      const asked: number[] = [];
      const gen = (rng: Rng, stream: string) => {
        const opts: PassOptions = { training: false, rng, layerRng: (l) => (asked.push(l), Rng.derive(3, stream, l)) };
        return Array.from(tf.tidy(() => latent.generate!(zTop, opts)).dataSync());
      };
      const a = gen(Rng.derive(5, 'unused'), 'layers');
      expect(asked).to.deep.equal([1, 0]);
      // another rng, the same layer streams: the same codes
      expect(gen(Rng.derive(6, 'unused'), 'layers')).to.deep.equal(a);
      // other layer streams: other codes
      expect(gen(Rng.derive(5, 'unused'), 'other')).to.not.deep.equal(a);
      zTop.dispose();
      disposeParts(parts);
    });
  }
});
