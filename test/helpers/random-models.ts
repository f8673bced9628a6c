/**
 * Random models for property tests: random layer sequences and DAGs over the
 * layer set (dense with and without bias, grouped and strided conv2d with
 * 'same' and 'valid' padding, depthwise and grouped transposed convs, max
 * pooling, batchnorm before and after linear layers and alone, activations,
 * dropout, residual adds that give producers two consumers, layers applied
 * twice with shared weights), and random weights for them.
 */
import fc from 'fast-check';
import { ModelcError } from '../../src/diagnostics/diagnostic.js';
import type { Graph } from '../../src/ir/graph.js';
import { materialize } from '../../src/ops/init.js';
import { lowerJson, type JsonSpec } from './graphs.js';
import { rng } from './tensors.js';

/** A layer entry of a JSON spec. */
export type Layer = Record<string, unknown>;

/** One step of a random model, given the current example shape; returns the layers it adds. */
export const imageStep = (c: number): fc.Arbitrary<Layer[]> =>
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

export const vectorStep: fc.Arbitrary<Layer[]> = fc
  .record({ units: fc.integer({ min: 1, max: 5 }), bias: fc.boolean(), act: fc.constantFrom(undefined, 'relu', 'tanh') })
  .map(({ units, bias, act }) => [{ type: 'dense', units, use_bias: bias, ...(act ? { activation: act } : {}) }]);

export const commonStep: fc.Arbitrary<Layer[]> = fc.oneof<fc.Arbitrary<Layer[]>[]>(
  fc.constant<Layer[]>([{ type: 'batchnorm' }]),
  fc.constant<Layer[]>([{ type: 'batchnorm', center: false }]),
  fc.constant<Layer[]>([{ type: 'batchnorm', scale: false }]),
  fc.constantFrom<Layer[]>(...['relu', 'tanh', 'sigmoid', 'elu', 'swish', 'gelu', 'relu6', 'softplus', 'hard_sigmoid', 'selu', 'linear'].map((t) => [{ type: t }])),
  fc.constant<Layer[]>([{ type: 'leaky_relu', alpha: 0.2 }]),
  fc.constant<Layer[]>([{ type: 'dropout', rate: 0.3 }]),
);

/**
 * A random model spec (one input `x`, layers named `l0`, `l1`, ...): a chain
 * with residual branches and a reused dense layer, and a seed for its weights.
 * Some sequences do not fit their shapes (a kernel larger than the image):
 * those fail to lower with a `shape` diagnostic (see `lowerRandomModel`).
 */
export const randomModel = fc
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

/** The graph of a random spec, or `undefined` when its layer sequence does not fit its shapes. */
export function lowerRandomModel(spec: JsonSpec): Graph | undefined {
  try {
    return lowerJson(spec).graph;
  } catch (err) {
    if (err instanceof ModelcError && err.diagnostics[0]?.code === 'shape') return undefined;
    throw err;
  }
}

/**
 * The graph with random weights of realistic scale: kernels from their Keras
 * initializers (Glorot, so values stay of order 1 through deep models), then
 * biases, batchnorm shifts and means in [-0.5, 0.5], gamma of either sign in
 * 0.5..1.5 and moving variances in [0.5, 2] (so no batchnorm is the identity
 * and no bias is zero).
 */
export function randomParams(graph: Graph, seed: number): Graph {
  const next = rng(seed);
  const uniform = (lo: number, hi: number) => lo + (hi - lo) * next();
  const sampled = materialize(graph, seed);
  return {
    ...sampled,
    params: sampled.params.map((p) => {
      const role = p.name.slice(p.name.lastIndexOf('/') + 1);
      const fill = (f: () => number) => ({ ...p, value: Float32Array.from(p.value!, f) });
      switch (role) {
        case 'bias':
        case 'beta':
        case 'moving_mean':
          return fill(() => uniform(-0.5, 0.5));
        case 'gamma':
          return fill(() => (next() < 0.5 ? -1 : 1) * uniform(0.5, 1.5));
        case 'moving_variance':
          return fill(() => uniform(0.5, 2));
        default:
          return p;
      }
    }),
  };
}
