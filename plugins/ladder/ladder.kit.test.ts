/**
 * The conformance kit over the four ladder plugins: each selected with the others of the ladder
 * where it needs them (the latent reads the encoder's feature depths; the objective needs the
 * latent), with and without batch normalisation, one and several layers.
 */
import { describeConformance } from '../../testing';
import { plugins, ladderDecoder, ladderEncoder, ladderLatent, ladderObjective } from '.';

const set = { plugins };
const ladder = (dims: number[], hiddenSizes: number[], extra: Record<string, unknown> = {}) => ({ use: 'ladder', ladder: { dims, hiddenSizes, ...extra } });
const encoder = (hiddenSizes: number[], extra: Record<string, unknown> = {}) => ({ use: 'ladder', ladder: { hiddenSizes, ...extra } });

describe('ladder plugins (conformance)', () => {
  describeConformance(
    ladderEncoder,
    [
      { config: { hiddenSizes: [8, 6], blockLayers: 1 }, slots: { latent: ladder([3, 2], [4]) } },
      { config: { hiddenSizes: [8, 6, 4], batchNorm: false }, slots: { latent: ladder([3, 2, 2], [4, 4], { batchNorm: false }) } },
    ],
    set,
  );
  describeConformance(
    ladderLatent,
    [
      { config: { dims: [3, 2], hiddenSizes: [4] }, slots: { encoder: encoder([8, 6], { blockLayers: 1 }) } },
      { config: { dims: [4, 3, 2], hiddenSizes: [5, 4], blockLayers: 1, variance: 'exp' }, slots: { encoder: encoder([8, 6, 4], { batchNorm: false }) } },
      { config: { dims: [3], hiddenSizes: [] }, slots: { encoder: { use: 'mlp', mlp: { hiddenSizes: [16] } } } },
      { config: { dims: [3, 2], hiddenSizes: [4], blockLayers: 0, batchNorm: false }, slots: { encoder: encoder([8, 6]) } },
    ],
    set,
  );
  describeConformance(ladderDecoder, [{ config: { hiddenSizes: [16, 16] } }, { config: { hiddenSizes: [], batchNorm: false } }], set);
  describeConformance(
    ladderObjective,
    [
      { config: {}, slots: { encoder: encoder([8, 6]), latent: ladder([3, 2], [4]) } },
      {
        config: { samples: 2, klSchedule: { use: 'linear', warmupSteps: 50 }, freeBits: { natsPerLayer: [0.5, 0.2], over: 'batch' } },
        slots: { encoder: encoder([8, 6]), latent: ladder([3, 2], [4]), decoder: { use: 'ladder', ladder: { hiddenSizes: [16] } } },
      },
      { config: { freeBits: { natsPerLayer: [0.1], over: 'example' } }, slots: { encoder: encoder([8, 6, 4]), latent: ladder([3, 2, 2], [4, 4]) } },
    ],
    set,
  );
});
