export { BernoulliLikelihood, bernoulliLikelihood, bernoulliLikelihoodSchema } from './bernoulli.likelihood';
export { GaussianLikelihood, gaussianLikelihood, gaussianLikelihoodSchema } from './gaussian.likelihood';
import { bernoulliLikelihood } from './bernoulli.likelihood';
import { gaussianLikelihood } from './gaussian.likelihood';

export const plugins = [bernoulliLikelihood, gaussianLikelihood];
