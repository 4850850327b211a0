export { StandardNormalPrior, standardNormalPrior, standardNormalPriorSchema } from './standard-normal.prior';
import { standardNormalPrior } from './standard-normal.prior';

export const plugins = [standardNormalPrior];
