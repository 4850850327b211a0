export { CategoricalLikelihood, categoricalLikelihood, categoricalLikelihoodSchema } from './categorical.likelihood';
export {
  CB_TAYLOR_WINDOW,
  ContinuousBernoulliLikelihood,
  continuousBernoulliLikelihood,
  continuousBernoulliLikelihoodSchema,
  continuousBernoulliLogNorm,
} from './continuous-bernoulli.likelihood';
import { categoricalLikelihood } from './categorical.likelihood';
import { continuousBernoulliLikelihood } from './continuous-bernoulli.likelihood';

export const plugins = [categoricalLikelihood, continuousBernoulliLikelihood];
