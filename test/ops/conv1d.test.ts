/**
 * Conv1D and the 1-D pools (`conv1d.ts`, `pool1d.ts`) beyond the conformance
 * suite's single-op checks: Keras import from a Keras 3 config (lists of one
 * for kernel_size, strides, pool_size) and the refusals, the lowering of
 * `causal` padding and of the pools to the 2-D ops, and models against TF.js
 * (interpreter, generated module, -O with a batchnorm folded into a conv1d,
 * ONNX export).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { SourceFile } from '../../src/diagnostics/source.js';
import { importTfjs } from '../../src/frontend/tfjs.js';
import { diagnosticOf, lowerJson, model, outputType, paramShapes } from '../helpers/graphs.js';
import { onnxOutputs } from '../helpers/onnx-diff.js';
import { chain, expectMatches, generatedOutputs, interpretOutputs, prepare, tf, type DiffCase } from '../helpers/tfjs.js';

/** A model.json with one layer `l` of class `cls` and this config on a [9, 4] input. */
function modelJson(cls: string, config: Record<string, unknown>): SourceFile {
  const layers = [
    { class_name: 'InputLayer', name: 'x', config: { name: 'x', batch_input_shape: [null, 9, 4], dtype: 'float32' }, inbound_nodes: [] },
    { class_name: cls, name: 'l', config: { name: 'l', trainable: true, dtype: 'float32', ...config }, inbound_nodes: [[['x', 0, 0, {}]]] },
  ];
  const topology = { class_name: 'Model', config: { name: 'm', layers, input_layers: [['x', 0, 0]], output_layers: [['l', 0, 0]] } };
  return new SourceFile('m/model.json', JSON.stringify({ modelTopology: topology, format: 'layers-model' }));
}
const imported = (cls: string, config: Record<string, unknown>) => importTfjs(modelJson(cls, config)).spec.layers[0];

describe('Keras import of Conv1D and the 1-D pools', () => {
  it('reads a Keras 3 Conv1D config (lists of one), causal padding included', () => {
    const config = {
      filters: 4, kernel_size: [3], strides: [1], padding: 'causal', data_format: 'channels_last', dilation_rate: [2], groups: 2,
      activation: 'relu', use_bias: true, kernel_initializer: { class_name: 'GlorotUniform', config: { seed: null } },
      bias_initializer: { class_name: 'Zeros', config: {} }, kernel_regularizer: null, bias_regularizer: null,
      activity_regularizer: null, kernel_constraint: null, bias_constraint: null,
    };
    expect(imported('Conv1D', config)).toEqual({ type: 'conv1d', name: 'l', filters: 4, kernel_size: 3, padding: 'causal', dilation_rate: 2, groups: 2, activation: 'relu' });
    expect(imported('Convolution1D', { filters: 2, kernel_size: 5 })).toEqual({ type: 'conv1d', name: 'l', filters: 2, kernel_size: 5 });
  });

  it.each([
    ['MaxPooling1D', { pool_size: [2], strides: [2], padding: 'valid' }, { type: 'max_pool1d', name: 'l' }],
    ['AveragePooling1D', { pool_size: [3], strides: [1], padding: 'same' }, { type: 'avg_pool1d', name: 'l', pool_size: 3, strides: 1, padding: 'same' }],
    ['MaxPool1D', { pool_size: 4 }, { type: 'max_pool1d', name: 'l', pool_size: 4 }],
    ['GlobalAveragePooling1D', { data_format: 'channels_last', keepdims: true }, { type: 'global_avg_pool1d', name: 'l', keepdims: true }],
    ['GlobalMaxPool1D', { keepdims: false }, { type: 'global_max_pool1d', name: 'l' }],
  ])('%s %j', (cls, config, layer) => {
    expect(imported(cls, config)).toEqual(layer);
  });

  it('refuses what it cannot represent, at its key', () => {
    expect(diagnosticOf(() => importTfjs(modelJson('Conv1D', { filters: 2, kernel_size: [3, 3] }))).message)
      .toBe("layer 'l' (Conv1D): kernel_size must be an integer >= 1 or a list of one, got [3,3]");
    expect(diagnosticOf(() => importTfjs(modelJson('Conv1D', { filters: 2, kernel_size: 3, padding: 'full' }))).message)
      .toBe("layer 'l' (Conv1D): padding must be 'valid', 'same' or 'causal', got \"full\"");
    expect(() => importTfjs(modelJson('GlobalAveragePooling1D', { data_format: 'channels_first' }))).toThrow(/channels_first' is not supported/);
  });
});

describe('1-D lowering', () => {
  it("conv1d keeps Keras's kernel [k, C/G, F]; causal padding is d*(k-1) zeros at the start, then valid", () => {
    const g = lowerJson(model([6, 2], [{ type: 'conv1d', name: 'c', filters: 3, kernel_size: 3, padding: 'causal', dilation_rate: 2 }])).graph;
    expect(paramShapes(g)).toEqual({ 'c/kernel': [3, 2, 3], 'c/bias': [3] });
    expect(g.nodes.map((n) => [n.op, n.attrs])).toEqual([
      ['reshape', { shape: [1, 6, 2] }],
      ['zero_pad2d', { padding: [0, 0, 4, 0] }],
      ['reshape', { shape: [10, 2] }],
      ['conv1d', { strides: 1, padding: 'valid', dilation_rate: 2, groups: 1 }],
    ]);
    expect(outputType(g).shape).toEqual(['N', 6, 3]);
  });

  it('pools lower to the 2-D ops on the [1, steps, channels] view', () => {
    const g = lowerJson(model([8, 3], [{ type: 'avg_pool1d', name: 'p', pool_size: 3, strides: 2, padding: 'same' }])).graph;
    expect(g.nodes.map((n) => [n.op, n.attrs])).toEqual([
      ['reshape', { shape: [1, 8, 3] }],
      ['avg_pool2d', { pool_size: [1, 3], strides: [1, 2], padding: 'same' }],
      ['reshape', { shape: [4, 3] }],
    ]);
    const keep = lowerJson(model([8, 3], [{ type: 'global_max_pooling1d', keepdims: true }])).graph;
    expect(outputType(keep).shape).toEqual(['N', 1, 3]);
  });

  it('refuses a rank-4 input and strides with dilation, as Keras does', () => {
    expect(diagnosticOf(() => lowerJson(model([4, 4, 2], [{ type: 'conv1d', filters: 2, kernel_size: 2 }]))).message).toMatch(/conv1d expects a rank-3 input/);
    expect(diagnosticOf(() => lowerJson(model([9, 2], [{ type: 'conv1d', filters: 2, kernel_size: 2, strides: 2, dilation_rate: 2 }]))).message)
      .toMatch(/strides > 1 cannot be combined with dilation_rate > 1/);
  });

  it('says in steps when the input is too short', () => {
    expect(diagnosticOf(() => lowerJson(model([4, 2], [{ type: 'conv1d', name: 'c', filters: 2, kernel_size: 3, dilation_rate: 2 }]))).message)
      .toBe("layer 'c': an input of 4 steps is too short for kernel_size 3 (dilation 2: 5 steps): the output would have 0 steps");
    expect(diagnosticOf(() => lowerJson(model([3, 2], [{ type: 'max_pool1d', name: 'p', pool_size: 4 }]))).message)
      .toBe("layer 'p': an input of 3 steps is shorter than pool_size 4");
  });
});

const L = tf.layers;

/** A small 1-D CNN: same, dilated and strided convolutions, batchnorms after convolutions, every 1-D pool. */
const cnn1d: DiffCase = {
  name: 'conv1d_net',
  spec: {
    name: 'conv1d_net',
    inputs: [{ name: 'x', shape: [16, 3] }],
    layers: [
      { type: 'conv1d', name: 'c1', filters: 5, kernel_size: 3, padding: 'same', use_bias: false },
      { type: 'batchnorm', name: 'bn1' },
      { type: 'relu', name: 'r1' },
      { type: 'conv1d', name: 'c2', filters: 4, kernel_size: 3, padding: 'same', dilation_rate: 2, activation: 'tanh' },
      { type: 'max_pool1d', name: 'p1', pool_size: 3, strides: 2, padding: 'same' },
      { type: 'conv1d', name: 'c3', filters: 6, kernel_size: 2, strides: 2 },
      { type: 'batchnorm', name: 'bn3' },
      { type: 'avg_pool1d', name: 'p2', pool_size: 2, strides: 1 },
      { type: 'global_avg_pool1d', name: 'gap' },
    ],
  },
  tfjs: {
    model: () =>
      chain('x', [16, 3], [
        L.conv1d({ filters: 5, kernelSize: 3, padding: 'same', useBias: false, name: 'c1' }),
        L.batchNormalization({ name: 'bn1' }),
        L.reLU({ name: 'r1' }),
        L.conv1d({ filters: 4, kernelSize: 3, padding: 'same', dilationRate: 2, activation: 'tanh', name: 'c2' }),
        L.maxPooling1d({ poolSize: 3, strides: 2, padding: 'same', name: 'p1' }),
        L.conv1d({ filters: 6, kernelSize: 2, strides: 2, name: 'c3' }),
        L.batchNormalization({ name: 'bn3' }),
        L.averagePooling1d({ poolSize: 2, strides: 1, name: 'p2' }),
        L.globalAveragePooling1d({ name: 'gap' }),
      ]),
  },
  foldsAway: ['batchnorm', 'affine'],
};

/**
 * Causal padding (TF.js's conv1d refuses it): Keras pads d*(k-1) zero steps at
 * the start and runs a valid conv (keras/src/ops/nn.py; checked against Keras
 * 3.15 when written), here with tf.pad and tf.conv1d.
 */
const causal: DiffCase = {
  name: 'conv1d_causal',
  spec: {
    name: 'conv1d_causal',
    inputs: [{ name: 'x', shape: [9, 3] }],
    layers: [{ type: 'conv1d', name: 'c', filters: 4, kernel_size: 3, padding: 'causal', dilation_rate: 2 }],
  },
  tfjs: {
    ops: ([x], w) => {
      const kernel = w.get('c/kernel')!;
      const padded = tf.pad(x! as tf.Tensor3D, [[0, 0], [4, 0], [0, 0]]);
      const y = tf.conv1d(padded, tf.tensor3d(kernel.data, kernel.shape as [number, number, number]), 1, 'valid', 'NWC', 2);
      return [tf.add(y, tf.tensor1d(w.get('c/bias')!.data))];
    },
  },
};

/** Global max pooling over the steps with keepdims (TF.js's layer has no keepdims: tf.max keeps the axis). */
const globalKeep: DiffCase = {
  name: 'global_max_pool1d_keepdims',
  spec: { name: 'global_max_pool1d_keepdims', inputs: [{ name: 'x', shape: [7, 3] }], layers: [{ type: 'global_max_pool1d', keepdims: true }] },
  tfjs: { ops: ([x]) => [tf.max(x!, 1, true)] },
};

describe('1-D models against TF.js', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it.each([cnn1d, causal, globalKeep])('$name: the interpreter and the generated module (unoptimized and -O) match', async (c) => {
    const p = prepare(c);
    expectMatches('interpreter', interpretOutputs(p.graph, p), p);
    expectMatches('interpreter -O', interpretOutputs(p.optimized, p), p);
    expectMatches('generated', await generatedOutputs(p.graph, p), p);
    expectMatches('generated -O', await generatedOutputs(p.optimized, p), p);
  });

  it('-O folds each batchnorm into the conv1d before it', () => {
    const p = prepare(cnn1d);
    const folded = p.optimized.nodes.filter((n) => n.layer.includes('(folded)'));
    expect(folded.map((n) => [n.op, n.operands.slice(1)])).toEqual([
      ['conv1d', ['c1/kernel', 'c1/bias']],
      ['conv1d', ['c3/kernel', 'c3/bias']],
    ]);
  });

  it.each([cnn1d, causal, globalKeep])('$name: the ONNX export matches', async (c) => {
    const p = prepare(c);
    expectMatches('onnx -O', await onnxOutputs(p), p);
  });
});
