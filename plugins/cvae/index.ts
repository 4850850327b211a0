export { ConditionalGaussianPrior, conditionalGaussianPrior, conditionalGaussianPriorSchema } from './conditional-gaussian.prior';
export { MaskedBernoulliLikelihood, maskedBernoulliLikelihood, maskedBernoulliLikelihoodSchema } from './masked-bernoulli.likelihood';
export { NnBaselineObjective, nnBaselineObjective, nnBaselineObjectiveSchema } from './nn-baseline.objective';
import { conditionalGaussianPrior } from './conditional-gaussian.prior';
import { maskedBernoulliLikelihood } from './masked-bernoulli.likelihood';
import { nnBaselineObjective } from './nn-baseline.objective';

export const plugins = [conditionalGaussianPrior, maskedBernoulliLikelihood, nnBaselineObjective];
