/**
 * Generated modules on several threads (`await trainer.startThreads(2)`,
 * `await model.startThreads(2)`). Inference: mnist_cnn's Model predicts the
 * same floats on 2 threads as on 1. Training: a
 * conv model (GEMMs over windows, a strided conv whose dx sums windows back,
 * batchnorm, dense layers) trains as on one thread within float rounding,
 * and bit for bit the same on every run with the same thread count, across
 * batches the thread count does not divide and batches that grow the shared
 * memory after the threads started; stopThreads returns to one thread;
 * without shared memory startThreads resolves to 1 and says why. The runtime's
 * job counter (a private field, read here) shows the threads did the work.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildTrainingProgram } from '../../src/autodiff/training.js';
import { generateTrainingModule } from '../../src/codegen/index.js';
import { importModule } from '../helpers/generated.js';
import { model } from '../helpers/graphs.js';
import { oneHot, seededData, trainableGraph } from '../helpers/trainer.js';

interface Trainer {
  trainOnBatch(x: Float32Array, y: Float32Array, batchSize: number): number;
  predict(x: Float32Array, batchSize: number): Float32Array;
  getWeights(): Record<string, Float32Array>;
  startThreads(count: number): Promise<number>;
  stopThreads(): void;
  readonly threads: number;
  readonly threadsNote: string | undefined;
}
type Module = { Trainer: new (options?: { seed?: number }) => Trainer };

const spec = {
  ...model([8, 8, 4], [
    { type: 'conv2d', filters: 8, kernel_size: 3, padding: 'same' },
    { type: 'batchnorm' },
    { type: 'relu' },
    { type: 'conv2d', filters: 8, kernel_size: 3, strides: 2, padding: 'same' },
    { type: 'relu' },
    { type: 'flatten' },
    { type: 'dense', units: 12 },
    { type: 'dense', units: 3, activation: 'softmax' },
  ]),
  training: { loss: 'categorical_crossentropy', optimizer: { type: 'sgd', learning_rate: 0.05, momentum: 0.9 } },
};

let Cached: Module['Trainer'] | undefined;
async function trainerClass(): Promise<Module['Trainer']> {
  if (Cached) return Cached;
  const { graph, training } = trainableGraph(spec as never);
  const { js } = await generateTrainingModule(buildTrainingProgram(graph, training), { name: graph.name, simd: true });
  Cached = (await importModule<Module>(js, `${graph.name}.threads.train`)).Trainer;
  return Cached;
}

const runtime = (t: Trainer) => (t as unknown as { simd: { splitWork: number; jobs: number } }).simd;

/** Steps on batches 5, 7 (odd for 2 threads), 40 (grows the memory), 3; the losses, weights and jobs. */
async function train(threads: number): Promise<{ losses: number[]; weights: Record<string, Float32Array>; jobs: number; ran: number; t: Trainer }> {
  const Trainer = await trainerClass();
  const t = new Trainer({ seed: 3 });
  const ran = await t.startThreads(threads);
  runtime(t).splitWork = 0;
  const losses = [5, 7, 40, 3].map((batch, step) => t.trainOnBatch(seededData(batch * 256, 10 + step), oneHot(batch, 3, 20 + step), batch));
  return { losses, weights: t.getWeights(), jobs: runtime(t).jobs, ran, t };
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('training modules on threads', () => {
  it('train as on one thread within float rounding, the same floats on every run with the same count', async () => {
    const one = await train(1);
    const two = await train(2);
    const again = await train(2);
    expect(one.ran).toBe(1);
    expect(one.jobs).toBe(0);
    expect(two.ran).toBe(2);
    expect(two.t.threads).toBe(2);
    expect(two.t.threadsNote).toBeUndefined();
    // Per step: two convs' forward (a window copy and a GEMM each), dk (copy, GEMM, sum), the strided conv's dx (GEMM, col2im), the dense layer's three products.
    expect(two.jobs).toBeGreaterThanOrEqual(4 * 10);
    for (const [k, loss] of one.losses.entries()) expect(Math.abs(two.losses[k]! - loss) / Math.abs(loss), `loss ${k}`).toBeLessThan(1e-5);
    for (const name of Object.keys(one.weights)) {
      const a = one.weights[name]!, b = two.weights[name]!;
      let d = 0;
      for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
      expect(d, name).toBeLessThan(1e-4);
      expect(Buffer.from(again.weights[name]!.buffer), name).toEqual(Buffer.from(b.buffer));
    }
    expect(again.losses).toEqual(two.losses);
    // Back to one thread: the next step runs without jobs, from the same weights as a fresh one-thread trainer would.
    two.t.stopThreads();
    expect(two.t.threads).toBe(1);
    const jobs = runtime(two.t).jobs;
    const x = seededData(6 * 256, 99);
    expect(Number.isFinite(two.t.trainOnBatch(x, oneHot(6, 3, 98), 6))).toBe(true);
    expect(runtime(two.t).jobs).toBe(jobs);
    for (const t of [one.t, again.t]) t.stopThreads();
  }, 60_000);

  it('predicts the same floats on 2 threads as on 1 (inference mode: no sums over examples)', async () => {
    const Trainer = await trainerClass();
    const a = new Trainer({ seed: 4 });
    const b = new Trainer({ seed: 4 });
    await b.startThreads(2);
    runtime(b).splitWork = 0;
    const x = seededData(9 * 256, 5);
    expect(Buffer.from(b.predict(x, 9).buffer)).toEqual(Buffer.from(a.predict(x, 9).buffer));
    expect(runtime(b).jobs).toBeGreaterThan(0);
    b.stopThreads();
  }, 60_000);

  it('without shared memory, startThreads resolves to 1 and says why; training goes on', async () => {
    const Trainer = await trainerClass();
    vi.stubGlobal('SharedArrayBuffer', undefined);
    const t = new Trainer({ seed: 3 });
    expect(await t.startThreads(2)).toBe(1);
    expect(t.threads).toBe(1);
    expect(t.threadsNote).toMatch(/SharedArrayBuffer/);
    expect(Number.isFinite(t.trainOnBatch(seededData(4 * 256, 1), oneHot(4, 3, 2), 4))).toBe(true);
  }, 60_000);
});

describe('inference modules on threads', () => {
  type ThreadedModel = { predict(x: Float32Array, batchSize: number): Float32Array; startThreads(count: number): Promise<number>; stopThreads(): void; readonly threads: number };
  it('predict the same floats on 2 threads as on 1, on odd batches, before and after a batch that grows the memory', async () => {
    const { generateInferenceModule } = await import('../../src/codegen/index.js');
    const { lowerFile } = await import('../../src/frontend/load.js');
    const { materialize } = await import('../../src/ops/init.js');
    const { createPassManager, defaultPipeline } = await import('../../src/passes/pipeline.js');
    const graph = createPassManager().run(materialize(lowerFile('examples/mnist_cnn.nn').graph, 3), defaultPipeline);
    const { js } = await generateInferenceModule(graph, { simd: true });
    const { Model } = await importModule<{ Model: new () => ThreadedModel }>(js, 'mnist_cnn.threads');
    const one = new Model();
    const two = new Model();
    one.predict(seededData(784, 1), 1);
    expect(await two.startThreads(2)).toBe(2);
    (two as unknown as { simd: { splitWork: number } }).simd.splitWork = 0;
    for (const batch of [3, 17, 5]) {
      const x = seededData(batch * 784, batch);
      expect(Buffer.from(two.predict(x, batch).buffer), `batch ${batch}`).toEqual(Buffer.from(one.predict(x, batch).buffer));
    }
    expect((two as unknown as { simd: { jobs: number } }).simd.jobs).toBeGreaterThanOrEqual(3 * 3);
    two.stopThreads();
    expect(two.threads).toBe(1);
  }, 60_000);
});
