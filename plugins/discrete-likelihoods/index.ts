export {
  CB_TAYLOR_WINDOW,
  ContinuousBernoulliLikelihood,
  continuousBernoulliLikelihood,
  continuousBernoulliLikelihoodSchema,
  continuousBernoulliLogNorm,
} from './continuous-bernoulli.likelihood';
import { continuousBernoulliLikelihood } from './continuous-bernoulli.likelihood';

export const plugins = [continuousBernoulliLikelihood];
