export { DIP_VARIANTS, DipVaeObjective, dipCovariance, dipPenalty, dipVaeObjective, dipVaeObjectiveSchema, type DipVariant } from './dip-vae.objective';
import { dipVaeObjective } from './dip-vae.objective';

export const plugins = [dipVaeObjective];
