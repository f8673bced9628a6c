/**
 * SeparableConv2D (`conv-separable.ts`): the layer has no op of its own, so
 * the conformance suite sees only its Keras round trip; this file checks
 * what it lowers to (Keras's parameter names and shapes, where strides and
 * padding go), its import from a model.json config, and the layer against
 * TF.js with a batchnorm after it: the interpreter, the generated module,
 * `-O` (where the batchnorm must fold into the pointwise conv2d) and the ONNX
 * export.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { SourceFile } from '../../src/diagnostics/source.js';
import { importTfjs } from '../../src/frontend/tfjs.js';
import { printGraph } from '../../src/ir/print.js';
import { lowerJson, model, paramShapes } from '../helpers/graphs.js';
import { onnxOutputs } from '../helpers/onnx-diff.js';
import { chain, expectMatches, generatedOutputs, interpretOutputs, prepare, tf, type DiffCase } from '../helpers/tfjs.js';

/** A model.json with one layer `s` of class `cls` and this config on a [7, 6, 3] input. */
function modelJson(cls: string, config: Record<string, unknown>): SourceFile {
  const layers = [
    { class_name: 'InputLayer', name: 'x', config: { name: 'x', batch_input_shape: [null, 7, 6, 3], dtype: 'float32' }, inbound_nodes: [] },
    { class_name: cls, name: 's', config: { name: 's', trainable: true, dtype: 'float32', ...config }, inbound_nodes: [[['x', 0, 0, {}]]] },
  ];
  const topology = { class_name: 'Model', config: { name: 'm', layers, input_layers: [['x', 0, 0]], output_layers: [['s', 0, 0]] } };
  return new SourceFile('m/model.json', JSON.stringify({ modelTopology: topology, format: 'layers-model' }));
}

describe('separable_conv2d lowering', () => {
  it('is a bias-free depthwise_conv2d with the window, then a 1x1 conv2d with the bias and the activation', () => {
    const g = lowerJson(model([7, 6, 3], [{ type: 'separable_conv2d', name: 's', filters: 4, kernel_size: 3, strides: 2, padding: 'same', depth_multiplier: 2, activation: 'relu' }])).graph;
    expect(paramShapes(g)).toEqual({ 's/depthwise_kernel': [3, 3, 3, 2], 's/pointwise_kernel': [1, 1, 6, 4], 's/bias': [4] });
    expect(printGraph(g).split('\n').filter((l) => l.startsWith('  %'))).toEqual([
      '  %s/depthwise: f32[N,4,3,6] = depthwise_conv2d(%x, %s/depthwise_kernel) {strides=[2,2], padding="same", dilation_rate=[1,1]} @s',
      '  %s/linear: f32[N,4,3,4] = conv2d(%s/depthwise, %s/pointwise_kernel, %s/bias) {strides=[1,1], padding="valid", dilation_rate=[1,1], groups=1} @s',
      '  %s: f32[N,4,3,4] = relu(%s/linear)',
    ]);
  });

  it('has no bias with use_bias false', () => {
    const g = lowerJson(model([7, 6, 3], [{ type: 'separable_conv2d', name: 's', filters: 2, kernel_size: [2, 3], use_bias: false }])).graph;
    expect(paramShapes(g)).toEqual({ 's/depthwise_kernel': [2, 3, 3, 1], 's/pointwise_kernel': [1, 1, 3, 2] });
  });
});

describe('Keras import of SeparableConv2D', () => {
  const keras3 = {
    filters: 4, kernel_size: [3, 3], strides: [2, 2], padding: 'same', data_format: 'channels_last', dilation_rate: [1, 1],
    depth_multiplier: 2, activation: 'relu', use_bias: true,
    depthwise_initializer: { class_name: 'GlorotUniform', config: { seed: null } },
    pointwise_initializer: { class_name: 'HeNormal', config: { seed: null } },
    bias_initializer: { class_name: 'Zeros', config: {} },
    depthwise_regularizer: null, pointwise_regularizer: null, bias_regularizer: null, activity_regularizer: null,
    depthwise_constraint: null, pointwise_constraint: null, bias_constraint: null,
  };

  it.each(['SeparableConv2D', 'SeparableConvolution2D'])('%s reads its config; defaults drop out', (cls) => {
    expect(importTfjs(modelJson(cls, keras3)).spec.layers[0]).toEqual({
      type: 'separable_conv2d', name: 's', filters: 4, kernel_size: 3, strides: 2, padding: 'same', depth_multiplier: 2,
      activation: 'relu', pointwise_initializer: 'he_normal',
    });
  });

  it('refuses an option it cannot represent, at its key', () => {
    const run = () => importTfjs(modelJson('SeparableConv2D', { ...keras3, data_format: 'channels_first' }));
    expect(run).toThrow(/layer 's' \(SeparableConv2D\): data_format 'channels_first' is not supported/);
  });
});

const L = tf.layers;

/** Xception's block in small: separable convolutions each followed by a batchnorm, strided and dilated. */
const xception: DiffCase = {
  name: 'separable_bn',
  spec: {
    name: 'separable_bn',
    inputs: [{ name: 'x', shape: [11, 12, 3] }],
    layers: [
      { type: 'separable_conv2d', name: 'sep', filters: 5, kernel_size: 3, strides: 2, padding: 'same', depth_multiplier: 2, use_bias: false },
      { type: 'batchnorm', name: 'bn' },
      { type: 'relu', name: 'act' },
      { type: 'separable_conv2d', name: 'sep2', filters: 4, kernel_size: [2, 3], dilation_rate: 2, activation: 'tanh' },
      { type: 'separable_conv2d', name: 'sep3', filters: 3, kernel_size: 1 },
      { type: 'batchnorm', name: 'bn3' },
    ],
  },
  tfjs: {
    model: () =>
      chain('x', [11, 12, 3], [
        L.separableConv2d({ filters: 5, kernelSize: 3, strides: 2, padding: 'same', depthMultiplier: 2, useBias: false, name: 'sep' }),
        L.batchNormalization({ name: 'bn' }),
        L.reLU({ name: 'act' }),
        L.separableConv2d({ filters: 4, kernelSize: [2, 3], dilationRate: 2, activation: 'tanh', name: 'sep2' }),
        L.separableConv2d({ filters: 3, kernelSize: 1, name: 'sep3' }),
        L.batchNormalization({ name: 'bn3' }),
      ]),
  },
  foldsAway: ['batchnorm', 'affine'],
};

describe('separable_conv2d against TF.js', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('the interpreter and the generated module (unoptimized and -O) match', async () => {
    const p = prepare(xception);
    expectMatches('interpreter', interpretOutputs(p.graph, p), p);
    expectMatches('interpreter -O', interpretOutputs(p.optimized, p), p);
    expectMatches('generated', await generatedOutputs(p.graph, p), p);
    expectMatches('generated -O', await generatedOutputs(p.optimized, p), p);
    expectMatches('generated -O --simd', await generatedOutputs(p.optimized, p, { simd: true }), p);
  });

  it('-O folds each batchnorm into the pointwise conv2d before it', () => {
    const p = prepare(xception);
    const folded = p.optimized.nodes.filter((n) => n.layer.includes('(folded)'));
    expect(folded.map((n) => [n.layer, n.op, n.operands.slice(1)])).toEqual([
      ['sep + bn (folded) + act (relu, fused)', 'conv2d', ['sep/pointwise_kernel', 'sep/bias']],
      ['sep3 + bn3 (folded)', 'conv2d', ['sep3/pointwise_kernel', 'sep3/bias']],
    ]);
  });

  it('the ONNX export matches', async () => {
    const p = prepare(xception);
    expectMatches('onnx -O', await onnxOutputs(p), p);
  });
});
