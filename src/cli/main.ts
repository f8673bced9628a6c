/**
 * The `modelc` command line: commander wiring only. Each command calls the
 * library and prints; every user error is a rendered diagnostic with exit
 * code 1, usage errors exit 2, and no stack trace ever reaches the user.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { pipelineFor } from '../compile/index.js';
import { fail, ModelcError } from '../diagnostics/diagnostic.js';
import { renderDiagnostics } from '../diagnostics/render.js';
import { printDsl } from '../frontend/dsl/print.js';
import { printJsonSpec } from '../frontend/json.js';
import { detectFormat, loadSpecAsync, lowerFileAsync, type SpecFormat } from '../frontend/load.js';
import { activationSizes, batchProblem } from '../ir/limits.js';
import { printGraph } from '../ir/print.js';
import { readSource, removeTempFiles, writeFileAtomic } from '../util/fs.js';
import { compileCommand, type CompileOptions } from './compile.js';
import { importCommand, type ImportOptions } from './import.js';
import { registerExperiments } from './experiments.js';
import { registerExport } from './export.js';
import { registerInit } from './init.js';
import { registerInsertBn } from './insert-bn.js';
import { allowNonfiniteOption, optimize, pipelineOptions, withWeights, type OptimizeOptions } from './optimize.js';
import { fileStemValue, seedValue } from './options.js';
import { predictCommand, predictUsage, type PredictOptions } from './predict.js';
import { summarize } from './summary.js';
import { dataSource, trainCommand, type TrainOptions } from './train.js';
import { verifyOptimization } from './verify.js';
import { warned } from './warnings.js';

const version = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  color: boolean;
  /** A terminal to draw progress bars on (train); without one, progress is one line per epoch on `stderr`. */
  terminal?: NodeJS.WritableStream & { isTTY?: boolean };
}

const defaultIo = (): Io => {
  guardStreams();
  return {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    color: Boolean(process.stderr.isTTY) && !process.env['NO_COLOR'],
    ...(process.stderr.isTTY ? { terminal: process.stderr } : {}),
  };
};

let streamsGuarded = false;

/**
 * A closed pipe on stdout (`modelc ir big.nn | head -1`) ends the run quietly
 * with exit 0, as `git` and `ls` do; any other stdout error ends it with exit
 * 1 and a one-line message. Errors on stderr are dropped: there is nowhere
 * left to report them, and the run's own outcome decides the exit code.
 */
function guardStreams(): void {
  if (streamsGuarded) return;
  streamsGuarded = true;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    removeTempFiles();
    if (err.code === 'EPIPE') process.exit(0);
    process.stderr.write(`modelc: cannot write to standard output: ${err.message}\n`);
    process.exit(1);
  });
  process.stderr.on('error', () => {});
}

/** Usage errors found after commander's own parsing. */
class UsageError extends Error {}

function printed(text: string): string {
  return text.endsWith('\n') ? text : text + '\n';
}

function formatFor(path: string, explicit?: string): SpecFormat {
  if (explicit === 'nn' || explicit === 'json') return explicit;
  if (/\.nn$/i.test(path)) return 'nn';
  if (/\.json$/i.test(path)) return 'json';
  throw new UsageError(`cannot tell the output format of '${path}': use a .nn or .json name, or --to nn|json`);
}

/** What a run ends with, set by commands that fail without a diagnostic (fmt --check). */
interface RunState {
  exitCode: number;
  /** What a SIGINT does while a command runs that handles it itself (train); otherwise the run ends with 130. */
  interrupt?: (() => void) | undefined;
}

function build(io: Io, state: RunState): Command {
  const program = new Command('modelc')
    .description('Compile neural-network specs (.nn DSL, JSON, a TF.js model.json, or a Keras .keras/.h5 file) to a typed IR and standalone TypeScript.')
    .version(version)
    .showSuggestionAfterError()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride();

  program
    .command('check')
    .description('validate a spec and print its layer summary (like Keras model.summary())')
    .argument('<spec>', 'a .nn or .json model spec, a TF.js model.json, or a Keras .keras/.h5 file')
    .addOption(allowNonfiniteOption())
    .action(async (path: string, opts: { allowNonfinite?: boolean }) => {
      const { spec, graph, layers } = warned(await lowerFileAsync(path, { allowNonfinite: opts.allowNonfinite ?? false }), io.stderr, io.color);
      io.stdout(printed(summarize(spec, graph, layers)));
    });

  pipelineOptions(
    program
      .command('ir')
      .description('print the textual IR of a spec, optimized with -O or --passes')
      .argument('<spec>', 'a .nn or .json model spec, a TF.js model.json, or a Keras .keras/.h5 file')
      .option('-o, --output <file>', 'write the IR to a file instead of stdout'),
    false,
  ).action(async (path: string, opts: OptimizeOptions & { output?: string }) => {
    let graph = warned(await lowerFileAsync(path, { allowNonfinite: opts.allowNonfinite ?? false }), io.stderr, io.color).graph;
    const passes = pipelineFor(opts, false);
    if (passes.length > 0) graph = optimize(withWeights(graph, opts), passes, opts, io.stderr).optimized;
    const text = printGraph(graph);
    if (opts.output) writeFileAtomic(opts.output, text);
    else io.stdout(text);
  });

  pipelineOptions(
    program
      .command('verify')
      .description('check that the optimized graph computes what the original does (reference interpreter)')
      .argument('<spec>', 'a .nn or .json model spec, a TF.js model.json, or a Keras .keras/.h5 file')
      .option('--tolerance <x>', 'maximum relative difference', '1e-5')
      .option('--batch <n>', 'random examples per input', '4'),
    true,
  ).action(async (path: string, opts: OptimizeOptions & { tolerance: string; batch: string }) => {
    const tolerance = Number(opts.tolerance);
    const batch = Number(opts.batch);
    if (!(tolerance >= 0)) throw new UsageError(`--tolerance must be a non-negative number, got '${opts.tolerance}'`);
    if (!Number.isInteger(batch) || batch < 1) throw new UsageError(`--batch must be a positive integer, got '${opts.batch}'`);
    const lowered = warned(await lowerFileAsync(path, { allowNonfinite: opts.allowNonfinite ?? false }), io.stderr, io.color).graph;
    const tooBig = batchProblem(batch, activationSizes(lowered));
    if (tooBig) throw new UsageError(`--batch ${opts.batch}: ${tooBig}`);
    const graph = withWeights(lowered, opts);
    const report = verifyOptimization(graph, pipelineFor(opts, true), opts, io.stderr, { tolerance, batch });
    io.stdout(report.text);
    if (!report.ok) state.exitCode = 1;
  });

  pipelineOptions(
    program
      .command('compile')
      .description('generate a standalone TypeScript inference module (optimized by default) and/or training module')
      .argument('<spec>', 'a .nn or .json model spec, a TF.js model.json, or a Keras .keras/.h5 file')
      .requiredOption('-o, --output <dir>', 'output directory (created if missing)')
      .addOption(new Option('--name <id>', 'file and module name (default: the model name)').argParser(fileStemValue))
      .addOption(new Option('--emit <kind>', 'which files to write').choices(['ts', 'js', 'both']).default('ts'))
      .addOption(new Option('--weights-mode <mode>', 'embed the weights, or read safetensors bytes at run time (written next to the module)').choices(['embed', 'external']).default('embed'))
      .option('--no-optimize', 'run no passes: one kernel per spec op')
      .option('--emit-test', 'also write <name>.test.ts/.js: golden vectors checked with node --test')
      .addOption(new Option('--target <kind>', 'inference module <name>.ts, training module <name>.train.ts (class Trainer), or both').choices(['inference', 'training', 'both']).default('inference'))
      .addOption(new Option('--learning-rate <x>', "the training module's default learning rate (default: the spec's)").argParser(positiveNumber))
      .option('--simd', 'also emit dense and convolution kernels as WebAssembly SIMD (embedded; used where the engine supports it, else the TypeScript kernels run)'),
    true,
  ).action(async (path: string, opts: CompileOptions) => {
    for (const file of await compileCommand(path, opts, io.stderr)) io.stdout(file + '\n');
  });
  program
    .command('train')
    .description('train a spec on MNIST, a CSV or .npy data; write the trained weights, history.json, a chart and the folded inference module')
    .argument('<spec>', 'a .nn or .json model spec with a training block, or a Keras .keras/.h5 file')
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
    .addOption(new Option('--precise-bn [batches]', 'after training, recompute the batchnorm moving statistics over the training data (or this many batches of it)').argParser(positiveInteger))
    .addOption(new Option('--trace <layers>', "record the 15th, 50th and 85th percentiles of these layers' nonlinearity inputs (comma-separated, as modelc check names them) into history.json").argParser(layerList))
    .addOption(new Option('--trace-every <k>', 'with --trace: every k steps (default 50)').argParser(positiveInteger))
    .addOption(new Option('--trace-unit <i>', 'with --trace: follow this one unit (index on the last axis) of each traced layer instead of the whole layer').argParser(nonNegativeInteger))
    .requiredOption('-o, --output <dir>', 'output directory (created if missing)')
    .addOption(new Option('--name <id>', 'file name of the outputs (default: the model name)').argParser(fileStemValue))
    .action(async (path: string, opts: TrainOptions) => {
      usableDataSource(opts);
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
  program
    .command('predict')
    .description('run a model on MNIST, a CSV or .npy data: print its accuracy or loss against the labels (a summary without), and write the predictions')
    .argument('<model>', 'a .nn or .json model spec, a TF.js model.json, or a Keras .keras/.h5 file')
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
  registerInit(program, io);
  registerExport(program, io);
  registerExperiments(program, io, () => (state.exitCode = 1));
  registerInsertBn(program, io);
  program
    .command('import')
    .description('import a Keras model (.keras, legacy .h5) or a TF.js LayersModel (model.json and its weight shards) as a JSON spec and safetensors weights')
    .argument('<model>', 'a Keras .keras or .h5 file (model.save), a Keras model config (.json), or a TF.js model.json')
    .requiredOption('-o, --output <dir>', 'output directory (created if missing)')
    .addOption(new Option('--name <id>', 'file name of <name>.json and <name>.safetensors (default: the model name)').argParser(fileStemValue))
    .addOption(allowNonfiniteOption())
    .action(async (path: string, opts: ImportOptions) => {
      for (const file of await importCommand(path, opts, io.stderr)) io.stdout(file + '\n');
    });

  program
    .command('convert')
    .description('convert a spec between the .nn DSL and JSON (round-trips exactly)')
    .argument('<spec>', 'a .nn or .json model spec, a TF.js model.json, or a Keras .keras/.h5 file')
    .option('-o, --output <file>', 'output file; its extension picks the format')
    .addOption(new Option('--to <format>', 'output format (default: from the -o extension)').choices(['nn', 'json']))
    .action(async (path: string, opts: { output?: string; to?: string }) => {
      if (!opts.output && !opts.to) throw new UsageError('convert needs -o <file> or --to nn|json');
      const loaded = warned(await loadSpecAsync(path), io.stderr, io.color);
      const format = formatFor(opts.output ?? '', opts.to);
      const text = format === 'nn' ? printDsl(loaded.spec) : printJsonSpec(loaded.spec);
      if (opts.output) writeFileAtomic(opts.output, text);
      else io.stdout(text);
    });

  program
    .command('fmt')
    .description('print specs in canonical form (comments kept in .nn files)')
    .argument('<specs...>', '.nn or .json model specs')
    .option('-w, --write', 'rewrite the files in place')
    .option('--check', 'exit 1 if any file is not in canonical form; change nothing')
    .action(async (paths: string[], opts: { write?: boolean; check?: boolean }) => {
      if (opts.write && opts.check) throw new UsageError('--write and --check exclude each other');
      let unformatted = 0;
      for (const path of paths) {
        const loaded = warned(await loadSpecAsync(path), io.stderr, io.color);
        if (loaded.format === 'tfjs') fail('import', 'a TF.js model.json is not a spec: `modelc import` converts it to one', undefined, path);
        if (loaded.format === 'keras') fail('import', 'a Keras model is not a spec: `modelc import` converts it to one', undefined, path);
        const file = readSource(path);
        const text = detectFormat(file) === 'nn' ? printDsl(loaded.spec, loaded.comments) : printJsonSpec(loaded.spec);
        if (opts.check) {
          if (text !== file.text) {
            unformatted++;
            io.stderr(`${path}: not in canonical form (run modelc fmt --write)\n`);
          }
        } else if (opts.write) {
          if (text !== file.text) writeFileAtomic(path, text);
        } else io.stdout(text);
      }
      if (unformatted > 0) state.exitCode = 1;
    });

  return program;
}

/** Runs the CLI on `argv` (as process.argv: node, script, args...); returns the exit code. */
export async function main(argv: readonly string[], io: Io = defaultIo()): Promise<number> {
  const state: RunState = { exitCode: 0 };
  const program = build(io, state);
  // Ctrl-C and SIGTERM end the run (train handles its first Ctrl-C itself), removing temp files first.
  const onSigint = () => (state.interrupt ? state.interrupt() : quit(130));
  const onSigterm = () => quit(143);
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  try {
    await program.parseAsync([...argv]);
    return state.exitCode;
  } catch (err) {
    if (err instanceof ModelcError) {
      io.stderr(renderDiagnostics(err.diagnostics, { color: io.color }) + '\n');
      return 1;
    }
    if (err instanceof CommanderError) {
      // Help and version exit 0; everything else commander reports is a usage error.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof UsageError) {
      io.stderr(`error: ${err.message}\n`);
      return 2;
    }
    io.stderr(`modelc: internal error: ${(err as Error)?.message ?? String(err)}\n(this is a bug in modelc; please report it with the input that caused it)\n`);
    return 70;
  } finally {
    await handlePendingSignals();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  }
}

/**
 * Lets a signal that arrived during synchronous work (writing the files) reach
 * its handler before the handlers go: a run interrupted while it wrote ends
 * with 130 (its files complete, no temp file) rather than 0. The loop polls
 * for signals between turns; the first immediate can run before that poll.
 */
async function handlePendingSignals(): Promise<void> {
  for (let turn = 0; turn < 2; turn++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Ends the process now with `code`, leaving no temp file behind. */
function quit(code: number): never {
  removeTempFiles();
  process.exit(code);
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

/** An --epochs or --batch-size value: a positive integer. */
function positiveInteger(text: string): number {
  const x = Number(text);
  if (!Number.isSafeInteger(x) || x <= 0) throw new InvalidArgumentError('expected a positive integer');
  return x;
}

/** A --trace-unit value: an integer from 0. */
function nonNegativeInteger(text: string): number {
  const x = Number(text);
  if (text.trim() === '' || !Number.isSafeInteger(x) || x < 0) throw new InvalidArgumentError('expected an integer from 0');
  return x;
}

/** A --trace value: layer names separated by commas. */
function layerList(text: string): string[] {
  const layers = text.split(',').map((l) => l.trim());
  if (layers.some((l) => l === '')) throw new InvalidArgumentError('expected layer names separated by commas');
  return layers;
}

/** A --validation-split value: a number in [0, 1). */
function fraction(text: string): number {
  const x = Number(text);
  if (!(x >= 0 && x < 1)) throw new InvalidArgumentError('expected a number in [0, 1)');
  return x;
}

/** A --learning-rate value: a positive finite number. */
function positiveNumber(text: string): number {
  const x = Number(text);
  if (!Number.isFinite(x) || x <= 0) throw new InvalidArgumentError('expected a positive number');
  return x;
}
