/**
 * What the conformance suite does not reach in the padding records: Keras's
 * three forms of `padding` / `cropping` on import (the shortest form written,
 * so Keras's saved [[1, 1], [1, 1]] is the default and drops out), the
 * refusals (channels_first, a malformed value, a crop that leaves nothing),
 * and the ops between convolutions against TF.js: the interpreter, the
 * generated module and the ONNX export, where a pad or crop after a
 * convolution sees a channels-first value (single-op examples never do).
 */
import ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { SourceFile } from '../../src/diagnostics/source.js';
import { exportOnnx } from '../../src/formats/onnx.js';
import { importTfjs } from '../../src/frontend/tfjs.js';
import { diagnosticOf, lowerJson, model } from '../helpers/graphs.js';
import { chain, expectMatches, generatedOutputs, interpretOutputs, prepare, tf, BATCH, type DiffCase, type Prepared } from '../helpers/tfjs.js';

/** A model.json with one layer `p` of class `cls` and this config on a [4, 5, 2] input. */
function modelJson(cls: string, config: Record<string, unknown>): SourceFile {
  const layers = [
    { class_name: 'InputLayer', name: 'x', config: { name: 'x', batch_input_shape: [null, 4, 5, 2], dtype: 'float32' }, inbound_nodes: [] },
    { class_name: cls, name: 'p', config: { name: 'p', trainable: true, dtype: 'float32', ...config }, inbound_nodes: [[['x', 0, 0, {}]]] },
  ];
  const topology = { class_name: 'Model', config: { name: 'm', layers, input_layers: [['x', 0, 0]], output_layers: [['p', 0, 0]] } };
  return new SourceFile('m/model.json', JSON.stringify({ modelTopology: topology, format: 'layers-model' }));
}

const imported = (cls: string, config: Record<string, unknown>) => importTfjs(modelJson(cls, config)).spec.layers[0];

describe('Keras import of ZeroPadding2D and Cropping2D', () => {
  it.each([
    ['ZeroPadding2D', 'padding', [[1, 1], [1, 1]], { type: 'zero_padding2d', name: 'p' }],
    ['ZeroPadding2D', 'padding', 3, { type: 'zero_padding2d', name: 'p', padding: 3 }],
    ['ZeroPadding2D', 'padding', [[2, 2], [0, 0]], { type: 'zero_padding2d', name: 'p', padding: [2, 0] }],
    ['ZeroPadding2D', 'padding', [1, 2], { type: 'zero_padding2d', name: 'p', padding: [1, 2] }],
    ['ZeroPadding2D', 'padding', [[0, 1], [2, 0]], { type: 'zero_padding2d', name: 'p', padding: [[0, 1], [2, 0]] }],
    ['Cropping2D', 'cropping', [[0, 0], [0, 0]], { type: 'cropping2d', name: 'p' }],
    ['Cropping2D', 'cropping', [[1, 1], [2, 2]], { type: 'cropping2d', name: 'p', cropping: [1, 2] }],
    ['Cropping2D', 'cropping', [[1, 0], [0, 2]], { type: 'cropping2d', name: 'p', cropping: [[1, 0], [0, 2]] }],
  ])('%s %s %j imports in its shortest form', (cls, key, value, layer) => {
    expect(imported(cls, { [key]: value, data_format: 'channels_last' })).toEqual(layer);
  });

  it('lowers each form to [top, bottom, left, right]', () => {
    const pads = [2, [1, 2], [[0, 1], [2, 3]]].map((padding) => lowerJson(model([4, 5, 2], [{ type: 'zero_padding2d', padding }])).graph.nodes[0]!.attrs);
    expect(pads).toEqual([{ padding: [2, 2, 2, 2] }, { padding: [1, 1, 2, 2] }, { padding: [0, 1, 2, 3] }]);
  });

  it('refuses channels_first and malformed sides, at their keys', () => {
    expect(diagnosticOf(() => importTfjs(modelJson('Cropping2D', { cropping: 1, data_format: 'channels_first' }))).message)
      .toBe("layer 'p' (Cropping2D): data_format 'channels_first' is not supported: modelc is channels-last (NHWC)");
    expect(diagnosticOf(() => importTfjs(modelJson('ZeroPadding2D', { padding: [[1, 1], [1, -1]] }))).message)
      .toBe("layer 'p' (ZeroPadding2D): padding must be an integer >= 0, [height, width] or [[top, bottom], [left, right]], got [[1,1],[1,-1]]");
  });

  it('refuses a crop that leaves no rows or no columns, as Keras does', () => {
    const rows = diagnosticOf(() => lowerJson(model([4, 5, 2], [{ type: 'cropping2d', cropping: [[3, 1], [0, 0]] }])));
    expect(rows.message).toMatch(/cropping 3 \+ 1 rows from an input \[4, 5, 2\] leaves none: cropping must be smaller than the height \(4\)/);
    const cols = diagnosticOf(() => lowerJson(model([4, 5, 2], [{ type: 'cropping2d', cropping: [0, 3] }])));
    expect(cols.message).toMatch(/cropping 3 \+ 3 columns .* smaller than the width \(5\)/);
  });
});

const L = tf.layers;

/** ResNet's stem and NASNet's crop in small: asymmetric pads and crops around strided convolutions. */
const stem: DiffCase = {
  name: 'padding_stem',
  spec: {
    name: 'padding_stem',
    inputs: [{ name: 'x', shape: [7, 6, 2] }],
    layers: [
      { type: 'zero_padding2d', name: 'pad', padding: [[1, 2], [0, 3]] },
      { type: 'conv2d', name: 'conv', filters: 3, kernel_size: 3, strides: 2 },
      { type: 'zero_padding2d', name: 'pad2', padding: [1, 0] },
      { type: 'cropping2d', name: 'crop', cropping: [[0, 1], [2, 0]] },
      { type: 'conv2d', name: 'conv2', filters: 2, kernel_size: 1 },
      { type: 'cropping2d', name: 'crop2', cropping: [[1, 0], [0, 0]] },
    ],
  },
  tfjs: {
    model: () =>
      chain('x', [7, 6, 2], [
        L.zeroPadding2d({ padding: [[1, 2], [0, 3]], name: 'pad' }),
        L.conv2d({ filters: 3, kernelSize: 3, strides: 2, name: 'conv' }),
        L.zeroPadding2d({ padding: [1, 0], name: 'pad2' }),
        L.cropping2D({ cropping: [[0, 1], [2, 0]], name: 'crop' }),
        L.conv2d({ filters: 2, kernelSize: 1, name: 'conv2' }),
        L.cropping2D({ cropping: [[1, 0], [0, 0]], name: 'crop2' }),
      ]),
  },
};

async function onnxOutputs(p: Prepared): Promise<{ shape: number[]; data: Float32Array }[]> {
  const session = await ort.InferenceSession.create(exportOnnx(p.optimized));
  try {
    const x = p.feeds['x']!;
    const out = (await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x, [BATCH, 7, 6, 2]) }))[session.outputNames[0]!]!;
    return [{ shape: out.dims.map(Number), data: out.data as Float32Array }];
  } finally {
    await session.release();
  }
}

describe('zero padding and cropping between convolutions, against TF.js', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('the interpreter and the generated module (unoptimized and -O) match', async () => {
    const p = prepare(stem);
    expectMatches('interpreter', interpretOutputs(p.graph, p), p);
    expectMatches('interpreter -O', interpretOutputs(p.optimized, p), p);
    expectMatches('generated', await generatedOutputs(p.graph, p), p);
    expectMatches('generated -O', await generatedOutputs(p.optimized, p), p);
  });

  it('the ONNX export matches, padding and cropping channels-first after a convolution', async () => {
    const p = prepare(stem);
    expectMatches('onnx -O', await onnxOutputs(p), p);
  });
});
