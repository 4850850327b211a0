/**
 * The dashboard's HTTP server (Node's http module): the page and its scripts (core/dashboard/page/),
 * the browser builds of vega, vega-lite and vega-embed from node_modules, a JSON API over the run
 * index, server-sent events while runs change, and the files of run directories.
 *
 *   GET /                      the page
 *   GET /page/<file>           app.js, style.css
 *   GET /vendor/<lib>.js       vega, vega-lite, vega-embed (their minified browser builds)
 *   GET /api/index             every run (config keys that vary, summary metrics, status) and sweep
 *   GET /api/run?id=ID         one run: full config, summary.json, run.json, its images
 *   GET /api/curves?id=ID&id=ID&metric=M&points=N   the metric of the runs, downsampled, as a Vega-Lite spec
 *   GET /api/sweep?id=ID       a sweep's trials and its pictures' specs (parallel coordinates with a brush)
 *   GET /api/events            server-sent events: `index` whenever a run's status, step or end changes
 *   GET /files/<run id>/<path> a file of a run directory
 *
 * Safety: it binds to 127.0.0.1 unless told otherwise and answers only requests addressed to a
 * loopback name then (a web page cannot reach it by rebinding a domain name). /files serves only
 * regular files whose real path lies under the runs directory: `..` segments (plain or
 * percent-encoded), absolute paths, NUL bytes and symbolic links that lead out of it are refused
 * (403), anything else not found (404). Files are served as data, never run: PNG and JPEG as
 * images, everything else as plain text, with `nosniff` and a content security policy that lets
 * nothing in them execute. No request ever writes to the runs directory (the index cache aside).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { ConfigError } from '../errors';
import { axisOf, parallelCoordinatesSpec, metricVsParametersSpec, type SweepAxis } from '../sweep/plots';
import { sameValue, type Param } from '../sweep/space';
import { readSweepParameters } from '../sweep/spec';
import { metricCurvesSpec, type CurvePoint } from '../tracking/plots';
import { downsample, loadIndex, readCurves, type RunEntry, type RunIndex, type SweepEntry } from './source';

export interface DashboardOptions {
  /** The runs directory. */
  root: string;
  /** 0 picks a free port. */
  port?: number;
  host?: string;
  /** How often the index is rebuilt while a page listens for changes (ms). */
  pollMs?: number;
  /** One line per request that failed on the server's side. */
  log?: (line: string) => void;
}

export interface Dashboard {
  url: string;
  port: number;
  host: string;
  close(): Promise<void>;
}

const PAGE_FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};
const VENDOR: Record<string, [string, string]> = {
  'vega.js': ['vega', 'build/vega.min.js'],
  'vega-lite.js': ['vega-lite', 'build/vega-lite.min.js'],
  'vega-embed.js': ['vega-embed', 'build/vega-embed.min.js'],
};
const IMAGE_TYPES: Record<string, string> = { '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg' };
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);
/** Points per curve sent to the page by default (a 10 000-step run is averaged over buckets of 5). */
const CURVE_POINTS = 2000;

/**
 * The directory of the page's files: next to this module (the sources; dist/, where the build
 * copies them), but in a checkout's dist/ the sources' own, so an edit shows without a rebuild.
 */
function pageDir(): string {
  const source = path.join(__dirname, '..', '..', '..', 'core', 'dashboard', 'page');
  const own = path.join(__dirname, 'page');
  for (const dir of path.basename(path.join(__dirname, '..', '..')) === 'dist' ? [source, own] : [own]) {
    if (fs.existsSync(path.join(dir, 'index.html'))) return dir;
  }
  throw new Error(`vaelab: the dashboard page is missing from the installation (${own})`);
}

/** A vendor library's browser build, found in the nearest node_modules above this module. */
function vendorFile(pkg: string, rel: string): string | null {
  let dir = __dirname;
  for (let i = 0; i < 8; i++) {
    const f = path.join(dir, 'node_modules', pkg, rel);
    if (fs.existsSync(f)) return f;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return null;
}

type Refusal = { status: 403 | 404; why: string };

/**
 * The real path of the file that `rel` (the URL path after /files/, still percent-encoded) names
 * under `rootReal`, or why it is refused.
 */
export function resolveRunFile(rootReal: string, rel: string): { file: string } | Refusal {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rel);
  } catch {
    return { status: 403, why: 'malformed percent-encoding' };
  }
  if (decoded.includes('\0')) return { status: 403, why: 'NUL byte in path' };
  if (decoded.startsWith('/') || decoded.startsWith('\\') || path.isAbsolute(decoded) || /^[a-zA-Z]:/.test(decoded)) return { status: 403, why: 'absolute path' };
  const parts = decoded.split(/[\\/]+/).filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) return { status: 403, why: 'path leaves the runs directory' };
  if (parts.length === 0) return { status: 404, why: 'not a file' };
  const joined = path.join(rootReal, ...parts);
  let real: string;
  try {
    real = fs.realpathSync(joined);
  } catch {
    return { status: 404, why: 'no such file' };
  }
  if (!real.startsWith(rootReal + path.sep)) return { status: 403, why: 'a link out of the runs directory' };
  try {
    if (!fs.statSync(real).isFile()) return { status: 404, why: 'not a file' };
  } catch {
    return { status: 404, why: 'no such file' };
  }
  return { file: real };
}

/** Config keys whose values differ between runs, and the values of those that do not. */
function splitConfig(runs: readonly RunEntry[]): { varying: string[]; differing: string[]; constants: Record<string, unknown> } {
  const first = new Map<string, unknown>();
  const varying = new Set<string>();
  const differing = new Set<string>();
  const seen = new Map<string, number>();
  for (const r of runs) {
    for (const [k, v] of Object.entries(r.config)) {
      seen.set(k, (seen.get(k) ?? 0) + 1);
      if (!first.has(k)) first.set(k, v);
      else if (first.get(k) !== v) {
        varying.add(k);
        differing.add(k);
      }
    }
  }
  // a key that some runs lack also varies
  for (const [k, n] of seen) if (n < runs.length) varying.add(k);
  const constants: Record<string, unknown> = {};
  for (const [k, v] of first) if (!varying.has(k)) constants[k] = v;
  return { varying: [...varying].sort(), differing: [...differing].sort(), constants };
}

/** The table's payload: per run only what varies, the constant config once. */
export function indexPayload(index: RunIndex): Record<string, unknown> {
  const { varying, differing, constants } = splitConfig(index.runs);
  const metricKeys = new Set<string>();
  for (const r of index.runs) for (const k of Object.keys(r.metrics)) metricKeys.add(k);
  return {
    root: index.root,
    builtAt: index.builtAt,
    problems: index.problems,
    configKeys: varying,
    /** Keys with two values or more among the runs that have them (not only present in some). */
    differingKeys: differing,
    constants,
    metricKeys: [...metricKeys].sort(),
    runs: index.runs.map((r) => {
      const config: Record<string, unknown> = {};
      for (const k of varying) if (k in r.config) config[k] = r.config[k];
      return {
        id: r.id,
        experiment: r.experiment,
        kind: r.kind,
        parent: r.parent,
        status: r.status,
        rawStatus: r.rawStatus,
        reason: r.reason,
        config,
        metrics: r.metrics,
        startedAt: r.startedAt,
        endedAt: r.endedAt,
        seconds: r.seconds,
        problems: r.problems,
      };
    }),
    sweeps: index.sweeps.map((s) => ({
      id: s.id,
      name: s.name,
      method: s.method,
      metric: s.metric,
      parameters: s.parameters,
      trials: s.trials.length,
      pruned: s.trials.filter((t) => t.status === 'pruned').length,
      completed: s.trials.filter((t) => t.status === 'completed').length,
    })),
  };
}

/**
 * The axes of a sweep's parameters as far as its trials show them (when its sweep file cannot be
 * read): numbers on a numeric axis, logarithmic when all are positive and span a decade or
 * more; anything else as choices in order of appearance.
 */
export function inferAxes(sweep: SweepEntry): SweepAxis[] {
  return sweep.parameters.map((p) => {
    const vs = sweep.trials.map((t) => t.params[p]).filter((v) => v !== undefined);
    if (vs.length > 0 && vs.every((v) => typeof v === 'number')) {
      const ns = vs as number[];
      const lo = Math.min(...ns);
      const hi = Math.max(...ns);
      const distinct = new Set(ns).size;
      if (distinct <= 6 && ns.every(Number.isInteger)) return { path: p, numeric: true, log: false, choices: [...new Set(ns)].sort((a, b) => a - b) };
      return { path: p, numeric: true, log: lo > 0 && hi / lo >= 10 };
    }
    const seen: unknown[] = [];
    for (const v of vs) if (!seen.some((s) => JSON.stringify(s) === JSON.stringify(v))) seen.push(v);
    return { path: p, numeric: false, log: false, choices: seen };
  });
}

/** Whether a trial's value is one the parameter can take. */
function fits(p: Param, v: unknown): boolean {
  if (p.kind === 'choice') return p.values.some((x) => sameValue(x, v));
  const slack = 1e-9 * Math.max(Math.abs(p.min), Math.abs(p.max));
  return typeof v === 'number' && v >= p.min - slack && v <= p.max + slack;
}

/** A sweep's axes, and where they come from (shown under its plots). */
export interface SweepAxes {
  axes: SweepAxis[];
  from: 'sweep file' | 'trials';
  /** The sweep file read, or why the axes were guessed from the trials. */
  note: string;
}

/**
 * The axes of a sweep's parameters from its sweep file (named in state.json), each with its
 * distribution: log for log-uniform and log-int, the listed values of a choice, the interval of
 * a range. The file is read as data only (readSweepParameters: no experiment, no plugin module
 * is loaded) and used only when it agrees with the trials (every parameter they set is swept by
 * it, with a value it can take; the same metric); otherwise the axes are guessed from the trials
 * (inferAxes), and the note says why.
 */
export function sweepAxes(sweep: SweepEntry): SweepAxes {
  const guess = (why: string): SweepAxes => ({ axes: inferAxes(sweep), from: 'trials', note: `axes guessed from the trials: ${why}` });
  if (!sweep.sweepFile) return guess('state.json names no sweep file');
  const file = path.resolve(sweep.sweepFile);
  // state.json is data of the runs directory: it must not make the dashboard read any file at all
  if (!/\.(ya?ml|json)$/i.test(file)) return guess(`${file} is not a sweep file (.yaml, .yml or .json)`);
  let read: ReturnType<typeof readSweepParameters>;
  try {
    read = readSweepParameters(file);
  } catch (e) {
    return guess((e as Error).message.split('\n')[0]);
  }
  const byPath = new Map(read.parameters.map((p) => [p.path, p]));
  for (const t of sweep.trials) {
    for (const [k, v] of Object.entries(t.params)) {
      const p = byPath.get(k);
      if (!p) return guess(`${file} does not sweep ${k}, which trial ${t.number} sets (the file changed since the sweep ran?)`);
      if (!fits(p, v)) return guess(`${file}: trial ${t.number} has ${k} = ${JSON.stringify(v)}, which parameters.${k} cannot give (the file changed since the sweep ran?)`);
    }
  }
  if (read.metric && read.metric.name !== sweep.metric.name) return guess(`${file} names the metric ${read.metric.name}, the sweep's state ${sweep.metric.name}`);
  const axes = read.parameters.filter((p) => sweep.parameters.includes(p.path)).map(axisOf);
  return { axes, from: 'sweep file', note: `axes from the sweep file ${file}` };
}

export function sweepPayload(sweep: SweepEntry, index: RunIndex): Record<string, unknown> {
  const { axes, from, note } = sweepAxes(sweep);
  const byId = new Map(index.runs.map((r) => [r.id, r]));
  return {
    id: sweep.id,
    name: sweep.name,
    method: sweep.method,
    metric: sweep.metric,
    parameters: sweep.parameters,
    axes: { from, note },
    trials: sweep.trials.map((t) => ({ ...t, runStatus: t.runId ? (byId.get(t.runId)?.status ?? null) : null, reason: t.runId ? (byId.get(t.runId)?.reason ?? null) : null })),
    specs: {
      metricVsParameters: metricVsParametersSpec(`${sweep.name}: ${sweep.metric.name} (${sweep.metric.goal}) against each parameter`, sweep.metric.name, axes, sweep.trials),
      parallelCoordinates: parallelCoordinatesSpec(
        `${sweep.name}: parameters and ${sweep.metric.name} (drag over an axis to pick trials; dashed: pruned)`,
        sweep.metric,
        axes,
        sweep.trials,
        { brush: true },
      ),
    },
  };
}

function readJsonFile(file: string): { value: unknown } | { problem: string } | null {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? null : { problem: `${path.basename(file)}: cannot be read (${code ?? (e as Error).message})` };
  }
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return { problem: `${path.basename(file)}: not valid JSON` };
  }
}

function runPayload(run: RunEntry): Record<string, unknown> {
  const problems = [...run.problems];
  const part = (name: string) => {
    const r = readJsonFile(path.join(run.dir, name));
    if (r && 'problem' in r) problems.push(r.problem);
    return r && 'value' in r ? r.value : null;
  };
  let images: string[] = [];
  try {
    images = fs
      .readdirSync(path.join(run.dir, 'images'), { withFileTypes: true })
      .filter((d) => d.isFile() && IMAGE_TYPES[path.extname(d.name).toLowerCase()] !== undefined)
      .map((d) => d.name)
      .sort();
  } catch {
    // no images directory
  }
  const base = `/files/${run.id.split('/').map(encodeURIComponent).join('/')}/images/`;
  return {
    ...run,
    dir: undefined,
    problems,
    summary: part('summary.json'),
    source: part('run.json'),
    images: images.map((name) => ({ name, url: base + encodeURIComponent(name) })),
  };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Starts the dashboard; rejects with a ConfigError when the port cannot be had. */
export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const root = path.resolve(opts.root);
  const host = opts.host ?? '127.0.0.1';
  const pollMs = opts.pollMs ?? 2000;
  const log = opts.log ?? (() => undefined);
  const page = pageDir();
  let rootReal = root;
  try {
    rootReal = fs.realpathSync(root);
  } catch {
    // missing: the index says so, and the page shows it
  }

  // The index is built at start, then again when a request finds it older than pollMs: the
  // table is answered from the last one at once and the rebuild runs after the answer
  // (stale-while-revalidate); a page that listens hears of any change by the next poll.
  let index: RunIndex | null = null;
  let indexAt = 0;
  let payload: { of: RunIndex; text: string } | null = null;
  let rebuilding = false;
  const rebuild = (): RunIndex => {
    index = loadIndex(root);
    indexAt = Date.now();
    return index;
  };
  const currentIndex = (maxAgeMs = 1000): RunIndex => (!index || Date.now() - indexAt > maxAgeMs ? rebuild() : index);
  const freshSoon = (): RunIndex => {
    if (!index) return rebuild();
    if (Date.now() - indexAt > pollMs && !rebuilding) {
      rebuilding = true;
      setImmediate(() => {
        rebuilding = false;
        try {
          rebuild();
        } catch (e) {
          log(`dashboard: index: ${(e as Error).message}`);
        }
      });
    }
    return index;
  };
  rebuild();
  const findRun = (id: string | null): RunEntry => {
    const r = id ? currentIndex().runs.find((x) => x.id === id) : undefined;
    if (!r) throw new HttpError(404, `no run ${JSON.stringify(id)} in ${root}`);
    return r;
  };

  // Live updates: while a page listens, the index is rebuilt every pollMs and a change of any
  // run's status, step or end is announced.
  const listeners = new Set<http.ServerResponse>();
  const fingerprint = (ix: RunIndex) => new Map(ix.runs.map((r) => [r.id, `${r.status}|${r.metrics.step ?? ''}|${r.metrics.epoch ?? ''}|${r.endedAt ?? ''}`]));
  let last = new Map<string, string>();
  const poll = setInterval(() => {
    if (listeners.size === 0) return;
    let ix: RunIndex;
    try {
      ix = currentIndex(pollMs / 2);
    } catch (e) {
      log(`dashboard: index: ${(e as Error).message}`);
      return;
    }
    const now = fingerprint(ix);
    const changed = [...now].filter(([id, f]) => last.get(id) !== f).map(([id]) => id);
    const removed = [...last.keys()].filter((id) => !now.has(id));
    last = now;
    if (changed.length + removed.length === 0) return;
    const msg = `event: index\ndata: ${JSON.stringify({ changed, removed })}\n\n`;
    for (const res of listeners) res.write(msg);
  }, pollMs);
  poll.unref();

  const send = (res: http.ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...extra });
    res.end(body);
  };
  const json = (res: http.ServerResponse, value: unknown) => send(res, 200, 'application/json; charset=utf-8', JSON.stringify(value));

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain; charset=utf-8', 'only GET and HEAD', { allow: 'GET, HEAD' });
    if (LOOPBACK.has(host) || host === '::1') {
      const name = (req.headers.host ?? '').replace(/:\d+$/, '');
      if (!LOOPBACK.has(name)) return send(res, 403, 'text/plain; charset=utf-8', `host ${JSON.stringify(req.headers.host ?? '')} refused: the dashboard answers only on 127.0.0.1 and localhost`);
    }
    const rawPath = (req.url ?? '/').split('?')[0];
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (rawPath === '/favicon.ico') return send(res, 204, 'text/plain; charset=utf-8', '');
    if (rawPath === '/' || rawPath === '/index.html') return send(res, 200, PAGE_FILES['index.html'], fs.readFileSync(path.join(page, 'index.html')));
    if (rawPath.startsWith('/page/')) {
      const name = rawPath.slice('/page/'.length);
      if (!(name in PAGE_FILES)) return send(res, 404, 'text/plain; charset=utf-8', 'not found');
      return send(res, 200, PAGE_FILES[name], fs.readFileSync(path.join(page, name)));
    }
    if (rawPath.startsWith('/vendor/')) {
      const v = VENDOR[rawPath.slice('/vendor/'.length)];
      const f = v && vendorFile(v[0], v[1]);
      if (!f) return send(res, 404, 'text/plain; charset=utf-8', v ? `${v[0]} is not installed` : 'not found');
      return send(res, 200, 'text/javascript; charset=utf-8', fs.readFileSync(f), { 'cache-control': 'max-age=3600' });
    }
    if (rawPath.startsWith('/files/')) {
      if (rootReal === root && !fs.existsSync(root)) return send(res, 404, 'text/plain; charset=utf-8', 'no runs directory');
      const r = resolveRunFile(rootReal, rawPath.slice('/files/'.length));
      if ('why' in r) return send(res, r.status, 'text/plain; charset=utf-8', r.status === 403 ? `refused: ${r.why}` : 'not found');
      const type = IMAGE_TYPES[path.extname(r.file).toLowerCase()] ?? 'text/plain; charset=utf-8';
      return send(res, 200, type, fs.readFileSync(r.file), { 'content-security-policy': "default-src 'none'; img-src 'self'; sandbox" });
    }
    if (rawPath === '/api/index') {
      const ix = freshSoon();
      if (payload?.of !== ix) payload = { of: ix, text: JSON.stringify(indexPayload(ix)) };
      return send(res, 200, 'application/json; charset=utf-8', payload.text);
    }
    if (rawPath === '/api/run') return json(res, runPayload(findRun(url.searchParams.get('id'))));
    if (rawPath === '/api/curves') {
      const ids = url.searchParams.getAll('id');
      const points = Math.min(20000, Math.max(10, Number(url.searchParams.get('points') ?? CURVE_POINTS) || CURVE_POINTS));
      const runs = ids.map((id) => findRun(id));
      const curves = runs.map((r) => ({ run: r, curves: readCurves(path.join(r.dir, 'metrics.jsonl')) }));
      const keys = new Set<string>();
      for (const c of curves) for (const k of c.curves.series.keys()) keys.add(k);
      const metric = url.searchParams.get('metric') ?? (keys.has('train/loss') ? 'train/loss' : ([...keys].sort()[0] ?? 'train/loss'));
      const values: CurvePoint[] = [];
      const series = curves.map(({ run, curves: c }) => {
        const s = c.series.get(metric);
        const pts = s ? downsample(s, points) : [];
        for (const p of pts) values.push({ run: run.id, x: p.x, value: p.value, raw: p.value });
        return { id: run.id, status: run.status, logged: s?.x.length ?? 0, shown: pts.length, skipped: c.skipped };
      });
      return json(res, { metric, keys: [...keys].sort(), series, spec: metricCurvesSpec(values, { metric, x: 'step' }) });
    }
    if (rawPath === '/api/sweep') {
      const ix = currentIndex();
      const id = url.searchParams.get('id');
      const sweep = ix.sweeps.find((s) => s.id === id);
      if (!sweep) throw new HttpError(404, `no sweep ${JSON.stringify(id)} in ${root}`);
      return json(res, sweepPayload(sweep, ix));
    }
    if (rawPath === '/api/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(`retry: ${pollMs}\n\n`);
      if (listeners.size === 0) last = fingerprint(currentIndex());
      listeners.add(res);
      req.on('close', () => listeners.delete(res));
      return;
    }
    send(res, 404, 'text/plain; charset=utf-8', 'not found');
  };

  const server = http.createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      const status = e instanceof HttpError ? e.status : 500;
      if (status === 500) log(`dashboard: ${req.method} ${req.url}: ${(e as Error).stack ?? e}`);
      if (!res.headersSent) send(res, status, 'text/plain; charset=utf-8', (e as Error).message);
      else res.end();
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      clearInterval(poll);
      const where = `${host}:${opts.port ?? 0}`;
      if (e.code === 'EADDRINUSE') reject(new ConfigError(`--port: ${where} is already in use; choose another port with --port (0 picks a free one)`));
      else if (e.code === 'EACCES') reject(new ConfigError(`--port: not allowed to listen on ${where} (ports below 1024 need privileges); choose another port with --port`));
      else if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND') reject(new ConfigError(`--host: ${JSON.stringify(host)} is not an address of this machine`));
      else reject(e);
    });
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/`,
    port,
    host,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(poll);
        for (const res of listeners) res.end();
        listeners.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
