/**
 * What every experiment does: compile a spec's training module in-process and
 * load its `Trainer`, train it on the MNIST digits of the `mnist` package
 * with evaluations along the way, and fold the trained weights into the
 * inference module to check that folding changes nothing.
 *
 * Experiments are specs written as `.nn` text (so a reader can paste one into
 * `modelc train`), trained with the same generated code users ship; nothing
 * here trains differently from `modelc train`.
 */
import { compile, type CompileInput } from '../compile/index.js';
import { loadData, type Dataset } from '../data/index.js';
import { readSafetensors } from '../formats/safetensors.js';

/** The generated Trainer as the experiments use it (see docs/training.md for the whole class). */
export interface Trainer {
  learningRate: number;
  fit(x: Float32Array, y: Float32Array, options: {
    epochs: number;
    batchSize: number;
    shuffle?: boolean;
    onBatchEnd?: (batch: number, logs: { loss: number; accuracy?: number }) => void;
    /** Percentiles of these layers' nonlinearity inputs on the trainer's steps 1, 1 + every, ... */
    trace?: { layers: string[]; every: number; unit?: number };
  }): { history: Record<string, number[]>; trace?: Record<string, TraceSeries> };
  trainOnBatch(x: Float32Array, y: Float32Array, batchSize: number): number;
  evaluate(x: Float32Array, y: Float32Array, batchSize: number): { loss: number; accuracy?: number };
  /** Inference mode, or with `training: true` each batch normalized by its own statistics (nothing updated). */
  predict(x: Float32Array, batchSize: number, options?: { training?: boolean }): Float32Array;
  /** Precise BN: every batchnorm's moving statistics set to its input's statistics over `x`. */
  recalibrate(x: Float32Array, options?: { batchSize?: number; batches?: number }): void;
  getWeights(): Record<string, Float32Array>;
  saveWeights(): Uint8Array;
}

/** One traced layer in fit's result: the steps recorded and the percentiles at each. */
export interface TraceSeries {
  step: number[];
  p15: number[];
  p50: number[];
  p85: number[];
}

export interface TrainerOptions {
  seed?: number;
  learningRate?: number;
  weights?: Uint8Array | Record<string, Float32Array>;
}

export type TrainerClass = new (options: TrainerOptions) => Trainer;

/** MNIST as every experiment uses it: 8,000 training and 2,000 held-out digits, [28, 28, 1] in [0, 1], one-hot labels. */
export interface Digits {
  readonly train: Dataset;
  readonly test: Dataset;
}

let digits: Digits | undefined;

/** The MNIST digits (read once per process). */
export function mnistDigits(): Digits {
  if (!digits) {
    const loaded = loadData({ kind: 'mnist' }, { inputShape: [28, 28, 1], outputSize: 10, loss: 'categorical_crossentropy' });
    digits = { train: loaded.train, test: loaded.test! };
  }
  return digits;
}

/** The first `count` examples of `data` (a view, no copy). */
export function firstExamples(data: Dataset, count: number): Dataset {
  const n = Math.min(count, data.count);
  const inSize = data.x.length / data.count;
  const labelSize = data.y.length / data.count;
  return { x: data.x.subarray(0, n * inSize), y: data.y.subarray(0, n * labelSize), count: n };
}

/** Imports generated JavaScript without touching the disk. */
async function importSource<T>(js: string): Promise<T> {
  return (await import(`data:text/javascript;base64,${Buffer.from(js).toString('base64')}`)) as T;
}

function fileText(files: readonly { path: string; contents: string | Uint8Array }[], path: string): string {
  return files.find((f) => f.path === path)!.contents as string;
}

/** The `Trainer` class of a `.nn` spec's training module (the spec's name is its file name in messages). */
export async function trainerClass(source: string, name: string): Promise<TrainerClass> {
  const result = await compile({ source, path: `${name}.nn` }, { name, target: 'training', emit: 'js' });
  return (await importSource<{ Trainer: TrainerClass }>(fileText(result.files, `${name}.train.js`))).Trainer;
}

/** The `Trainer` class of any compile input (a spec object, a file), named `name`. */
export async function trainerClassOf(input: CompileInput, name: string): Promise<TrainerClass> {
  const result = await compile(input, { name, target: 'training', emit: 'js' });
  return (await importSource<{ Trainer: TrainerClass }>(fileText(result.files, `${name}.train.js`))).Trainer;
}

/** A `predict` function of the folded (-O) inference module of `source` with the trained weights. */
export async function foldedPredict(source: string, name: string, weights: Uint8Array): Promise<(x: Float32Array, n: number) => Float32Array> {
  const tensors = readSafetensors(weights, `${name}.safetensors`).tensors;
  const result = await compile({ source, path: `${name}.nn` }, { name, emit: 'js', weights: tensors });
  return (await importSource<{ predict: (x: Float32Array, n: number) => Float32Array }>(fileText(result.files, `${name}.js`))).predict;
}

/** Top-1 accuracy of `pred` (count x classes scores) against one-hot `labels`. */
export function accuracy(pred: Float32Array, labels: Float32Array, classes = 10): number {
  const count = pred.length / classes;
  let right = 0;
  for (let i = 0; i < count; i++) {
    let best = 0;
    let label = 0;
    for (let c = 1; c < classes; c++) {
      if (pred[i * classes + c]! > pred[i * classes + best]!) best = c;
      if (labels[i * classes + c]! > labels[i * classes + label]!) label = c;
    }
    if (best === label) right++;
  }
  return right / count;
}

/** Lets the event loop run (progress bars redraw, Ctrl-C arrives) between pieces of synchronous training. */
export function breathe(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Reports progress: `done` of `total` units, and what is running. */
export type Progress = (done: number, total: number, what: string) => void;

/** Formats a fraction as a percentage with two decimals. */
export function percent(x: number): string {
  return `${(x * 100).toFixed(2)}%`;
}
