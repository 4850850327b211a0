/**
 * `vaelab report RUN_DIR [RUN_DIR ...]`: one self-contained HTML page (pictures inlined as data
 * URIs, no scripts, no network) with what a run learned and how it trained:
 *
 * - the run: experiment, status, epochs and steps, wall time, backend, seed, the resolved config;
 * - final test metrics (summary.json, and eval.json of a later `vaelab eval`), with the IW
 *   estimate's standard error beside it;
 * - curves (PNG, Vega-Lite): the training loss per logged step, and every per-epoch evaluation
 *   metric (val/... or test/...) against epochs;
 * - KL per latent dimension (bars) with the active-unit statistic Var_x(E_q[z_d]);
 * - the run's pictures: reconstructions beside inputs, samples, latent traversals (the final
 *   ones, else the newest epoch's);
 * - a staged run: one section per stage.
 *
 * Given several run directories (`--compare`), the page puts their metrics side by side and
 * overlays their curves.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { SLOTS } from '../contracts';
import type { ConditionOptions } from '../data/condition';
import { ConfigError } from '../errors';
import { latentMap, latentMapSpec } from '../eval/latent-map';
import type { PluginRegistry } from '../plugin';
import { closeSession } from '../session';
import { openRun } from '../train/open-run';
import { writeFileAtomic } from '../tracking/files';
import { readMetricsFile } from '../tracking/run-index';
import { metricCurvesSpec, svgToPng, vegaLiteToSvg, writePlot, type CurvePoint, type VegaLiteSpec } from '../tracking/plots';

type Json = Record<string, any>;

/** What the report reads of one run directory (or one stage of a staged run). */
export interface RunRecord {
  dir: string;
  label: string;
  config: Json;
  summary: Json | null;
  evalRecord: Json | null;
  metrics: Json[];
  images: Map<string, string>;
  stages: RunRecord[];
  /** The command that continues the run: a stage's is its staged run's (a stage alone is not resumed). */
  resume?: string;
}

function readJson(file: string): Json | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
  } catch {
    return null;
  }
}

/** The final picture of each kind (reconstructions, samples, traversals), else the newest epoch's. */
function pictures(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!fs.existsSync(dir)) return out;
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.png')).sort();
  for (const kind of ['reconstructions', 'samples', 'layer-samples', 'layer-traversals', 'interpolations', 'completions', 'traversals', 'latent-map']) {
    const final = files.find((f) => f === `${kind}.png`);
    const epochs = files.filter((f) => f.startsWith(`${kind}-epoch-`));
    const pick = final ?? epochs[epochs.length - 1];
    if (pick) out.set(kind, path.join(dir, pick));
  }
  return out;
}

/** Reads a run directory; throws a message naming it when it is not one. */
export function readRun(dir: string): RunRecord {
  const config = readJson(path.join(dir, 'config.json'));
  if (!config) throw new ConfigError(`report: ${dir} is not a vaelab run directory (no readable config.json)`);
  const stagesDir = path.join(dir, 'stages');
  const stages = fs.existsSync(stagesDir)
    ? fs
        .readdirSync(stagesDir)
        .filter((d) => fs.existsSync(path.join(stagesDir, d, 'config.json')))
        .sort((a, b) => parseInt(a, 10) - parseInt(b, 10))
        .map((d) => ({ ...readRun(path.join(stagesDir, d)), label: `stage ${d}` }))
    : [];
  const summary = readJson(path.join(dir, 'summary.json'));
  for (const st of stages) st.resume = summary?.resume;
  return {
    dir,
    label: `${config.name ?? 'run'} (${path.basename(dir)})`,
    config,
    resume: summary?.resume,
    summary,
    evalRecord: readJson(path.join(dir, 'eval.json')),
    metrics: readMetricsFile(path.join(dir, 'metrics.jsonl')).records as Json[],
    images: pictures(path.join(dir, 'images')),
    stages,
  };
}

const esc = (s: unknown) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (v: unknown) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) >= 100 ? 2 : 4)) : v === null || v === undefined ? '–' : esc(v));
const dataUri = (png: Buffer) => `data:image/png;base64,${png.toString('base64')}`;
const img = (file: string, alt: string) => `<figure><img src="${dataUri(fs.readFileSync(file))}" alt="${esc(alt)}"><figcaption>${esc(alt)}</figcaption></figure>`;

async function plot(spec: VegaLiteSpec, alt: string): Promise<string> {
  const png = svgToPng(await vegaLiteToSvg(spec), 1.5);
  return `<figure><img src="${dataUri(png)}" alt="${esc(alt)}"><figcaption>${esc(alt)}</figcaption></figure>`;
}

/** The per-step training loss and per-epoch evaluation metrics of runs, as curve points. */
function curveRows(runs: RunRecord[]): { steps: CurvePoint[]; epochs: Array<CurvePoint & { metric: string }> } {
  const steps: CurvePoint[] = [];
  const epochs: Array<CurvePoint & { metric: string }> = [];
  for (const r of runs) {
    for (const m of r.metrics) {
      if (m.kind === 'step' && typeof m['train/loss'] === 'number') steps.push({ run: r.label, x: m.step, value: m['train/loss'] });
      if (m.kind === 'epoch') {
        for (const [k, v] of Object.entries(m)) {
          if (typeof v === 'number' && /^(val|test|train)\//.test(k)) epochs.push({ run: r.label, x: m.epoch, metric: k, value: v });
        }
      }
    }
  }
  return { steps, epochs };
}

/**
 * The report's curves as Vega-Lite specs, made by metricCurvesSpec (the dashboard's curves):
 * the training loss per logged step, and every per-epoch metric in a facet of its own (y scales
 * independent). The legend of runs only when there are several.
 */
export function curveSpecs(runs: RunRecord[]): { steps: VegaLiteSpec | null; epochs: VegaLiteSpec | null } {
  const { steps, epochs } = curveRows(runs);
  const legend = runs.length > 1;
  let perEpoch: VegaLiteSpec | null = null;
  if (epochs.length > 0) {
    const { data, ...inner } = metricCurvesSpec(epochs, { metric: null, x: 'epoch', width: 220, height: 150, legend, point: true });
    perEpoch = { data, facet: { field: 'metric', type: 'nominal', title: null }, columns: 3, resolve: { scale: { y: 'independent' } }, spec: inner };
  }
  return {
    steps: steps.length > 0 ? metricCurvesSpec(steps, { metric: 'train/loss', x: 'step', legend }) : null,
    epochs: perEpoch,
  };
}

async function curves(runs: RunRecord[]): Promise<string> {
  const specs = curveSpecs(runs);
  const parts: string[] = [];
  if (specs.steps) parts.push(await plot(specs.steps, 'training loss per logged step'));
  if (specs.epochs) parts.push(await plot(specs.epochs, 'metrics per epoch'));
  return parts.join('\n');
}

async function klBars(r: RunRecord): Promise<string> {
  const latent = r.summary?.latent as Json | undefined;
  if (!latent?.meanVariance) return '';
  // a hierarchy: the top-level figures are its top layer's, and each layer below has its own row
  const layers = Array.isArray(latent.layers) ? (latent.layers as Array<{ meanVariance: number[]; activeUnits: number }>) : [];
  const top = layers.length > 0 ? `layer ${layers.length} (top): ` : '';
  const rows = (latent.meanVariance as number[]).map((v, d) => ({ dim: d, statistic: `${top}Var_x(E_q[z_d])`, value: v }));
  if (Array.isArray(latent.klPerDim)) (latent.klPerDim as number[]).forEach((v, d) => rows.push({ dim: d, statistic: `${top}KL per dimension (nats)`, value: v }));
  layers.slice(0, -1).forEach((layer, l) => layer.meanVariance.forEach((v, d) => rows.push({ dim: d, statistic: `layer ${l + 1}: Var_x(E_q[z_d])`, value: v })));
  const units = layers.length > 0 ? `active units per layer, z_1 first: ${layers.map((l) => l.activeUnits).join(' / ')}` : `${latent.activeUnits ?? '?'} active units`;
  return plot(
    {
      data: { values: rows },
      facet: { row: { field: 'statistic', type: 'nominal', title: null } },
      resolve: { scale: { y: 'independent' } },
      spec: { width: Math.min(700, 14 * rows.length + 40), height: 110, mark: 'bar', encoding: { x: { field: 'dim', type: 'ordinal', title: 'latent dimension' }, y: { field: 'value', type: 'quantitative', title: null } } },
    },
    `latent dimensions (${units})`,
  );
}

const METRIC_ORDER = (k: string) => (k.includes('iw-log-likelihood') ? 0 : k === 'test/loss' ? 1 : 2);

/**
 * The record whose test metrics stand for a run: the run itself, or for a staged run its last
 * stage with any (the staged run's own summary copies them only once every stage has ended).
 */
function tested(r: RunRecord): RunRecord {
  if (r.stages.length === 0) return r;
  return [...r.stages].reverse().find((s) => s.summary?.test || s.evalRecord?.test) ?? r;
}

function noMetrics(runs: RunRecord[]): string {
  const interrupted = runs.filter((r) => r.summary?.status === 'interrupted');
  if (runs.length === 1 && interrupted.length === 1) {
    const resume = interrupted[0].resume;
    return `<p>No test metrics: the run was interrupted before its final evaluation${resume ? ` (continue it with <code>${esc(resume)}</code>)` : ''}.</p>`;
  }
  return '<p>No test metrics yet (the run has not ended).</p>';
}

function metricsTable(given: RunRecord[]): string {
  const runs = given.map(tested);
  const all = runs.map((r) => ({ ...(r.summary?.test ?? {}), ...Object.fromEntries(Object.entries(r.evalRecord?.test ?? {}).map(([k, v]) => [`${k} (vaelab eval, k = ${r.evalRecord?.iw?.k ?? '?'})`, v])) }));
  const keys = [...new Set(all.flatMap((m) => Object.keys(m)))].sort((a, b) => METRIC_ORDER(a) - METRIC_ORDER(b) || a.localeCompare(b));
  if (keys.length === 0) return noMetrics(given);
  const head = `<tr><th>metric</th>${given.map((r, i) => `<th>${esc(r.label)}${runs[i] !== r ? ` (${esc(runs[i].label)})` : ''}</th>`).join('')}</tr>`;
  const body = keys.map((k) => `<tr><td>${esc(k)}</td>${all.map((m) => `<td class="n">${num(m[k])}</td>`).join('')}</tr>`).join('\n');
  return `<table>${head}\n${body}</table>`;
}

function runTable(runs: RunRecord[]): string {
  const rows: Array<[string, (r: RunRecord) => unknown]> = [
    ['experiment', (r) => r.config.name],
    ['directory', (r) => r.dir],
    ['status', (r) => r.summary?.status ?? 'running or interrupted'],
    ['epochs completed', (r) => r.summary?.epochsCompleted],
    ['steps', (r) => r.summary?.steps],
    ['train seconds', (r) => r.summary?.trainSeconds],
    ['seconds per epoch', (r) => r.summary?.secondsPerEpoch],
    ['backend', (r) => r.summary?.backend],
    ['seed', (r) => r.config.seed],
    // what the test metrics were computed on: a staged run's are its last tested stage's
    ['evaluated on', (r) => tested(r).summary?.evaluationSplit],
    ['tested checkpoint', (r) => (tested(r).summary?.test ? (tested(r).summary?.testedCheckpoint ?? 'final weights') : '–')],
    ['IW estimate', (r) => {
      const iw = tested(r).summary?.iw;
      return iw ? `k = ${iw.k} on ${iw.examples} test examples, ${num(iw.seconds)} s` : '–';
    }],
  ];
  const plugins = (c: Json) => SLOTS.map((s) => `${s}=${c[s]?.use ?? '?'}`).join(' ');
  // a staged run: each stage's own selection (the base config's is no stage's)
  rows.splice(2, 0, ['plugins', (r) => (r.stages.length > 0 ? r.stages.map((st) => `${st.label}: ${plugins(st.config)}`).join('; ') : plugins(r.config))]);
  const head = `<tr><th>run</th>${runs.map((r) => `<th>${esc(r.label)}</th>`).join('')}</tr>`;
  return `<table>${head}\n${rows.map(([name, f]) => `<tr><td>${esc(name)}</td>${runs.map((r) => `<td>${num(f(r))}</td>`).join('')}</tr>`).join('\n')}</table>`;
}

async function runSection(r: RunRecord, level: number): Promise<string> {
  const h = `h${level}`;
  const sub = `h${Math.min(level + 1, 6)}`;
  const parts = [`<${h}>${esc(r.label)}</${h}>`, runTable([r])];
  // a staged run's metrics, curves and pictures are its stages' (below), each under its own heading
  if (r.stages.length === 0) {
    parts.push(`<${sub}>Test metrics</${sub}>`, metricsTable([r]));
    parts.push(await curves([r]));
    parts.push(await klBars(r));
  }
  const names: Record<string, string> = {
    reconstructions: 'reconstructions (rows in pairs: inputs, then their reconstructions)',
    samples: 'samples from the prior',
    'layer-samples': 'samples per stochastic layer: row r varies layer L - r + 1 (the top first) and holds the others',
    'layer-traversals': 'traversals per stochastic layer: each row sweeps the unit of one layer (the top first) that moves the image most, every other draw held (layer-traversals.json names them)',
    interpolations: 'interpolations between the posterior modes of two test inputs of one class (one row per pair)',
    completions: 'completions: the visible part, the truth, then samples of the hidden part (one row per test input)',
    traversals: 'latent traversals (one row per dimension, largest KL first)',
    'latent-map': 'test codes (posterior modes) in 2-D, coloured by label',
  };
  for (const [kind, file] of r.images) parts.push(img(file, `${names[kind] ?? kind}: ${path.basename(file)}`));
  for (const s of r.stages) parts.push(await runSection(s, Math.min(level + 1, 5)));
  if (level === 2) parts.push(`<details><summary>config.json</summary><pre>${esc(stringify(r.config))}</pre></details>`);
  return parts.filter((p) => p !== '').join('\n');
}

const STYLE = `body{font-family:"DejaVu Sans",Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left;font-size:90%}
td.n{text-align:right;font-variant-numeric:tabular-nums}figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}
figcaption{font-size:85%;color:#555}img{image-rendering:pixelated;max-width:100%}pre{background:#f6f6f6;padding:.6em;font-size:85%}`;

/** The HTML page of one run, or of several side by side. */
export async function renderReport(runs: RunRecord[]): Promise<string> {
  const title = runs.length === 1 ? `vaelab report: ${runs[0].label}` : `vaelab report: ${runs.length} runs compared`;
  const body: string[] = [`<h1>${esc(title)}</h1>`];
  if (runs.length > 1) {
    body.push('<h2>Runs</h2>', runTable(runs), '<h2>Test metrics</h2>', metricsTable(runs), '<h2>Curves</h2>', await curves(runs));
  }
  for (const r of runs) body.push(await runSection(r, 2));
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${STYLE}</style></head>\n<body>\n${body.join('\n')}\n</body></html>\n`;
}

/** Options of `writeReport`. */
export interface ReportOptions {
  /** HTML file (default: <first run>/report.html). */
  out?: string;
  /**
   * With a registry, each run is opened (its newest checkpoint) to draw the map of its first
   * `mapPoints` test codes into images/latent-map.png (kept when it is already there).
   */
  registry?: PluginRegistry;
  mapPoints?: number;
  log?: (line: string) => void;
}

/**
 * Draws images/latent-map.png of a run (of its last stage when staged) unless it exists; returns
 * why there is none, or null.
 */
export async function drawLatentMap(dir: string, registry: PluginRegistry, points: number, log: (line: string) => void = () => undefined): Promise<string | null> {
  let opened: ReturnType<typeof openRun>;
  try {
    opened = openRun(dir, registry, undefined, log);
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  try {
    const file = path.join(opened.run.images, 'latent-map.png');
    if (fs.existsSync(file)) return null;
    const s = opened.session;
    const map = latentMap(s.parts.model, s.dataset.test, {
      info: s.dataset,
      condition: s.config.data.condition as ConditionOptions,
      seed: s.config.seed,
      n: points,
      batchSize: s.config.eval.batchSize,
    });
    if (!map) return 'the latent is not a flat vector (no map)';
    const how = map.method === 'umap' ? `UMAP of the ${map.dims}-D codes` : `the ${map.dims}-D codes`;
    fs.mkdirSync(opened.run.images, { recursive: true });
    await writePlot(file, latentMapSpec(map, `${map.points.length} test examples: ${how}`), 1.5);
    return null;
  } finally {
    closeSession(opened.session);
  }
}

/** Writes the report of `dirs`; returns the path of the HTML file. */
export async function writeReport(dirs: string[], opts: ReportOptions = {}): Promise<string> {
  if (opts.registry) {
    for (const d of dirs) {
      const why = await drawLatentMap(path.resolve(d), opts.registry, opts.mapPoints ?? 1000, opts.log);
      if (why) opts.log?.(`report: ${d}: no latent map: ${why}`);
    }
  }
  const runs = dirs.map((d) => readRun(path.resolve(d)));
  const file = path.resolve(opts.out ?? path.join(runs[0].dir, 'report.html'));
  writeFileAtomic(file, await renderReport(runs));
  return file;
}
