export { ElboObjective, elboObjective, elboObjectiveSchema } from './elbo.objective';
import { elboObjective } from './elbo.objective';

export const plugins = [elboObjective];
