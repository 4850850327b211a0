export { BetaTcvaeObjective, betaTcvaeObjective, betaTcvaeObjectiveSchema } from './beta-tcvae.objective';
import { betaTcvaeObjective } from './beta-tcvae.objective';

export const plugins = [betaTcvaeObjective];
