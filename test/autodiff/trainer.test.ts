/**
 * The training pipeline end to end: the step graph's gradients against
 * finite differences of its own loss (the reference interpreter, float64),
 * the generated Trainer against the interpreter step by step, dropout masks
 * (kept fraction, preserved mean, determinism under a seed), non-finite
 * steps, partial batches, and the save -> compile --weights -> predict loop.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTrainingProgram } from '../../src/autodiff/training.js';
import { interpret } from '../../src/interp/interpret.js';
import { fromF32, type Tensor } from '../../src/ir/tensor.js';
import { parseGraph } from '../../src/ir/parse.js';
import { printGraph } from '../../src/ir/print.js';
import { run } from '../helpers/cli.js';
import { importModule } from '../helpers/generated.js';
import { model } from '../helpers/graphs.js';
import { rng } from '../helpers/tensors.js';
import { buildTrainer, oneHot, seededData, trainableGraph } from '../helpers/trainer.js';

/** A small BN MLP, no dropout; SGD so that w_new = w - lr * grad recovers the gradient exactly. */
const mlp = (optimizer: object = { type: 'sgd', learning_rate: 0.5 }, loss = 'categorical_crossentropy') => ({
  ...model([5], [
    { type: 'dense', units: 6 },
    { type: 'batchnorm' },
    { type: 'tanh' },
    { type: 'dense', units: 3, activation: 'softmax' },
  ]),
  training: { loss, optimizer, metrics: ['accuracy'] },
});

const feedsOf = (x: Float32Array, y: Float32Array, n: number, xs: number, ys: number) => ({
  x: { shape: [n, xs], data: Float64Array.from(x) },
  labels: { shape: [n, ys], data: Float64Array.from(y) },
});

describe('the step graph', () => {
  const { graph, training } = trainableGraph(mlp());
  const program = buildTrainingProgram(graph, training);
  const n = 4;
  const x = seededData(n * 5, 1);
  const y = oneHot(n, 3, 2);

  it('replaces batchnorm by batch statistics and updates every weight, moving statistic and the iteration count', () => {
    const text = printGraph(program.step);
    expect(text).toContain('batchnorm_train(');
    expect(text).not.toMatch(/= batchnorm\(/);
    const updated = program.updates.map((u) => u.param).sort();
    expect(updated).toEqual([...graph.params.map((p) => p.name), 'optimizer/iterations'].sort());
    // softmax before categorical crossentropy is scored from the logits
    expect(text).toMatch(/loss\(%"?dense_1\/linear"?, %labels\) \{[^}]*from_logits=true/);
  });

  it('prints as textual IR that parses back to the same text (step, evaluate and predict)', () => {
    for (const g of [program.step, program.evaluate, program.predict]) expect(printGraph(parseGraph(printGraph(g)))).toBe(printGraph(g));
  });

  it("gives each trainable weight the gradient of the step's own loss (central differences, float64)", () => {
    const lr = 0.5;
    const params: Record<string, Tensor> = Object.fromEntries(program.step.params.map((p) => [p.name, fromF32(p.type.shape as number[], p.value!)]));
    const run = (ps: Record<string, Tensor>) => interpret(program.step, feedsOf(x, y, n, 5, 3), { params: ps });
    const out = run(params);
    for (const p of graph.params.filter((q) => q.trainable)) {
      const update = program.updates.find((u) => u.param === p.name)!;
      const w = params[p.name]!;
      const grad = out[update.value]!.data.map((wNew, i) => (w.data[i]! - wNew) / lr);
      for (let i = 0; i < w.data.length; i += Math.max(1, Math.floor(w.data.length / 7))) {
        const at = (h: number) => {
          const data = Float64Array.from(w.data);
          data[i] = data[i]! + h;
          return run({ ...params, [p.name]: { shape: w.shape, data } })[program.loss]!.data[0]!;
        };
        const numeric = (at(1e-6) - at(-1e-6)) / 2e-6;
        expect(Math.abs(grad[i]! - numeric), `${p.name}[${i}]`).toBeLessThan(1e-6 * Math.max(1, Math.abs(numeric)));
      }
    }
  });

  it('moves the moving statistics by momentum towards the biased batch statistics', () => {
    const out = interpret(program.step, feedsOf(x, y, n, 5, 3), {});
    const dense = interpret({ ...graph, outputs: ['dense'] }, { x: { shape: [n, 5], data: Float64Array.from(x) } })['dense']!;
    const update = (name: string) => out[program.updates.find((u) => u.param === name)!.value]!.data;
    for (let c = 0; c < 6; c++) {
      const v = [0, 1, 2, 3].map((r) => dense.data[r * 6 + c]!);
      const mean = v.reduce((s, e) => s + e, 0) / n;
      const variance = v.reduce((s, e) => s + (e - mean) ** 2, 0) / n;
      expect(update('batch_normalization/moving_mean')[c]).toBeCloseTo(0.99 * 0 + 0.01 * mean, 6);
      expect(update('batch_normalization/moving_variance')[c]).toBeCloseTo(0.99 * 1 + 0.01 * variance, 6);
    }
  });
});

describe('the generated Trainer', () => {
  const renormMlp = (optimizer: object) => ({
    ...model([5], [
      { type: 'dense', units: 6 },
      { type: 'batchnorm', renorm: true, renorm_clipping: { rmax: 1.5, rmin: 0.5, dmax: 0.3 }, renorm_momentum: 0.9 },
      { type: 'relu' },
      { type: 'dense', units: 3, activation: 'sigmoid' },
    ]),
    training: { loss: 'binary_crossentropy', optimizer, metrics: ['accuracy'] },
  });
  it.each([
    ['sgd with momentum', mlp({ type: 'sgd', learning_rate: 0.1, momentum: 0.9 })],
    ['adamw, batch renormalization, sigmoid + binary crossentropy', renormMlp({ type: 'adamw', learning_rate: 0.01 })],
    ['rmsprop centered with momentum', renormMlp({ type: 'rmsprop', learning_rate: 0.01, centered: true, momentum: 0.5 })],
    ['adam with amsgrad, mse', { ...mlp({ type: 'adam', amsgrad: true, learning_rate: 0.01 }, 'mse') }],
  ])('follows the reference interpreter step by step (loss and weights): %s', async (_, spec) => {
    const built = await buildTrainer(spec);
    const trainer = new built.module.Trainer();
    const { program } = built;
    let params: Record<string, Tensor> = Object.fromEntries(program.step.params.map((p) => [p.name, fromF32(p.type.shape as number[], p.value!)]));
    for (let step = 0; step < 3; step++) {
      const x = seededData(8 * 5, 10 + step);
      const y = oneHot(8, 3, 20 + step);
      const out = interpret(program.step, feedsOf(x, y, 8, 5, 3), { params });
      const loss = trainer.trainOnBatch(x, y, 8);
      expect(loss).toBeCloseTo(out[program.loss]!.data[0]!, 5);
      params = { ...params };
      for (const u of program.updates) params[u.param] = { shape: params[u.param]!.shape, data: Float64Array.from(Float32Array.from(out[u.value]!.data)) };
    }
    const weights = trainer.getWeights();
    for (const name of program.weights) {
      const want = params[name]!.data;
      weights[name]!.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-5 * Math.max(1, Math.abs(want[i]!))));
    }
  });

  it('handles a last partial batch in fit and evaluates in chunks as one batch', async () => {
    const built = await buildTrainer(mlp());
    const trainer = new built.module.Trainer({ seed: 3 });
    const x = seededData(10 * 5, 4);
    const y = oneHot(10, 3, 5);
    const batches: number[] = [];
    const { history } = trainer.fit(x, y, { epochs: 2, batchSize: 4, onBatchEnd: (b) => batches.push(b), validationData: [x, y] });
    expect(batches).toEqual([0, 1, 2, 0, 1, 2]);
    expect(Object.keys(history).sort()).toEqual(['accuracy', 'loss', 'val_accuracy', 'val_loss']);
    expect(history['loss']!.length).toBe(2);
    const whole = trainer.evaluate(x, y, 10);
    const chunked = trainer.evaluate(x, y, 3);
    expect(chunked.loss).toBeCloseTo(whole.loss, 5);
    expect(chunked.accuracy).toBeCloseTo(whole.accuracy!, 6);
    expect(history['val_loss']![1]).toBeCloseTo(whole.loss, 5);
    expect(trainer.predict(x, 3)).toEqual(trainer.predict(x, 10));
  });

  it('fitAsync trains exactly as fit does, and an aborted signal stops it after the current batch', async () => {
    const built = await buildTrainer(mlp());
    const x = seededData(10 * 5, 4);
    const y = oneHot(10, 3, 5);
    const sync = new built.module.Trainer({ seed: 3 });
    const viaAsync = new built.module.Trainer({ seed: 3 });
    const want = sync.fit(x, y, { epochs: 3, batchSize: 4 });
    const got = await viaAsync.fitAsync(x, y, { epochs: 3, batchSize: 4 });
    expect(got).toEqual({ ...want, stopped: false });
    expect(viaAsync.getWeights()).toEqual(sync.getWeights());

    const stopping = new built.module.Trainer({ seed: 3 });
    const signal = { aborted: false };
    const batches: number[] = [];
    const partial = await stopping.fitAsync(x, y, {
      epochs: 3,
      batchSize: 4,
      signal,
      onBatchEnd: (b) => {
        batches.push(b);
        if (batches.length === 5) signal.aborted = true; // the second batch of epoch 2
      },
    });
    expect(partial.stopped).toBe(true);
    expect(batches).toEqual([0, 1, 2, 0, 1]);
    expect(partial.history['loss']).toEqual(want.history['loss']!.slice(0, 1));
    // Five steps taken, no more: the same weights as five trainOnBatch calls of fit's batches.
    const five = new built.module.Trainer({ seed: 3 });
    let steps = 0;
    await five.fitAsync(x, y, { epochs: 3, batchSize: 4, signal: { get aborted() { return steps === 5; } }, onBatchEnd: () => steps++ });
    expect(stopping.getWeights()).toEqual(five.getWeights());
  });

  it('throws on a non-finite step, naming the step and the tensor, and keeps the weights', async () => {
    const built = await buildTrainer(mlp());
    const trainer = new built.module.Trainer();
    const x = seededData(4 * 5, 4);
    const y = oneHot(4, 3, 5);
    trainer.trainOnBatch(x, y, 4);
    const before = trainer.getWeights();
    const bad = x.slice();
    bad[3] = Infinity;
    expect(() => trainer.trainOnBatch(bad, y, 4)).toThrow(/step 2 produced a non-finite value in the (loss|new value of dense\/kernel)/);
    expect(trainer.getWeights()).toEqual(before);
    trainer.learningRate = 1e300; // Infinity as float32
    expect(() => trainer.trainOnBatch(x, y, 4)).toThrow(/step 2 produced a non-finite value in the new value of /);
    expect(trainer.getWeights()).toEqual(before);
  });
});

describe('dropout in training', () => {
  // x = ones -> dropout(0.3) -> dense(1) with a kernel of ones and no bias: the output is the sum of
  // the mask, so the mae loss against 0 is (kept elements) / 0.7. A learning rate of 0 keeps the kernel.
  const spec = (seed?: number) => ({
    ...model([1000], [
      { type: 'dropout', rate: 0.3, ...(seed === undefined ? {} : { seed }) },
      { type: 'dense', units: 1, use_bias: false, kernel_initializer: 'ones' },
    ]),
    training: { loss: 'mae', optimizer: { type: 'sgd', learning_rate: 0.01 } },
  });
  const ones = new Float32Array(1000).fill(1);
  const zero = new Float32Array(1);

  it('keeps 1 - rate of the elements, scaled by 1 / (1 - rate): the mean is preserved', async () => {
    const { module } = await buildTrainer(spec());
    const trainer = new module.Trainer({ seed: 7, learningRate: 0 });
    const losses = Array.from({ length: 20 }, () => trainer.trainOnBatch(ones, zero, 1));
    for (const l of losses) {
      const kept = (l * 0.7) / 1000;
      expect(Math.abs(kept - 0.7)).toBeLessThan(5 * Math.sqrt(0.21 / 1000)); // 5 sigma
      expect(Math.abs(kept * 1000 - Math.round(kept * 1000))).toBeLessThan(1e-3); // whole elements
    }
    const mean = losses.reduce((s, l) => s + l, 0) / losses.length / 1000;
    expect(Math.abs(mean - 1)).toBeLessThan(5 * Math.sqrt(0.21 / 20000) / 0.7);
    expect(new Set(losses).size).toBeGreaterThan(10); // a new mask every step
    // inference mode: no dropout at all
    expect(trainer.predict(ones, 1)[0]).toBeCloseTo(1000, 3);
  });

  it('is deterministic under a seed; another seed draws other masks; a layer seed overrides the trainer seed', async () => {
    const { module } = await buildTrainer(spec());
    const run = (seed: number) => {
      const t = new module.Trainer({ seed, learningRate: 0 });
      return [1, 2, 3].map(() => t.trainOnBatch(ones, zero, 1));
    };
    expect(run(1)).toEqual(run(1));
    expect(run(1)).not.toEqual(run(2));
    const seeded = (await buildTrainer(spec(42))).module;
    const layerRun = (seed: number) => {
      const t = new seeded.Trainer({ seed, learningRate: 0 });
      return [1, 2].map(() => t.trainOnBatch(ones, zero, 1));
    };
    expect(layerRun(1)).toEqual(layerRun(2));
  });

  it("draws each mask element from the layer's mulberry32 stream: 0 when u < rate, else 1 / (1 - rate)", async () => {
    // x = ones at batch 1: the loss is the sum of the step's 1000 mask elements, so it counts
    // exactly the elements whose draw u is at least the rate, scaled by 1 / 0.7.
    const seeded = (await buildTrainer(spec(42))).module;
    const t = new seeded.Trainer({ seed: 3, learningRate: 0 });
    const next = rng(42);
    for (let step = 0; step < 3; step++) {
      const u = Array.from({ length: 1000 }, () => next());
      const kept = u.filter((v) => v >= 0.3).length;
      const loss = t.trainOnBatch(ones, zero, 1);
      expect(loss).toBeCloseTo(kept / 0.7, 3);
    }
  });
});

describe('train, save, compile --weights, predict', () => {
  it('the folded inference module predicts what Trainer.predict does (1e-5)', async () => {
    const built = await buildTrainer('examples/seed_mlp.nn');
    const trainer = new built.module.Trainer({ seed: 1 });
    const x = seededData(64 * 16, 8);
    const y = oneHot(64, 2, 9);
    trainer.fit(x, y, { epochs: 3, batchSize: 16 });
    const dir = mkdtempSync(join(tmpdir(), 'modelc-train-'));
    writeFileSync(join(dir, 'trained.safetensors'), trainer.saveWeights());
    const result = await run('compile', 'examples/seed_mlp.nn', '--weights', join(dir, 'trained.safetensors'), '-o', dir, '--emit', 'js');
    expect(result.code, result.stderr).toBe(0);
    const inference = await importModule(readFileSync(join(dir, 'seed_mlp.js'), 'utf8'));
    const want = trainer.predict(x, 64);
    const got = new inference.Model().predict(x, 64);
    got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-5));
    expect(readFileSync(join(dir, 'seed_mlp.js'), 'utf8')).toContain('fold-bn');
  });
});

describe('modelc compile --target', () => {
  it('both: the inference and the training module', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelc-target-'));
    const result = await run('compile', 'examples/seed_mlp.nn', '-o', dir, '--target', 'both', '--emit', 'both', '--learning-rate', '0.05');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim().split('\n').map((l) => l.split('/').pop())).toEqual(['seed_mlp.train.ts', 'seed_mlp.train.js', 'seed_mlp.ts', 'seed_mlp.js']);
    const mod = await importModule<{ Trainer: new () => { learningRate: number } }>(readFileSync(join(dir, 'seed_mlp.train.js'), 'utf8'));
    expect(new mod.Trainer().learningRate).toBeCloseTo(0.05, 7);
  });
  it('a model without a training block is an error, and nothing is written', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'modelc-target-')), 'out');
    const result = await run('compile', 'examples/res_block.nn', '-o', dir, '--target', 'training');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no training block/);
    expect(() => readFileSync(join(dir, 'res_block.train.ts'))).toThrow();
  });
});
