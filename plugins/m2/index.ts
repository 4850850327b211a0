export { M2Objective, m2Objective, m2ObjectiveSchema } from './m2.objective';
import { m2Objective } from './m2.objective';

export const plugins = [m2Objective];
