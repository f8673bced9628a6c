/**
 * What the conformance suite does not reach in the broadcasting merges: the
 * layers' rank expansion (Keras gives a lower-rank input leading 1s after the
 * batch), the chains of more than two inputs, Average's division, and a
 * squeeze-and-excitation block against TF.js (interpreter, generated module,
 * -O, and the ONNX export in onnxruntime, where the multiply meets a
 * channels-first convolution output and a channels-last [N, 1, 1, C] factor).
 */
import ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportOnnx } from '../../src/formats/onnx.js';
import { diagnosticOf, lowerJson } from '../helpers/graphs.js';
import { call, expectMatches, generatedOutputs, input, interpretOutputs, prepare, tf, BATCH, type DiffCase, type Prepared } from '../helpers/tfjs.js';

const L = tf.layers;

describe('broadcasting merge layers', () => {
  it('give a lower-rank input leading 1s after the batch, then broadcast', () => {
    const g = lowerJson({
      name: 'm',
      inputs: [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [3] }],
      layers: [{ type: 'subtract', name: 's', inputs: ['a', 'b'] }],
    }).graph;
    expect(g.nodes.map((n) => `${n.result} = ${n.op} ${JSON.stringify(n.attrs)}`)).toEqual(['s/expand_1 = reshape {"shape":[1,3]}', 's = subtract {}']);
  });

  it('chain three inputs left to right; average divides the sum by the count', () => {
    const three = (type: string) => lowerJson({
      name: 'm',
      inputs: ['a', 'b', 'c'].map((name) => ({ name, shape: [2, 2] })),
      layers: [{ type, name: 'l', inputs: ['a', 'b', 'c'] }],
    }).graph.nodes.map((n) => `${n.op}(${n.operands.join(', ')})`);
    expect(three('maximum')).toEqual(['max(a, b)', 'max(l/max_1, c)']);
    expect(three('average')).toEqual(['add(a, b, c)', 'rescale(l/sum)']);
  });

  it('refuse shapes that do not broadcast, naming both', () => {
    const d = diagnosticOf(() => lowerJson({
      name: 'm',
      inputs: [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [2, 4] }],
      layers: [{ type: 'multiply', name: 'p', inputs: ['a', 'b'] }],
    }));
    expect(d.message).toMatch(/multiply cannot broadcast f32\[N,2,3\] and f32\[N,2,4\]: axis 2 has sizes 3 and 4/);
  });
});

/** A squeeze-and-excitation block (EfficientNet's), then every other merge against a per-channel or lower-rank input. */
const se: DiffCase = {
  name: 'merge_broadcast_se',
  spec: {
    name: 'merge_broadcast_se',
    inputs: [{ name: 'x', shape: [5, 4, 3] }],
    layers: [
      { type: 'conv2d', name: 'conv', inputs: ['x'], filters: 6, kernel_size: 3, padding: 'same' },
      { type: 'global_avg_pool2d', name: 'squeeze' },
      { type: 'dense', name: 'reduce', units: 2, activation: 'relu' },
      { type: 'dense', name: 'expand', units: 6, activation: 'sigmoid' },
      { type: 'reshape', name: 'se', target_shape: [1, 1, 6] },
      { type: 'multiply', name: 'excite', inputs: ['conv', 'se'] },
      { type: 'dense', name: 'bias', inputs: ['squeeze'], units: 6 },
      { type: 'subtract', name: 'sub', inputs: ['excite', 'bias'] },
      { type: 'maximum', name: 'max', inputs: ['sub', 'se', 'conv'] },
      { type: 'minimum', name: 'min', inputs: ['max', 'bias'] },
      { type: 'average', name: 'avg', inputs: ['min', 'se', 'excite'] },
    ],
  },
  tfjs: {
    model: () => {
      const x = input('x', [5, 4, 3]);
      const conv = call(L.conv2d({ filters: 6, kernelSize: 3, padding: 'same', name: 'conv' }), x);
      const squeeze = call(L.globalAveragePooling2d({ name: 'squeeze' }), conv);
      const reduce = call(L.dense({ units: 2, activation: 'relu', name: 'reduce' }), squeeze);
      const expand = call(L.dense({ units: 6, activation: 'sigmoid', name: 'expand' }), reduce);
      const s = call(L.reshape({ targetShape: [1, 1, 6], name: 'se' }), expand);
      const excite = call(L.multiply({ name: 'excite' }), conv, s);
      const bias = call(L.dense({ units: 6, name: 'bias' }), squeeze);
      const diff = subtractBroadcast(excite, bias);
      const max = call(L.maximum({ name: 'max' }), diff, s, conv);
      const min = call(L.minimum({ name: 'min' }), max, call(L.reshape({ targetShape: [1, 1, 6] }), bias));
      const avg = call(L.average({ name: 'avg' }), min, s, excite);
      return tf.model({ inputs: x, outputs: avg });
    },
  },
};

/**
 * TF.js has no Subtract layer: x - b, b of rank 2, is x + reshape(-b, [1, 1, C]),
 * Keras's expand_dims of b after the batch.
 */
function subtractBroadcast(x: tf.SymbolicTensor, b: tf.SymbolicTensor): tf.SymbolicTensor {
  const negated = call(L.rescaling({ scale: -1, offset: 0 }), b);
  return call(L.add({}), x, call(L.reshape({ targetShape: [1, 1, 6] }), negated));
}

async function onnxOutputs(p: Prepared): Promise<{ shape: number[]; data: Float32Array }[]> {
  const session = await ort.InferenceSession.create(exportOnnx(p.optimized));
  try {
    const out = (await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', p.feeds['x']!, [BATCH, 5, 4, 3]) }))[session.outputNames[0]!]!;
    return [{ shape: out.dims.map(Number), data: out.data as Float32Array }];
  } finally {
    await session.release();
  }
}

describe('squeeze-and-excitation and the other merges, against TF.js', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('the interpreter and the generated module (unoptimized and -O) match', async () => {
    const p = prepare(se);
    expectMatches('interpreter', interpretOutputs(p.graph, p), p);
    expectMatches('interpreter -O', interpretOutputs(p.optimized, p), p);
    expectMatches('generated', await generatedOutputs(p.graph, p), p);
    expectMatches('generated -O', await generatedOutputs(p.optimized, p), p);
  });

  it('the ONNX export matches', async () => {
    expectMatches('onnx -O', await onnxOutputs(prepare(se)), prepare(se));
  });
});
