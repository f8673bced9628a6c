/**
 * GlobalAveragePooling2D with keepdims as MobileNet's head uses it: the
 * [N, 1, 1, C] result feeds a 1x1 conv2d and a reshape to the logits. The
 * conformance suite checks the op alone; this checks the chain against TF.js
 * (whose layer has no keepdims: tf.mean keeps the axes) through the
 * interpreter, the generated module, -O and ONNX, and the Keras import.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { SourceFile } from '../../src/diagnostics/source.js';
import { importTfjs } from '../../src/frontend/tfjs.js';
import { onnxOutputs } from '../helpers/onnx-diff.js';
import { expectMatches, generatedOutputs, interpretOutputs, prepare, tf, type DiffCase } from '../helpers/tfjs.js';

const head: DiffCase = {
  name: 'mobilenet_head',
  spec: {
    name: 'mobilenet_head',
    inputs: [{ name: 'x', shape: [4, 3, 6] }],
    layers: [
      { type: 'global_avg_pool2d', name: 'gap', keepdims: true },
      { type: 'conv2d', name: 'logits', filters: 5, kernel_size: 1 },
      { type: 'reshape', name: 'flat', target_shape: [5] },
    ],
  },
  tfjs: {
    ops: ([x], w) => {
      const k = w.get('logits/kernel')!;
      const pooled = tf.mean(x!, [1, 2], true) as tf.Tensor4D;
      const y = tf.conv2d(pooled, tf.tensor4d(k.data, k.shape as [number, number, number, number]), 1, 'valid');
      return [tf.reshape(tf.add(y, tf.tensor1d(w.get('logits/bias')!.data)), [-1, 5])];
    },
  },
};

describe('global_avg_pool2d keepdims (MobileNet head)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('imports keepdims from a GlobalAveragePooling2D config', () => {
    const layers = [
      { class_name: 'InputLayer', name: 'x', config: { name: 'x', batch_input_shape: [null, 4, 3, 6], dtype: 'float32' }, inbound_nodes: [] },
      { class_name: 'GlobalAveragePooling2D', name: 'g', config: { name: 'g', data_format: 'channels_last', keepdims: true }, inbound_nodes: [[['x', 0, 0, {}]]] },
    ];
    const topology = { class_name: 'Model', config: { name: 'm', layers, input_layers: [['x', 0, 0]], output_layers: [['g', 0, 0]] } };
    const spec = importTfjs(new SourceFile('m/model.json', JSON.stringify({ modelTopology: topology }))).spec;
    expect(spec.layers[0]).toEqual({ type: 'global_avg_pool2d', name: 'g', keepdims: true });
  });

  it('the interpreter, the generated module (unoptimized and -O) and ONNX match TF.js', async () => {
    const p = prepare(head);
    expectMatches('interpreter', interpretOutputs(p.graph, p), p);
    expectMatches('generated', await generatedOutputs(p.graph, p), p);
    expectMatches('generated -O', await generatedOutputs(p.optimized, p), p);
    expectMatches('onnx -O', await onnxOutputs(p), p);
  });
});
