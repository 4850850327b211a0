/**
 * The conformance kit over the three conv-hierarchy plugins and objective.ladder on them, on the
 * kit's 8x8 images: feature maps at sides 8, 4 and 2, latent groups at 4 and 2 (and at one side
 * only), both merges, both variances, with and without cells.
 *
 * The @slow training check runs on one case only: on the cpu backend the tests use, tfjs's
 * Conv2DBackpropFilter takes ~10 ms a call even at 8x8x4, so one 200-step training of this
 * hierarchy (about 30 convolutions) takes ~50 s. The other cases get every other check.
 */
import { describeConformance } from '../../testing';
import { ladderObjective, plugins as ladderPlugins } from '../ladder';
import { plugins, convHierarchyDecoder, convHierarchyEncoder, convHierarchyLatent } from '.';

const set = { plugins: [...plugins, ...ladderPlugins] };
const encoder = (channels: number[], extra: Record<string, unknown> = {}) => ({ use: 'conv-hierarchy', 'conv-hierarchy': { channels, ...extra } });
const latent = (resolutions: number[], groups: number[], channels: number[], extra: Record<string, unknown> = {}) => ({
  use: 'conv-hierarchy',
  'conv-hierarchy': { resolutions, groups, channels, zChannels: 2, ...extra },
});
const decoder = (channels: number[], extra: Record<string, unknown> = {}) => ({ use: 'conv-hierarchy', 'conv-hierarchy': { channels, ...extra } });
const two = { encoder: encoder([4, 4, 4]), latent: latent([4, 2], [1, 2], [4, 6]), decoder: decoder([4]) };
// the trained case: no cells in the encoder and decoder (fewer 8x8 convolutions), one in the latent after each group
const trained = { encoder: encoder([4, 4, 4], { cellsPerResolution: 0 }), decoder: decoder([4], { cellsPerResolution: 0 }) };

describe('conv-hierarchy plugins (conformance)', () => {
  describeConformance(
    convHierarchyEncoder,
    [
      { title: 'sides 8, 4, 2', config: { channels: [4, 4, 4] }, slots: { latent: two.latent, decoder: two.decoder }, training: false },
      { title: 'sides 8, 4, no cells', config: { channels: [3, 5], cellsPerResolution: 0 }, slots: { latent: latent([4], [1], [4]), decoder: decoder([4]) }, training: false },
    ],
    set,
  );
  describeConformance(
    convHierarchyLatent,
    [
      { title: 'groups [1, 2] at sides 4 and 2, concat', config: { resolutions: [4, 2], groups: [1, 2], channels: [4, 6], zChannels: 2 }, slots: trained },
      {
        title: 'groups [1, 1] at sides 8 and 2, precision, exp variance, no cells',
        config: { resolutions: [8, 2], groups: [1, 1], channels: [3, 4], zChannels: 1, merge: 'precision', variance: 'exp', cellsPerGroup: 0 },
        slots: { encoder: two.encoder, decoder: decoder([]) },
        training: false,
      },
      { title: 'one group at side 2', config: { resolutions: [2], groups: [1], channels: [4], zChannels: 2 }, slots: { encoder: two.encoder, decoder: decoder([4, 4]) }, training: false },
    ],
    { ...set, slowTimeout: 120000 },
  );
  describeConformance(
    convHierarchyDecoder,
    [
      { title: 'one doubling', config: { channels: [4] }, slots: { encoder: two.encoder, latent: two.latent }, training: false },
      { title: 'two doublings, no cells', config: { channels: [4, 3], cellsPerResolution: 0 }, slots: { encoder: two.encoder, latent: latent([2], [1], [4]) }, training: false },
    ],
    set,
  );
  describeConformance(
    ladderObjective,
    [
      { title: 'KL per group, warm-up and free bits per group', config: { samples: 2, klSchedule: { use: 'linear', warmupSteps: 50 }, freeBits: { natsPerLayer: [0.2, 0.1, 0.1] } }, slots: two, training: false },
    ],
    set,
  );
});
