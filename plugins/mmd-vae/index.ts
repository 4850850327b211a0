export { InfoVaeObjective, infoVaeObjective, infoVaeObjectiveSchema, mmdKernelMatrix, mmdUnbiased, MMD_KERNELS, type MmdKernel } from './info-vae.objective';
import { infoVaeObjective } from './info-vae.objective';

export const plugins = [infoVaeObjective];
