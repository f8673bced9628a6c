/**
 * `modelc insert-bn <model> --data <source> -o <dir>`: add batch
 * normalization to a trained network without changing what it computes
 * (the work is src/compile/insert-bn.ts; this file reads flags and writes).
 *
 * 1. Lower the model; its weights: `--weights`, else its own (TF.js, Keras),
 *    else the initializers sampled with `--seed` (a bare spec with neither is
 *    refused). `--layers` names the layers to insert after (a bad name is a
 *    usage error listing those that can take one).
 * 2. Load up to `--samples` calibration inputs: MNIST's training digits, a
 *    CSV file (a `--label` column is left out), or an .npy file of inputs
 *    (`--labels` is accepted and not read). Labels are never used.
 * 3. Measure, rewrite, and write `<dir>/<name>.nn` (`.json` when the model
 *    was JSON, a TF.js model.json or a Keras file: the spec of an imported
 *    model is JSON, as `modelc import` writes it) and `<dir>/<name>.safetensors`
 *    (every weight, the new batchnorms' included), all or nothing. A `.nn`
 *    file keeps its comments. Prints the files written; on stderr a line
 *    per new batchnorm.
 */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { checkFileStem, fileStem } from '../compile/index.js';
import { batchNormSites, channelStatistics, withBatchNorm, type BatchNormSite, type InsertBatchNormResult } from '../compile/insert-bn.js';
import { fail, ModelcError } from '../diagnostics/diagnostic.js';
import { loadCsvFeatures, loadCsvInputs } from '../data/csv.js';
import { loadData } from '../data/index.js';
import { loadNpyInputs } from '../data/npy.js';
import { emptyComments, type DslComments } from '../frontend/dsl/comments.js';
import { printDsl } from '../frontend/dsl/print.js';
import { printJsonSpec } from '../frontend/json.js';
import { lowerFileAsync } from '../frontend/load.js';
import { writeSafetensors } from '../formats/safetensors.js';
import type { Graph } from '../ir/graph.js';
import { exampleShape } from '../ir/types.js';
import { materialize } from '../ops/init.js';
import { checkOutputDirectory, writeIntoDirectory } from '../util/fs.js';
import { allowNonfiniteOption, withWeights } from './optimize.js';
import { fileStemValue, seedValue } from './options.js';
import { warned } from './warnings.js';
import { declare } from './commands.js';

export interface InsertBnOptions {
  /** `mnist`, a `.csv` file or an `.npy` file of inputs. */
  data: string;
  /** A CSV file's label column, left out of the inputs. */
  label?: string;
  /** An .npy file of labels: accepted (as `train` takes it) and not read. */
  labels?: string;
  weights?: string;
  seed?: string;
  /** Comma-separated layer names. */
  layers?: string;
  samples: number;
  output: string;
  name?: string;
  allowNonfinite?: boolean;
}

interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** Calibration examples used when --samples is not given. */
export const DEFAULT_SAMPLES = 1000;

/** What is wrong with the flags as given (a usage error), before anything is read. */
export function insertBnUsage(opts: InsertBnOptions): string | undefined {
  const { data, label, labels } = opts;
  const csv = /\.csv$/i.test(data);
  const npy = /\.npy$/i.test(data);
  if (data !== 'mnist' && !csv && !npy) return `unknown data source '${data}': use mnist, a .csv file or an .npy file of inputs`;
  if (label !== undefined && !csv) return `--label names a column of a CSV file; --data ${data} is not one`;
  if (labels !== undefined && !npy) return `--labels goes with an .npy file of inputs; --data ${data} is not one`;
  if (opts.weights !== undefined && opts.seed !== undefined) return '--weights and --seed exclude each other: the weights file gives every value';
  if (opts.layers !== undefined && layerList(opts.layers).length === 0) return '--layers names no layer';
  return undefined;
}

function layerList(text: string): string[] {
  return text.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** The graph with parameter values: --weights, else its own, else the initializers sampled with --seed. */
function weighted(graph: Graph, opts: InsertBnOptions, path: string): Graph {
  if (opts.weights !== undefined) return withWeights(graph, { weights: opts.weights, allowNonfinite: opts.allowNonfinite ?? false });
  const missing = graph.params.filter((p) => p.value === undefined);
  if (missing.length === 0) return graph;
  if (opts.seed === undefined) {
    fail('weights', 'the model has no weights of its own: give --weights w.safetensors (the trained ones), or --seed N to start from the initializers sampled with seed N', undefined, path);
  }
  return materialize(graph, Number(opts.seed));
}

/** Up to `samples` calibration inputs for a model taking `inputShape`; labels are not used. */
function calibrationInputs(opts: InsertBnOptions, inputShape: readonly number[]): { x: Float32Array; count: number; description: string } {
  const { data, label } = opts;
  let loaded: { x: Float32Array; count: number; description: string };
  if (data === 'mnist') {
    // The labels are encoded for a 10-class sparse loss only so that any model can load the digits.
    const mnist = loadData({ kind: 'mnist' }, { inputShape, outputSize: 10, loss: 'sparse_categorical_crossentropy' });
    loaded = { x: mnist.train.x, count: mnist.train.count, description: `${mnist.description}; ` };
  } else if (/\.csv$/i.test(data)) {
    loaded = label === undefined ? loadCsvInputs(data, { inputShape }) : loadCsvFeatures(data, label, { inputShape });
  } else {
    loaded = loadNpyInputs(data, { inputShape });
  }
  const count = Math.min(opts.samples, loaded.count);
  const inSize = inputShape.reduce((a, b) => a * b, 1);
  return { x: loaded.x.subarray(0, count * inSize), count, description: `${loaded.description}; calibrating on the first ${count}` };
}

/** A `.nn` file's comments moved with its layers (statements are keyed by `/layers/<index>`). */
function movedComments(comments: DslComments, layerIndex: readonly number[]): DslComments {
  const key = (k: string) => k.replace(/^\/layers\/(\d+)(?=\/|$)/, (_, i: string) => `/layers/${layerIndex[Number(i)] ?? i}`);
  const rekey = <T>(map: Map<string, T>) => new Map([...map].map(([k, v]) => [key(k), v]));
  return { leading: rekey(comments.leading), trailing: rekey(comments.trailing), closing: rekey(comments.closing), footer: comments.footer, blankBefore: new Set([...comments.blankBefore].map(key)) };
}

/** Where each new layer went, for stderr. */
function insertedText(result: InsertBatchNormResult): string {
  return result.inserted
    .map((b) => `inserted ${b.name} after ${b.after} (${b.channels} channel${b.channels === 1 ? '' : 's'})${b.activationLayer ? `, its activation moved to ${b.activationLayer}` : ''}\n`)
    .join('');
}

/**
 * Runs insert-bn on `path`; returns the files written. `usage` reports a
 * usage error (a --layers name that cannot take a batchnorm): it does not return.
 */
export async function insertBnCommand(path: string, opts: InsertBnOptions, io: Io, usage: (message: string) => never): Promise<string[]> {
  if (opts.name !== undefined) checkFileStem(opts.name, '--name');
  const loaded = warned(await lowerFileAsync(path, { allowNonfinite: opts.allowNonfinite ?? false }), io.stderr);
  let sites: BatchNormSite[];
  try {
    sites = batchNormSites(loaded.spec, opts.layers === undefined ? undefined : layerList(opts.layers), path);
  } catch (err) {
    if (opts.layers !== undefined && err instanceof ModelcError) usage(`--layers: ${err.message}`);
    throw err;
  }
  const graph = weighted(loaded.graph, opts, path);
  if (graph.inputs.length !== 1) fail('data', `insert-bn calibrates models with one input; ${graph.name} has ${graph.inputs.length}`, undefined, path);
  const name = opts.name ?? fileStem(loaded.spec.name);
  const ext = loaded.format === 'nn' ? 'nn' : 'json';
  checkOutputDirectory(opts.output, [`${name}.${ext}`, `${name}.safetensors`]);

  const data = calibrationInputs(opts, exampleShape(graph.inputs[0]!.type));
  io.stderr(`${data.description}\n`);
  const started = performance.now();
  const statistics = await channelStatistics(graph, sites.map((s) => s.value), data.x, data.count);
  io.stderr(`calibrated ${sites.length} layer${sites.length === 1 ? '' : 's'} on ${data.count} example${data.count === 1 ? '' : 's'} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  const result = withBatchNorm({ spec: loaded.spec, graph }, sites, statistics, { path });

  const text = ext === 'nn' ? printDsl(result.spec, movedComments(loaded.comments ?? emptyComments(), result.layerIndex)) : printJsonSpec(result.spec);
  const weights = writeSafetensors(result.weights, { 'modelc.model': result.spec.name, 'modelc.insert-bn': result.inserted.map((b) => b.name).join(',') });
  const written = writeIntoDirectory(opts.output, [[`${name}.${ext}`, text], [`${name}.safetensors`, weights]]);
  io.stderr(insertedText(result));
  return written;
}

/** A --samples value: a positive integer. */
function positiveInteger(text: string): number {
  const x = Number(text);
  if (!Number.isSafeInteger(x) || x <= 0) throw new InvalidArgumentError('expected a positive integer');
  return x;
}

/** Declares `modelc insert-bn` on `program`; it prints the files written, one per line. */
export function registerInsertBn(program: Command, io: Io): Command {
  const command: Command = declare(program, 'insert-bn')
    .option('--data <source>', 'calibration inputs: mnist (the embedded training digits), a .csv file or an .npy file of inputs', 'mnist')
    .option('--label <column>', "a CSV file's label column, left out of the inputs (labels are not used)")
    .option('--labels <file>', 'the .npy labels that go with an .npy file of inputs (accepted, not read)')
    .option('--weights <file>', "the model's weights (safetensors; default: its own, for a TF.js or Keras model)")
    .addOption(new Option('--seed <n>', 'without weights: use the initializers sampled with this seed').argParser(seedValue))
    .option('--layers <names>', 'comma-separated layers to insert after (default: every dense/conv layer that is not an output and not followed by a batchnorm)')
    .addOption(new Option('--samples <n>', 'calibration examples (the first n)').default(DEFAULT_SAMPLES).argParser(positiveInteger))
    .requiredOption('-o, --output <dir>', 'output directory (created if missing)')
    .addOption(new Option('--name <id>', 'file name of <name>.nn|.json and <name>.safetensors (default: the model name)').argParser(fileStemValue))
    .addOption(allowNonfiniteOption())
    .action(async (path: string, opts: InsertBnOptions) => {
      const usage = (message: string): never => command.error(`error: ${message}`, { exitCode: 2, code: 'modelc.usage' });
      const problem = insertBnUsage(opts);
      if (problem !== undefined) usage(problem);
      for (const file of await insertBnCommand(path, opts, io, usage)) io.stdout(file + '\n');
    });
  return command;
}
