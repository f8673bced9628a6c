/**
 * The differential training harness against TF.js (`tf.layers` +
 * `model.trainOnBatch`, CPU backend).
 *
 * A case is a modelc spec with a training block and the same model in
 * `tf.layers` (layer names equal to the spec's), the TF.js optimizer and loss
 * that match the spec's, and the kind of labels. The harness:
 *   1. gives the TF.js model seeded random weights (`randomizeModel`: random
 *      kernels, batchnorm gamma of either sign, random beta and moving
 *      statistics) and attaches them to the modelc graph by name;
 *   2. builds the training program and its generated module, and starts a
 *      Trainer on those weights;
 *   3. runs `steps` steps on the same seeded batches in three trainers: TF.js,
 *      the generated Trainer, and the reference interpreter running
 *      `program.step` (float64, parameters written back after each step, as
 *      the Trainer does);
 *   4. hands back each step's loss (and accuracy) from all three, every model
 *      weight after the steps (moving statistics included) and the inference
 *      prediction on a fresh batch.
 * The interpreter track locates a disagreement: interpreter = TF.js but
 * generated != TF.js points at the kernels; both off, at the IR.
 *
 * Tolerance: |got - want| <= 1e-4 * max(1, max |want|) per tensor (per loss,
 * per prediction batch); `relError` is that ratio without the 1e-4.
 */
import * as tf from '@tensorflow/tfjs';
import { buildTrainingProgram, type TrainingProgram } from '../../src/autodiff/training.js';
import { generateTrainingModule } from '../../src/codegen/index.js';
import type { TrainingSpec } from '../../src/frontend/spec.js';
import { interpretAll } from '../../src/interp/interpret.js';
import { fromF32, size, type Tensor } from '../../src/ir/tensor.js';
import { attachWeights } from '../../src/weights/attach.js';
import { importModule } from './generated.js';
import { lowerJson, type JsonSpec } from './graphs.js';
import { rng } from './tensors.js';
import { randomizeModel } from './tfjs.js';

export { tf };

export const RTOL = 1e-4;

export interface TrainCase {
  readonly name: string;
  /** A modelc JSON spec with a `training` block. */
  readonly spec: JsonSpec;
  /** The same model in tf.layers, layers named as in the spec. */
  readonly model: () => tf.LayersModel;
  /** The TF.js optimizer equal to the spec's. */
  readonly optimizer: () => tf.Optimizer;
  /** Adjusts the TF.js optimizer before step `t` (1-based), e.g. Keras's Adam epsilon (`kerasAdamEpsilon`). */
  readonly beforeStep?: (optimizer: tf.Optimizer, t: number) => void;
  /** TF.js's name of the spec's loss. */
  readonly loss: 'binaryCrossentropy' | 'categoricalCrossentropy' | 'sparseCategoricalCrossentropy';
  readonly metrics?: boolean;
  readonly batch: number;
  readonly steps: number;
  /** Inputs are uniform in [-inputScale, inputScale] (default 1). */
  readonly inputScale?: number;
  /** Diagnosis: sees every value of the interpreter's step graph after each step. */
  readonly onStep?: (step: number, values: ReadonlyMap<string, Tensor>) => void;
  /** Generate the Trainer with `--simd` (WebAssembly SIMD dense kernels). */
  readonly simd?: boolean;
  /** With `simd`: run the Trainer on this many threads (startThreads), every SIMD call that can split divided between them. */
  readonly threads?: number;
}

/** The trainer a generated training module exports (the part the harness uses). */
export interface TrainingModule {
  readonly Trainer: new (options?: { seed?: number; weights?: Uint8Array | Record<string, Float32Array>; learningRate?: number }) => {
    trainOnBatch(x: Float32Array, y: Float32Array, batchSize: number): number;
    fit(
      x: Float32Array,
      y: Float32Array,
      options: { epochs: number; batchSize: number; shuffle?: boolean; onBatchEnd?: (batch: number, logs: { loss: number; accuracy?: number }) => void },
    ): { history: Record<string, number[]> };
    evaluate(x: Float32Array, y: Float32Array, batchSize: number): { loss: number; accuracy?: number };
    predict(x: Float32Array, batchSize: number): Float32Array;
    getWeights(): Record<string, Float32Array>;
    readonly usesSimd?: boolean;
    startThreads?(count: number): Promise<number>;
    stopThreads?(): void;
  };
}

/** One value from each trainer. */
export interface Triple<T> {
  readonly tfjs: T;
  readonly generated: T;
  readonly interpreter: T;
}

export interface TrainRun {
  readonly program: TrainingProgram;
  /** Each step's loss (and accuracy), as each trainer reports it. */
  readonly losses: Triple<number>[];
  readonly accuracies: Triple<number>[];
  /** Every model weight after the steps, by Keras name. */
  readonly weights: Map<string, Triple<ArrayLike<number>>>;
  /** The weights before the first step (TF.js's random ones). */
  readonly initial: Map<string, Float32Array>;
  /** Inference-mode prediction on a fresh batch after the steps. */
  readonly prediction: Triple<ArrayLike<number>>;
  /** Inference-mode loss (and accuracy) on that batch: TF.js model.evaluate vs Trainer.evaluate. */
  readonly evaluation: { readonly tfjs: number[]; readonly generated: number[] };
  /** SIMD kernel calls in the generated module, and whether the Trainer ran them (`simd` cases). */
  readonly simdCalls: number;
  readonly usesSimd: boolean;
  /** `threads` cases: the threads that ran, and the kernel calls they divided (jobs). */
  readonly threads?: { readonly count: number; readonly jobs: number };
}

/** max |got - want| / max(1, max |want|): the error the tolerance bounds, with the worst index. */
export function relError(got: ArrayLike<number>, want: ArrayLike<number>): { rel: number; at: number } {
  if (got.length !== want.length) throw new Error(`size ${got.length} != ${want.length}`);
  let scale = 1;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  let worst = 0;
  let at = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= worst)) {
      worst = Number.isNaN(d) ? Infinity : d;
      at = i;
    }
  }
  return { rel: worst / scale, at };
}

/**
 * Makes `tf.train.adam` take Keras 3's Adam step. Keras:
 *   w' = w - lr sqrt(1 - b2^t) / (1 - b1^t) * m' / (sqrt(v') + eps)
 * TF.js:
 *   w' = w - lr (m' / (1 - b1^t)) / (sqrt(v' / (1 - b2^t)) + eps)
 * Equal when TF.js's epsilon is eps / sqrt(1 - b2^t) at step t (TF.js reads
 * `optimizer.epsilon` at every step). With a constant epsilon the two differ
 * wherever |gradient| is within a few eps / sqrt(1 - b2^t) (3.2e-6 at t = 1)
 * of 0: the first-step update of such a weight is up to ~lr apart.
 */
export function kerasAdamEpsilon(epsilon: number, beta2: number): (optimizer: tf.Optimizer, t: number) => void {
  return (optimizer, t) => {
    (optimizer as unknown as { epsilon: number }).epsilon = epsilon / Math.sqrt(1 - beta2 ** t);
  };
}

/** A string's 32-bit FNV-1a hash: the seed of a case. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** A seeded batch: inputs uniform, labels one-hot (or class indices for a sparse loss). */
function batchOf(c: TrainCase, inShape: readonly number[], classes: number, next: () => number) {
  const scale = c.inputScale ?? 1;
  const x = Float32Array.from({ length: c.batch * size(inShape) }, () => scale * (2 * next() - 1));
  const sparse = c.loss === 'sparseCategoricalCrossentropy';
  const y = new Float32Array(c.batch * (sparse ? 1 : classes));
  for (let e = 0; e < c.batch; e++) {
    const k = Math.floor(next() * classes);
    if (sparse) y[e] = k;
    else y[e * classes + k] = 1;
  }
  const yShape = sparse ? [c.batch, 1] : [c.batch, classes];
  return { x, y, xShape: [c.batch, ...inShape], yShape };
}

/** Every weight of a TF.js model by modelc name (`<layer>/<param>`). */
function tfjsWeights(model: tf.LayersModel): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const layer of model.layers) {
    for (const w of layer.weights) {
      const param = w.originalName.slice(w.originalName.lastIndexOf('/') + 1);
      out.set(`${layer.name}/${param}`, Float32Array.from(w.read().dataSync()));
    }
  }
  return out;
}

const asArray = (v: number | number[] | tf.Scalar | tf.Scalar[]): number[] =>
  (Array.isArray(v) ? v : [v]).map((s) => (typeof s === 'number' ? s : s.dataSync()[0]!));

/** Runs a case in TF.js, the generated Trainer and the reference interpreter. */
export async function runTrainCase(c: TrainCase): Promise<TrainRun> {
  const next = rng(hash(c.name));
  const { graph: unweighted } = lowerJson(c.spec);
  const training = c.spec['training'] as TrainingSpec;
  const model = c.model();
  let stopThreads: (() => void) | undefined;
  try {
    if (model.inputNames[0] !== unweighted.inputs[0]!.name) throw new Error(`TF.js input ${model.inputNames[0]} != ${unweighted.inputs[0]!.name}`);
    const weights = randomizeModel(model, next);
    const initial = new Map([...weights].map(([name, w]) => [name, Float32Array.from(w.data)]));
    const graph = attachWeights(unweighted, weights, `${c.name} (TF.js weights)`);
    if (graph.params.length !== weights.size) {
      throw new Error(`modelc has ${graph.params.length} weights, TF.js ${weights.size}: ${graph.params.map((p) => p.name).join(', ')}`);
    }
    const program = buildTrainingProgram(graph, training);
    const { js } = await generateTrainingModule(program, { name: c.name, ...(c.simd ? { simd: true } : {}) });
    const mod = await importModule<TrainingModule>(js, `${c.name}.train`);
    const trainer = new mod.Trainer({ weights: Object.fromEntries(initial) });
    // The runtime behind the Trainer's private field: every call split however small (these batches are), its jobs counted.
    const runtime = () => (trainer as unknown as { simd: { splitWork: number; jobs: number } }).simd;
    const threads = c.threads === undefined ? undefined : await trainer.startThreads!(c.threads);
    stopThreads = () => trainer.stopThreads?.();
    if (threads !== undefined) runtime().splitWork = 0;
    const optimizer = c.optimizer();
    model.compile({ optimizer, loss: c.loss, ...(c.metrics ? { metrics: ['accuracy'] } : {}) });

    // The interpreter's state: every parameter of the step graph (weights and optimizer state), float64.
    const state: Record<string, Tensor> = {};
    for (const p of program.step.params) state[p.name] = fromF32(p.type.shape as number[], p.value!);
    const inShape = unweighted.inputs[0]!.type.shape.slice(1) as number[];
    const outType = program.predict.nodes.find((n) => n.result === program.predict.outputs[0])!.type;
    const classes = outType.shape[outType.shape.length - 1] as number;

    const losses: Triple<number>[] = [];
    const accuracies: Triple<number>[] = [];
    for (let s = 0; s < c.steps; s++) {
      const b = batchOf(c, inShape, classes, next);
      // TF.js
      const xt = tf.tensor(b.x, b.xShape);
      const yt = tf.tensor(b.y, b.yShape);
      c.beforeStep?.(optimizer, s + 1);
      const tfOut = asArray(await model.trainOnBatch(xt, yt));
      tf.dispose([xt, yt]);
      // generated: fit over exactly this batch, unshuffled, to read the step's accuracy too
      let logs: { loss: number; accuracy?: number } | undefined;
      trainer.fit(b.x, b.y, { epochs: 1, batchSize: c.batch, shuffle: false, onBatchEnd: (_, l) => (logs = l) });
      // interpreter
      const labelShape = [c.batch, ...(program.labelsType.shape.slice(1) as number[])];
      const values = interpretAll(
        program.step,
        { [program.data]: fromF32(b.xShape, b.x), [program.labels]: fromF32(labelShape, b.y) },
        { params: state, verify: s === 0 },
      );
      for (const u of program.updates) state[u.param] = values.get(u.value)!;
      c.onStep?.(s, values);
      losses.push({ tfjs: tfOut[0]!, generated: logs!.loss, interpreter: values.get(program.loss)!.data[0]! });
      if (c.metrics) {
        accuracies.push({ tfjs: tfOut[1]!, generated: logs!.accuracy!, interpreter: values.get(program.accuracy!)!.data[0]! });
      }
    }

    const want = tfjsWeights(model);
    const got = trainer.getWeights();
    const after = new Map<string, Triple<ArrayLike<number>>>();
    for (const name of program.weights) {
      const tfjs = want.get(name);
      if (!tfjs) throw new Error(`TF.js has no weight ${name} (it has ${[...want.keys()].join(', ')})`);
      after.set(name, { tfjs, generated: got[name]!, interpreter: state[name]!.data });
    }

    // Inference mode on a fresh batch, with the trained weights.
    const b = batchOf(c, inShape, classes, next);
    const xt = tf.tensor(b.x, b.xShape);
    const yt = tf.tensor(b.y, b.yShape);
    const predicted = model.predict(xt) as tf.Tensor;
    const tfjsPrediction = Float32Array.from(predicted.dataSync());
    const tfEval = asArray(model.evaluate(xt, yt, { batchSize: c.batch }) as tf.Scalar | tf.Scalar[]);
    tf.dispose([xt, yt, predicted]);
    const predictGraph = program.predict;
    const predictParams: Record<string, Tensor> = {};
    for (const p of predictGraph.params) predictParams[p.name] = state[p.name] ?? fromF32(p.type.shape as number[], p.value!);
    const interpPrediction = interpretAll(predictGraph, { [predictGraph.inputs[0]!.name]: fromF32(b.xShape, b.x) }, { params: predictParams })
      .get(predictGraph.outputs[0]!)!.data;
    const evaluation = trainer.evaluate(b.x, b.y, c.batch);
    return {
      program,
      losses,
      accuracies,
      weights: after,
      initial,
      prediction: { tfjs: tfjsPrediction, generated: trainer.predict(b.x, c.batch), interpreter: interpPrediction },
      evaluation: { tfjs: tfEval, generated: [evaluation.loss, ...(evaluation.accuracy === undefined ? [] : [evaluation.accuracy])] },
      simdCalls: js.match(/simd\.kernels\.\w+\(/g)?.length ?? 0,
      usesSimd: trainer.usesSimd === true,
      ...(threads !== undefined ? { threads: { count: threads, jobs: runtime().jobs } } : {}),
    };
  } finally {
    stopThreads?.();
    model.dispose();
  }
}
