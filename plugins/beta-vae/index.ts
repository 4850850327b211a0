export { BetaVaeObjective, betaVaeObjective, betaVaeObjectiveSchema } from './beta-vae.objective';
import { betaVaeObjective } from './beta-vae.objective';

export const plugins = [betaVaeObjective];
