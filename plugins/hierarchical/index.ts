export { BottomUpLatent, GaussianBlock, bottomUpLatent, bottomUpLatentSchema, bottomUpProblems, type BottomUpLatentConfig } from './bottom-up.latent';
import { bottomUpLatent } from './bottom-up.latent';

export const plugins = [bottomUpLatent];
