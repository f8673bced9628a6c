/**
 * Permute against TF.js, where single-op examples do not reach: after a
 * convolution (whose ONNX output is channels-first), with Dense on the
 * permuted rank-4 value, and Reshape with Keras's -1; plus the import and the
 * refusal of dims that are not a permutation.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { importTfjs } from '../../src/frontend/tfjs.js';
import { diagnosticOf, lowerJson, model } from '../helpers/graphs.js';
import { imported, modelJson } from '../helpers/keras-json.js';
import { onnxOutputs } from '../helpers/onnx-diff.js';
import { chain, expectMatches, generatedOutputs, interpretOutputs, prepare, tf, type DiffCase } from '../helpers/tfjs.js';

describe('Permute', () => {
  it('imports dims as Keras numbers them and lowers to transpose with the batch kept first', () => {
    expect(imported('Permute', { dims: [2, 1] })).toEqual({ type: 'permute', name: 'p', dims: [2, 1] });
    const g = lowerJson(model([2, 3, 4], [{ type: 'permute', name: 'p', dims: [3, 1, 2] }])).graph;
    expect(g.nodes.map((n) => [n.op, n.attrs, n.type.shape])).toEqual([['transpose', { perm: [0, 3, 1, 2] }, ['N', 4, 2, 3]]]);
  });

  it('refuses dims that are not a permutation of the axes', () => {
    expect(diagnosticOf(() => lowerJson(model([2, 3], [{ type: 'permute', dims: [1, 1] }]))).message).toMatch(/permute dims \[1, 1\] must order the axes 1\.\.2/);
    expect(diagnosticOf(() => importTfjs(modelJson('Permute', { dims: [0, 1] }))).message).toMatch(/dims must be a list of axes numbered from 1, got \[0,1\]/);
  });
});

const L = tf.layers;

const permuted: DiffCase = {
  name: 'permute_chain',
  spec: {
    name: 'permute_chain',
    inputs: [{ name: 'x', shape: [4, 3, 2] }],
    layers: [
      { type: 'conv2d', name: 'conv', filters: 5, kernel_size: 2, padding: 'same' },
      { type: 'permute', name: 'p1', dims: [3, 1, 2] },
      { type: 'dense', name: 'mix', units: 4 },
      { type: 'permute', name: 'p2', dims: [2, 3, 1] },
      { type: 'reshape', name: 'r', target_shape: [-1, 5] },
    ],
  },
  tfjs: {
    model: () =>
      chain('x', [4, 3, 2], [
        L.conv2d({ filters: 5, kernelSize: 2, padding: 'same', name: 'conv' }),
        L.permute({ dims: [3, 1, 2], name: 'p1' }),
        L.dense({ units: 4, name: 'mix' }),
        L.permute({ dims: [2, 3, 1], name: 'p2' }),
        L.reshape({ targetShape: [-1, 5], name: 'r' }),
      ]),
  },
};

describe('Permute between a convolution and Dense, against TF.js', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('the interpreter and the generated module (unoptimized and -O) match', async () => {
    const p = prepare(permuted);
    expectMatches('interpreter', interpretOutputs(p.graph, p), p);
    expectMatches('interpreter -O', interpretOutputs(p.optimized, p), p);
    expectMatches('generated', await generatedOutputs(p.graph, p), p);
    expectMatches('generated -O', await generatedOutputs(p.optimized, p), p);
  });

  it('the ONNX export matches', async () => {
    const p = prepare(permuted);
    expectMatches('onnx -O', await onnxOutputs(p), p);
  });
});
