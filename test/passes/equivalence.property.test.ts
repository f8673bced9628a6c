/**
 * The central property of the optimizer: on random valid models with random
 * weights, the -O pipeline computes the same function as the original graph
 * (reference interpreter, within 1e-5 relative), and every fold it makes is
 * proved exactly at zero and at basis inputs.
 *
 * Models: random layer sequences and DAGs over the layer set (dense with and
 * without bias, grouped and strided conv2d with 'same' and 'valid' padding,
 * depthwise and grouped transposed convs, batchnorm before and after linear
 * layers and alone, activations, dropout, residual adds that give producers
 * two consumers, layers applied twice with shared weights). Batchnorm
 * statistics include variances down to 1e-10 (with epsilon down to 1e-12),
 * zero and negative gamma, and large means.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Graph, ParamDecl } from '../../src/ir/graph.js';
import { materialize } from '../../src/ops/init.js';
import { checkFoldExactly, compareOnRandomInputs, roundingNoise } from '../../src/passes/equivalence.js';
import { createPassManager, defaultPipeline } from '../../src/passes/pipeline.js';
import { ExplainLog } from '../../src/rewrite/explain.js';
import { lowerJson } from '../helpers/graphs.js';
import { randomModel } from '../helpers/random-models.js';

/** Batchnorm statistics that stress the folds. */
const stats = fc.record({
  variance: fc.constantFrom(1e-10, 1e-4, 0.3, 1, 40),
  epsilon: fc.constantFrom(1e-12, 1e-5, 0.001),
  gamma: fc.constantFrom(0, -1.5, 0.5, 1, 3),
  mean: fc.constantFrom(-50, 0, 0.7, 100),
  beta: fc.constantFrom(-2, 0, 1),
});

function stress(g: Graph, s: { variance: number; epsilon: number; gamma: number; mean: number; beta: number }, seed: number): Graph {
  const jitter = (i: number) => 1 + 0.25 * Math.sin(seed + i);
  const fill = (p: ParamDecl, v: number) => ({ ...p, value: Float32Array.from(p.value!, (_, i) => v * jitter(i)) });
  return {
    ...g,
    params: g.params.map((p) => {
      if (p.name.endsWith('/moving_variance')) return fill(p, s.variance);
      if (p.name.endsWith('/moving_mean')) return fill(p, s.mean);
      if (p.name.endsWith('/gamma')) return fill(p, s.gamma);
      if (p.name.endsWith('/beta')) return fill(p, s.beta);
      return p;
    }),
    nodes: g.nodes.map((n) => (n.op === 'batchnorm' ? { ...n, attrs: { ...n.attrs, epsilon: s.epsilon } } : n)),
  };
}

describe('optimized == unoptimized on random models', () => {
  it('the -O pipeline preserves the function, and every fold is exact', () => {
    let lowered = 0;
    const seen = { after: 0, before: 0, affine: 0, refused: 0, fused: 0, shared: 0 };
    fc.assert(
      fc.property(randomModel, stats, ({ spec: s, seed }, st) => {
        let graph: Graph;
        try {
          graph = lowerJson(s).graph;
        } catch (err) {
          // A shape the random sequence could not take (e.g. a kernel larger than the image).
          if ((err as { diagnostics?: { code: string }[] }).diagnostics?.[0]?.code !== 'shape') throw err;
          return;
        }
        lowered++;
        const original = stress(materialize(graph, seed), st, seed);
        const explain = new ExplainLog();
        let before: Graph = original;
        let folded: Graph = original;
        const optimized = createPassManager().run(original, defaultPipeline, {
          explain,
          after: (pass, g) => {
            if (pass.id === 'fold-bn') folded = g;
            else if (folded === original) before = g;
          },
        });
        // A dropout stays only when removing it would rename a graph output, and the log says so.
        for (const d of optimized.nodes.filter((n) => n.op === 'dropout')) expect(explain.format()).toContain(`${d.result} not removed`);
        for (const d of compareOnRandomInputs(original, optimized, { batch: 2, seed })) {
          if (d.maxRel <= 1e-5) continue;
          // Above 1e-5 only where float32 rounding of the folded weights moves the output that much.
          const floor = 4 * roundingNoise(optimized, { batch: 2, seed }).get(optimized.outputs[original.outputs.indexOf(d.name)]!)!;
          expect(d.maxAbs, `${d.name}: maxRel ${d.maxRel}, rounding floor ${floor}\n${explain.format()}`).toBeLessThanOrEqual(floor);
        }
        const log = explain.format();
        seen.after += explain.entries.filter((e) => e.values?.['fold'] === 'after').length;
        seen.before += explain.entries.filter((e) => e.values?.['fold'] === 'before').length;
        seen.affine += (log.match(/became affine/g) ?? []).length;
        seen.refused += (log.match(/skipped: \S+ not folded/g) ?? []).length;
        seen.fused += (log.match(/fused into/g) ?? []).length;
        seen.shared += (log.match(/weights are shared/g) ?? []).length;
        for (const e of explain.entries.filter((x) => x.values?.['fold'])) {
          const d = checkFoldExactly(before, folded, e);
          if (d) expect(d.maxRel, e.message).toBeLessThanOrEqual(1e-5);
        }
      }),
      { numRuns: 300 },
    );
    expect(lowered).toBeGreaterThan(120);
    // The runs exercised every kind of rewrite and refusal.
    for (const [kind, count] of Object.entries(seen)) expect(count, kind).toBeGreaterThan(3);
  });

  it('a cancelling model (CI counterexample): over 1e-5 relative only by float32 rounding, and a 1e-5 error in a folded weight is caught', () => {
    const spec = {
      name: 't',
      inputs: [{ name: 'x', shape: [4] }],
      layers: [
        { type: 'dense', units: 3, use_bias: false, name: 'l0' },
        { type: 'batchnorm', name: 'l1', inputs: ['l0'] },
        { type: 'add', name: 'l2', inputs: ['l0', 'l1'] },
        { type: 'dense', units: 1, use_bias: false, name: 'l3' },
        { type: 'relu', name: 'l4' },
      ],
    };
    const seed = 1611382963;
    const original = stress(materialize(lowerJson(spec).graph, seed), { variance: 1e-4, epsilon: 1e-12, gamma: 0.5, mean: 0.7, beta: -2 }, seed);
    const optimized = createPassManager().run(original, defaultPipeline);
    const [d] = compareOnRandomInputs(original, optimized, { batch: 2, seed });
    const floor = 4 * roundingNoise(optimized, { batch: 2, seed }).get('l4')!;
    expect(d!.maxRel).toBeGreaterThan(1e-5);
    expect(d!.maxAbs).toBeLessThanOrEqual(floor);
    const wrong = { ...optimized, params: optimized.params.map((p) => (p.name === 'l1/scale' ? { ...p, value: p.value!.map((v) => v * (1 + 1e-5)) } : p)) };
    expect(compareOnRandomInputs(original, wrong, { batch: 2, seed })[0]!.maxAbs).toBeGreaterThan(floor);
  });
});
