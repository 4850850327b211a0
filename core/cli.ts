/**
 * The command line: `vaelab train | eval | sample | plugins | validate | doctor`, and `sweep`, `report`, `runs`.
 * The entry point (bin/vaelab.js) passes the built-in plugins in, so core knows none by name.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import * as tf from '@tensorflow/tfjs-core';
import { describeBackends, selectBackend } from './backend/select';
import { applyOverrides, experimentFromObject, loadExperiment, readExperimentFile, describeSchema, type Experiment } from './config/experiment';
import { hasStages, planStages, portableRaw, type StagePlan } from './config/stages';
import { coreSchema } from './config/core-schema';
import { generationCondition, type ConditionOptions } from './data/condition';
import { DspritesData } from './data/dsprites';
import { disentanglementSummary, evaluateModelDisentanglement } from './eval/disentanglement';
import { checkSampleQualityData } from './eval/sample-quality';
import { LAYER_TRAVERSAL_MAX_UNITS, layerSamplesGrid, layerTraversalGrid } from './eval/pictures';
import { SLOTS } from './contracts';
import { ConfigError, RegistrationError, ShapeError, TrainingError, VaelabError } from './errors';
import { PluginRegistry, type PluginDefinition } from './plugin';
import { closeSession, openSession, type Session } from './session';
import { openRun } from './train/open-run';
import { trainStages } from './train/run-stages';
import { checkInit, checkModelSelection, finalEvaluation, train, trainableVariables } from './train/trainer';
import { writeJsonAtomic } from './tracking/files';
import { PER_EXAMPLE_FILE } from './eval/per-example';
import { registerDashboardCommand } from './dashboard';
import { registerReportCommand } from './report';
import { registerSweepCommands } from './sweep';
import { registerWandbCommands, wandbCallbacks } from './wandb';
import { registerRunsCommand } from './tracking/runs-cli';
import { registerReproduceCommand } from './reproduce';
import { writeGrid } from './tracking/images';
import { RunDir } from './tracking/run-dir';
import { Rng } from './rng';

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function positiveInt(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be an integer >= 1; got ${JSON.stringify(v)}`);
    return n;
  };
}

/** Config with plugin module paths made absolute, so the run directory's config.json works from anywhere. */
function portableConfig(exp: Experiment): Record<string, unknown> {
  const cfg = structuredClone(exp.config) as unknown as Record<string, unknown>;
  const base = exp.file === '<inline>' ? process.cwd() : path.dirname(path.resolve(exp.file));
  cfg.plugins = (exp.config.plugins as readonly string[]).map((p) => (p.startsWith('.') ? path.resolve(base, p) : p));
  return cfg;
}

const CHECKPOINT_HELP =
  'best (chosen on the validation split; only runs with data.validationSize > 0 have one), latest, final (of a run that has ended), or a checkpoint file (default: best when the run has one, else latest)';

function countParams(session: Session): number {
  let n = 0;
  for (const v of trainableVariables(session.parts.model, session.parts.objective).values()) n += v.size;
  return n;
}

/** The slot selection and size of a session, for validate's lines. */
function slotsLine(session: Session): string {
  return `${SLOTS.map((s) => `${s}=${session.config[s].use}`).join(' ')}; ${countParams(session)} parameters`;
}

/**
 * Opens every stage of a plan as train would (data, model, dry run, model selection; init.from
 * of the first stage, since later ones start from weights not trained yet), then frees it, so a
 * mistake in the last stage is reported before the first trains.
 */
function checkStages(plan: StagePlan): Array<{ index: number; stage: string; slots: string; config: Session['config'] }> {
  return plan.stages.map((stage) => {
    const session = openSession(stage.experiment);
    try {
      checkModelSelection(session.config);
      if (stage.index === 0) checkInit(session);
      return { index: stage.index, stage: stage.name, slots: slotsLine(session), config: session.config };
    } finally {
      closeSession(session);
    }
  });
}

/** Builds the commander program; actions set `code`. */
function program(builtins: PluginDefinition[], state: { code: number }): Command {
  const registry = new PluginRegistry(builtins);
  const prog = new Command('vaelab')
    .description('variational autoencoders from experiment files and plugins')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) })
    .showHelpAfterError(false);

  prog
    .command('train')
    .description('train an experiment (or continue a run with --resume)')
    .argument('[experiment]', 'experiment file (YAML or JSON)')
    .option('--set <key=value>', 'override a config key (dotted path); repeatable', collect, [])
    .option('--backend <name>', 'auto, node-gpu, node, wasm or cpu (default: $VAELAB_BACKEND or auto)')
    .option('--out <dir>', 'root of run directories (default: tracking.dir of the experiment)')
    .option('--resume <runDir>', 'continue a run from its last checkpoint')
    .action(async (file: string | undefined, o: { set: string[]; backend?: string; out?: string; resume?: string }) => {
      const backend = await selectBackend(o.backend, { log: err });
      const describe = (session: Session, run: RunDir) => {
        const c = session.config;
        const d = session.dataset;
        err(`experiment: ${c.name} | data: ${d.name} (${d.train.n} train, ${d.validation?.n ?? 0} validation, ${d.test.n} test) | parameters: ${countParams(session)}`);
        err(`slots: ${SLOTS.map((s) => `${s}=${c[s].use}`).join(' ')}`);
        err(`run directory: ${path.relative(process.cwd(), run.dir) || run.dir}`);
      };
      const finish = (status: string, steps: number, run: RunDir) => {
        if (status === 'interrupted') {
          err(`interrupted at step ${steps}; continue with: npx vaelab train --resume ${path.relative(process.cwd(), run.dir)}`);
          state.code = 130;
        } else {
          err(`done (${status}): ${path.relative(process.cwd(), run.file('summary.json'))}`);
        }
      };
      const trainPlan = async (plan: StagePlan, run: RunDir, resume: boolean) => {
        err(`experiment: ${plan.stages[0].experiment.config.name} | ${plan.stages.length} stages: ${plan.stages.map((st) => st.name).join(', ')}`);
        err(`run directory: ${path.relative(process.cwd(), run.dir) || run.dir}`);
        let steps = 0;
        const result = await trainStages(plan, { run, registry, backend: backend.name, log: err, resume, onStep: (s) => (steps = s) });
        finish(result.status, steps, run);
      };
      if (o.resume) {
        if (file || o.set.length > 0) throw new ConfigError('--resume: continues a run with its saved config; give no experiment file or --set with it');
        const run = RunDir.open(o.resume, '--resume');
        const summary = fs.existsSync(run.file('summary.json')) ? (JSON.parse(fs.readFileSync(run.file('summary.json'), 'utf8')) as { status?: string }) : {};
        if (summary.status && summary.status !== 'interrupted' && summary.status !== 'failed') {
          throw new ConfigError(`--resume: run ${o.resume} has already ended (status "${summary.status}")`);
        }
        const saved = run.readConfig();
        const src = run.readSource();
        if (hasStages(saved)) {
          const plan = planStages(saved, registry, run.file('config.json'));
          if (src) run.writeSource({ ...src, resumedAt: [...(src.resumedAt ?? []), new Date().toISOString()] });
          await trainPlan(plan, run, true);
          return;
        }
        const resumeFrom = run.latestCheckpoint();
        if (!resumeFrom) throw new ConfigError(`--resume: run ${o.resume} has no checkpoint yet (checkpoints/latest.json is missing); start it again instead`);
        const session = openSession(experimentFromObject(saved, registry, run.file('config.json')));
        if (src) run.writeSource({ ...src, resumedAt: [...(src.resumedAt ?? []), new Date().toISOString()] });
        describe(session, run);
        const result = await train(session, { run, backend: backend.name, resumeFrom, log: err, callbacks: wandbCallbacks(session.config, run, { log: err }) });
        finish(result.status, result.steps, run);
        return;
      }
      if (!file) throw new ConfigError('train: give an experiment file, e.g. vaelab train experiments/vae-mnist.yaml, or --resume RUN_DIR');
      const raw = applyOverrides(readExperimentFile(file), o.set);
      const source = (run: RunDir) =>
        run.writeSource({
          experimentFile: path.resolve(file),
          overrides: o.set,
          argv: process.argv.slice(2),
          backend: backend.name,
          startedAt: new Date().toISOString(),
        });
      if (hasStages(raw)) {
        // Every stage is validated before the first starts.
        const plan = planStages(raw, registry, file);
        checkStages(plan);
        const first = plan.stages[0].experiment.config;
        const run = RunDir.create(o.out ?? first.tracking.dir, first.name, first.seed);
        run.writeConfig(portableRaw(raw, file));
        source(run);
        await trainPlan(plan, run, false);
        return;
      }
      const session = openSession(experimentFromObject(raw, registry, file));
      checkModelSelection(session.config);
      checkInit(session);
      const run = RunDir.create(o.out ?? session.config.tracking.dir, session.config.name, session.config.seed);
      run.writeConfig(portableConfig(session.experiment));
      source(run);
      describe(session, run);
      const result = await train(session, { run, backend: backend.name, log: err, callbacks: wandbCallbacks(session.config, run, { log: err }) });
      finish(result.status, result.steps, run);
    });

  prog
    .command('eval')
    .description('evaluate a run on the test split (ELBO terms, importance-weighted log-likelihood, active units; optionally disentanglement or sample quality)')
    .argument('<runDir>', 'run directory')
    .option('--k <n>', 'importance samples per example', positiveInt('--k'))
    .option('--checkpoint <which>', CHECKPOINT_HELP)
    .option('--limit <n>', 'evaluate the log-likelihood on the first N test examples', positiveInt('--limit'))
    .option('--prior-samples <n>', 'also the plain Monte-Carlo estimate log mean_k p(x|z_k), z_k from the prior (given y for a conditional prior), with n samples, on the same examples (eval.priorSamples)', positiveInt('--prior-samples'))
    .option('--disentanglement', 'also MIG, FactorVAE score, DCI and SAP (disentanglement_lib protocols) of the posterior means; needs a run trained on data.use: dsprites')
    .option(
      '--sample-quality',
      'also the offline sample-quality metrics (mnist, fashion-mnist): Fréchet distance of prior samples to the test images on a small cached classifier\'s features (not the Inception FID), the floor between two test halves, its accuracy on reconstructions and class-conditional samples',
    )
    .option('--samples <n>', 'images drawn from the prior for --sample-quality (default: eval.sampleQualitySamples)', positiveInt('--samples'))
    .option('--backend <name>', 'auto, node-gpu, node, wasm or cpu')
    .action(async (dir: string, o: { k?: number; checkpoint?: string; limit?: number; priorSamples?: number; disentanglement?: boolean; sampleQuality?: boolean; samples?: number; backend?: string }) => {
      const backend = await selectBackend(o.backend, { log: err });
      const { run, session, checkpoint, step } = openRun(dir, registry, o.checkpoint, err);
      if (o.disentanglement && session.config.data.use !== 'dsprites') {
        throw new ConfigError(
          `eval --disentanglement: needs a run trained on data.use: dsprites (the data set whose factors of variation are known); run ${JSON.stringify(dir)} was trained on data.use: ${session.config.data.use}`,
        );
      }
      if (o.sampleQuality) checkSampleQualityData('eval --sample-quality', session.config.data.use, session.dataset.shape);
      if (o.samples && !o.sampleQuality) throw new ConfigError('eval --samples: sets the images of --sample-quality; give --sample-quality with it');
      if (o.limit) (session.config.eval as { iwLimit: number }).iwLimit = o.limit;
      if (o.priorSamples) (session.config.eval as { priorSamples: number }).priorSamples = o.priorSamples;
      const ctx = {
        info: session.dataset,
        seed: session.config.seed,
        condition: session.config.data.condition as ConditionOptions,
        stream: 'eval/cli',
        batchSize: session.config.eval.batchSize,
        step,
      };
      const t0 = Date.now();
      const sampleQuality = o.sampleQuality ? { key: 'eval --sample-quality', samples: o.samples ?? session.config.eval.sampleQualitySamples } : undefined;
      const result = finalEvaluation(session, ctx, err, o.k ?? session.config.eval.iwSamples, sampleQuality, run.file(PER_EXAMPLE_FILE.eval));
      const record: Record<string, unknown> = { checkpoint: path.relative(run.dir, checkpoint), backend: backend.name, seconds: (Date.now() - t0) / 1000, ...result };
      if (o.disentanglement) {
        err('disentanglement metrics on the dsprites factors (MIG, FactorVAE score, DCI, SAP)');
        const scores = disentanglementSummary(evaluateModelDisentanglement(session.parts.model, new DspritesData(), session.config.seed));
        record.test = { ...(record.test as Record<string, number>), ...scores };
      }
      writeJsonAtomic(run.file('eval.json'), record);
      out(JSON.stringify(record.test ?? record, null, 2));
    });

  prog
    .command('sample')
    .description('draw samples from a trained run into a PNG grid')
    .argument('<runDir>', 'run directory')
    .option('--n <n>', 'number of samples', positiveInt('--n'), 64)
    .requiredOption('--out <file>', 'PNG file to write')
    .option('--seed <n>', 'seed of the draw', (v) => Number(v), 0)
    .option('--checkpoint <which>', CHECKPOINT_HELP)
    .option('--per-layer', 'a hierarchy\'s samples per stochastic layer instead: row r varies layer L - r + 1 (the top first) and holds the others, --n columns')
    .option('--layer-traversals', 'a hierarchy\'s traversals per layer instead: row r sweeps the unit of one layer (the top first) that moves the image most over [-2.5, 2.5], every other draw held, --n columns; prints the units')
    .option('--backend <name>', 'auto, node-gpu, node, wasm or cpu')
    .action(async (dir: string, o: { n: number; out: string; seed: number; checkpoint?: string; perLayer?: boolean; layerTraversals?: boolean; backend?: string }) => {
      await selectBackend(o.backend, { log: err });
      const { session } = openRun(dir, registry, o.checkpoint, err);
      if (session.dataset.kind !== 'image') throw new ConfigError(`sample: data set "${session.dataset.name}" is not images; nothing to draw`);
      const info = session.info;
      if (o.perLayer || o.layerTraversals) {
        if (o.perLayer && o.layerTraversals) throw new ConfigError('--per-layer, --layer-traversals: give one of them (each writes its own picture to --out)');
        const flag = o.perLayer ? '--per-layer' : '--layer-traversals';
        if (o.layerTraversals && o.n < 2) throw new ConfigError(`--n: a traversal needs at least 2 columns; got ${o.n}`);
        const cond = session.config.data.condition as ConditionOptions;
        const layers = session.parts.model.latent.layers ?? 1;
        if (layers < 2 || cond.use !== 'none') {
          throw new ConfigError(`${flag}: needs an unconditioned hierarchy (a latent with more than one stochastic layer and data.condition.use "none"); run ${dir} has latent "${session.config.latent.use}" with ${layers} layer(s) and data.condition.use "${cond.use}"`);
        }
        const trav = o.layerTraversals ? layerTraversalGrid(session.parts.model, cond, o.n, o.seed, session.config.eval.traversalSpread) : null;
        const grid = o.perLayer ? layerSamplesGrid(session.parts.model, cond, o.n, o.seed) : (trav?.images ?? null);
        if (!grid) {
          throw new ConfigError(`${flag}: no layer of run ${dir} can be traversed: every layer has more than ${LAYER_TRAVERSAL_MAX_UNITS} units (or is the top of a prior that draws more than normals)`);
        }
        writeGrid(path.resolve(o.out), grid, grid.length / info.dim, info.shape, o.n);
        if (trav) for (const r of trav.rows) out(`layer ${r.layer}: unit ${r.unit} (squared distance between the ends ${r.score.toFixed(2)})`);
        out(path.resolve(o.out));
        return;
      }
      const cols = Math.ceil(Math.sqrt(o.n));
      const imgs = tf.tidy(() => {
        // one grid row per class (labels) or per given test example (visible quadrants)
        const cond = generationCondition(o.n, session.config.data.condition as ConditionOptions, session.dataset, session.dataset.test, cols);
        return session.parts.model.generate(o.n, cond, { training: false, rng: Rng.derive(o.seed, 'cli-sample') });
      });
      writeGrid(path.resolve(o.out), imgs.dataSync() as Float32Array, o.n, info.shape, cols);
      imgs.dispose();
      out(path.resolve(o.out));
    });

  prog
    .command('plugins')
    .description('list every registered plugin: slot, name, config keys with defaults and docs')
    .option('--experiment <file>', 'also load the plugin modules this experiment names')
    .option('--json', 'print JSON')
    .action((o: { experiment?: string; json?: boolean }) => {
      const reg = o.experiment ? loadExperiment(o.experiment, registry).registry : registry;
      const list = reg.all().map((d) => ({
        slot: d.slot,
        name: d.name,
        description: d.description,
        source: d.source,
        keys: describeSchema(d.schema).map((k) => ({ ...k, key: `${d.slot}.${d.name}.${k.key}` })),
      }));
      if (o.json) {
        out(JSON.stringify(list, null, 2));
        return;
      }
      for (const p of list) {
        out(`${p.slot} ${p.name}: ${p.description}`);
        for (const k of p.keys) out(`    ${k.key} = ${JSON.stringify(k.default)}  (${k.format}) ${k.doc}`);
        if (p.keys.length === 0) out('    (no config keys)');
      }
      out('');
      out('core keys:');
      for (const k of describeSchema(coreSchema)) out(`    ${k.key} = ${JSON.stringify(k.default)}  (${k.format}) ${k.doc}`);
    });

  prog
    .command('validate')
    .description('check an experiment file (and its data set, plugins and shapes) without training')
    .argument('<experiment>', 'experiment file')
    .option('--set <key=value>', 'override a config key; repeatable', collect, [])
    .option('--print', 'print the resolved config')
    .action(async (file: string, o: { set: string[]; print?: boolean }) => {
      await selectBackend('cpu', { quiet: true });
      // The same checks as train, before any run directory: every stage of a staged file.
      const raw = applyOverrides(readExperimentFile(file), o.set);
      if (hasStages(raw)) {
        const plan = planStages(raw, registry, file);
        const checked = checkStages(plan);
        if (o.print) for (const c of checked) out(JSON.stringify({ stage: c.stage, config: c.config }, null, 2));
        out(`${file}: valid (${plan.stages.length} stages)`);
        for (const c of checked) out(`  stage ${c.index + 1} "${c.stage}": ${c.slots}`);
        return;
      }
      const session = openSession(experimentFromObject(raw, registry, file));
      checkModelSelection(session.config);
      checkInit(session);
      if (o.print) out(JSON.stringify(session.config, null, 2));
      out(`${file}: valid (${slotsLine(session)})`);
    });

  registerSweepCommands(prog, registry, state, err);
  registerReportCommand(prog, registry, out, err);
  registerDashboardCommand(prog, out, err);
  registerWandbCommands(prog, out, err);
  registerRunsCommand(prog, out, err);
  registerReproduceCommand(prog, state, out, err);

  prog
    .command('doctor')
    .description('show which tensor backends are available here and how to get the others')
    .action(() => {
      out(describeBackends());
    });

  return prog;
}

/**
 * Runs the CLI; returns the exit code: 0 ok, 1 training failure, 2 bad input (experiment, config,
 * plugin registration or construction, shapes), 130 interrupted.
 */
export async function main(argv: string[], builtins: PluginDefinition[]): Promise<number> {
  tf.env().set('PROD', true);
  // vaelab's own notices (code VAELAB_*, e.g. a Monte-Carlo KL) are one plain line on stderr,
  // without Node's "(node:PID) Warning" frame and its --trace-warnings hint, and each text once per
  // process (a run builds several models: training, evaluation, shape checks, every stage);
  // others as Node prints them.
  process.removeAllListeners('warning');
  const noted = new Set<string>();
  process.on('warning', (w: Error & { code?: string }) => {
    if (typeof w.code !== 'string' || !w.code.startsWith('VAELAB')) {
      err(`${w.name}: ${w.message}`);
    } else if (!noted.has(w.message)) {
      noted.add(w.message);
      err(`note: ${w.message}`);
    }
  });
  const state = { code: 0 };
  try {
    await program(builtins, state).parseAsync(argv, { from: 'user' });
    return state.code;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    // A bad experiment, a plugin that cannot be registered or built, and slots whose shapes do
    // not fit together are all bad input.
    if (e instanceof ConfigError || e instanceof RegistrationError || e instanceof ShapeError) {
      err(e.message);
      return 2;
    }
    if (e instanceof TrainingError || e instanceof VaelabError) {
      err(e.message);
      return 1;
    }
    throw e;
  }
}
