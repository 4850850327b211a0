/**
 * The core keys of an experiment (everything but the slots' plugin settings): seed, data,
 * training, evaluation and tracking. Plugin schemas are nested under `<slot>.<name>`.
 */
import type { PluginSchema } from '../plugin';

/** Data sets core can load (core/data). */
export const DATASETS = ['mnist', 'fashion-mnist', 'synthetic', 'dsprites'] as const;

export const coreSchema = {
  name: { doc: 'experiment name; runs go to <tracking.dir>/<name>/<run-id>', format: 'string', default: '' },
  description: { doc: 'free text describing the experiment', format: 'string', default: '' },
  seed: { doc: 'seed of every random draw (data order, initialisation, sampling)', format: 'nat', default: 0 },
  plugins: {
    doc: 'extra plugin modules to load: paths (relative to the experiment file) or package names',
    format: 'string-list',
    default: [],
  },
  data: {
    use: { doc: 'data set', format: DATASETS, default: 'mnist' },
    dir: { doc: 'directory holding the data set files; empty = the default location', format: 'string', default: '' },
    binarize: {
      doc: 'none: grey levels in [0,1]; static: threshold once; dynamic: fresh Bernoulli draw each epoch',
      format: ['none', 'static', 'dynamic'],
      default: 'none',
    },
    threshold: { doc: 'threshold of static binarisation', format: 'probability', default: 0.5 },
    validationSize: {
      doc: 'examples carved from the training split (seeded) for validation, on which best.ckpt and early stopping are chosen; 0 = no validation split: nothing is selected on the test split (no best.ckpt, no early stopping; per-epoch metrics are test/... for monitoring only)',
      format: 'nat',
      default: 0,
    },
    trainLimit: { doc: 'use only the first N training examples (0 = all)', format: 'nat', default: 0 },
    labelledSize: {
      doc: 'semi-supervised: keep the labels of only this many training examples, the same number per class, chosen with the seed; the rest are unlabelled (label mask 0). 0 = every label kept',
      format: 'nat',
      default: 0,
    },
    labelledBatchSize: {
      doc: 'semi-supervised, with data.labelledSize: every training batch is train.batchSize unlabelled examples plus this many labelled ones, cycled through the labelled subset in seeded orders (Kingma et al. 2014 and the PyTorch twin); an epoch is one pass over the unlabelled examples. 0 = the labelled examples come inside the batches at their natural rate',
      format: 'nat',
      default: 0,
    },
    testLimit: { doc: 'use only the first N test examples (0 = all)', format: 'nat', default: 0 },
    condition: {
      use: {
        doc: 'the conditioning input given to encoder, latent, decoder and prior: none; labels (one-hot, a class-conditional VAE); visible-quadrants (the image with the other quadrants hidden, the CVAE quadrant task)',
        format: ['none', 'labels', 'visible-quadrants'],
        default: 'none',
      },
      visibleQuadrants: {
        doc: 'visible-quadrants: the quadrants shown, 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right (1 to 3 of them)',
        format: 'nat-list',
        default: [0],
      },
      hiddenValue: { doc: 'visible-quadrants: the value of hidden pixels in the conditioning input', format: 'number', default: -1 },
    },
    synthetic: {
      kind: { doc: 'synthetic data: mixture2d (2-D points) or shapes (14x14 images)', format: ['mixture2d', 'shapes'], default: 'shapes' },
      size: { doc: 'number of synthetic examples (a fifth more are made for test)', format: 'positive-int', default: 512 },
    },
    dsprites: {
      trainSize: { doc: 'dsprites: training images drawn (seeded, without replacement) from the 737 280 combinations of shape, scale, orientation, x and y; at most 100 000', format: 'positive-int', default: 10000 },
      testSize: { doc: 'dsprites: test images drawn from the combinations not in the training split; at most 100 000', format: 'positive-int', default: 2000 },
    },
  },
  train: {
    epochs: { doc: 'passes over the training split', format: 'positive-int', default: 10 },
    batchSize: { doc: 'examples per step', format: 'positive-int', default: 128 },
    maxSteps: { doc: 'stop after this many steps in total (0 = no cap)', format: 'nat', default: 0 },
    dropLast: { doc: 'drop the last incomplete batch of each epoch', format: 'boolean', default: false },
    optimizer: {
      learningRate: { doc: 'Adam learning rate', format: 'positive-number', default: 1e-3 },
      beta1: { doc: 'Adam first-moment decay', format: 'probability', default: 0.9 },
      beta2: { doc: 'Adam second-moment decay', format: 'probability', default: 0.999 },
      epsilon: { doc: 'Adam epsilon', format: 'positive-number', default: 1e-8 },
      weightDecay: { doc: 'L2 penalty added to the gradient (Adam, not AdamW)', format: 'non-negative-number', default: 0 },
    },
    schedule: {
      use: {
        doc: 'learning-rate schedule: none, step (x gamma every stepSize steps), exponential (x gamma per epoch), cosine (to minLearningRate over the run)',
        format: ['none', 'step', 'exponential', 'cosine'],
        default: 'none',
      },
      warmupSteps: { doc: 'linear learning-rate warm-up from 0 over this many steps', format: 'nat', default: 0 },
      stepSize: { doc: 'step schedule: steps between decays', format: 'positive-int', default: 1000 },
      gamma: { doc: 'step/exponential schedule: decay factor', format: 'positive-number', default: 0.5 },
      minLearningRate: { doc: 'cosine schedule: final learning rate', format: 'non-negative-number', default: 0 },
    },
    clipNorm: { doc: 'clip gradients to this global L2 norm (0 = off)', format: 'non-negative-number', default: 0 },
    evalEvery: { doc: 'evaluate on the validation split (the test split, for monitoring only, without one) every N epochs (0 = only at the end)', format: 'nat', default: 1 },
    earlyStopping: {
      metric: { doc: 'metric watched for early stopping, e.g. val/loss', format: 'string', default: 'val/loss' },
      mode: { doc: 'min or max', format: ['min', 'max'], default: 'min' },
      patience: { doc: 'evaluations without improvement before stopping (0 = off); needs data.validationSize > 0', format: 'nat', default: 0 },
      minDelta: { doc: 'smallest change that counts as improvement', format: 'non-negative-number', default: 0 },
    },
    logEvery: { doc: 'write a metrics line every N steps', format: 'positive-int', default: 50 },
    syncEvery: {
      doc: 'read training values back from the device every N steps (progress, NaN check); each read waits for the device',
      format: 'positive-int',
      default: 10,
    },
    progress: { doc: 'auto: a bar on a terminal, plain lines otherwise', format: ['auto', 'bar', 'plain', 'none'], default: 'auto' },
    keepCheckpoints: { doc: 'epoch checkpoints kept on disk (the newest N; the best is always kept)', format: 'positive-int', default: 2 },
    trainable: {
      doc: 'variables this run trains, as key prefixes (e.g. prior/, encoder/mlp/); [] = all. The others are frozen: in no optimizer, and no gradient is computed for them',
      format: 'string-list',
      default: [],
    },
  },
  init: {
    from: {
      doc: 'start from the weights of this run directory or checkpoint file (relative to the working directory); empty = fresh initialisation. Not applied on --resume',
      format: 'string',
      default: '',
    },
    checkpoint: {
      doc: 'which checkpoint of the init.from run: final (the last weights of a run that has ended), latest (its newest checkpoint), best (chosen on its validation split), auto (best when the run has one, else final)',
      format: ['final', 'latest', 'best', 'auto'],
      default: 'final',
    },
    include: {
      doc: 'copy only the variables and state whose keys start with these prefixes, each of which the checkpoint must hold; [] = every tensor the checkpoint holds (the others keep their initialisation)',
      format: 'string-list',
      default: [],
    },
  },
  eval: {
    batchSize: { doc: 'examples per evaluation batch', format: 'positive-int', default: 500 },
    iwSamples: { doc: 'importance samples k of the log-likelihood estimate at the end of training (0 = skip)', format: 'nat', default: 100 },
    iwChunk: { doc: 'importance samples drawn at once (memory bound: chunk x batch rows)', format: 'positive-int', default: 100 },
    iwLimit: { doc: 'estimate the log-likelihood on the first N test examples (0 = all)', format: 'nat', default: 0 },
    priorSamples: {
      doc: 'samples k of the plain Monte-Carlo estimate log mean_k p(x|z_k), z_k drawn from the prior (given y for a conditional prior), on the same test examples as iwSamples (0 = skip); a comparison for the IW estimate, e.g. the CVAE paper\'s',
      format: 'nat',
      default: 0,
    },
    activeUnitThreshold: {
      doc: 'a latent unit is active when Var_x(E_q[z_i]) exceeds this (Burda et al. 2016)',
      format: 'non-negative-number',
      default: 0.01,
    },
    activeUnitSamples: {
      doc: 'hierarchical latents: draws per test example behind the active units of each layer (E_q[z_l | x] is the mean of q(z_l | .)\'s mean over draws of the layers it is conditioned on; the draws\' own variance is taken out, which needs at least 2)',
      format: 'positive-int',
      default: 10,
    },
    images: { doc: 'write reconstruction and sample grids at each evaluation', format: 'boolean', default: true },
    gridSize: { doc: 'images per side of the grids', format: 'positive-int', default: 8 },
    traversalRows: {
      doc: 'latent traversal picture with each evaluation: this many dimensions, sorted by KL (0 = none; flat latents with Gaussian q only)',
      format: 'nat',
      default: 10,
    },
    traversalSpread: {
      doc: 'a traversal sweeps each dimension over mean +- this many standard deviations of the aggregate posterior',
      format: 'positive-number',
      default: 2.5,
    },
    sampleQuality: {
      doc: 'at the end of training also the offline sample-quality metrics (MNIST and Fashion-MNIST only): Fréchet distance of prior samples to the test images on the features of a small classifier trained on first use and cached (not the Inception FID), its accuracy on reconstructions and on class-conditional samples (docs/evaluation.md)',
      format: 'boolean',
      default: false,
    },
    sampleQualitySamples: { doc: 'images drawn from the prior for eval.sampleQuality\'s Fréchet distance', format: 'positive-int', default: 10000 },
  },
  tracking: {
    dir: { doc: 'root directory of run directories', format: 'string', default: 'runs' },
    wandb: {
      enabled: {
        doc: 'log the run to Weights & Biases (docs/tracking.md); also on with `vaelab train --wandb` or WANDB_API_KEY set, and off whenever WANDB_MODE=disabled',
        format: 'boolean',
        default: false,
      },
      project: { doc: 'W&B project; empty = the experiment name. None of / \\ # ? % : in it', format: 'string', default: '' },
      entity: { doc: 'W&B user or team; empty = the default entity of the API key', format: 'string', default: '' },
      group: {
        doc: 'W&B group of the run; empty = none for a single run, the staged run id for each stage, the sweep name for each trial',
        format: 'string',
        default: '',
      },
      tags: { doc: 'W&B tags of the run (each at most 64 characters)', format: 'string-list', default: [] },
      notes: { doc: 'W&B notes of the run', format: 'string', default: '' },
      mode: {
        doc: 'online: send while training; offline: send nothing, keep everything in <run>/wandb for `vaelab wandb-sync` (also WANDB_MODE=offline)',
        format: ['online', 'offline'],
        default: 'online',
      },
      timeoutSeconds: {
        doc: 'bound of each request to the W&B server, and of the wait for the last sends when a run ends',
        format: 'positive-number',
        default: 10,
      },
    },
  },
} as const satisfies PluginSchema;
