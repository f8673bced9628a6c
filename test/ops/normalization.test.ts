/**
 * Keras's Normalization beyond the conformance examples: values worked by
 * hand from Keras 3's call ((x - mean) / max(sqrt(variance), 1e-7), and the
 * inverse), config statistics (a single number for every channel) against
 * adapted ones (parameters mean and variance, Keras's count skipped), the
 * import and the refusals; and the generated module and the ONNX export of
 * a normalization feeding a convolution, against the interpreter; -O folds
 * it into the following Dense or valid convolution (fold-bn's rule 2), not
 * into a same-padded one, whose zero padding would miss the shift.
 */
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { generateInferenceModule } from '../../src/codegen/index.js';
import { exportOnnx } from '../../src/formats/onnx.js';
import { importTfjs } from '../../src/frontend/tfjs.js';
import { interpret } from '../../src/interp/interpret.js';
import { tensorOf } from '../../src/ir/tensor.js';
import { getLayer } from '../../src/ops/registry.js';
import { createPassManager, defaultPipeline } from '../../src/passes/pipeline.js';
import { attachWeights } from '../../src/weights/attach.js';
import { importModule } from '../helpers/generated.js';
import { diagnosticOf, lowerJson, model } from '../helpers/graphs.js';
import { imported, modelJson } from '../helpers/keras-json.js';

const run = (layer: object, x: number[], shape: number[]) => {
  const g = lowerJson(model(shape, [{ type: 'normalization', name: 'n', ...layer }])).graph;
  return Array.from(interpret(g, { x: tensorOf([1, ...shape], x) })['n']!.data);
};

describe('Normalization', () => {
  it('computes (x - mean) / max(sqrt(variance), 1e-7) per channel, and the inverse', () => {
    // channel 0: (3 - 1) / 2 = 1; channel 1: (1 - 0) / 1e-7 (variance 0)
    expect(run({ mean: [1, 0], variance: [4, 0] }, [3, 1], [2])).toEqual([1, 1e7]);
    // one mean and variance for every channel; inverted: 1 + x * 3
    expect(run({ mean: 1, variance: 9, invert: true }, [0, 1, -1], [3])).toEqual([1, 4, -2]);
  });

  it('imports config statistics, or declares mean and variance as non-trainable parameters', () => {
    expect(imported('Normalization', { axis: [-1], mean: [0.5, 0.25, 0], variance: [1, 4, 9], invert: false }, [2, 3]))
      .toEqual({ type: 'normalization', name: 'p', mean: [0.5, 0.25, 0], variance: [1, 4, 9] });
    const g = lowerJson(model([4, 3], [{ type: 'normalization', name: 'n' }])).graph;
    expect(g.params.map((p) => [p.name, p.type.shape, p.trainable])).toEqual([['n/mean', [3], false], ['n/variance', [3], false]]);
    expect(getLayer('normalization')!.kerasVariables!(['mean', 'variance'])).toEqual(['mean', 'variance', null]);
  });

  it('refuses several axes, and statistics that do not fit the channels', () => {
    expect(diagnosticOf(() => importTfjs(modelJson('Normalization', { axis: [1, 2] }, [2, 3]))).message).toMatch(/only one axis is supported/);
    expect(diagnosticOf(() => lowerJson(model([2, 3], [{ type: 'normalization', mean: [1, 2], variance: [1, 1] }]))).message)
      .toMatch(/normalization mean has 2 values for 3 channels/);
  });

  it('the generated module and the ONNX export match the interpreter, before a convolution', async () => {
    const spec = model([3, 3, 2], [
      { type: 'normalization', name: 'n' },
      { type: 'conv2d', name: 'c', filters: 2, kernel_size: 2 },
      { type: 'normalization', name: 'back', mean: [0.5, -1], variance: [2, 0.25], invert: true },
    ]);
    const values = (n: number, f: (i: number) => number) => ({ shape: [n], data: Float32Array.from({ length: n }, (_, i) => f(i)) });
    const weights = new Map([
      ['n/mean', values(2, (i) => i - 0.5)],
      ['n/variance', values(2, (i) => 0.5 + i)],
      ['c/kernel', { shape: [2, 2, 2, 2], data: Float32Array.from({ length: 16 }, (_, i) => Math.sin(i)) }],
      ['c/bias', values(2, (i) => 0.1 * i)],
    ]);
    const g = attachWeights(lowerJson(spec).graph, weights);
    const x = Float32Array.from({ length: 2 * 18 }, (_, i) => Math.cos(i));
    const want = interpret(g, { x: tensorOf([2, 3, 3, 2], x) })['back']!.data;
    const { js } = await generateInferenceModule(g, { name: 'norm' });
    const mod = await importModule(js, 'norm');
    const got = new mod.Model().run({ x }, 2)['back']!;
    const session = await ort.InferenceSession.create(exportOnnx(g));
    const onnx = (await session.run({ [session.inputNames[0]!]: new ort.Tensor('float32', x, [2, 3, 3, 2]) }))[session.outputNames[0]!]!.data as Float32Array;
    await session.release();
    for (const out of [got, onnx]) want.forEach((w, i) => expect(Math.abs(out[i]! - w)).toBeLessThan(1e-5 * Math.max(1, Math.abs(w))));
  });

  it('-O folds it into the next Dense or valid convolution, exactly, but not into a same-padded convolution', () => {
    const weights = (conv: string) => new Map([
      ['n/mean', { shape: [2], data: Float32Array.of(0.5, -1) }],
      ['n/variance', { shape: [2], data: Float32Array.of(4, 0.25) }],
      ['c/kernel', { shape: conv === 'dense' ? [2, 3] : [2, 2, 2, 3], data: Float32Array.from({ length: conv === 'dense' ? 6 : 24 }, (_, i) => Math.sin(i)) }],
      ['c/bias', { shape: [3], data: Float32Array.of(0.1, 0.2, 0.3) }],
    ]);
    const x = tensorOf([2, 3, 3, 2], Array.from({ length: 36 }, (_, i) => Math.cos(i)));
    const cases = [
      ['dense', { type: 'dense', name: 'c', units: 3 }, true],
      ['valid conv', { type: 'conv2d', name: 'c', filters: 3, kernel_size: 2 }, true],
      ['same conv', { type: 'conv2d', name: 'c', filters: 3, kernel_size: 2, padding: 'same' }, false],
    ] as const;
    for (const [what, layer, folds] of cases) {
      const g = attachWeights(lowerJson(model([3, 3, 2], [{ type: 'normalization', name: 'n' }, layer])).graph, weights(layer.type));
      const o = createPassManager().run(g, defaultPipeline);
      expect(o.nodes.some((n) => n.op === 'normalize'), what).toBe(!folds);
      const want = interpret(g, { x })['c']!.data;
      const got = interpret(o, { x })['c']!.data;
      want.forEach((w, i) => expect(Math.abs(got[i]! - w), what).toBeLessThan(1e-5 * Math.max(1, Math.abs(w))));
    }
  });
});
