/**
 * `modelc train <spec> --data <source> -o <dir>`: the whole loop a newcomer
 * runs first.
 *
 * 1. Compile the training module (autodiff, optimizer) and load it in-process.
 * 2. Load the data (MNIST, CSV or .npy) shaped and encoded for the model.
 * 3. Train with `Trainer.fitAsync`, showing progress; Ctrl-C stops after the
 *    current batch.
 * 4. Write `<name>.safetensors`, `history.json` and `<name>.svg` atomically
 *    (marked partial after an interrupt). The output folder is checked
 *    before step 1, and if the save fails anyway, the weights go to a
 *    fallback file that the error names.
 * 5. After a full run, fold batchnorm into the inference module `<name>.ts`
 *    (and `<name>.js`, which runs with node as it is), and check on the test
 *    data that it predicts what the Trainer does.
 *
 * With batch normalization, a full run also compares the accuracy of training
 * mode (batch statistics) and inference mode (moving statistics) on a sample
 * of the training data, and warns when the moving statistics lag; with
 * `--precise-bn` it first recomputes them (`Trainer.recalibrate`) before
 * saving. `--trace` records fit's trace of nonlinearity inputs into
 * history.json.
 */
import { Option, type Command } from 'commander';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { accuracyKind } from '../autodiff/loss.js';
import type { TrainingProgram } from '../autodiff/training.js';
import { checkFileStem, compile, fileStem, type CompileResult } from '../compile/index.js';
import { fail, ModelcError } from '../diagnostics/diagnostic.js';
import { loadData, splitValidation, type DataSource, type Dataset, type LoadedData } from '../data/index.js';
import { readSafetensors, writeSafetensors } from '../formats/safetensors.js';
import { lowerFileAsync } from '../frontend/load.js';
import { warned } from './warnings.js';
import type { Graph } from '../ir/graph.js';
import { activationSizes, batchProblem } from '../ir/limits.js';
import type { TensorType } from '../ir/types.js';
import { accuracyOp, type AccuracyKind } from '../ops/loss.js';
import { renderChart } from '../report/chart.js';
import type { TrainingSpec } from '../spec/training.js';
import { checkOutputDirectory, writeFileAtomic, writeIntoDirectory } from '../util/fs.js';
import { attachWeights } from '../weights/attach.js';
import { declare } from './commands.js';
import { fraction, layerList, nonNegativeInteger, positiveInteger, positiveNumber, quit, UsageError, type CliContext } from './context.js';
import { allowNonfiniteOption, withWeights } from './optimize.js';
import { fileStemValue, seedValue } from './options.js';
import { createProgress } from './progress.js';

export interface TrainOptions {
  /** `mnist`, a `.csv` file or an `.npy` file of inputs. */
  data: string;
  /** The label column of a CSV file. */
  label?: string;
  /** The `.npy` file of labels that goes with an `.npy` file of inputs. */
  labels?: string;
  epochs?: number;
  batchSize?: number;
  learningRate?: number;
  /** Seeds the initial weights (unless --weights), dropout masks and shuffling. */
  seed?: string;
  /** Initial weights (safetensors) instead of the seeded initializers. */
  weights?: string;
  /** --allow-nonfinite: accept NaN and infinite values in the initial weights. */
  allowNonfinite?: boolean;
  validationSplit?: number;
  /** --validate-on-test: evaluate the data's held-out test split (MNIST's) after every epoch, as Keras's validation_data. */
  validateOnTest?: boolean;
  output: string;
  name?: string;
  /** --precise-bn [batches]: recompute the batchnorm moving statistics after training, over every training example (true) or this many batches. */
  preciseBn?: boolean | number;
  /** --trace: the layers whose nonlinearity inputs fit traces. */
  trace?: string[];
  /** --trace-every: trace every this many steps (default 50). */
  traceEvery?: number;
  /**
   * The training module's WebAssembly SIMD kernels (dense layers, and conv2d
   * as GEMMs over its windows), used where the engine has them (default);
   * `--no-simd`: the TypeScript kernels only.
   */
  simd?: boolean;
  /** --threads: run the SIMD kernels on this many threads (default 1; results depend on the count only by float rounding). */
  threads?: number;
  /** --trace-unit: follow this one unit (last-axis index) of each traced layer. */
  traceUnit?: number;
}

export interface TrainIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** The stream progress bars draw on (stderr). */
  progress: NodeJS.WritableStream & { isTTY?: boolean };
  /** Draw progress bars (stderr is a terminal) rather than one line per epoch. */
  interactive: boolean;
  /** Aborted to stop after the current batch (the CLI aborts it on SIGINT). */
  signal?: { readonly aborted: boolean };
}

export interface TrainResult {
  readonly files: string[];
  readonly history: Record<string, number[]>;
  /** Stopped by the signal before the last epoch ended. */
  readonly partial: boolean;
  /** On the test data, after a full run: the Trainer's predictions and the folded module's. */
  readonly test?: { readonly examples: number; readonly before: number; readonly after: number; readonly metric: 'accuracy' | 'max_abs_diff'; readonly loss: number };
}

/** fit's trace of one layer: the steps and the percentiles of its nonlinearity input at each. */
type TraceSeries = { step: number[]; p15: number[]; p50: number[]; p85: number[] };

/** The generated Trainer as train uses it. */
interface Trainer {
  fitAsync(x: Float32Array, y: Float32Array, options: {
    epochs: number;
    batchSize: number;
    validationData?: [Float32Array, Float32Array];
    signal?: { readonly aborted: boolean };
    onBatchEnd?: (batch: number, logs: { loss: number; accuracy?: number }) => void;
    onEpochEnd?: (epoch: number, logs: { loss: number; accuracy?: number; val_loss?: number; val_accuracy?: number }) => void;
    trace?: { layers: string[]; every: number; unit?: number };
  }): Promise<{ history: Record<string, number[]>; stopped: boolean; trace?: Record<string, TraceSeries> }>;
  evaluate(x: Float32Array, y: Float32Array, batchSize: number): { loss: number; accuracy?: number };
  predict(x: Float32Array, batchSize: number, options?: { training?: boolean }): Float32Array;
  recalibrate(x: Float32Array, options?: { batchSize?: number; batches?: number }): void;
  /** Modules with SIMD kernels: threads (src/codegen/simd-train.ts). */
  startThreads?(count: number): Promise<number>;
  stopThreads?(): void;
  readonly threadsNote?: string;
  saveWeights(): Uint8Array;
}

/** Where the data comes from, by the form of --data. */
export function dataSource(opts: Pick<TrainOptions, 'data' | 'label' | 'labels'>): DataSource {
  const data = opts.data;
  if (data === 'mnist') return { kind: 'mnist' };
  if (/\.csv$/i.test(data)) {
    if (opts.label === undefined) fail('data', `a CSV file needs --label <column>: the column that holds the labels`, undefined, data);
    return { kind: 'csv', path: data, label: opts.label };
  }
  if (/\.npy$/i.test(data)) {
    if (opts.labels === undefined) fail('data', `an .npy file of inputs needs --labels <file.npy>: the labels, one row per example`, undefined, data);
    return { kind: 'npy', x: data, y: opts.labels };
  }
  return fail('data', `unknown data source '${data}': use mnist, a .csv file (with --label) or an .npy file (with --labels)`);
}

function perExample(shape: readonly (number | 'N')[]): number[] {
  return shape.slice(1).map((d) => d as number);
}

/** The text of one generated file. */
function contentsOf(result: CompileResult, path: string): string {
  return result.files.find((f) => f.path === path)!.contents as string;
}

/** Imports generated JavaScript without touching the disk. */
async function importSource<T>(js: string): Promise<T> {
  return (await import(`data:text/javascript;base64,${Buffer.from(js).toString('base64')}`)) as T;
}

/** Keras's accuracy of float32 predictions, as the training graph's accuracy op computes it. */
function accuracyOf(kind: AccuracyKind, pred: Float32Array, labels: Float32Array, outputSize: number, labelSize: number): number {
  const count = pred.length / outputSize;
  const value = accuracyOp.reference(
    [{ shape: [count, outputSize], data: Float64Array.from(pred) }, { shape: [count, labelSize], data: Float64Array.from(labels) }] as never,
    { kind } as never,
  );
  return value.data[0]!;
}

/** The metric's kind, or for a classifier without the metric the one Keras would choose; none for regression. */
function testAccuracyKind(program: TrainingProgram, loss: TrainingSpec['loss'], output: TensorType): AccuracyKind | undefined {
  if (program.accuracy !== undefined) return program.evaluate.nodes.find((n) => n.result === program.accuracy)?.attrs['kind'] as AccuracyKind;
  return loss.endsWith('crossentropy') ? accuracyKind(loss, output) : undefined;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Checks --trace before training: every name must be a layer with a nonlinearity. */
function checkTraceLayers(layers: readonly string[], unit: number | undefined, program: TrainingProgram, graph: Graph, path: string): void {
  const traceable = program.traceable.map((t) => t.layer);
  for (const layer of layers) {
    const found = program.traceable.find((t) => t.layer === layer);
    if (found !== undefined) {
      const shape = program.stepTraced.nodes.find((n) => n.result === found.value)?.type.shape ?? program.stepTraced.inputs.find((i) => i.name === found.value)?.type.shape;
      const units = shape?.[shape.length - 1];
      if (unit !== undefined && typeof units === 'number' && unit >= units) fail('train', `--trace-unit ${unit}: layer '${layer}' has ${units} units (0 to ${units - 1})`, undefined, path);
      continue;
    }
    const known = traceable.length === 0 ? 'none: no layer of this model has a nonlinearity' : traceable.join(', ');
    const why = graph.nodes.some((n) => n.layer === layer) ? `layer '${layer}' has no nonlinearity to trace` : `the model has no layer '${layer}'`;
    fail('train', `--trace: ${why}; the layers it can trace (as modelc check names them) are ${known}`, undefined, path);
  }
}

/** `take` of the examples (all of them at most), in a seeded random order (mulberry32), as fit's shuffled batches are drawn. */
function shuffledSample(data: Dataset, take: number, inSize: number, labelSize: number, seed: number): Dataset {
  let a = seed >>> 0;
  const random = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const count = Math.min(take, data.count);
  const order = Array.from({ length: data.count }, (_, i) => i);
  const x = new Float32Array(count * inSize);
  const y = new Float32Array(count * labelSize);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (data.count - i));
    [order[i], order[j]] = [order[j]!, order[i]!];
    x.set(data.x.subarray(order[i]! * inSize, (order[i]! + 1) * inSize), i * inSize);
    y.set(data.y.subarray(order[i]! * labelSize, (order[i]! + 1) * labelSize), i * labelSize);
  }
  return { x, y, count };
}

/** How far training mode and inference mode disagree before a warning names it (accuracy points). */
const MODE_GAP = 5;

/** Accuracy on one sample of the training data in training mode (each batch by its own statistics) and in inference mode. */
interface ModeCheck {
  readonly examples: number;
  readonly training: number;
  readonly inference: number;
  /** Inference mode again after --precise-bn. */
  inferenceAfter?: number;
}

/** What --precise-bn did after training, for history.json and the summary. */
interface PreciseBn {
  readonly layers: readonly string[];
  readonly examples: number;
  readonly batches: number | null;
  readonly error?: string;
}

/**
 * After a full run of a model with batch normalization: the training-mode and
 * inference-mode accuracy of a sample of the training data (up to 2048
 * examples, whole batches), then --precise-bn's recalibration (over every
 * training example, or a seeded sample of `batches` batches) and the
 * inference-mode accuracy again. Undefined parts did not apply.
 */
function batchnormChecks(
  trainer: Trainer,
  program: TrainingProgram,
  c: { train: Dataset; batchSize: number; inSize: number; labelSize: number; outputSize: number; kind: AccuracyKind | undefined; seed: number; preciseBn: boolean | number | undefined },
): { modes?: ModeCheck; preciseBn?: PreciseBn } {
  const batch = Math.min(c.batchSize, c.train.count);
  // The modes differ only with batch normalization; accuracy needs a classifier.
  const sampled = program.predictTraining !== undefined && c.kind !== undefined;
  const sample = sampled ? shuffledSample(c.train, Math.max(batch, Math.floor(Math.min(2048, c.train.count) / batch) * batch), c.inSize, c.labelSize, c.seed) : undefined;
  const accuracy = (training: boolean) => accuracyOf(c.kind!, trainer.predict(sample!.x, batch, { training }), sample!.y, c.outputSize, c.labelSize);
  const modes: ModeCheck | undefined = sample ? { examples: sample.count, training: accuracy(true), inference: accuracy(false) } : undefined;
  if (c.preciseBn === undefined || c.preciseBn === false || program.batchnorms.length === 0) return modes ? { modes } : {};
  const batches = c.preciseBn === true ? null : c.preciseBn;
  const data = batches === null ? c.train : shuffledSample(c.train, batches * batch, c.inSize, c.labelSize, c.seed + 1);
  const preciseBn = { layers: program.batchnorms.map((bn) => bn.layer), examples: data.count, batches };
  try {
    trainer.recalibrate(data.x, { batchSize: batch });
  } catch (err) {
    return { ...(modes ? { modes } : {}), preciseBn: { ...preciseBn, error: (err as Error).message } };
  }
  if (modes) modes.inferenceAfter = accuracy(false);
  return { ...(modes ? { modes } : {}), preciseBn };
}

/** The summary lines of batchnormChecks (stdout): what --precise-bn did, and a warning when the two modes disagree. */
function batchnormSummary(modes: ModeCheck | undefined, preciseBn: PreciseBn | undefined): string {
  const pct = (a: number) => `${(a * 100).toFixed(2)}%`;
  const lines: string[] = [];
  if (preciseBn && preciseBn.error === undefined) {
    const over = `${preciseBn.examples} training examples${preciseBn.batches === null ? '' : ` (${preciseBn.batches} batches)`}`;
    const change = modes?.inferenceAfter === undefined ? '' : `; inference-mode accuracy on ${modes.examples} training examples ${pct(modes.inference)} -> ${pct(modes.inferenceAfter)} (training mode ${pct(modes.training)})`;
    lines.push(`precise BN: the moving statistics of ${preciseBn.layers.join(', ')} recomputed over ${over}${change}`);
  }
  if (modes) {
    // Either way apart, the moving statistics do not describe the batches training saw. After --precise-bn
    // they are the population's: only an inference mode still behind is worth a word then.
    const gap = (inference: number) => `on ${modes.examples} training examples, accuracy is ${pct(modes.training)} in training mode (batch statistics) but ${pct(inference)} in inference mode (moving statistics)`;
    if (modes.inferenceAfter === undefined) {
      if (Math.abs(modes.training - modes.inference) * 100 > MODE_GAP) lines.push(`warning: ${gap(modes.inference)}: the moving statistics lag behind the weights; --precise-bn recomputes them after training`);
    } else if ((modes.training - modes.inferenceAfter) * 100 > MODE_GAP) {
      lines.push(`warning: ${gap(modes.inferenceAfter)}, with the statistics recomputed: single batches of this size are far from the population`);
    }
  }
  return lines.map((l) => `${l}\n`).join('');
}

/** The files train writes into its output folder. */
function outputNames(name: string): string[] {
  return [`${name}.safetensors`, 'history.json', `${name}.svg`, `${name}.ts`, `${name}.js`];
}

/** Where the weights go when the output folder cannot take them: the OS temp folder, else the current folder. */
function saveFallback(name: string, weights: Uint8Array): string | undefined {
  const file = `modelc-${name}-${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}.safetensors`;
  for (const folder of [tmpdir(), process.cwd()]) {
    try {
      writeFileAtomic(join(folder, file), weights);
      return join(folder, file);
    } catch {
      // try the next folder
    }
  }
  return undefined;
}

/** Writes the outputs; if that fails, keeps the trained weights in a fallback file and fails naming it. */
function save(dir: string, files: [string, string | Uint8Array][], weights: Uint8Array, name: string): string[] {
  try {
    return writeIntoDirectory(dir, files);
  } catch (err) {
    if (!(err instanceof ModelcError)) throw err;
    const kept = saveFallback(name, weights);
    const message = kept
      ? `the outputs were not written; the trained weights were saved to ${kept} instead`
      : 'the outputs were not written, and the trained weights could not be saved elsewhere either (tried the temp folder and the current folder)';
    throw new ModelcError([...err.diagnostics, { code: 'io', message }]);
  }
}

/** Trains `path`; returns what was written and measured. */
export async function trainCommand(path: string, opts: TrainOptions, io: TrainIo): Promise<TrainResult> {
  if (opts.name !== undefined) checkFileStem(opts.name, '--name');
  const compiled = warned(await lowerFileAsync(path, { allowNonfinite: opts.allowNonfinite ?? false }), io.stderr);
  const spec: TrainingSpec | undefined = compiled.spec.training;
  if (spec === undefined) fail('train', `the model has no training block: add \`train { loss: ..., optimizer: ... }\` to the spec`, undefined, path);
  const initial = withWeights(compiled.graph, { weights: opts.weights, seed: opts.seed ?? '0', allowNonfinite: opts.allowNonfinite ?? false });
  const name = opts.name ?? fileStem(initial.name);
  // before any work: an -o that cannot take the outputs fails now, not after training
  checkOutputDirectory(opts.output, outputNames(name));
  const trainingModule = await compile({ graph: initial, training: spec }, { name, source: path, target: 'training', emit: 'js', learningRate: opts.learningRate, simd: opts.simd ?? true });
  const program = trainingModule.training!;
  if (opts.trace !== undefined) checkTraceLayers(opts.trace, opts.traceUnit, program, initial, path);
  const epochs = opts.epochs ?? spec.epochs ?? 1;
  const batchSize = opts.batchSize ?? spec.batch_size ?? 32;

  const inputShape = perExample(initial.inputs[0]!.type.shape);
  const prediction = program.predict.outputs[0]!;
  const outputType = program.predict.nodes.find((n) => n.result === prediction)?.type ?? program.predict.inputs[0]!.type;
  const outputSize = perExample(outputType.shape).reduce((a, b) => a * b, 1);
  const inSize = inputShape.reduce((a, b) => a * b, 1);
  const loaded: LoadedData = loadData(dataSource(opts), { inputShape, outputSize, loss: spec.loss });
  let train: Dataset = loaded.train;
  let validation: Dataset | undefined;
  if (opts.validationSplit !== undefined && opts.validationSplit > 0) {
    ({ train, validation } = splitValidation(loaded.train, opts.validationSplit, loaded.labelSize, inSize));
  }
  if (opts.validateOnTest) {
    if (loaded.test === undefined) fail('data', `--validate-on-test: ${opts.data} has no held-out test split (MNIST has one; use --validation-split for other data)`);
    validation = loaded.test;
  }
  // Checked before and after folding: the test split, else the validation split, else the training data.
  const test = loaded.test ?? validation ?? train;
  const on = loaded.test ? 'test' : validation ? 'validation' : 'training';
  // A batch is Math.min(batch size, examples) examples; each of its tensors must fit a typed array.
  const tooBig = batchProblem(Math.min(batchSize, Math.max(1, train.count)), activationSizes(initial));
  if (tooBig) {
    const fromSpec = opts.batchSize === undefined && spec.batch_size !== undefined;
    fail('limit', `${fromSpec ? 'batch_size' : '--batch-size'} ${batchSize}: ${tooBig}`, fromSpec ? compiled.locations.value(['training', 'batch_size']) : undefined, path);
  }
  io.stderr(`${loaded.description}\n`);
  io.stderr(`training ${initial.name} on ${train.count} examples${validation ? `, validating on ${validation.count}` : ''}: ${epochs} epoch${epochs === 1 ? '' : 's'}, batch size ${batchSize}, ${program.optimizer.type} at learning rate ${program.optimizer.learning_rate}\n`);

  const { Trainer } = await importSource<{ Trainer: new (o: { seed?: number }) => Trainer }>(contentsOf(trainingModule, `${name}.train.js`));
  const seed = Number(opts.seed ?? '0');
  const trainer = new Trainer({ seed });
  const threads = opts.threads ?? 1;
  if (threads > 1) {
    const got = trainer.startThreads === undefined ? 1 : await trainer.startThreads(threads);
    if (got < threads) io.stderr(`warning: --threads ${threads}: training on ${got} thread${got === 1 ? '' : 's'}: ${trainer.threadsNote ?? 'the training module has no SIMD kernels (--no-simd)'}\n`);
    else io.stderr(`the SIMD kernels run on ${got} threads\n`);
  }
  const batches = Math.ceil(train.count / Math.min(batchSize, train.count));
  const progress = createProgress({ epochs, batches, stream: io.progress, interactive: io.interactive });
  let result: { history: Record<string, number[]>; stopped: boolean; trace?: Record<string, TraceSeries> };
  try {
    result = await trainer.fitAsync(train.x, train.y, {
      epochs,
      batchSize,
      ...(validation ? { validationData: [validation.x, validation.y] as [Float32Array, Float32Array] } : {}),
      ...(io.signal ? { signal: io.signal } : {}),
      onBatchEnd: (b, logs) => progress.batch(b, logs),
      onEpochEnd: (e, logs) => progress.epoch(e, logs),
      ...(opts.trace !== undefined ? { trace: { layers: opts.trace, every: opts.traceEvery ?? 50, ...(opts.traceUnit !== undefined ? { unit: opts.traceUnit } : {}) } } : {}),
    });
  } finally {
    progress.stop();
    trainer.stopThreads?.();
  }
  const { history, stopped } = result;
  const completed = history['loss']?.length ?? 0;
  // Before the weights are saved: the two modes compared and, with --precise-bn, the moving statistics recomputed.
  const kind = testAccuracyKind(program, spec.loss, outputType);
  const bn = stopped ? {} : batchnormChecks(trainer, program, { train, batchSize, inSize, labelSize: loaded.labelSize, outputSize, kind, seed, preciseBn: opts.preciseBn });
  if (bn.preciseBn?.error !== undefined) io.stderr(`warning: --precise-bn failed, the moving statistics are those of training: ${bn.preciseBn.error}\n`);
  if (opts.preciseBn !== undefined && opts.preciseBn !== false && program.batchnorms.length === 0) io.stderr('--precise-bn: the model has no batch normalization; nothing to recompute\n');

  // The trained weights, marked complete or partial in the safetensors metadata.
  const saved = readSafetensors(trainer.saveWeights(), `${name}.safetensors`);
  const weights = writeSafetensors(saved.tensors, {
    'modelc.model': initial.name,
    'modelc.epochs': String(completed),
    'modelc.steps': saved.metadata['steps'] ?? '0',
    'modelc.partial': String(stopped),
  });
  const files: [string, string | Uint8Array][] = [[`${name}.safetensors`, weights]];
  const record: Record<string, unknown> = { model: initial.name, data: loaded.description, partial: stopped, epochs: completed, batch_size: batchSize, learning_rate: program.optimizer.learning_rate, seed, history };
  if (result.trace !== undefined) record['trace'] = opts.traceUnit !== undefined ? { unit: opts.traceUnit, layers: result.trace } : result.trace;
  if (bn.preciseBn !== undefined) record['precise_bn'] = { layers: bn.preciseBn.layers, batches: bn.preciseBn.batches, examples: bn.preciseBn.examples, ...(bn.preciseBn.error !== undefined ? { error: bn.preciseBn.error } : {}) };
  if (bn.modes !== undefined) {
    const { examples, training: t, inference: i, inferenceAfter } = bn.modes;
    record['modes'] = { data: 'training', examples, training_accuracy: t, inference_accuracy: i, ...(inferenceAfter !== undefined ? { inference_accuracy_after_precise_bn: inferenceAfter } : {}) };
  }
  if (completed > 0) files.push([`${name}.svg`, await renderChart([{ name: initial.name, history }], { title: `${initial.name}${stopped ? ' (partial)' : ''}` })]);

  if (stopped) {
    files.push(['history.json', JSON.stringify(record, null, 2) + '\n']);
    io.stderr(`interrupted: ${completed} of ${epochs} epochs completed; writing the weights and history so far (marked partial)${opts.preciseBn !== undefined && opts.preciseBn !== false ? '; --precise-bn skipped' : ''}\n`);
    return { files: save(opts.output, files, weights, name), history, partial: stopped };
  }

  // Fold batchnorm into the inference module and check it on the test data against the Trainer.
  const trained: Graph = attachWeights(compiled.graph, saved.tensors, `${name}.safetensors`, { allowNonfinite: true });
  const inference = await compile({ graph: trained }, { name, source: path, emit: 'both' });
  const { predict } = await importSource<{ predict: (x: Float32Array, n: number) => Float32Array }>(contentsOf(inference, `${name}.js`));
  const evaluated = trainer.evaluate(test.x, test.y, batchSize);
  const before = trainer.predict(test.x, batchSize);
  const after = predict(test.x, test.count);
  const check = kind === undefined
    ? { metric: 'max_abs_diff' as const, before: 0, after: maxAbsDiff(before, after) }
    : { metric: 'accuracy' as const, before: accuracyOf(kind, before, test.y, outputSize, loaded.labelSize), after: accuracyOf(kind, after, test.y, outputSize, loaded.labelSize) };
  const summary = { examples: test.count, loss: evaluated.loss, ...check };
  record['test'] = { data: on, examples: test.count, loss: evaluated.loss, [`${check.metric}_before_folding`]: check.before, [`${check.metric}_after_folding`]: check.after };
  files.push(['history.json', JSON.stringify(record, null, 2) + '\n'], [`${name}.ts`, contentsOf(inference, `${name}.ts`)], [`${name}.js`, contentsOf(inference, `${name}.js`)]);
  const written = save(opts.output, files, weights, name);
  if (check.metric === 'accuracy') {
    io.stdout(`${on} accuracy (${test.count} examples): ${(check.before * 100).toFixed(2)}% before folding, ${(check.after * 100).toFixed(2)}% after folding${check.before === check.after ? ' (equal)' : ''}\n`);
  } else {
    io.stdout(`${on} loss ${evaluated.loss.toFixed(5)} (${test.count} examples); the folded module's predictions differ by at most ${check.after.toExponential(2)}\n`);
  }
  io.stdout(batchnormSummary(bn.modes, bn.preciseBn));
  return { files: written, history, partial: false, test: summary };
}

/** --data and its companion options, checked before anything runs: a bad combination is a usage error. */
function usableDataSource(opts: TrainOptions): void {
  try {
    dataSource(opts);
  } catch (err) {
    if (err instanceof ModelcError) throw new UsageError(err.message);
    throw err;
  }
}

export function registerTrain(program: Command, { io, state }: CliContext): void {
  declare(program, 'train')
    .option('--data <source>', 'mnist (the embedded digits), a .csv file (with --label) or an .npy file of inputs (with --labels)', 'mnist')
    .option('--label <column>', 'the label column of a CSV file')
    .option('--labels <file>', 'the .npy file of labels for an .npy file of inputs')
    .addOption(new Option('--epochs <n>', "epochs (default: the spec's, else 1)").argParser(positiveInteger))
    .addOption(new Option('--batch-size <n>', "batch size (default: the spec's, else 32)").argParser(positiveInteger))
    .addOption(new Option('--learning-rate <x>', "learning rate (default: the spec's)").argParser(positiveNumber))
    .addOption(new Option('--seed <n>', 'seed of the initial weights, dropout masks and shuffling').default('0').argParser(seedValue))
    .option('--weights <file>', 'initial weights (safetensors) instead of the seeded initializers')
    .addOption(allowNonfiniteOption())
    .addOption(new Option('--validation-split <f>', 'hold out this last fraction of the training examples for validation').argParser(fraction))
    .option('--validate-on-test', "evaluate the data's held-out test split after every epoch (val_loss, val_accuracy in history.json and the chart)")
    .addOption(new Option('--precise-bn [batches]', 'after training, recompute the batchnorm moving statistics over the training data (or this many batches of it)').argParser(positiveInteger))
    .addOption(new Option('--trace <layers>', "record the 15th, 50th and 85th percentiles of these layers' nonlinearity inputs (comma-separated, as modelc check names them) into history.json").argParser(layerList))
    .addOption(new Option('--trace-every <k>', 'with --trace: every k steps (default 50)').argParser(positiveInteger))
    .addOption(new Option('--trace-unit <i>', 'with --trace: follow this one unit (index on the last axis) of each traced layer instead of the whole layer').argParser(nonNegativeInteger))
    .option('--no-simd', 'train with the TypeScript kernels only (default: WebAssembly SIMD kernels for the dense and convolution layers where the engine has them)')
    .addOption(new Option('--threads <n>', 'run the SIMD kernels on n threads (default 1: the same floats on every machine; with n the results change only by float rounding)').argParser(positiveInteger))
    .requiredOption('-o, --output <dir>', 'output directory (created if missing)')
    .addOption(new Option('--name <id>', 'file name of the outputs (default: the model name)').argParser(fileStemValue))
    .action(async (path: string, opts: TrainOptions) => {
      usableDataSource(opts);
      if (opts.validateOnTest && opts.validationSplit !== undefined) throw new UsageError('--validate-on-test and --validation-split both choose the validation data: use one');
      if (opts.traceEvery !== undefined && opts.trace === undefined) throw new UsageError('--trace-every needs --trace <layers>');
      if (opts.traceUnit !== undefined && opts.trace === undefined) throw new UsageError('--trace-unit needs --trace <layers>');
      // Ctrl-C once: stop after the current batch and save; twice: quit now.
      const stop = new AbortController();
      state.interrupt = () => {
        if (stop.signal.aborted) quit(130);
        io.stderr('\nstopping after the current batch (Ctrl-C again to quit without saving)\n');
        stop.abort();
      };
      try {
        const progress = io.terminal ?? new Writable({ write: (chunk, _encoding, done) => (io.stderr(String(chunk)), done()) });
        const result = await trainCommand(path, opts, { stdout: io.stdout, stderr: io.stderr, progress, interactive: io.terminal !== undefined, signal: stop.signal });
        for (const file of result.files) io.stdout(file + '\n');
        if (result.partial) state.exitCode = 130;
      } finally {
        state.interrupt = undefined;
      }
    });
}
