/**
 * The conformance kit: the same checks over any plugin, given experiment slot overrides that
 * select it. Checks: the model builds; every objective term is [B] and finite; the same seed
 * gives identical terms; after a warm-up call, a pass leaks no tensors; gradients of the loss
 * reach every trainable variable, are finite and not all zero.
 */
import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs-core';
import type { DataInfo } from '../../core/contracts';
import { Rng } from '../../core/rng';
import { trainableVariables } from '../../core/train/trainer';
import { buildParts, greyBatch, lossGrads } from './build';

/** One configuration to check: a title, slot overrides, and the data it runs on. */
export interface ConformanceCase {
  title: string;
  over: Record<string, unknown>;
  info: DataInfo;
}

/** Registers the kit's `it` blocks for every case. */
export function describeConformance(cases: ConformanceCase[]): void {
  for (const c of cases) {
    describe(`conformance: ${c.title}`, () => {
      const terms = (parts: ReturnType<typeof buildParts>, batch: ReturnType<typeof greyBatch>, seed: number) =>
        tf.tidy(() => {
          const t = parts.objective.terms(batch, { training: true, rng: Rng.derive(seed, 'kit'), step: 0 });
          const out: Record<string, number[]> = {};
          for (const [k, v] of Object.entries(t)) out[k] = Array.from(v.dataSync());
          const shapes = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.shape]));
          return { out, shapes } as unknown as tf.TensorContainer;
        }) as unknown as { out: Record<string, number[]>; shapes: Record<string, number[]> };

      it('Should give [B]-shaped, finite terms that a fixed seed reproduces exactly', () => {
        const parts = buildParts(c.over, c.info);
        const batch = greyBatch(5, c.info);
        const a = terms(parts, batch, 7);
        const b = terms(parts, batch, 7);
        const other = terms(parts, batch, 8);
        expect(a.out).to.have.property('loss');
        for (const [k, shape] of Object.entries(a.shapes)) expect(shape, k).to.deep.equal([5]);
        for (const [k, v] of Object.entries(a.out)) expect(v.every(Number.isFinite), k).to.equal(true);
        expect(b.out).to.deep.equal(a.out);
        expect(other.out.loss).to.not.deep.equal(a.out.loss);
      });

      it('Should leak no tensors in a training pass after a warm-up call', () => {
        const parts = buildParts(c.over, c.info);
        const batch = greyBatch(3, c.info);
        lossGrads(parts, batch);
        const before = tf.memory().numTensors;
        lossGrads(parts, batch);
        expect(tf.memory().numTensors).to.equal(before);
      });

      it('Should send finite, non-zero gradients to every trainable variable', () => {
        const parts = buildParts(c.over, c.info);
        const vars = trainableVariables(parts.model, parts.objective);
        const grads = lossGrads(parts, greyBatch(6, c.info));
        expect([...grads.keys()].sort()).to.deep.equal([...vars.keys()].sort());
        for (const [k, g] of grads) {
          expect(g.every(Number.isFinite), `${k} finite`).to.equal(true);
          expect(g.some((v) => v !== 0), `${k} non-zero`).to.equal(true);
        }
      });
    });
  }
}
