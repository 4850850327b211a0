export { MixturePrior, mixturePrior, mixturePriorSchema } from './mixture.prior';
import { mixturePrior } from './mixture.prior';

export const plugins = [mixturePrior];
