export { ConvGaussianHead, ResidualCell, Upsample } from './cells';
export { ConvHierarchyDecoder, convHierarchyDecoder, convHierarchyDecoderSchema, type ConvHierarchyDecoderConfig } from './conv-hierarchy.decoder';
export { ConvHierarchyEncoder, convHierarchyEncoder, convHierarchyEncoderSchema, type ConvHierarchyEncoderConfig } from './conv-hierarchy.encoder';
export { ConvHierarchyLatent, MERGES, convHierarchyLatent, convHierarchyLatentSchema, type ConvHierarchyLatentConfig, type Merge } from './conv-hierarchy.latent';
import { convHierarchyDecoder } from './conv-hierarchy.decoder';
import { convHierarchyEncoder } from './conv-hierarchy.encoder';
import { convHierarchyLatent } from './conv-hierarchy.latent';

/** The encoder, latent and decoder of the convolutional hierarchy; its objective is objective.ladder (KL per group). */
export const plugins = [convHierarchyEncoder, convHierarchyLatent, convHierarchyDecoder];
