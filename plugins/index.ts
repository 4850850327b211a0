/**
 * The built-in plugins, one import per variant folder. Adding a variant adds one line here.
 */
import type { PluginDefinition } from '../core';
import { plugins as betaVae } from './beta-vae';
import { plugins as conv } from './conv';
import { plugins as convHierarchy } from './conv-hierarchy';
import { plugins as cvae } from './cvae';
import { plugins as dipVae } from './dip-vae';
import { plugins as discreteLikelihoods } from './discrete-likelihoods';
import { plugins as elbo } from './elbo';
import { plugins as gatedMlp } from './gated-mlp';
import { plugins as gaussianLatent } from './gaussian-latent';
import { plugins as hierarchical } from './hierarchical';
import { plugins as iwae } from './iwae';
import { plugins as ladder } from './ladder';
import { plugins as likelihoods } from './likelihoods';
import { plugins as m2 } from './m2';
import { plugins as mixturePrior } from './mixture-prior';
import { plugins as mlp } from './mlp';
import { plugins as mmdVae } from './mmd-vae';
import { plugins as pixelCnnPrior } from './pixelcnn-prior';
import { plugins as standardNormalPrior } from './standard-normal-prior';
import { plugins as tcVae } from './tc-vae';
import { plugins as vampPrior } from './vamp-prior';
import { plugins as vqVae } from './vq-vae';

export const plugins: PluginDefinition[] = [
  ...betaVae,
  ...conv,
  ...convHierarchy,
  ...cvae,
  ...dipVae,
  ...discreteLikelihoods,
  ...elbo,
  ...gatedMlp,
  ...gaussianLatent,
  ...hierarchical,
  ...iwae,
  ...ladder,
  ...likelihoods,
  ...m2,
  ...mixturePrior,
  ...mlp,
  ...mmdVae,
  ...pixelCnnPrior,
  ...standardNormalPrior,
  ...tcVae,
  ...vampPrior,
  ...vqVae,
];
