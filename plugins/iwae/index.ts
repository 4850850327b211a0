export { IwaeObjective, iwaeObjective, iwaeObjectiveSchema } from './iwae.objective';
import { iwaeObjective } from './iwae.objective';

export const plugins = [iwaeObjective];
