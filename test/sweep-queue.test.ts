/**
 * Distributed sweeps on a real redis-server (the Debian package; .ci/run installs it) started on
 * a loopback port for these tests and stopped after: an unreachable Redis refused in one line
 * within a bounded time, and a sweep run by two `vaelab worker --queue` processes, one of them
 * killed with SIGKILL mid-trial, whose trial another worker takes over from its checkpoint.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError } from '../core/errors';
import { QueuePool, connectRedis } from '../core/sweep/queue';
import { runSweep } from '../core/sweep/runner';
import { loadSweepSpec } from '../core/sweep/spec';
import { readState, specHash, type SweepState } from '../core/sweep/state';
import { builtins } from './kits/build';

const REDIS = '/usr/bin/redis-server';
const BIN = path.join(__dirname, '..', 'bin', 'vaelab.js');
const TINY = path.join(__dirname, 'fixtures', 'tiny.yaml');

/** A port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function until(dir: string, ok: (s: SweepState) => boolean, what: string, ms = 120000): Promise<SweepState> {
  const t0 = Date.now();
  for (;;) {
    const s = fs.existsSync(path.join(dir, 'state.json')) ? readState(dir) : undefined;
    if (s && ok(s)) return s;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

(fs.existsSync(REDIS) ? describe : describe.skip)('sweep on a Redis queue @slow', function () {
  this.timeout(240000);
  let redis: ChildProcess;
  let url: string;
  const workers: ChildProcess[] = [];

  before(async () => {
    const port = await freePort();
    url = `redis://127.0.0.1:${port}`;
    redis = spawn(REDIS, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      redis.stdout!.on('data', (b) => {
        out += b;
        if (out.includes('Ready to accept connections')) resolve();
      });
      redis.on('exit', (code) => reject(new Error(`redis-server exited with code ${code}: ${out}`)));
    });
  });

  after(async () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    redis.kill('SIGTERM');
    await new Promise((r) => redis.once('exit', r));
  });

  it('Should refuse an unreachable Redis in one line naming the URL, within the connect timeout', async () => {
    const port = await freePort();
    const t0 = Date.now();
    let msg = '';
    try {
      (await connectRedis(`redis://127.0.0.1:${port}`)).disconnect();
    } catch (e) {
      expect(e).to.be.instanceOf(ConfigError);
      msg = (e as Error).message;
    }
    expect(msg).to.equal(`--queue redis://127.0.0.1:${port}: cannot reach Redis (connect ECONNREFUSED 127.0.0.1:${port}); is redis-server running there?`);
    expect(Date.now() - t0).to.be.below(6000);
  });

  it('Should run a sweep on two queue workers and hand the trial of a worker killed mid-trial to the other, which resumes it from its checkpoint', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-queue-'));
    const out = path.join(d, 'out');
    const f = path.join(d, 'q.yaml');
    fs.writeFileSync(
      f,
      `experiment: ${TINY}
set: { train.epochs: 3, data.synthetic.size: 256, eval.iwSamples: 0, eval.images: false, train.progress: none, train.keepCheckpoints: 3 }
method: grid
parameters:
  latent.gaussian.dim: { values: [2, 3, 4] }
budget: { trials: 3, concurrent: 2 }
retries: 1
dir: ${out}
`,
    );
    for (let i = 0; i < 2; i++) {
      const w = spawn(process.execPath, [BIN, 'worker', '--queue', url, '--stall-seconds', '2'], { env: { ...process.env, VAELAB_BACKEND: 'cpu' }, stdio: ['ignore', 'ignore', 'pipe'] });
      workers.push(w);
    }
    const registry = builtins();
    const spec = loadSweepSpec(f, registry);
    const client = await connectRedis(url);
    const lines: string[] = [];
    const sweep = runSweep(spec, registry, {
      log: (l) => lines.push(l),
      handleSignals: false,
      pool: (listener, state) => new QueuePool(client, url, `${spec.name}-${specHash(spec)}`, 2, listener, state),
    });
    // A trial that has finished an epoch on a worker: kill that worker.
    const s1 = await until(out, (s) => s.trials.some((t) => t.status === 'running' && t.intermediate[1] !== undefined && t.worker !== undefined), 'a trial after epoch 1');
    const victim = s1.trials.find((t) => t.status === 'running' && t.intermediate[1] !== undefined)!;
    const killedAt = Date.now();
    process.kill(victim.worker!, 'SIGKILL');
    const s2 = await until(out, (s) => s.trials[victim.number].attempts === 2, 'the trial taken over');
    const takeover = (Date.now() - killedAt) / 1000;
    expect(s2.trials[victim.number].failures[0].reason).to.match(new RegExp(`^worker [^ ]+:${victim.worker} lost during the trial \\(its job stalled\\), after epoch \\d; taken over by [^ ]+:\\d+$`));
    expect((await sweep).status).to.equal('completed');
    const s3 = readState(out)!;
    expect(s3.trials.map((t) => t.status)).to.deep.equal(['completed', 'completed', 'completed']);
    const log = fs.readFileSync(path.join(out, victim.dir, 'train.log'), 'utf8');
    expect(log).to.match(/resumed from .*epoch-000\d\.ckpt/);
    // The other trials ran once.
    for (const t of s3.trials) if (t.number !== victim.number) expect(t.attempts).to.equal(1);
    console.log(`      (killed worker's trial taken over after ${takeover.toFixed(1)} s)`);
  });
});
