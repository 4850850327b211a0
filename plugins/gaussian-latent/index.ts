export { GaussianLatent, gaussianLatent, gaussianLatentSchema } from './gaussian.latent';
import { gaussianLatent } from './gaussian.latent';

export const plugins = [gaussianLatent];
