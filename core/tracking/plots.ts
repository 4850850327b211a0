/**
 * Plots as PNG without a browser: a Vega-Lite spec compiled by vega-lite, rendered to SVG by
 * vega's headless View, rasterised by @resvg/resvg-js with the font shipped in assets/fonts
 * (DejaVu Sans), so text looks the same on every machine whatever fonts it has.
 *
 * vega and vega-lite are ES modules only; this package compiles to CommonJS, where TypeScript
 * would turn `import()` into `require()`, so they are loaded through a real dynamic import.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from './files';

/** A Vega-Lite specification (the JSON object of https://vega.github.io/vega-lite/docs/spec.html). */
export type VegaLiteSpec = Record<string, unknown>;

// A dynamic import that TypeScript's CommonJS output leaves alone.
const importEsm = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<Record<string, unknown>>;

let libs: Promise<{ vega: Record<string, unknown>; vl: Record<string, unknown> }> | null = null;
const loadLibs = () => (libs ??= Promise.all([importEsm('vega'), importEsm('vega-lite')]).then(([vega, vl]) => ({ vega, vl })));

/** The shipped font file (assets/fonts/DejaVuSans.ttf, from the package root). */
export function fontFile(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const f = path.join(dir, 'assets', 'fonts', 'DejaVuSans.ttf');
    if (fs.existsSync(f)) return f;
    dir = path.dirname(dir);
  }
  throw new Error('vaelab: assets/fonts/DejaVuSans.ttf is missing from the installation');
}

/** Defaults every plot shares: the shipped font, white background. */
const CONFIG = { font: 'DejaVu Sans', background: 'white', view: { stroke: null } };

/** The SVG text of a Vega-Lite spec. */
export async function vegaLiteToSvg(spec: VegaLiteSpec): Promise<string> {
  const { vega, vl } = await loadLibs();
  const compiled = (vl.compile as (s: unknown) => { spec: unknown })({ config: CONFIG, ...spec }).spec;
  const View = vega.View as new (runtime: unknown, opts: { renderer: string }) => { toSVG(): Promise<string>; finalize(): void };
  const view = new View((vega.parse as (s: unknown) => unknown)(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The PNG bytes of an SVG, rendered at `scale` times its size with the shipped font. */
export function svgToPng(svg: string, scale = 2): Buffer {
  // Loaded on use: a native module that only plotting needs.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Resvg } = require('@resvg/resvg-js') as typeof import('@resvg/resvg-js');
  const r = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    font: { fontFiles: [fontFile()], loadSystemFonts: false, defaultFontFamily: 'DejaVu Sans' },
    background: 'white',
  });
  return r.render().asPng();
}

/** Renders a Vega-Lite spec to `file` (PNG, written atomically); returns the PNG bytes. */
export async function writePlot(file: string, spec: VegaLiteSpec, scale = 2): Promise<Buffer> {
  const png = svgToPng(await vegaLiteToSvg(spec), scale);
  writeFileAtomic(file, png);
  return png;
}

/** One logged value of a run's metric; `raw` is the unsmoothed value when `value` is smoothed. */
export interface CurvePoint {
  run: string;
  x: number;
  value: number;
  raw?: number;
}

/**
 * A metric over steps (or epochs) of one or more runs, one line per run coloured by run. When
 * the points carry `raw` (smoothed curves), the raw values are drawn faintly behind the smoothed
 * ones, as TensorBoard does. The dashboard's curves and the run report's are this spec.
 *
 * `metric` titles the y axis (null: no title, as in a facet that names it); `legend: false`
 * leaves out the legend of runs (a page about one run); `point` marks each value (few epochs).
 */
export function metricCurvesSpec(
  points: readonly CurvePoint[],
  opts: { metric: string | null; x: string; title?: string; width?: number; height?: number; legend?: boolean; point?: boolean },
): VegaLiteSpec {
  const x = { field: 'x', type: 'quantitative', title: opts.x };
  const color = { field: 'run', type: 'nominal', legend: opts.legend === false ? null : { orient: 'bottom', labelLimit: 500, title: null } };
  const line = (field: string, extra: Record<string, unknown>) => ({
    mark: { type: 'line', strokeWidth: 1.5, clip: true, ...extra },
    encoding: { x, y: { field, type: 'quantitative', title: opts.metric, scale: { zero: false } }, color },
  });
  const smoothed = points.some((p) => p.raw !== undefined);
  const top = opts.point ? { point: true } : {};
  return {
    ...(opts.title ? { title: opts.title } : {}),
    width: opts.width ?? 480,
    height: opts.height ?? 240,
    data: { values: points },
    layer: smoothed ? [line('raw', { opacity: 0.25, strokeWidth: 1 }), line('value', top)] : [line('value', top)],
  };
}
