/**
 * Keys of earlier versions: a run directory's saved config is read in today's keys (so old runs
 * can still be evaluated, sampled and resumed), and an experiment file using an old key is told
 * the new one.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { experimentFromObject } from '../core/config/experiment';
import { ConfigError } from '../core/errors';
import { RunDir } from '../core/tracking/run-dir';
import { builtins, experimentObject } from './kits/build';
import { expectThrowExact } from './data/helpers';

describe('config keys of earlier versions', () => {
  it('Should read a saved data.conditionOnLabels as data.condition.use, in the base and in every stage', () => {
    const run = RunDir.create(fs.mkdtempSync(path.join(os.tmpdir(), 'vaelab-migrate-')), 'old', 0);
    const saved = experimentObject({
      data: { use: 'synthetic', conditionOnLabels: true },
      stages: [{ name: 'a' }, { name: 'b', data: { conditionOnLabels: false } }],
    });
    run.writeConfig(saved);
    const cfg = run.readConfig() as { data: Record<string, unknown>; stages: Array<{ data?: Record<string, unknown> }> };
    expect(cfg.data).to.deep.equal({ use: 'synthetic', condition: { use: 'labels' } });
    expect(cfg.stages[1].data).to.deep.equal({ condition: { use: 'none' } });
    // and the migrated base validates as today's config
    const { stages: _s, ...base } = cfg;
    expect(experimentFromObject(base, builtins()).config.data.condition.use).to.equal('labels');
  });

  it('Should tell an experiment file that uses the old key what replaced it', () => {
    expectThrowExact(
      () => experimentFromObject(experimentObject({ data: { use: 'synthetic', conditionOnLabels: true } }), builtins()),
      ConfigError,
      'data.conditionOnLabels: renamed; use data.condition (conditionOnLabels: true is condition: { use: labels })',
    );
  });
});
