export { BatchNorm, DenseStack, GaussianHeads, Linear, VARIANCES, batchNormProblem, type Variance } from './blocks';
export { LadderDecoder, ladderDecoder, ladderDecoderSchema, type LadderDecoderConfig } from './ladder.decoder';
export { LadderEncoder, ladderEncoder, ladderEncoderSchema, type LadderEncoderConfig } from './ladder.encoder';
export {
  LadderLatent,
  ladderLatent,
  ladderLatentSchema,
  precisionWeighted,
  sampleOfDraw,
  type LadderDraw,
  type LadderLatentConfig,
  type LadderLayerTerms,
} from './ladder.latent';
export {
  LadderObjective,
  isLayeredLatent,
  ladderObjective,
  ladderObjectiveSchema,
  type LadderObjectiveConfig,
  type LayeredLatent,
} from './ladder.objective';
import { ladderDecoder } from './ladder.decoder';
import { ladderEncoder } from './ladder.encoder';
import { ladderLatent } from './ladder.latent';
import { ladderObjective } from './ladder.objective';

export const plugins = [ladderEncoder, ladderLatent, ladderDecoder, ladderObjective];
