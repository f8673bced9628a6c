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
import { checkFoldExactly, compareOnRandomInputs } from '../../src/passes/equivalence.js';
import { createPassManager, defaultPipeline } from '../../src/passes/pipeline.js';
import { ExplainLog } from '../../src/rewrite/explain.js';
import { lowerJson } from '../helpers/graphs.js';

type Layer = Record<string, unknown>;

/** One step of a random model, given the current example shape; returns the layers it adds. */
const imageStep = (c: number): fc.Arbitrary<Layer[]> =>
  fc.oneof(
    fc.record({ filters: fc.integer({ min: 1, max: 4 }), k: fc.integer({ min: 1, max: 3 }), s: fc.integer({ min: 1, max: 2 }), same: fc.boolean(), bias: fc.boolean(), grouped: fc.boolean() }).map(({ filters, k, s, same, bias, grouped }) => {
      const groups = grouped && c % 2 === 0 ? 2 : 1;
      return [{ type: 'conv2d', filters: filters * groups, kernel_size: k, strides: s, padding: same ? 'same' : 'valid', groups, use_bias: bias }];
    }),
    fc.record({ k: fc.integer({ min: 1, max: 3 }), m: fc.integer({ min: 1, max: 2 }), same: fc.boolean(), bias: fc.boolean() }).map(({ k, m, same, bias }) => [
      { type: 'depthwise_conv2d', kernel_size: k, depth_multiplier: m, padding: same ? 'same' : 'valid', use_bias: bias },
    ]),
    fc.record({ filters: fc.integer({ min: 1, max: 3 }), k: fc.integer({ min: 1, max: 3 }), s: fc.integer({ min: 1, max: 2 }), same: fc.boolean(), grouped: fc.boolean() }).map(({ filters, k, s, same, grouped }) => {
      const groups = grouped && c % 2 === 0 ? 2 : 1;
      return [{ type: 'conv2d_transpose', filters: filters * groups, kernel_size: k, strides: s, padding: same ? 'same' : 'valid', groups }];
    }),
    fc.constant<Layer[]>([{ type: 'max_pool2d', pool_size: 2, padding: 'same' }]),
  );

const vectorStep: fc.Arbitrary<Layer[]> = fc
  .record({ units: fc.integer({ min: 1, max: 5 }), bias: fc.boolean(), act: fc.constantFrom(undefined, 'relu', 'tanh') })
  .map(({ units, bias, act }) => [{ type: 'dense', units, use_bias: bias, ...(act ? { activation: act } : {}) }]);

const commonStep: fc.Arbitrary<Layer[]> = fc.oneof<fc.Arbitrary<Layer[]>[]>(
  fc.constant<Layer[]>([{ type: 'batchnorm' }]),
  fc.constant<Layer[]>([{ type: 'batchnorm', center: false }]),
  fc.constant<Layer[]>([{ type: 'batchnorm', scale: false }]),
  fc.constantFrom<Layer[]>(...['relu', 'tanh', 'sigmoid', 'elu', 'swish', 'gelu', 'relu6', 'softplus', 'hard_sigmoid', 'selu', 'linear'].map((t) => [{ type: t }])),
  fc.constant<Layer[]>([{ type: 'leaky_relu', alpha: 0.2 }]),
  fc.constant<Layer[]>([{ type: 'dropout', rate: 0.3 }]),
);

/** A random model spec: a chain with residual branches and a reused dense layer. */
const spec = fc
  .record({
    image: fc.boolean(),
    hw: fc.integer({ min: 3, max: 6 }),
    c: fc.integer({ min: 1, max: 4 }),
    steps: fc.array(fc.tuple(fc.nat(9), fc.nat()), { minLength: 1, maxLength: 7 }),
    seed: fc.nat(),
  })
  .chain(({ image, hw, c, steps, seed }) => {
    // Steps are drawn as indices so that the choice can depend on the evolving shape.
    const picks = steps.map(([kind]) => kind);
    return fc.tuple(fc.constant({ image, hw, c, seed }), fc.constant(picks), fc.array(fc.oneof(imageStep(2), vectorStep, commonStep), { minLength: picks.length, maxLength: picks.length }), fc.array(imageStep(c), { minLength: 1, maxLength: 1 }));
  })
  .map(([{ image, hw, c, seed }, picks, drawn, first]) => {
    const layers: Layer[] = [];
    let n = 0;
    const name = () => `l${n++}`;
    let isImage = image;
    if (isImage) layers.push({ ...first[0]![0]!, name: name() });
    picks.forEach((kind, i) => {
      const candidate = drawn[i]!;
      const prev = layers.length > 0 ? (layers[layers.length - 1]!['name'] as string) : 'x';
      if (kind === 0) {
        // A residual branch: prev feeds a batchnorm and the add (two consumers).
        const bn = name();
        layers.push({ type: 'batchnorm', name: bn, inputs: [prev] }, { type: 'add', name: name(), inputs: [prev, bn] });
      } else if (kind === 1 && isImage) {
        layers.push({ type: 'flatten', name: name() });
        isImage = false;
      } else if (kind === 2 && !isImage) {
        // The same dense layer applied twice (shared weights): units must equal its input size.
        const d = name();
        layers.push({ type: 'dense', units: 3, name: d, inputs: [prev] }, { type: 'dense', units: 3, name: name() }, { reuse: d, name: name() }, { type: 'batchnorm', name: name() });
      } else {
        const t = candidate[0]!['type'] as string;
        const imageOnly = ['conv2d', 'depthwise_conv2d', 'conv2d_transpose', 'max_pool2d'].includes(t);
        if (imageOnly && !isImage) return;
        for (const l of candidate) layers.push({ ...l, name: name() });
      }
    });
    if (layers.length === 0) layers.push({ type: 'batchnorm', name: name() });
    return { spec: { name: 't', inputs: [{ name: 'x', shape: image ? [hw, hw, c] : [hw] }], layers }, seed };
  });

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
      fc.property(spec, stats, ({ spec: s, seed }, st) => {
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
          expect(d.maxRel, `${d.name}\n${explain.format()}`).toBeLessThanOrEqual(1e-5);
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
});
