/**
 * insertBatchNorm (src/compile/insert-bn.ts): a batchnorm after each chosen
 * dense/conv layer, before its activation, with statistics from calibration
 * data, leaves the function unchanged: in inference mode (reference
 * interpreter, float64), in training mode on the calibration batch, and once
 * compiled with the default passes, which fold every new batchnorm back.
 * Random weights and off-centre inputs, so that every mean and variance is
 * far from 0 and 1.
 */
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile/index.js';
import { batchNormSites, channelStatistics, insertBatchNorm, type InsertBatchNormResult } from '../../src/compile/insert-bn.js';
import { ModelcError } from '../../src/diagnostics/diagnostic.js';
import { SourceFile } from '../../src/diagnostics/source.js';
import { printDsl } from '../../src/frontend/dsl/print.js';
import { lowerLoaded, parseSpecSource } from '../../src/frontend/load.js';
import type { ModelSpec } from '../../src/frontend/spec.js';
import type { Graph } from '../../src/ir/graph.js';
import { interpret, interpretAll } from '../../src/interp/interpret.js';
import { fromF32, type Tensor } from '../../src/ir/tensor.js';
import { exampleShape } from '../../src/ir/types.js';
import { importModule } from '../helpers/generated.js';
import { expectClose, rng, withRandomParams } from '../helpers/tensors.js';

interface Model {
  spec: ModelSpec;
  graph: Graph;
}

/** A DSL model with random weights (seeded). */
function model(source: string, seed = 1): Model {
  const loaded = parseSpecSource(new SourceFile('m.nn', source));
  return { spec: loaded.spec, graph: withRandomParams(lowerLoaded(loaded).graph, seed) };
}

/** `count` off-centre examples for the model's one input: uniform in [0.2, 1.7). */
function inputs(graph: Graph, count: number, seed: number): Float32Array {
  const next = rng(seed);
  const size = exampleShape(graph.inputs[0]!.type).reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: count * size }, () => 0.2 + 1.5 * next());
}

function feed(graph: Graph, x: Float32Array, count: number): Record<string, Tensor> {
  return { [graph.inputs[0]!.name]: fromF32([count, ...exampleShape(graph.inputs[0]!.type)], x) };
}

/** The graph's first output on `x`, float64. */
function predict(graph: Graph, x: Float32Array, count: number): Tensor {
  return interpret(graph, feed(graph, x, count))[graph.outputs[0]!]!;
}

/** The batchnorms of layers `names` in training mode: normalized by the batch's own statistics. */
function trainingMode(graph: Graph, names: readonly string[]): Graph {
  const nodes = graph.nodes.map((n) => {
    if (n.op !== 'batchnorm' || !names.includes(n.layer)) return n;
    const { axis, epsilon, center, scale, renorm_clipping } = n.attrs;
    const operands = n.operands.slice(0, 1 + (scale ? 1 : 0) + (center ? 1 : 0));
    return { ...n, op: 'batchnorm_train', operands, attrs: { axis, epsilon, center, scale, renorm: false, renorm_clipping } } as typeof n;
  });
  const used = new Set(nodes.flatMap((n) => n.operands));
  return { ...graph, nodes, params: graph.params.filter((p) => used.has(p.name)) };
}

/** The spec's layers as `type` or `type:activation`, in order. */
function layerKinds(spec: ModelSpec): string[] {
  return spec.layers.map((l) => ('reuse' in l ? 'reuse' : `${l.type}${typeof l['activation'] === 'string' ? `:${l['activation']}` : ''}`));
}

/** Calibrates on `count` examples, then checks inference mode on other inputs and training mode on the calibration batch. */
async function insertAndCheck(m: Model, count = 64): Promise<InsertBatchNormResult> {
  const x = inputs(m.graph, count, 11);
  const result = await insertBatchNorm(m, x, count, { batchSize: 24 });
  const held = inputs(m.graph, 9, 12);
  expectClose(predict(result.graph, held, 9), predict(m.graph, held, 9), 1e-5);
  expectClose(predict(trainingMode(result.graph, result.inserted.map((b) => b.name)), x, count), predict(m.graph, x, count), 1e-4);
  return result;
}

const mlp = `model mlp {
  input x: [6]
  dense(8, activation: tanh)
  dense(5, activation: relu)
  dense(7, activation: linear)
  dense(3, activation: softmax)
}`;

const convs = `model convs {
  input x: [8, 8, 3]
  conv2d(4, 3, padding: same, activation: relu)
  depthwise_conv2d(kernel_size: 3, depth_multiplier: 2, activation: elu)
  separable_conv2d(filters: 5, kernel_size: 3, padding: same, activation: swish)
  conv2d_transpose(filters: 3, kernel_size: 2, strides: 2, activation: tanh)
  global_avg_pool2d
  dense(2)
}`;

const residual = `model seq {
  input x: [10, 3]
  a = conv1d(x, filters: 4, kernel_size: 3, padding: same, activation: relu)
  b = conv1d(a, filters: 4, kernel_size: 3, padding: same)
  y = add(a, b) -> global_avg_pool1d -> dense(2, activation: sigmoid)
  output y
}`;

describe('insertBatchNorm', () => {
  it('dense layers: a batchnorm before each activation, the output layer left alone, the function unchanged', async () => {
    const m = model(mlp);
    const result = await insertAndCheck(m);
    expect(layerKinds(result.spec)).toEqual([
      'dense', 'batchnorm', 'activation:tanh',
      'dense', 'batchnorm', 'activation:relu',
      'dense', 'batchnorm',
      'dense:softmax',
    ]);
    expect(result.inserted).toEqual([
      { name: 'batch_normalization', after: 'dense', channels: 8, activationLayer: 'activation' },
      { name: 'batch_normalization_1', after: 'dense_1', channels: 5, activationLayer: 'activation_1' },
      { name: 'batch_normalization_2', after: 'dense_2', channels: 7 },
    ]);
    // Automatic names give the planned ones: the spec reads as written by hand.
    expect(printDsl(result.spec)).toContain('dense(8)\n  batchnorm\n  activation(activation: tanh)\n  dense(5)\n  batchnorm\n  activation(activation: relu)\n');
    expect(result.layerIndex).toEqual([0, 3, 6, 8]);
    // Every original weight is kept as it was; the new ones are the statistics.
    for (const p of m.graph.params) expect(result.weights.get(p.name)!.data).toEqual(p.value);
    const stats = result.statistics.get('dense/linear')!;
    expect(stats.count).toBe(64);
    expect(result.weights.get('batch_normalization/moving_mean')!.data).toEqual(Float32Array.from(stats.mean));
    expect(result.weights.get('batch_normalization/beta')!.data).toEqual(Float32Array.from(stats.mean));
    const variance = Float32Array.from(stats.variance);
    expect(result.weights.get('batch_normalization/moving_variance')!.data).toEqual(variance);
    expect(result.weights.get('batch_normalization/gamma')!.data).toEqual(variance.map((v) => Math.sqrt(v + 0.001)));
    // The statistics are far from the identity batchnorm's: the test would see a wrong one.
    expect(Math.max(...stats.mean.map(Math.abs))).toBeGreaterThan(0.1);
  });

  it('conv2d, depthwise, separable and transposed convolutions, each with a fused activation', async () => {
    const result = await insertAndCheck(model(convs, 2), 40);
    expect(layerKinds(result.spec)).toEqual([
      'conv2d', 'batchnorm', 'activation:relu',
      'depthwise_conv2d', 'batchnorm', 'activation:elu',
      'separable_conv2d', 'batchnorm', 'activation:swish',
      'conv2d_transpose', 'batchnorm', 'activation:tanh',
      'global_avg_pool2d', 'dense',
    ]);
    expect(result.inserted.map((b) => b.channels)).toEqual([4, 8, 5, 3]);
  });

  it('conv1d with a residual reference: add() now reads the activation layer after the batchnorm', async () => {
    const result = await insertAndCheck(model(residual, 3), 32);
    expect(result.inserted.map((b) => [b.after, b.name, b.activationLayer])).toEqual([
      ['a', 'batch_normalization', 'activation'],
      ['b', 'batch_normalization_1', undefined],
    ]);
    const add = result.spec.layers.find((l) => 'type' in l && l.type === 'add')!;
    expect(add.inputs).toEqual(['activation', 'batch_normalization_1']);
    expect(result.spec.outputs).toEqual(['y']);
  });

  it('a named output layer: the model output moves to the new activation layer', async () => {
    const m = model(residual, 3);
    const x = inputs(m.graph, 16, 11);
    const result = await insertBatchNorm(m, x, 16, { layers: ['y'] });
    expect(result.inserted).toEqual([{ name: 'batch_normalization', after: 'y', channels: 2, activationLayer: 'activation' }]);
    expect(result.spec.outputs).toEqual(['activation']);
    expectClose(predict(result.graph, x, 16), predict(m.graph, x, 16), 1e-5);
  });

  it('names new layers explicitly when automatic names would rename an existing batchnorm', async () => {
    const m = model(`model named {
      input x: [4]
      dense(6, activation: relu)
      dense(6)
      batchnorm
      relu
      dense(2)
    }`);
    const result = await insertAndCheck(m, 20);
    // dense_1's batchnorm and relu (an Activation layer) keep batch_normalization and activation.
    expect(result.inserted).toEqual([{ name: 'batch_normalization_1', after: 'dense', channels: 6, activationLayer: 'activation_1' }]);
    expect(result.spec.layers[1]).toMatchObject({ type: 'batchnorm', name: 'batch_normalization_1' });
    expect(result.spec.layers[2]).toMatchObject({ type: 'activation', name: 'activation_1', activation: 'relu' });
    expect(result.graph.params.map((p) => p.name)).toContain('batch_normalization/moving_mean');
  });

  it.each([
    ['convs', convs, 4],
    ['dense', mlp, 3],
    ['conv1d', residual, 2],
  ] as const)('the default passes fold every new batchnorm back (%s): the module predicts what the original does', async (_, source, count) => {
    const m = model(source, 4);
    const x = inputs(m.graph, 30, 5);
    const result = await insertBatchNorm(m, x, 30);
    const compiled = await compile({ graph: result.graph }, { emit: 'js', name: 'folded' });
    expect(compiled.optimized.nodes.filter((n) => n.op === 'batchnorm' || n.op === 'affine')).toEqual([]);
    expect(compiled.explain.entries.filter((e) => e.pass === 'fold-bn' && e.applied)).toHaveLength(count);
    const original = await compile({ graph: m.graph }, { emit: 'js', name: 'original' });
    const load = async (r: typeof compiled, name: string) => new (await importModule(r.files.find((f) => f.path === `${name}.js`)!.contents as string)).Model();
    const held = inputs(m.graph, 7, 6);
    const after = (await load(compiled, 'folded')).predict(held, 7);
    const before = (await load(original, 'original')).predict(held, 7);
    const shape = [7, after.length / 7];
    expectClose(fromF32(shape, after), fromF32(shape, before), 1e-5);
    expectClose(fromF32(shape, after), predict(m.graph, held, 7), 1e-5);
  });

  it("channelStatistics measures in the compiled module what the reference interpreter computes, batch by batch", async () => {
    const m = model(convs, 7);
    const x = inputs(m.graph, 23, 8);
    const values = batchNormSites(m.spec).map((s) => s.value);
    expect(values).toEqual(['conv2d/linear', 'depthwise_conv2d/linear', 'separable_conv2d/linear', 'conv2d_transpose/linear']);
    const stats = await channelStatistics(m.graph, values, x, 23, { batchSize: 5 });
    const all = interpretAll(m.graph, feed(m.graph, x, 23));
    for (const v of values) {
      const t = all.get(v)!;
      const c = t.shape.at(-1)!;
      const n = t.data.length / c;
      const mean = Array.from({ length: c }, (_, k) => t.data.filter((_, i) => i % c === k).reduce((a, b) => a + b, 0) / n);
      const variance = mean.map((mu, k) => t.data.filter((_, i) => i % c === k).reduce((a, b) => a + (b - mu) ** 2, 0) / n);
      expect(stats.get(v)!.count).toBe(n);
      expectClose(fromF32([c], Float32Array.from(stats.get(v)!.mean)), mean, 1e-5);
      expectClose(fromF32([c], Float32Array.from(stats.get(v)!.variance)), variance, 1e-5);
    }
  });
});

describe('batchNormSites', () => {
  const errorOf = (f: () => unknown): ModelcError => {
    try {
      f();
    } catch (err) {
      if (err instanceof ModelcError) return err;
      throw err;
    }
    throw new Error('no error');
  };

  it('takes named layers, the output layer included, in spec order', () => {
    const { spec } = model(mlp);
    expect(batchNormSites(spec, ['dense_3', 'dense']).map((s) => [s.layer, s.value, s.activation])).toEqual([
      ['dense', 'dense/linear', 'tanh'],
      ['dense_3', 'dense_3/linear', 'softmax'],
    ]);
  });

  it('refuses an unknown layer, one that is not dense or a convolution, one already followed by a batchnorm, and a shared one, listing the candidates', () => {
    const { spec } = model(`model m {
      input x: [4]
      enc = dense(6)
      batchnorm
      h = dense(6, activation: relu)
      h2 = reuse h(h)
      flatten
      dense(2)
    }`);
    const candidates = "the layers that can take one: 'dense'";
    expect(errorOf(() => batchNormSites(spec, ['dense_9'])).message).toBe(`no layer 'dense_9' in 'm'; ${candidates}`);
    expect(errorOf(() => batchNormSites(spec, ['flatten'])).message).toBe(`cannot insert a batchnorm after 'flatten': it is a flatten layer, not dense or a convolution; ${candidates}`);
    expect(errorOf(() => batchNormSites(spec, ['enc'])).message).toBe(`cannot insert a batchnorm after 'enc': it is already followed by the batchnorm 'batch_normalization'; ${candidates}`);
    expect(errorOf(() => batchNormSites(spec, ['h'])).message).toMatch(/^cannot insert a batchnorm after 'h': it shares its weights with 'h2' \(reuse\)/);
    // The only eligible layer is the output: by default there is nothing to do.
    expect(errorOf(() => batchNormSites(spec)).message).toBe("no layer of 'm' to insert a batchnorm after: only model outputs are eligible ('dense'): name them to insert after them anyway");
  });

  it('a model without dense or conv layers has no candidates', () => {
    const { spec } = model('model p {\n  input x: [4, 4, 1]\n  max_pool2d(2)\n  flatten\n}');
    expect(errorOf(() => batchNormSites(spec)).message).toMatch(/^no layer of 'p' to insert a batchnorm after: it needs a dense or convolution layer not followed by a batchnorm$/);
  });
});
