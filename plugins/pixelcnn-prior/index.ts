export { GatedPixelCnnPrior, codeGridOf, pixelCnnPrior, pixelCnnPriorSchema, pixelCnnReach } from './pixelcnn.prior';
export { PriorNllObjective, priorNllObjective } from './prior-nll.objective';
import { pixelCnnPrior } from './pixelcnn.prior';
import { priorNllObjective } from './prior-nll.objective';

export const plugins = [pixelCnnPrior, priorNllObjective];
