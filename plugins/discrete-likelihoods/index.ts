export { CategoricalLikelihood, categoricalLikelihood, categoricalLikelihoodSchema } from './categorical.likelihood';
export {
  CB_TAYLOR_WINDOW,
  ContinuousBernoulliLikelihood,
  continuousBernoulliLikelihood,
  continuousBernoulliLikelihoodSchema,
  continuousBernoulliLogNorm,
} from './continuous-bernoulli.likelihood';
export {
  DiscretizedLogisticLikelihood,
  discretizedLogisticLikelihood,
  discretizedLogisticLikelihoodSchema,
} from './discretized-logistic.likelihood';
import { categoricalLikelihood } from './categorical.likelihood';
import { continuousBernoulliLikelihood } from './continuous-bernoulli.likelihood';
import { discretizedLogisticLikelihood } from './discretized-logistic.likelihood';

export const plugins = [categoricalLikelihood, continuousBernoulliLikelihood, discretizedLogisticLikelihood];
