export { BetaTcvaeObjective, betaTcvaeObjective, betaTcvaeObjectiveSchema } from './beta-tcvae.objective';
export { FactorVaeObjective, factorVaeObjective, factorVaeObjectiveSchema } from './factor-vae.objective';
import { betaTcvaeObjective } from './beta-tcvae.objective';
import { factorVaeObjective } from './factor-vae.objective';

export const plugins = [betaTcvaeObjective, factorVaeObjective];
