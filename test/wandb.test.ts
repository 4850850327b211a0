/**
 * W&B logging against a real HTTP server: a recorder on 127.0.0.1 (random port, reached through
 * WANDB_BASE_URL) that answers as the W&B API does and keeps every GraphQL and file_stream
 * request. The run's own metrics.jsonl and summary.json are the independent record of what
 * must arrive. Then the same server failing (HTTP 500), hanging (never answering) and refusing
 * (port closed): training ends with the same steps in about the same time, says so once, and
 * `wandb-sync` later delivers everything, exactly once.
 */
import { expect } from 'chai';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { experimentFromObject } from '../core/config/experiment';
import { ConfigError } from '../core/errors';
import { closeSession, openSession } from '../core/session';
import { train, type TrainResult } from '../core/train/trainer';
import { RunDir } from '../core/tracking/run-dir';
import { planStages } from '../core/config/stages';
import { runTrial } from '../core/sweep/worker';
import { trainStages } from '../core/train/run-stages';
import { settleWandb, wandbCallbacks, wandbSync } from '../core/wandb';
import { Outbox } from '../core/wandb/outbox';
import { UPSERT_BUCKET, USER_AGENT, VIEWER } from '../core/wandb/wire';
import { builtins, experimentObject } from './kits/build';
import { closedPort, Recorder } from './fixtures/wandb-server';

const BIN = path.join(__dirname, '..', 'bin', 'vaelab.js');
const TINY = path.join(__dirname, 'fixtures', 'tiny.yaml');
const KEY = 'k'.repeat(40);
/** tracking.wandb.timeoutSeconds of the tests: the bound a hanging server may cost. */
const TIMEOUT_S = 1;

/* eslint-disable @typescript-eslint/no-explicit-any */
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-wandb-'));

/** A tiny experiment: 256 synthetic 14x14 images, batch 32 => 8 steps an epoch, 4 epochs; a metrics line every 2 steps. */
function tinyRaw(): Record<string, unknown> {
  return experimentObject({
    name: 'tiny-wandb',
    seed: 3,
    data: { use: 'synthetic', synthetic: { kind: 'shapes', size: 256 } },
    encoder: { use: 'mlp', mlp: { hiddenSizes: [32] } },
    decoder: { use: 'mlp', mlp: { hiddenSizes: [32] } },
    latent: { use: 'gaussian', gaussian: { dim: 4 } },
    train: { epochs: 4, batchSize: 32, logEvery: 2, progress: 'none', optimizer: { learningRate: 3e-3 } },
    eval: { iwSamples: 5, iwChunk: 5, batchSize: 64, gridSize: 4, images: false },
    tracking: { dir: root, wandb: { enabled: true, project: 'vaelab-test', tags: ['contract', 'tiny'], notes: 'the contract test', timeoutSeconds: TIMEOUT_S } },
  });
}

interface Trained {
  run: RunDir;
  result: TrainResult;
  lines: string[];
  /** Lines of the W&B logger (each starts with "wandb:"). */
  warnings: string[];
  /** train() and the bounded wait for the last sends. */
  seconds: number;
}

async function trainWith(baseUrl: string): Promise<Trained> {
  const session = openSession(experimentFromObject(tinyRaw(), builtins()));
  const run = RunDir.create(root, session.config.name, session.config.seed);
  run.writeConfig(session.config);
  const lines: string[] = [];
  const log = (l: string) => lines.push(l);
  const env = { WANDB_API_KEY: KEY, WANDB_BASE_URL: baseUrl };
  const t0 = Date.now();
  const result = await train(session, { run, backend: 'cpu', log, handleSignals: false, callbacks: wandbCallbacks(session.config, run, { log, env }) });
  await settleWandb();
  const seconds = (Date.now() - t0) / 1000;
  closeSession(session);
  return { run, result, lines, warnings: lines.filter((l) => l.startsWith('wandb:')), seconds };
}

const withoutTime = (records: Array<Record<string, unknown>>) => records.map(({ time: _t, ...r }) => r);
const withoutWandbKeys = (rows: any[]) => rows.map(({ _step: _s, _runtime: _r, _timestamp: _t, ...r }) => r);
const unwrapConfig = (text: string) => Object.fromEntries(Object.entries(JSON.parse(text) as Record<string, { value: unknown }>).map(([k, v]) => [k, v.value]));
const readJson = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8'));

/** Everything of `run` arrived at `server`: config, every metrics.jsonl record as a row, the summary, the end. */
function expectDelivered(server: Recorder, run: RunDir, exitcode: number): void {
  const upserts = server.graphql('UpsertBucket');
  const created = upserts.find((u) => u.body.variables.config !== undefined)!;
  expect(unwrapConfig(created.body.variables.config)).to.deep.equal(readJson(run.file('config.json')));
  expect([created.body.variables.project, created.body.variables.entity, created.body.variables.tags, created.body.variables.notes]).to.deep.equal([
    'vaelab-test',
    'test-entity',
    ['contract', 'tiny'],
    'the contract test',
  ]);
  const metrics = withoutTime(run.readMetrics());
  // 4 epochs x 8 steps, a step record every 2 steps: 16 step, 4 epoch and 1 test record
  expect(metrics.map((m) => m.kind).join(',')).to.equal([...Array(4)].map(() => 'step,step,step,step,epoch').join(',') + ',test');
  expect(withoutWandbKeys(server.rows())).to.deep.equal(metrics);
  const summary = readJson(run.file('summary.json'));
  const final = upserts.filter((u) => u.body.variables.summaryMetrics !== undefined);
  expect(final).to.have.length(1);
  const sent = JSON.parse(final[0].body.variables.summaryMetrics);
  expect([sent.status, sent.steps]).to.deep.equal([summary.status, summary.steps]);
  for (const [k, v] of Object.entries(summary.test as Record<string, number>)) expect(sent[k], k).to.equal(v);
  const lastSummaryFile = server.fileStream().filter((r) => r.body.files?.['wandb-summary.json']).pop()!;
  expect(JSON.parse(lastSummaryFile.body.files['wandb-summary.json'].content[0])).to.deep.equal(sent);
  expect(server.fileStream().filter((r) => r.body.complete).map((r) => r.body)).to.deep.equal([{ complete: true, exitcode }]);
  expect(server.received.every((r) => r.auth === `Basic ${Buffer.from(`api:${KEY}`).toString('base64')}` && r.ua === USER_AGENT)).to.equal(true);
}

describe('wandb: the SDK as reference of the wire format @slow', () => {
  it('Should send the same GraphQL documents, headers and file_stream bodies as @wandb/sdk 0.5.1 does', async () => {
    const server = await Recorder.start('ok');
    const events = ['SIGINT', 'SIGTERM', 'beforeExit'];
    const listeners = (event: string) => process.listeners(event as 'SIGINT') as Array<(...a: unknown[]) => void>;
    const before = new Map(events.map((e) => [e, listeners(e)]));
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { wandb } = require('@wandb/sdk') as { wandb: any };
      const log = console.log;
      console.log = () => undefined; // its "View run at ..." line
      try {
        await wandb.init({ project: 'p', name: 'n', config: { a: 1 }, settings: { baseUrl: server.url, apiKey: KEY } });
        wandb.log({ loss: 1 });
        await wandb.finish();
      } finally {
        console.log = log;
      }
      // measured: init leaves a SIGINT, a SIGTERM and a beforeExit handler behind (the reason vaelab does not call it while training)
      for (const [event, had] of before) {
        const added = listeners(event).filter((l) => !had.includes(l));
        expect(added, event).to.have.length(1);
        for (const l of added) process.removeListener(event, l);
      }
      const [viewer] = server.graphql('Viewer');
      const [upsert] = server.graphql('UpsertBucket');
      expect(viewer.body).to.deep.equal({ query: VIEWER, variables: {}, operationName: 'Viewer' });
      expect(upsert.body.query).to.equal(UPSERT_BUCKET);
      expect(Object.keys(upsert.body.variables).sort()).to.deep.equal(['config', 'displayName', 'entity', 'name', 'project']);
      const [history, end] = server.fileStream();
      expect(history.url).to.equal(`/files/test-entity/p/${upsert.body.variables.name}/file_stream`);
      expect(Object.keys(history.body.files).sort()).to.deep.equal(['wandb-history.jsonl', 'wandb-summary.json']);
      expect(history.body.files['wandb-history.jsonl'].offset).to.equal(0);
      expect(Object.keys(JSON.parse(history.body.files['wandb-history.jsonl'].content[0])).sort()).to.deep.equal(['_runtime', '_step', '_timestamp', 'loss']);
      expect(end.body).to.deep.equal({ complete: true, exitcode: 0 });
      expect(server.received.map((r) => [r.ua, r.auth])).to.deep.equal(Array(4).fill([USER_AGENT, `Basic ${Buffer.from(`api:${KEY}`).toString('base64')}`]));
    } finally {
      await server.close();
    }
  });
});

describe('wandb: logging a training run @slow', () => {
  let healthy: Trained;

  it('Should deliver the config, every metrics.jsonl record and the summary to a healthy server, and say nothing', async () => {
    const server = await Recorder.start('ok');
    try {
      healthy = await trainWith(server.url);
      expect(healthy.result.status).to.equal('completed');
      expect(healthy.result.steps).to.equal(32);
      expect(healthy.warnings).to.deep.equal([]);
      expectDelivered(server, healthy.run, 0);
      const box = Outbox.open(healthy.run.dir)!;
      expect([box.settled, box.pending().length, box.state.sent.rows]).to.deep.equal([true, 0, 21]);
      // nothing left: a sync has nothing to send, and says so as bad input
      const n = server.received.length;
      let error: unknown;
      await wandbSync(healthy.run.dir, { env: { WANDB_API_KEY: KEY, WANDB_BASE_URL: server.url } }).catch((e) => (error = e));
      expect(error).to.be.instanceOf(ConfigError);
      expect((error as Error).message).to.match(/^wandb-sync ".*": nothing to send: the server has acknowledged all of the run's W&B data \(last at .*\)$/);
      expect(server.received.length).to.equal(n);
    } finally {
      await server.close();
    }
  });

  for (const fault of ['fail', 'hang', 'refuse'] as const) {
    it(`Should train as fast, warn once and keep everything when the server ${fault === 'fail' ? 'answers HTTP 500' : fault === 'hang' ? 'never answers' : 'refuses connections'}; wandb-sync delivers it exactly once`, async () => {
      expect(healthy, 'the healthy run ran first').to.not.equal(undefined);
      const bad = fault === 'refuse' ? null : await Recorder.start(fault);
      let t: Trained;
      try {
        t = await trainWith(bad ? bad.url : await closedPort());
      } finally {
        await bad?.close();
      }
      expect(t.result.status).to.equal('completed');
      expect(t.result.steps).to.equal(healthy.result.steps);
      expect(t.warnings, t.lines.join('\n')).to.have.length(1);
      const shown = path.relative(process.cwd(), t.run.dir);
      expect(t.warnings[0]).to.match(new RegExp(`^wandb: .*; training goes on without W&B, and what is not sent is kept in ${shown}/wandb: send it with npx vaelab wandb-sync ${shown}$`));
      // a behaviour bound, not a benchmark: the healthy run's time, doubled for a busy machine, plus one request deadline and 2 s
      expect(t.seconds, `${fault}: ${t.seconds} s against ${healthy.seconds} s healthy`).to.be.below(2 * healthy.seconds + TIMEOUT_S + 2);
      // nothing reached a server that never took a request: every row is still pending
      const box = Outbox.open(t.run.dir)!;
      expect(box.pending().length).to.equal(t.run.readMetrics().length);

      const good = await Recorder.start('ok');
      try {
        const results = await wandbSync(t.run.dir, { env: { WANDB_API_KEY: KEY, WANDB_BASE_URL: good.url } });
        expect(results.map((r) => r.report)).to.deep.equal([{ run: true, rows: 21, summary: true, complete: true }]);
        expectDelivered(good, t.run, 0);
        const n = good.received.length;
        let error: unknown;
        await wandbSync(t.run.dir, { env: { WANDB_API_KEY: KEY, WANDB_BASE_URL: good.url } }).catch((e) => (error = e));
        expect((error as Error).message).to.contain('nothing to send');
        expect(good.received.length, 'a second sync sends nothing').to.equal(n);
      } finally {
        await good.close();
      }
    });
  }
});

/** Sets environment variables for the duration of `f` (trainStages and runTrial read W&B's from the process). */
async function withEnv<T>(vars: Record<string, string>, f: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return await f();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

/** The rows of each W&B run the server got, by run id. */
function rowsByRun(server: Recorder): Map<string, any[]> {
  const out = new Map<string, any[]>();
  for (const r of server.fileStream()) {
    const h = r.body.files?.['wandb-history.jsonl'];
    if (!h) continue;
    const id = r.url.split('/')[4];
    const rows = out.get(id) ?? [];
    h.content.forEach((line: string, i: number) => (rows[h.offset + i] = JSON.parse(line)));
    out.set(id, rows);
  }
  return out;
}

describe('wandb: staged runs and sweep trials @slow', () => {
  it('Should log each stage of a staged run as its own W&B run, grouped by the staged run id', async () => {
    const server = await Recorder.start('ok');
    try {
      const reg = builtins();
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      reg.addAll(require('./fixtures/learned-prior').plugins, 'test');
      const raw = { ...tinyRaw(), prior: { use: 'learned-loc' }, stages: [{ name: 'vae', train: { epochs: 1 } }, { name: 'prior', objective: { use: 'prior-fit' }, train: { epochs: 1, trainable: ['prior/'] } }] };
      const run = RunDir.create(root, 'staged', 0);
      run.writeConfig(raw);
      const result = await withEnv({ WANDB_MODE: 'online', WANDB_API_KEY: KEY, WANDB_BASE_URL: server.url }, async () => {
        const r = await trainStages(planStages(raw, reg), { run, registry: reg, backend: 'cpu', log: () => undefined, handleSignals: false });
        await settleWandb();
        return r;
      });
      expect(result.status).to.equal('completed');
      const created = server.graphql('UpsertBucket').filter((u) => u.body.variables.config !== undefined);
      expect(created.map((u) => u.body.variables.groupName)).to.deep.equal([run.id, run.id]);
      const byRun = rowsByRun(server);
      result.stages.forEach((st, i) => {
        const stageRun = RunDir.open(path.join(run.dir, st.dir));
        expect(withoutWandbKeys(byRun.get(created[i].body.variables.name)!), st.name).to.deep.equal(withoutTime(stageRun.readMetrics()));
      });
      expect(server.fileStream().filter((r) => r.body.complete)).to.have.length(2);
    } finally {
      await server.close();
    }
  });

  it('Should log a sweep trial as its own W&B run in the group of the sweep', async () => {
    const server = await Recorder.start('ok');
    try {
      const sweepDir = path.join(root, 'sweeps', 'tiny-grid');
      fs.mkdirSync(sweepDir, { recursive: true });
      fs.writeFileSync(path.join(sweepDir, 'state.json'), JSON.stringify({ name: 'tiny-grid' }));
      const dir = path.join(sweepDir, 'trials', '0000');
      const message = await withEnv({ WANDB_MODE: 'online', WANDB_API_KEY: KEY, WANDB_BASE_URL: server.url }, () =>
        runTrial(
          { number: 0, dir, raw: tinyRaw(), experimentFile: path.join(root, 'tiny.yaml'), resume: false, metric: { name: 'test/loss', goal: 'minimize' }, rule: { use: 'none' }, reports: [] },
          builtins(),
          { backend: 'cpu', control: { stop: false }, send: () => undefined, reports: new Map([[0, { number: 0, state: 'running', values: new Map() }]]) },
        ),
      );
      expect(message.type).to.equal('done');
      const [created] = server.graphql('UpsertBucket').filter((u) => u.body.variables.config !== undefined);
      expect([created.body.variables.groupName, created.body.variables.displayName]).to.deep.equal(['tiny-grid', 'tiny-grid/0000']);
      expect(withoutWandbKeys(server.rows())).to.deep.equal(withoutTime(RunDir.open(dir).readMetrics()));
    } finally {
      await server.close();
    }
  });
});

describe('wandb: the test suite', () => {
  it('Should keep W&B off in tests that do not turn it on, whatever WANDB_API_KEY says (test/setup.ts)', async () => {
    expect(process.env.WANDB_MODE).to.equal('disabled');
    const session = openSession(experimentFromObject(tinyRaw(), builtins()));
    try {
      const run = RunDir.create(root, 'suite', 0);
      // a developer's key in the environment, and even --wandb: nothing is attached
      const callbacks = await withEnv({ WANDB_API_KEY: KEY }, async () => [...wandbCallbacks(session.config, run), ...wandbCallbacks(session.config, run, { flag: true })]);
      expect(callbacks).to.deep.equal([]);
    } finally {
      closeSession(session);
    }
  });
});

describe('wandb: bad input', () => {
  it('Should refuse a project name W&B cannot take, naming the key and the value', () => {
    const raw = tinyRaw();
    (raw.tracking as any).wandb.project = 'runs/tiny';
    const session = openSession(experimentFromObject(raw, builtins()));
    try {
      const run = RunDir.create(root, 'bad', 0);
      expect(() => wandbCallbacks(session.config, run, { env: {} })).to.throw(ConfigError, /^tracking\.wandb\.project: must not contain any of \/ \\ # \? % :; got "runs\/tiny"$/);
    } finally {
      closeSession(session);
    }
  });

  it('Should refuse to sync a directory that is not a run, and a run without W&B data', async () => {
    const notRun = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-wandb-not-'));
    let error: unknown;
    await wandbSync(notRun, { env: {} }).catch((e) => (error = e));
    expect((error as Error).message).to.equal(`wandb-sync ${JSON.stringify(notRun)}: not a vaelab run directory (no config.json)`);
    const run = RunDir.create(root, 'no-wandb', 0);
    run.writeConfig({ name: 'no-wandb' });
    await wandbSync(run.dir, { env: {} }).catch((e) => (error = e));
    expect(error).to.be.instanceOf(ConfigError);
    expect((error as Error).message).to.equal(
      `wandb-sync ${JSON.stringify(run.dir)}: the run has no W&B data (no wandb/state.json): it was trained with W&B off (tracking.wandb.enabled, --wandb, WANDB_API_KEY)`,
    );
  });

  it('Should exit 2 with one line, no stack trace, for a bad tracking.wandb value and for wandb-sync of a non-run @slow', () => {
    const env = { ...process.env, VAELAB_BACKEND: 'cpu', WANDB_MODE: 'online', WANDB_API_KEY: '', WANDB_BASE_URL: 'http://127.0.0.1:9' };
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-wandb-cli-'));
    const bad = spawnSync(process.execPath, [BIN, 'train', TINY, '--wandb', '--out', out, '--set', 'tracking.wandb.tags=["a-tag-that-is-far-too-long-for-w-and-b-which-takes-sixty-four-characters"]'], { env, encoding: 'utf8', timeout: 120000 });
    expect(bad.status, bad.stderr).to.equal(2);
    expect(bad.stderr.trim()).to.equal(
      `${TINY}: tracking.wandb.tags: each tag must have at most 64 characters (W&B's limit); got "a-tag-that-is-far-too-long-for-w-and-b-which-takes-sixty-four-characters" (72 characters)`,
    );
    expect(fs.readdirSync(out), 'no run directory').to.deep.equal([]);
    const sync = spawnSync(process.execPath, [BIN, 'wandb-sync', out], { env, encoding: 'utf8', timeout: 120000 });
    expect(sync.status).to.equal(2);
    expect(sync.stderr.trim()).to.equal(`wandb-sync ${JSON.stringify(out)}: not a vaelab run directory (no config.json)`);
  });
});

describe('wandb: Ctrl-C with a server that never answers @slow', () => {
  it('Should stop `vaelab train --wandb` promptly on SIGINT: status interrupted, exit code 130, one warning', async () => {
    const server = await Recorder.start('hang');
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-wandb-sigint-'));
    try {
      const env = { ...process.env, VAELAB_BACKEND: 'cpu', WANDB_MODE: 'online', WANDB_API_KEY: KEY, WANDB_BASE_URL: server.url };
      // the default request deadline (10 s): the interrupt must not wait for it
      const child = spawn(process.execPath, [BIN, 'train', TINY, '--wandb', '--out', out, '--set', 'train.progress=plain', '--set', 'train.logEvery=1', '--set', 'train.syncEvery=1'], { env });
      let err = '';
      let sentAt = 0;
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (!sentAt && /step 5 \|/.test(err)) {
          sentAt = Date.now();
          child.kill('SIGINT');
        }
      });
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      const seconds = (Date.now() - sentAt) / 1000;
      expect(code, err).to.equal(130);
      expect(server.received.length, 'the server got requests and answered none').to.be.above(0);
      // the interrupt checkpoint, the summary, and at most 2 s for the last sends
      expect(seconds, err).to.be.below(6);
      expect(err.split('\n').filter((l) => l.startsWith('wandb:')), err).to.have.length(1);
      const runDir = path.join(out, 'tiny', fs.readdirSync(path.join(out, 'tiny'))[0]);
      expect(readJson(path.join(runDir, 'summary.json')).status).to.equal('interrupted');
      expect(readJson(path.join(runDir, 'wandb', 'state.json')).exitCode).to.equal(130);
    } finally {
      await server.close();
    }
  });
});
