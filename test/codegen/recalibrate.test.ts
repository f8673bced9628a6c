/**
 * `Trainer.recalibrate` (precise batch normalization) and `predict(x, n, {
 * training: true })`, checked against the float64 reference interpreter:
 *
 * - after recalibrate, each batchnorm's moving mean and moving variance are
 *   the population mean and biased variance of its input, where the input is
 *   the inference graph's value run with the trainer's final weights: so
 *   layer 2's statistics must be those of an input computed through layer 1's
 *   recalibrated statistics (the old ones give other numbers, checked too);
 * - dense and conv models, a batchnorm on a middle axis, one on the data input;
 * - `batches` uses only the first batches; a non-finite statistic changes nothing;
 * - predict in training mode is the model with each chunk's batch statistics
 *   (the interpreter with the moving statistics replaced by them), and
 *   changes no state.
 */
import { describe, expect, it } from 'vitest';
import { buildTrainingProgram } from '../../src/autodiff/training.js';
import { generateTrainingModule } from '../../src/codegen/index.js';
import type { Graph } from '../../src/ir/graph.js';
import { aroundAxis, fromF32, type Tensor } from '../../src/ir/tensor.js';
import { interpretAll } from '../../src/interp/interpret.js';
import { importModule } from '../helpers/generated.js';
import { model } from '../helpers/graphs.js';
import { buildTrainer, oneHot, seededData, trainableGraph, type Built, type TrainerInstance, type TrainingModule } from '../helpers/trainer.js';

/** The trainer as these tests use it: the generated members beyond the shared contract. */
interface Recalibrating extends TrainerInstance {
  recalibrate(x: Float32Array, options?: { batchSize?: number; batches?: number }): void;
  predict(x: Float32Array, batchSize: number, options?: { training?: boolean }): Float32Array;
}

const training = { loss: 'categorical_crossentropy', optimizer: { type: 'sgd', learning_rate: 0.1 }, metrics: ['accuracy'] };

/** Two batchnorms in sequence after dense layers (momentum 0.99: the moving statistics lag). */
const dense = {
  ...model([6], [
    { type: 'dense', units: 8, kernel_initializer: 'uniform' },
    { type: 'batchnorm' },
    { type: 'relu' },
    { type: 'dense', units: 8, kernel_initializer: 'uniform' },
    { type: 'batchnorm' },
    { type: 'tanh' },
    { type: 'dense', units: 3, activation: 'softmax' },
  ]),
  training,
};

/** Conv batchnorms: per channel over N, H, W (axis -1), then along axis 1 (the rows, a middle axis). */
const conv = {
  ...model([5, 5, 2], [
    { type: 'conv2d', filters: 3, kernel_size: 3, padding: 'same' },
    { type: 'batchnorm' },
    { type: 'relu' },
    { type: 'conv2d', filters: 4, kernel_size: 3, padding: 'same' },
    { type: 'batchnorm', axis: 1 },
    { type: 'relu' },
    { type: 'global_avg_pool2d' },
    { type: 'dense', units: 3, activation: 'softmax' },
  ]),
  training,
};

/** A batchnorm on the data input itself. */
const onInput = { ...model([3], [{ type: 'batchnorm' }, { type: 'dense', units: 3, activation: 'softmax' }]), training };

/** Inputs with a non-zero mean and a spread unlike 1, so the initial moving statistics are far off. */
function data(count: number, perExample: number, seed: number): Float32Array {
  return seededData(count * perExample, seed).map((v, i) => 3 * v + 1 + (i % 3));
}

/** The trainer's weights as interpreter parameters. */
function paramsOf(weights: Record<string, Float32Array>, graph: Graph): Record<string, Tensor> {
  return Object.fromEntries(graph.params.map((p) => [p.name, fromF32(p.type.shape as number[], weights[p.name]!)]));
}

/** Per batchnorm node in graph order: its moving statistics' names and the mean and biased variance (float64) of its input. */
function populationStats(graph: Graph, x: Float32Array, count: number, weights: Record<string, Float32Array>) {
  const inputShape = graph.inputs[0]!.type.shape.slice(1) as number[];
  const values = interpretAll(graph, { x: fromF32([count, ...inputShape], x.subarray(0, count * inputShape.reduce((a, b) => a * b, 1))) }, { params: paramsOf(weights, graph) });
  return graph.nodes.filter((n) => n.op === 'batchnorm').map((n) => {
    const input = values.get(n.operands[0]!)!;
    const { outer, n: channels, inner } = aroundAxis(input.shape, n.attrs['axis'] as number);
    const mean = new Float64Array(channels);
    const variance = new Float64Array(channels);
    const each = (f: (v: number, c: number) => void) => {
      for (let o = 0; o < outer; o++) for (let c = 0; c < channels; c++) for (let i = 0; i < inner; i++) f(input.data[(o * channels + c) * inner + i]!, c);
    };
    each((v, c) => (mean[c] += v / (outer * inner)));
    each((v, c) => (variance[c] += (v - mean[c]!) ** 2 / (outer * inner)));
    return { layer: n.layer, meanName: n.operands.at(-2)!, varianceName: n.operands.at(-1)!, mean, variance };
  });
}

function expectStats(actual: Float32Array, expected: Float64Array, what: string): void {
  for (let c = 0; c < expected.length; c++) {
    expect(Math.abs(actual[c]! - expected[c]!), `${what}[${c}]: ${actual[c]} vs ${expected[c]}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(expected[c]!)));
  }
}

function largestDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** A trainer of `spec` after a few steps of training on seeded data. */
async function trained(spec: object, perExample: number, count: number): Promise<{ built: Built; trainer: Recalibrating; x: Float32Array }> {
  const built = await buildTrainer(spec as never);
  const trainer = new built.module.Trainer({ seed: 3 }) as Recalibrating;
  const x = data(count, perExample, 11);
  trainer.fit(x, oneHot(count, 3, 12), { epochs: 2, batchSize: 8 });
  return { built, trainer, x };
}

describe('Trainer.recalibrate', () => {
  it.each([
    ['dense', dense, 6],
    ['conv (axis -1, then axis 1)', conv, 50],
  ])('%s: each batchnorm gets the population statistics of its input, layer by layer', async (_, spec, perExample) => {
    const count = 40;
    const { built, trainer, x } = await trained(spec, perExample, count);
    const old = trainer.getWeights();
    trainer.recalibrate(x, { batchSize: 16 }); // 16, 16, 8: chunks do not change the result
    const now = trainer.getWeights();
    const expected = populationStats(built.graph, x, count, now);
    expect(expected).toHaveLength(2);
    for (const bn of expected) {
      expectStats(now[bn.meanName]!, bn.mean, `${bn.layer} moving_mean`);
      expectStats(now[bn.varianceName]!, bn.variance, `${bn.layer} moving_variance`);
      // The lagging moving averages were far from these.
      expect(largestDifference(old[bn.meanName]!, bn.mean)).toBeGreaterThan(0.01);
    }
    // Layer 2 computed through layer 1's old statistics would be something else: the order matters.
    const [first, second] = expected as [(typeof expected)[0], (typeof expected)[0]];
    const throughOld = populationStats(built.graph, x, count, { ...now, [first.meanName]: old[first.meanName]!, [first.varianceName]: old[first.varianceName]! })[1]!;
    expect(largestDifference(throughOld.mean, second.mean) + largestDifference(throughOld.variance, second.variance)).toBeGreaterThan(1e-3);
    // Nothing but the moving statistics changed.
    for (const [name, value] of Object.entries(now)) {
      if (!/moving_(mean|variance)$/.test(name)) expect(value, name).toEqual(old[name]);
    }
  });

  it('a batchnorm on the data input: the statistics of x itself', async () => {
    const { built, trainer, x } = await trained(onInput, 3, 20);
    trainer.recalibrate(x);
    const now = trainer.getWeights();
    const [bn] = populationStats(built.graph, x, 20, now);
    expectStats(now[bn!.meanName]!, bn!.mean, 'moving_mean');
    expectStats(now[bn!.varianceName]!, bn!.variance, 'moving_variance');
  });

  it('batches: only the first batches of x count', async () => {
    const { built, trainer, x } = await trained(dense, 6, 40);
    trainer.recalibrate(x, { batchSize: 8, batches: 3 });
    const now = trainer.getWeights();
    for (const bn of populationStats(built.graph, x, 24, now)) {
      expectStats(now[bn.meanName]!, bn.mean, `${bn.layer} moving_mean`);
      expectStats(now[bn.varianceName]!, bn.variance, `${bn.layer} moving_variance`);
    }
    // More batches than x has: every example.
    trainer.recalibrate(x, { batchSize: 8, batches: 100 });
    const all = trainer.getWeights();
    for (const bn of populationStats(built.graph, x, 40, all)) expectStats(all[bn.meanName]!, bn.mean, `${bn.layer} moving_mean`);
    expect(() => trainer.recalibrate(x, { batches: 0 })).toThrow(/batches must be a positive integer/);
    expect(() => trainer.recalibrate(x, { batchSize: 1.5 })).toThrow(RangeError);
    expect(() => trainer.recalibrate(x.subarray(0, 7))).toThrow(/multiple of 6/);
  });

  it('a non-finite statistic throws naming the layer and keeps every moving statistic as it was', async () => {
    const { trainer, x } = await trained(dense, 6, 16);
    const weights = trainer.getWeights();
    // Layer 1 recalibrates fine; layer 2's input overflows float32.
    trainer.setWeights({ ...weights, 'dense_1/kernel': weights['dense_1/kernel']!.map(() => 3e37) });
    const before = trainer.getWeights();
    expect(() => trainer.recalibrate(x)).toThrow(/statistics of the input of batch_normalization_1 are not finite/);
    expect(trainer.getWeights()).toEqual(before);
  });

  it('with --simd: parameters in the WebAssembly memory, a larger batch than training grows it first', async () => {
    const { graph, training: spec } = trainableGraph(dense as never);
    const mod = await generateTrainingModule(buildTrainingProgram(graph, spec), { name: 't', simd: true });
    const trainer = new (await importModule<TrainingModule>(mod.js, 't.simd.train')).Trainer({ seed: 3 }) as Recalibrating & { usesSimd: boolean };
    const x = data(40, 6, 11);
    trainer.fit(x, oneHot(40, 3, 12), { epochs: 1, batchSize: 4 });
    trainer.recalibrate(x, { batchSize: 40 });
    expect(trainer.usesSimd).toBe(true);
    const now = trainer.getWeights();
    // SIMD products sum in float32: a looser bound than the TypeScript kernels' float64 sums.
    for (const bn of populationStats(graph, x, 40, now)) {
      expect(largestDifference(now[bn.meanName]!, bn.mean)).toBeLessThan(1e-4);
      expect(largestDifference(now[bn.varianceName]!, bn.variance)).toBeLessThan(1e-4);
    }
  });

  it('a model without batch normalization: only the arguments are checked', async () => {
    const built = await buildTrainer({ ...model([4], [{ type: 'dense', units: 3, activation: 'softmax' }]), training } as never);
    const trainer = new built.module.Trainer() as Recalibrating;
    const before = trainer.getWeights();
    trainer.recalibrate(seededData(8, 1));
    expect(trainer.getWeights()).toEqual(before);
    expect(() => trainer.recalibrate(seededData(8, 1), { batches: -1 })).toThrow(RangeError);
  });
});

describe('predict in training mode', () => {
  it('normalizes each chunk by its own batch statistics, without dropout, and changes nothing', async () => {
    const spec = { ...model([6], [{ type: 'dense', units: 5 }, { type: 'batchnorm' }, { type: 'dropout', rate: 0.5 }, { type: 'dense', units: 3, activation: 'softmax' }]), training };
    const { built, trainer, x } = await trained(spec, 6, 24);
    const weights = trainer.getWeights();
    const inference = trainer.predict(x, 12);
    const chunks = trainer.predict(x, 12, { training: true });
    // Reference: each chunk through the inference graph with the moving statistics set to that chunk's statistics.
    for (const start of [0, 12]) {
      const chunk = x.slice(start * 6, (start + 12) * 6);
      const [bn] = populationStats(built.graph, chunk, 12, weights);
      const asMoving = { ...weights, [bn!.meanName]: Float32Array.from(bn!.mean), [bn!.varianceName]: Float32Array.from(bn!.variance) };
      const values = interpretAll(built.graph, { x: fromF32([12, 6], chunk) }, { params: paramsOf(asMoving, built.graph) });
      const expected = values.get(built.graph.outputs[0]!)!.data;
      expect(largestDifference(chunks.subarray(start * 3, (start + 12) * 3), expected)).toBeLessThan(1e-5);
    }
    expect(largestDifference(chunks, inference)).toBeGreaterThan(1e-3); // the moving statistics lag
    expect(trainer.getWeights()).toEqual(weights);
    expect(trainer.predict(x, 12)).toEqual(inference);
  });
});
