/**
 * `modelc train` and batch normalization's two modes, end to end on a small
 * CSV whose features sit far from zero (so the moving statistics, starting at
 * mean 0 and variance 1 and moving by 1% a step, lag far behind):
 *
 * - without --precise-bn the summary warns that training-mode and
 *   inference-mode accuracy differ, naming --precise-bn; history.json has both;
 * - with --precise-bn the saved moving statistics are the population
 *   statistics of the batchnorm's input over the training data (checked with
 *   the reference interpreter on the saved weights), the gap closes, and
 *   history.json records the run; `--precise-bn 2` uses two batches;
 * - --trace writes fit's trace into history.json; an unknown layer fails
 *   before training, listing the traceable layers.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensors } from '../../src/formats/safetensors.js';
import { lowerFile } from '../../src/frontend/load.js';
import { fromF32 } from '../../src/ir/tensor.js';
import { interpretAll } from '../../src/interp/interpret.js';
import { attachWeights } from '../../src/weights/attach.js';
import { run, tempDir } from '../helpers/cli.js';
import { rng } from '../helpers/tensors.js';

const spec = `model bn_mlp {
  input x: [8]
  dense(16)
  batchnorm
  relu
  dense(1, activation: sigmoid)
  train {
    loss: binary_crossentropy
    optimizer: sgd(learning_rate: 0.1)
    metrics: [accuracy]
    batch_size: 16
    epochs: 2
  }
}
`;

const rows = 240;

/** 8 features around 5 (far from the moving statistics' start); the label: whether the first two sum above 10. */
function dataset(seed: number): { csv: string; x: Float32Array } {
  const next = rng(seed);
  const x = new Float32Array(rows * 8);
  const lines = Array.from({ length: rows }, (_, r) => {
    const f = Array.from({ length: 8 }, () => Number((5 + 2 * (next() * 2 - 1)).toFixed(4)));
    x.set(f, r * 8);
    return [...f, f[0]! + f[1]! > 10 ? 1 : 0].join(',');
  });
  return { csv: [[...Array.from({ length: 8 }, (_, i) => `f${i}`), 'y'].join(','), ...lines].join('\n') + '\n', x };
}

async function train(...extra: string[]) {
  const { csv, x } = dataset(7);
  const dir = tempDir({ 'bn.nn': spec, 'data.csv': csv });
  const out = join(dir, 'out');
  const r = await run('train', join(dir, 'bn.nn'), '--data', join(dir, 'data.csv'), '--label', 'y', '--seed', '3', '-o', out, ...extra);
  return { r, dir, out, x, record: () => JSON.parse(readFileSync(join(out, 'history.json'), 'utf8')) };
}

describe('modelc train with batch normalization', () => {
  it('warns when training-mode and inference-mode accuracy differ, naming --precise-bn', async () => {
    const { r, record } = await train();
    expect(r.code, r.stderr).toBe(0);
    const modes = record().modes;
    expect(modes).toMatchObject({ data: 'training', examples: 240 });
    expect(modes.training_accuracy - modes.inference_accuracy).toBeGreaterThan(0.05);
    expect(r.stdout).toMatch(
      /^warning: on 240 training examples, accuracy is \d+\.\d\d% in training mode \(batch statistics\) but \d+\.\d\d% in inference mode \(moving statistics\): the moving statistics lag behind the weights; --precise-bn recomputes them after training$/m,
    );
    expect(record().precise_bn).toBeUndefined();
  }, 60_000);

  it('--precise-bn: the saved moving statistics are the population statistics of the input, and the gap closes', async () => {
    const { r, out, x, record } = await train('--precise-bn');
    expect(r.code, r.stderr).toBe(0);
    expect(record().precise_bn).toEqual({ layers: ['batch_normalization'], batches: null, examples: 240 });
    const modes = record().modes;
    // Inference mode is no longer behind (with the population's statistics it can do better than single batches).
    expect(modes.inference_accuracy_after_precise_bn).toBeGreaterThanOrEqual(modes.training_accuracy - 0.05);
    expect(modes.inference_accuracy_after_precise_bn - modes.inference_accuracy).toBeGreaterThan(0.05);
    expect(r.stdout).toMatch(/^precise BN: the moving statistics of batch_normalization recomputed over 240 training examples; inference-mode accuracy on 240 training examples \d+\.\d\d% -> \d+\.\d\d% \(training mode \d+\.\d\d%\)$/m);
    expect(r.stdout).not.toMatch(/warning/);

    // The reference: the dense layer's output over every training example, with the saved weights.
    const weights = readSafetensors(readFileSync(join(out, 'bn_mlp.safetensors'))).tensors;
    const graph = attachWeights(lowerFile(join(out, '..', 'bn.nn')).graph, weights);
    const dense = interpretAll(graph, { x: fromF32([rows, 8], x) }).get('dense')!;
    const saved = (name: string) => weights.get(name)!.data;
    const [mean, variance] = [saved('batch_normalization/moving_mean'), saved('batch_normalization/moving_variance')];
    for (let c = 0; c < 16; c++) {
      let m = 0;
      for (let i = 0; i < rows; i++) m += dense.data[i * 16 + c]! / rows;
      let v = 0;
      for (let i = 0; i < rows; i++) v += (dense.data[i * 16 + c]! - m) ** 2 / rows;
      expect(Math.abs(mean[c]! - m)).toBeLessThan(1e-5 * Math.max(1, Math.abs(m)));
      expect(Math.abs(variance[c]! - v)).toBeLessThan(1e-5 * Math.max(1, v));
    }
    // The folded module was built from the recalibrated weights and agrees with the Trainer.
    expect(r.stdout).toMatch(/training accuracy \(240 examples\): (\d+\.\d\d)% before folding, \1% after folding/);
  }, 60_000);

  it('--precise-bn 2: two batches of the training data', async () => {
    const { r, record } = await train('--precise-bn', '2');
    expect(r.code, r.stderr).toBe(0);
    expect(record().precise_bn).toEqual({ layers: ['batch_normalization'], batches: 2, examples: 32 });
    expect(r.stdout).toMatch(/recomputed over 32 training examples \(2 batches\)/);
  }, 60_000);

  it('--trace writes the percentiles of the traced layers into history.json', async () => {
    const { r, record } = await train('--trace', 'activation,dense_1', '--trace-every', '4');
    expect(r.code, r.stderr).toBe(0);
    const trace = record().trace;
    expect(Object.keys(trace)).toEqual(['activation', 'dense_1']);
    for (const series of Object.values(trace) as { step: number[]; p15: number[]; p50: number[]; p85: number[] }[]) {
      expect(series.step).toEqual([1, 5, 9, 13, 17, 21, 25, 29]); // 2 epochs of 15 steps
      for (const p of [series.p15, series.p50, series.p85]) expect(p).toHaveLength(8);
      series.p15.forEach((v, k) => expect(v).toBeLessThanOrEqual(series.p85[k]!));
    }
  }, 60_000);

  it('--trace with a layer it cannot trace fails before training, listing the traceable layers', async () => {
    const noNonlinearity = await train('--trace', 'activation,dense');
    expect(noNonlinearity.r.code).toBe(1);
    expect(noNonlinearity.r.stderr).toMatch(/bn\.nn: error: --trace: layer 'dense' has no nonlinearity to trace; the layers it can trace \(as modelc check names them\) are activation, dense_1/);
    expect(noNonlinearity.r.stderr).not.toMatch(/epoch/);
    expect(existsSync(noNonlinearity.out)).toBe(false);
    const unknown = await train('--trace', 'nope');
    expect(unknown.r.code).toBe(1);
    expect(unknown.r.stderr).toMatch(/--trace: the model has no layer 'nope'; the layers it can trace/);
    const usage = await train('--trace-every', '3');
    expect(usage.r.code).toBe(2);
    expect(usage.r.stderr).toMatch(/--trace-every needs --trace/);
    const empty = await train('--trace', 'activation,');
    expect(empty.r.code).toBe(2);
    const unitUsage = await train('--trace-unit', '0');
    expect(unitUsage.r.code).toBe(2);
    expect(unitUsage.r.stderr).toMatch(/--trace-unit needs --trace/);
  }, 60_000);

  it('--trace-unit follows one unit: its percentiles differ from the whole layer\'s, and a unit past the layer fails before training', async () => {
    const whole = await train('--trace', 'activation', '--trace-every', '4');
    const one = await train('--trace', 'activation', '--trace-every', '4', '--trace-unit', '1');
    expect(one.r.code, one.r.stderr).toBe(0);
    const trace = one.record().trace;
    expect(trace.unit).toBe(1);
    const series = trace.layers['activation'] as { step: number[]; p15: number[]; p85: number[] };
    const all = whole.record().trace['activation'] as { step: number[]; p15: number[]; p85: number[] };
    // the same run (same seed and steps), only the values summarized differ
    expect(series.step).toEqual(all.step);
    expect(series.p15.some((v, k) => Math.abs(v - all.p15[k]!) > 1e-6 || Math.abs(series.p85[k]! - all.p85[k]!) > 1e-6)).toBe(true);
    const past = await train('--trace', 'activation', '--trace-unit', '9999');
    expect(past.r.code).toBe(1);
    expect(past.r.stderr).toMatch(/bn\.nn: error: --trace-unit 9999: layer 'activation' has \d+ units \(0 to \d+\)/);
    expect(existsSync(past.out)).toBe(false);
  }, 90_000);
});
