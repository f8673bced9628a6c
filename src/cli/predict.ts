/**
 * `modelc predict <model> --data <source> [-o preds.npy|preds.csv]`: run a
 * model on data and report how it does.
 *
 * 1. Lower the model. Its parameter values: `--weights` (safetensors), else
 *    its own (a TF.js model.json or a Keras file carries them), else the
 *    initializers sampled with `--seed`. A bare spec with neither is refused:
 *    predictions of untrained weights are rarely what was meant.
 * 2. Load the data for its input: MNIST's test split (with its labels), a CSV
 *    file (with `--label`, or every column an input), or an .npy file of
 *    inputs (with `--labels`, or without). The loaders' located diagnostics.
 * 3. Compile the optimized inference module in-process (`compile()`, emitted
 *    as JavaScript), import it and predict batch by batch.
 * 4. With labels, print the accuracy (a classifier) or the loss (regression);
 *    without, a summary. `-o` writes the predictions atomically: float32 .npy
 *    of shape [count, ...output shape], or CSV with a header.
 *
 * Which score: the spec's `train` loss when it has one; else a softmax output
 * (over its last axis) is scored as categorical, a sigmoid output as binary
 * (Keras's accuracy for those losses), anything else as regression (mse).
 */
import { Option, type Command } from 'commander';
import { accuracyKind } from '../autodiff/loss.js';
import { compile, fileStem } from '../compile/index.js';
import { fail } from '../diagnostics/diagnostic.js';
import { loadCsvInputs } from '../data/csv.js';
import { loadData, type Target } from '../data/index.js';
import { loadNpyInputs, writeNpy } from '../data/npy.js';
import { lowerFileAsync } from '../frontend/load.js';
import type { Graph } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { activationSizes, batchProblem, maxBatch } from '../ir/limits.js';
import { exampleShape, type TensorType } from '../ir/types.js';
import { materialize } from '../ops/init.js';
import { lossReadsLogits } from '../ops/activation.js';
import { accuracyOp, lossOp, type AccuracyKind } from '../ops/loss.js';
import type { LossName, TrainingSpec } from '../spec/training.js';
import { writeFileAtomic } from '../util/fs.js';
import { declare } from './commands.js';
import { positiveInteger, UsageError, type CliContext } from './context.js';
import { allowNonfiniteOption, withWeights } from './optimize.js';
import { seedValue } from './options.js';
import { warned } from './warnings.js';

export interface PredictOptions {
  /** `mnist`, a `.csv` file or an `.npy` file of inputs. */
  data: string;
  /** The label column of a CSV file; without it every column is an input. */
  label?: string;
  /** The `.npy` file of labels that goes with an `.npy` file of inputs. */
  labels?: string;
  /** Parameter values (safetensors) instead of the model's own. */
  weights?: string;
  /** Sample the initializers with this seed (for a spec without weights). */
  seed?: string;
  /** Where to write the predictions: a `.npy` or `.csv` file. */
  output?: string;
  batchSize?: number;
  allowNonfinite?: boolean;
}

/** The largest batch predict runs when --batch-size is not given. */
const DEFAULT_BATCH = 256;

/** What is wrong with the flags as given (a usage error), before anything is read. */
export function predictUsage(opts: PredictOptions): string | undefined {
  const { data, label, labels, output } = opts;
  const csv = /\.csv$/i.test(data);
  const npy = /\.npy$/i.test(data);
  if (data !== 'mnist' && !csv && !npy) return `unknown data source '${data}': use mnist, a .csv file or an .npy file of inputs`;
  if (label !== undefined && !csv) return `--label names a column of a CSV file; --data ${data} is not one`;
  if (labels !== undefined && !npy) return `--labels goes with an .npy file of inputs; --data ${data} is not one`;
  if (output !== undefined && !/\.(npy|csv)$/i.test(output)) return `cannot tell the output format of '${output}': use a .npy or .csv name`;
  if (opts.weights !== undefined && opts.seed !== undefined) return '--weights and --seed exclude each other: the weights file gives every value';
  return undefined;
}

/** How predictions are scored against labels: the loss the labels are encoded for, and the accuracy of a classifier. */
interface Scoring {
  readonly loss: LossName;
  readonly accuracy?: AccuracyKind;
  /** The final activation is a softmax over the last axis (its argmax is the class). */
  readonly softmax: boolean;
}

function scoringOf(graph: Graph, output: string, outputType: TensorType, training: TrainingSpec | undefined): Scoring {
  const node = graph.nodes.find((n) => n.result === output);
  // The final activation's record says which losses read its input as logits:
  // softmax over the last axis for categorical, sigmoid for binary.
  const reads = (loss: LossName) => node !== undefined && lossReadsLogits({ op: node.op, attrs: node.attrs, type: outputType }, loss);
  const softmax = reads('categorical_crossentropy');
  const loss: LossName = training?.loss ?? (softmax ? 'categorical_crossentropy' : reads('binary_crossentropy') ? 'binary_crossentropy' : 'mse');
  return loss.endsWith('crossentropy') ? { loss, accuracy: accuracyKind(loss, outputType), softmax } : { loss, softmax };
}

/** The graph with parameter values: --weights, else its own, else the initializers sampled with --seed. */
function weighted(graph: Graph, opts: PredictOptions, path: string): Graph {
  if (opts.weights !== undefined) return withWeights(graph, { weights: opts.weights, allowNonfinite: opts.allowNonfinite ?? false });
  const missing = graph.params.filter((p) => p.value === undefined);
  if (missing.length === 0) return graph;
  if (opts.seed === undefined) {
    const own = missing.length < graph.params.length ? `${missing.length} of its ${graph.params.length} parameters have no value (first: '${missing[0]!.name}')` : 'the model has no weights of its own';
    fail('weights', `${own}: give --weights w.safetensors (from modelc train or modelc init), or --seed N to predict with the untrained initializers sampled with seed N`, undefined, path);
  }
  return materialize(graph, Number(opts.seed));
}

/** Inputs, and labels encoded for the scoring loss when the data has them. */
interface Examples {
  readonly x: Float32Array;
  readonly count: number;
  readonly y?: Float32Array;
  readonly labelSize: number;
  readonly description: string;
}

function loadExamples(opts: PredictOptions, target: Target): Examples {
  const { data, label, labels } = opts;
  if (data === 'mnist') {
    const loaded = loadData({ kind: 'mnist' }, target);
    const test = loaded.test!;
    return { ...test, labelSize: loaded.labelSize, description: `${loaded.description}; predicting the ${test.count} test images` };
  }
  if (/\.csv$/i.test(data) && label !== undefined) {
    const loaded = loadData({ kind: 'csv', path: data, label }, target);
    return { ...loaded.train, labelSize: loaded.labelSize, description: loaded.description };
  }
  if (/\.npy$/i.test(data) && labels !== undefined) {
    const loaded = loadData({ kind: 'npy', x: data, y: labels }, target);
    return { ...loaded.train, labelSize: loaded.labelSize, description: loaded.description };
  }
  return { ...(/\.csv$/i.test(data) ? loadCsvInputs(data, target) : loadNpyInputs(data, target)), labelSize: 0 };
}

/** Imports generated JavaScript without touching the disk. */
async function importSource<T>(js: string): Promise<T> {
  return (await import(`data:text/javascript;base64,${Buffer.from(js).toString('base64')}`)) as T;
}

/** The generated inference module as predict uses it. */
interface InferenceModel {
  predict(x: Float32Array, batchSize: number): Float32Array;
}

/** The model's predictions for every example, `batch` at a time. */
async function predictAll(graph: Graph, path: string, x: Float32Array, count: number, batch: number): Promise<Float32Array> {
  const name = fileStem(graph.name);
  const compiled = await compile({ graph }, { name, source: path, emit: 'js' });
  const js = compiled.files.find((f) => f.path === `${name}.js`)!.contents as string;
  const { Model } = await importSource<{ Model: new () => InferenceModel }>(js);
  const model = new Model();
  const inSize = x.length / count;
  let out: Float32Array | undefined;
  for (let at = 0; at < count; at += batch) {
    const n = Math.min(batch, count - at);
    const y = model.predict(x.subarray(at * inSize, (at + n) * inSize), n);
    out ??= new Float32Array((y.length / n) * count);
    out.set(y, (at * y.length) / n);
  }
  return out!;
}

/** The shortest decimal that reads back as the same float32. */
function float32Text(v: number): string {
  for (let digits = 1; digits < 9; digits++) {
    const text = String(Number(v.toPrecision(digits)));
    if (Math.fround(Number(text)) === v) return text;
  }
  return String(v);
}

/** The class of each prediction row, when there is one: the argmax, or for one output 1 when above 0.5. */
function classOf(scoring: Scoring, outSize: number): ((row: Float32Array) => number) | undefined {
  if (scoring.accuracy === undefined) return undefined;
  if (outSize === 1) return (row) => (row[0]! > 0.5 ? 1 : 0);
  if (scoring.accuracy === 'binary' && !scoring.softmax) return undefined; // independent sigmoids: no single class
  return (row) => row.reduce((best, v, j) => (v > row[best]! ? j : best), 0);
}

/** The predictions as CSV: a header `p0,...,p{k-1}` (and `class` for a classifier), one row per example. */
function predictionsCsv(pred: Float32Array, count: number, scoring: Scoring): string {
  const k = pred.length / count;
  const cls = classOf(scoring, k);
  const header = [...Array.from({ length: k }, (_, j) => `p${j}`), ...(cls ? ['class'] : [])].join(',');
  const lines = [header];
  for (let r = 0; r < count; r++) {
    const row = pred.subarray(r * k, (r + 1) * k);
    const cells = Array.from(row, float32Text);
    if (cls) cells.push(String(cls(row)));
    lines.push(cells.join(','));
  }
  return lines.join('\n') + '\n';
}

/** The accuracy or loss line for predictions against labels. */
function scoreText(scoring: Scoring, pred: Float32Array, examples: Examples, outSize: number): string {
  const { count, labelSize } = examples;
  const operands: Tensor[] = [
    { shape: [count, outSize], data: Float64Array.from(pred) },
    { shape: [count, labelSize], data: Float64Array.from(examples.y!) },
  ];
  if (scoring.accuracy !== undefined) {
    const accuracy = accuracyOp.reference(operands, { kind: scoring.accuracy }).data[0]!;
    const perValue = scoring.accuracy === 'binary' && outSize > 1;
    const of = perValue ? count * outSize : count;
    return `accuracy: ${(accuracy * 100).toFixed(2)}% (${Math.round(accuracy * of)} of ${of} ${perValue ? 'outputs' : 'examples'}, ${scoring.accuracy} accuracy)\n`;
  }
  const loss = lossOp.reference(operands, { kind: scoring.loss, from_logits: false }).data[0]!;
  return `loss (${scoring.loss}): ${loss.toPrecision(6)} (${count} examples)\n`;
}

/** Runs `path` on the data; prints the score or a summary; writes the predictions with -o. Returns the file written, if any. */
export async function predictCommand(path: string, opts: PredictOptions, io: { stdout: (t: string) => void; stderr: (t: string) => void }): Promise<string | undefined> {
  const lowered = warned(await lowerFileAsync(path, { allowNonfinite: opts.allowNonfinite ?? false }), io.stderr);
  const graph = weighted(lowered.graph, opts, path);
  if (graph.inputs.length !== 1) {
    fail('data', `predict runs models with one input; ${graph.name} has ${graph.inputs.length} (${graph.inputs.map((i) => `'${i.name}'`).join(', ')})`, undefined, path);
  }
  const output = graph.outputs[0]!;
  if (graph.outputs.length > 1) io.stderr(`the model has ${graph.outputs.length} outputs; predicting the first, '${output}'\n`);
  const outputType = graph.nodes.find((n) => n.result === output)?.type ?? graph.inputs[0]!.type;
  const outShape = exampleShape(outputType);
  const outSize = outShape.reduce((a, b) => a * b, 1);
  const scoring = scoringOf(graph, output, outputType, lowered.spec.training);
  const examples = loadExamples(opts, { inputShape: exampleShape(graph.inputs[0]!.type), outputSize: outSize, loss: scoring.loss });
  io.stderr(`${examples.description}\n`);

  const sizes = activationSizes(graph);
  const batch = Math.min(opts.batchSize ?? Math.max(1, Math.min(DEFAULT_BATCH, maxBatch(sizes))), examples.count);
  const tooBig = batchProblem(batch, sizes);
  if (tooBig) fail('limit', `${opts.batchSize === undefined ? 'one example' : `--batch-size ${opts.batchSize}`}: ${tooBig}`);
  const pred = await predictAll(graph, path, examples.x, examples.count, batch);

  const shape = [examples.count, ...outShape];
  if (examples.y !== undefined) io.stdout(scoreText(scoring, pred, examples, outSize));
  else io.stdout(`predicted ${examples.count} example${examples.count === 1 ? '' : 's'}: output '${output}' of shape [${outShape.join(', ')}] each, predictions [${shape.join(', ')}]\n`);
  if (opts.output === undefined) return undefined;
  writeFileAtomic(opts.output, /\.npy$/i.test(opts.output) ? writeNpy(shape, pred) : predictionsCsv(pred, examples.count, scoring));
  io.stdout(`${opts.output}\n`);
  return opts.output;
}

export function registerPredict(program: Command, { io }: CliContext): void {
  declare(program, 'predict')
    .requiredOption('--data <source>', 'mnist (its test images), a .csv file (labels with --label) or an .npy file of inputs (labels with --labels)')
    .option('--label <column>', 'the label column of a CSV file (without it every column is an input)')
    .option('--labels <file>', 'the .npy file of labels for an .npy file of inputs')
    .option('--weights <file>', "parameter values (safetensors) instead of the model's own")
    .addOption(new Option('--seed <n>', 'for a spec without weights: predict with its initializers sampled with this seed').argParser(seedValue))
    .addOption(allowNonfiniteOption())
    .addOption(new Option('--batch-size <n>', 'examples per call of the compiled module (default 256)').argParser(positiveInteger))
    .option('-o, --output <file>', 'write the predictions: .npy (float32, [count, ...output shape]) or .csv (header p0,p1,... and class for a classifier)')
    .action(async (path: string, opts: PredictOptions) => {
      const problem = predictUsage(opts);
      if (problem !== undefined) throw new UsageError(problem);
      await predictCommand(path, opts, io);
    });
}
