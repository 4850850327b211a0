export { VampPrior, vampPrior, vampPriorSchema } from './vamp.prior';
import { vampPrior } from './vamp.prior';

export const plugins = [vampPrior];
