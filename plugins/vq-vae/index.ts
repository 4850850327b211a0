export { UniformCodesPrior, codeGridOf, uniformCodesPrior } from './uniform-codes.prior';
export { VqConvDecoder, vqConvDecoder, vqConvDecoderSchema } from './vq-conv.decoder';
export { VqConvEncoder, vqConvEncoder, vqConvEncoderSchema } from './vq-conv.encoder';
export { VqLatent, codebookPerplexity, vqLatent, vqLatentSchema, type CodeGridLatent } from './vq.latent';
export { VqVaeObjective, reconstructionTerms, vqVaeObjective } from './vq-vae.objective';
import { uniformCodesPrior } from './uniform-codes.prior';
import { vqConvDecoder } from './vq-conv.decoder';
import { vqConvEncoder } from './vq-conv.encoder';
import { vqLatent } from './vq.latent';
import { vqVaeObjective } from './vq-vae.objective';

export const plugins = [vqConvEncoder, vqLatent, vqConvDecoder, uniformCodesPrior, vqVaeObjective];
