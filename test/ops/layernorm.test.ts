/**
 * What the conformance suite does not reach in layer normalization and
 * LayerScale: Keras's config forms on import (axis as [-1], rms_scaling
 * refused), LayerScale's lowering to channel_scale with its constant gamma,
 * and a ConvNeXt block in small against TF.js (depthwise convolution,
 * LayerNormalization, Dense on a rank-4 input with gelu, Dense back): the
 * interpreter, the generated module, -O and the ONNX export.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { diagnosticOf, lowerJson, model } from '../helpers/graphs.js';
import { onnxOutputs } from '../helpers/onnx-diff.js';
import { chain, expectMatches, generatedOutputs, interpretOutputs, prepare, tf, type DiffCase } from '../helpers/tfjs.js';
import { importTfjs } from '../../src/frontend/tfjs.js';
import { imported, modelJson } from '../helpers/keras-json.js';

describe('Keras import of LayerNormalization and LayerScale', () => {
  it('reads Keras 3\'s axis list and drops the defaults', () => {
    expect(imported('LayerNormalization', { axis: [-1], epsilon: 1e-6, center: true, scale: true, rms_scaling: false, beta_initializer: { class_name: 'Zeros', config: {} } }))
      .toEqual({ type: 'layer_normalization', name: 'p', epsilon: 1e-6 });
  });

  it('refuses rms_scaling and several axes, at their keys', () => {
    expect(diagnosticOf(() => importTfjs(modelJson('LayerNormalization', { rms_scaling: true }))).message).toMatch(/rms_scaling is not supported/);
    expect(diagnosticOf(() => importTfjs(modelJson('LayerNormalization', { axis: [1, 2] }, [2, 3, 4]))).message).toMatch(/only one axis is supported, got \[1,2\]/);
  });

  it('LayerScale is channel_scale by a gamma that starts at init_values', () => {
    expect(imported('LayerScale', { init_values: 1e-6, projection_dim: 3 })).toEqual({ type: 'layer_scale', name: 'p', init_values: 1e-6, projection_dim: 3 });
    const g = lowerJson(model([2, 2, 3], [{ type: 'layer_scale', name: 'ls', init_values: 0.5, projection_dim: 3 }])).graph;
    expect(g.nodes.map((n) => `${n.op}(${n.operands.join(', ')}) ${JSON.stringify(n.attrs)}`)).toEqual(['channel_scale(x, ls/gamma) {"axis":3}']);
    expect(g.params.map((p) => [p.name, p.init])).toEqual([['ls/gamma', { type: 'constant', args: { value: 0.5 } }]]);
    expect(diagnosticOf(() => lowerJson(model([2, 2, 4], [{ type: 'layer_scale', init_values: 1, projection_dim: 3 }]))).message).toMatch(/projection_dim 3 differs/);
  });
});

const L = tf.layers;

/** ConvNeXt's block in small: depthwise 3x3, LayerNormalization(epsilon 1e-6), Dense x4 with gelu, Dense back. */
const block: DiffCase = {
  name: 'layernorm_convnext',
  spec: {
    name: 'layernorm_convnext',
    inputs: [{ name: 'x', shape: [5, 4, 3] }],
    layers: [
      { type: 'depthwise_conv2d', name: 'dw', kernel_size: 3, padding: 'same' },
      { type: 'layer_normalization', name: 'ln', epsilon: 1e-6 },
      { type: 'dense', name: 'up', units: 12, activation: 'gelu' },
      { type: 'dense', name: 'down', units: 3 },
      { type: 'layer_normalization', name: 'ln2', axis: 2, center: false },
    ],
  },
  tfjs: {
    model: () =>
      chain('x', [5, 4, 3], [
        L.depthwiseConv2d({ kernelSize: 3, padding: 'same', name: 'dw' }),
        L.layerNormalization({ epsilon: 1e-6, name: 'ln' }),
        L.dense({ units: 12, activation: 'gelu', name: 'up' }),
        L.dense({ units: 3, name: 'down' }),
        L.layerNormalization({ axis: 2, center: false, name: 'ln2' }),
      ]),
  },
};

describe('a ConvNeXt block against TF.js', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('the interpreter and the generated module (unoptimized and -O) match', async () => {
    const p = prepare(block);
    expectMatches('interpreter', interpretOutputs(p.graph, p), p);
    expectMatches('interpreter -O', interpretOutputs(p.optimized, p), p);
    expectMatches('generated', await generatedOutputs(p.graph, p), p);
    expectMatches('generated -O', await generatedOutputs(p.optimized, p), p);
  });

  it('the ONNX export matches', async () => {
    const p = prepare(block);
    expectMatches('onnx -O', await onnxOutputs(p), p);
  });
});
