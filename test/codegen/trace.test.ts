/**
 * fit's `trace` (Ioffe & Szegedy 2015, Figure 1): the 15th, 50th and 85th
 * percentiles of each traced layer's nonlinearity input, on steps 1, 1 + K,
 * 1 + 2K, ..., equal percentiles computed here from the float64 reference
 * interpreter run on the same batch with the weights from before that step:
 * a fused `activation:` (its pre-activation), a standalone activation layer,
 * and an activation after a batchnorm (training mode: the batch's own
 * statistics, applied here by hand). Tracing changes no step; unknown layers
 * are refused with the list of traceable ones.
 */
import { describe, expect, it } from 'vitest';
import { buildTrainingProgram } from '../../src/autodiff/training.js';
import { generateTrainingModule } from '../../src/codegen/index.js';
import type { Graph } from '../../src/ir/graph.js';
import { parseGraph } from '../../src/ir/parse.js';
import { printGraph } from '../../src/ir/print.js';
import { verifyGraph } from '../../src/ops/verify.js';
import { fromF32, type Tensor } from '../../src/ir/tensor.js';
import { interpretAll } from '../../src/interp/interpret.js';
import { importModule } from '../helpers/generated.js';
import { model } from '../helpers/graphs.js';
import { buildTrainer, oneHot, seededData, trainableGraph, type FitOptions, type TrainerInstance, type TrainingModule } from '../helpers/trainer.js';

interface TraceSeries {
  step: number[];
  p15: number[];
  p50: number[];
  p85: number[];
}

/** The trainer with fit's trace option. */
interface Tracing extends TrainerInstance {
  fit(x: Float32Array, y: Float32Array, options: FitOptions & { trace?: { layers: string[]; every: number } }): { history: Record<string, number[]>; trace?: Record<string, TraceSeries> };
  fitAsync(x: Float32Array, y: Float32Array, options: FitOptions & { trace?: { layers: string[]; every: number } }): Promise<{ history: Record<string, number[]>; stopped: boolean; trace?: Record<string, TraceSeries> }>;
}

const training = { loss: 'categorical_crossentropy', optimizer: { type: 'sgd', learning_rate: 0.5 }, metrics: ['accuracy'] };

/** A fused sigmoid (`hidden`), a linear dense, a standalone relu (`activation`), a batchnorm before a standalone tanh. */
const spec = {
  ...model([5], [
    { type: 'dense', units: 6, activation: 'sigmoid', name: 'hidden' },
    { type: 'dense', units: 4 },
    { type: 'relu' },
    { type: 'dense', units: 4 },
    { type: 'batchnorm' },
    { type: 'tanh' },
    { type: 'dense', units: 3, activation: 'softmax' },
  ]),
  training,
};

const count = 40;
const batchSize = 8;
const x = seededData(count * 5, 21).map((v) => 2 * v);
const y = oneHot(count, 3, 22);

/** numpy's default percentile: linear between the order statistics around rank (n - 1) * p / 100. */
function percentile(values: ArrayLike<number>, p: number): number {
  const sorted = Float64Array.from(values).sort();
  const at = ((sorted.length - 1) * p) / 100;
  const k = Math.floor(at);
  return k === at ? sorted[k]! : sorted[k]! + (sorted[k + 1]! - sorted[k]!) * (at - k);
}

function paramsOf(weights: Record<string, Float32Array>, graph: Graph): Record<string, Tensor> {
  return Object.fromEntries(graph.params.map((p) => [p.name, fromF32(p.type.shape as number[], weights[p.name]!)]));
}

/** The batchnorm of a batch in training mode, by hand: (v - batch mean) / sqrt(biased batch variance + eps) * gamma + beta per channel. */
function batchNormalized(v: Tensor, gamma: Float32Array, beta: Float32Array, epsilon: number): Float64Array {
  const [n, c] = v.shape as [number, number];
  const out = new Float64Array(v.data.length);
  for (let j = 0; j < c; j++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += v.data[i * c + j]! / n;
    let variance = 0;
    for (let i = 0; i < n; i++) variance += (v.data[i * c + j]! - mean) ** 2 / n;
    for (let i = 0; i < n; i++) out[i * c + j] = ((v.data[i * c + j]! - mean) / Math.sqrt(variance + epsilon)) * gamma[j]! + beta[j]!;
  }
  return out;
}

/** Each layer's nonlinearity input on one batch, in training mode, from the interpreter and the weights before the step. */
function reference(graph: Graph, weights: Record<string, Float32Array>, batch: Float32Array): Record<string, ArrayLike<number>> {
  const values = interpretAll(graph, { x: fromF32([batch.length / 5, 5], batch) }, { params: paramsOf(weights, graph) });
  const inputOf = (layer: string) => values.get(graph.nodes.find((n) => n.layer === layer && ['sigmoid', 'relu', 'tanh', 'softmax'].includes(n.op))!.operands[0]!)!;
  // The tanh reads the batchnorm, which in a step normalizes by the batch's statistics (not the interpreter's moving ones) ...
  const normalized = batchNormalized(values.get('dense_1')!, weights['batch_normalization/gamma']!, weights['batch_normalization/beta']!, 0.001);
  // ... and so the logits after it: dense_2 of tanh of that.
  const [kernel, bias] = [weights['dense_2/kernel']!, weights['dense_2/bias']!];
  const n = batch.length / 5;
  const logits = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 3; j++) {
      let sum = bias[j]!;
      for (let k = 0; k < 4; k++) sum += Math.tanh(normalized[i * 4 + k]!) * kernel[k * 3 + j]!;
      logits[i * 3 + j] = sum;
    }
  }
  return {
    hidden: inputOf('hidden').data, // dense/linear: the pre-activation
    activation: inputOf('activation').data, // the standalone relu's input: dense's output
    activation_1: normalized,
    dense_2: logits, // the logits before the fused softmax
  };
}

describe('fit trace', () => {
  it('records the percentiles of each traced nonlinearity input every K steps, as the reference interpreter computes them', async () => {
    const built = await buildTrainer(spec as never);
    const trainer = new built.module.Trainer({ seed: 5 }) as Tracing;
    // Weights before each step: the initial ones, then a copy after every batch.
    const before = [trainer.getWeights()];
    const layers = ['hidden', 'activation', 'activation_1', 'dense_2'];
    const { trace, history } = trainer.fit(x, y, { epochs: 3, batchSize, shuffle: false, trace: { layers, every: 4 }, onBatchEnd: () => before.push(trainer.getWeights()) });
    expect(history['loss']).toHaveLength(3);
    expect(Object.keys(trace!)).toEqual(layers);
    const steps = (count / batchSize) * 3; // 15
    for (const layer of layers) expect(trace![layer]!.step).toEqual([1, 5, 9, 13]);
    for (const [k, step] of trace!['hidden']!.step.entries()) {
      const b = (step - 1) % (count / batchSize); // no shuffling: batch b of the epoch
      const expected = reference(built.graph, before[step - 1]!, x.slice(b * batchSize * 5, (b + 1) * batchSize * 5));
      for (const layer of layers) {
        const series = trace![layer]!;
        for (const [p, got] of [[15, series.p15[k]!], [50, series.p50[k]!], [85, series.p85[k]!]] as const) {
          expect(Math.abs(got - percentile(expected[layer]!, p)), `${layer} p${p} at step ${step}`).toBeLessThan(1e-5);
        }
        expect(series.p15[k]!).toBeLessThanOrEqual(series.p50[k]!);
        expect(series.p50[k]!).toBeLessThanOrEqual(series.p85[k]!);
      }
    }
    expect(before).toHaveLength(steps + 1);
  });

  it('with unit: the percentiles of that unit alone over the batch, as the reference computes them; a unit a layer lacks is refused', async () => {
    const built = await buildTrainer(spec as never);
    const trainer = new built.module.Trainer({ seed: 5 }) as Tracing & { fit(x: Float32Array, y: Float32Array, options: FitOptions & { trace?: { layers: string[]; every: number; unit?: number } }): { trace?: Record<string, TraceSeries> } };
    const before = [trainer.getWeights()];
    const layers = ['hidden', 'activation_1'];
    const units = { hidden: 6, activation_1: 4 } as const;
    const { trace } = trainer.fit(x, y, { epochs: 1, batchSize, shuffle: false, trace: { layers, every: 2, unit: 3 }, onBatchEnd: () => before.push(trainer.getWeights()) });
    let compared = 0;
    for (const [k, step] of trace!['hidden']!.step.entries()) {
      const expected = reference(built.graph, before[step - 1]!, x.slice((step - 1) * batchSize * 5, step * batchSize * 5));
      for (const layer of layers) {
        const all = expected[layer]!;
        const n = units[layer as keyof typeof units];
        const unit = Array.from({ length: all.length / n }, (_, i) => all[i * n + 3]!);
        const whole = [15, 50, 85].map((p) => percentile(all, p));
        const series = trace![layer]!;
        for (const [p, got] of [[15, series.p15[k]!], [50, series.p50[k]!], [85, series.p85[k]!]] as const) {
          expect(Math.abs(got - percentile(unit, p)), `${layer} unit 3 p${p} at step ${step}`).toBeLessThan(1e-5);
          compared++;
        }
        // the unit's percentiles are not the layer's (else this would not tell them apart)
        expect(Math.abs(series.p15[k]! - whole[0]!) + Math.abs(series.p85[k]! - whole[2]!)).toBeGreaterThan(1e-4);
      }
    }
    expect(compared).toBe(3 * 2 * 3); // steps 1, 3, 5 of 5; two layers; three percentiles
    expect(() => trainer.fit(x, y, { epochs: 1, batchSize, trace: { layers: ['activation_1'], every: 1, unit: 4 } })).toThrow('trace.unit 4 is not a unit of "activation_1", which has 4');
    expect(() => trainer.fit(x, y, { epochs: 1, batchSize, trace: { layers: ['hidden'], every: 1, unit: 1.5 } })).toThrow('trace.unit must be a non-negative integer, got 1.5');
  });

  it('changes no step: the same losses and weights with and without it (fitAsync too)', async () => {
    const built = await buildTrainer(spec as never);
    const plain = new built.module.Trainer({ seed: 5 }) as Tracing;
    const traced = new built.module.Trainer({ seed: 5 }) as Tracing;
    const a = plain.fit(x, y, { epochs: 2, batchSize });
    const b = await traced.fitAsync(x, y, { epochs: 2, batchSize, trace: { layers: ['hidden', 'activation_1'], every: 1 } });
    expect(a.trace).toBeUndefined();
    expect(b.trace!['hidden']!.step).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    // The fused sigmoid's pre-activation is computed apart on traced steps: the step itself is untouched.
    expect(b.history).toEqual(a.history);
    expect(traced.getWeights()).toEqual(plain.getWeights());
    // Steps continue the trainer's count across calls.
    const c = traced.fit(x, y, { epochs: 1, batchSize, trace: { layers: ['activation'], every: 3 } });
    expect(c.trace!['activation']!.step).toEqual([13]);
  });

  it('with --simd: the traced values come from the same memory as the SIMD kernels write', async () => {
    const { graph, training: spec2 } = trainableGraph(spec as never);
    const program = buildTrainingProgram(graph, spec2);
    const load = async (simd: boolean) => new (await importModule<TrainingModule>((await generateTrainingModule(program, { name: 't', simd })).js, `t${simd ? '.simd' : ''}.train`)).Trainer({ seed: 5 }) as Tracing & { usesSimd?: boolean };
    const [simd, plain] = [await load(true), await load(false)];
    const options = { epochs: 2, batchSize, trace: { layers: ['hidden', 'activation', 'dense_2'], every: 3 } };
    const a = simd.fit(x, y, options).trace!;
    const b = plain.fit(x, y, options).trace!;
    expect(simd.usesSimd).toBe(true);
    for (const layer of options.trace.layers) {
      expect(a[layer]!.step).toEqual(b[layer]!.step);
      for (const p of ['p15', 'p50', 'p85'] as const) {
        a[layer]![p].forEach((v, k) => expect(Math.abs(v - b[layer]![p][k]!), `${layer} ${p}`).toBeLessThan(1e-4)); // SIMD sums in float32
      }
    }
  });

  it('the traced step is the step, node for node, plus a copy of each fused producer without its activation', () => {
    const { graph, training: spec2 } = trainableGraph(spec as never);
    const { step, stepTraced, traceable } = buildTrainingProgram(graph, spec2);
    verifyGraph(stepTraced);
    expect(printGraph(parseGraph(printGraph(stepTraced)))).toBe(printGraph(stepTraced));
    expect(traceable).toEqual([
      { layer: 'hidden', value: 'hidden/linear' },
      { layer: 'activation', value: 'dense' },
      { layer: 'activation_1', value: 'batch_normalization' },
      { layer: 'dense_2', value: 'dense_2/linear' },
    ]);
    const extra = stepTraced.nodes.filter((n) => !step.nodes.some((m) => m.result === n.result));
    // hidden's sigmoid and the standalone relu after dense were fused; the batchnorm and the logits are computed anyway.
    expect(extra.map((n) => `${n.result} = ${n.op} ${JSON.stringify(n.attrs)}`)).toEqual(['hidden/linear = dense {}', 'dense = dense {}']);
    expect(stepTraced.outputs).toEqual([...step.outputs, 'hidden/linear', 'dense', 'batch_normalization', 'dense_2/linear']);
  });

  it('refuses unknown layers and layers without a nonlinearity, listing the traceable ones, before any step', async () => {
    const built = await buildTrainer(spec as never);
    const trainer = new built.module.Trainer() as Tracing;
    const before = trainer.getWeights();
    const listed = /the traceable layers are "hidden", "activation", "activation_1", "dense_2"$/;
    expect(() => trainer.fit(x, y, { epochs: 1, batchSize, trace: { layers: ['nope'], every: 1 } })).toThrow(listed);
    expect(() => trainer.fit(x, y, { epochs: 1, batchSize, trace: { layers: ['dense'], every: 1 } })).toThrow(/"dense" is not a layer with a nonlinearity/);
    await expect(trainer.fitAsync(x, y, { epochs: 1, batchSize, trace: { layers: ['batch_normalization'], every: 1 } })).rejects.toThrow(listed);
    expect(() => trainer.fit(x, y, { epochs: 1, batchSize, trace: { layers: ['hidden'], every: 0 } })).toThrow(/trace.every must be a positive integer/);
    expect(trainer.getWeights()).toEqual(before);
  });
});
