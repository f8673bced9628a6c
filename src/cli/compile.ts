/**
 * `modelc compile`: the library's `compile()` with the command's flags, then
 * its files written atomically, one path printed per line, so that a failure
 * leaves no partial output behind. Several specs compile in one run (one
 * start-up for a build pipeline): every spec is compiled before anything is
 * written, and all their files are written together or not at all.
 */
import { Option, type Command } from 'commander';
import { checkFileStem, compile, type CompileResult } from '../compile/index.js';
import { fail } from '../diagnostics/diagnostic.js';
import { writeIntoDirectory } from '../util/fs.js';
import { declare } from './commands.js';
import { positiveNumber, UsageError, type CliContext } from './context.js';
import { explainText, pipelineOptions, printBetweenPasses, weightsOf, type OptimizeOptions } from './optimize.js';
import { fileStemValue } from './options.js';
import { printWarnings } from './warnings.js';

export interface CompileOptions extends OptimizeOptions {
  output: string;
  name?: string;
  emit: 'ts' | 'js' | 'both';
  weightsMode: 'embed' | 'external';
  emitTest?: boolean;
  /** Which modules: the inference module, the training module (`<name>.train.ts`), or both. */
  target?: 'inference' | 'training' | 'both';
  learningRate?: number;
  /** Kernels also as WebAssembly SIMD (default; `--no-simd`: the pure TypeScript module). */
  simd?: boolean;
}

/** Compiles `path` in memory, printing its warnings (and --explain) to `stderr`. */
async function compileOne(path: string, opts: CompileOptions, stderr: (t: string) => void): Promise<CompileResult> {
  const result = await compile(
    { path },
    {
      name: opts.name,
      emit: opts.emit,
      weightsMode: opts.weightsMode,
      target: opts.target,
      learningRate: opts.learningRate,
      simd: opts.simd,
      emitTest: opts.emitTest,
      passes: opts.passes,
      optimize: opts.optimize,
      ...weightsOf(opts),
      allowNonfinite: opts.allowNonfinite ?? false,
      afterPass: printBetweenPasses(opts, stderr),
    },
  );
  printWarnings(result.warnings, stderr);
  if (opts.explain && result.passes.length > 0) stderr(explainText(result.explain));
  return result;
}

/**
 * Compiles every spec of `paths`, then writes all their files into the
 * output directory at once; returns the paths written, in order. Two specs
 * that would write the same file are an error before anything is written.
 */
export async function compileCommand(paths: string | readonly string[], opts: CompileOptions, stderr: (t: string) => void): Promise<string[]> {
  const specs = typeof paths === 'string' ? [paths] : [...new Set(paths)];
  if (opts.name !== undefined) checkFileStem(opts.name, '--name');
  const files: (readonly [string, string | Uint8Array])[] = [];
  const writer = new Map<string, string>();
  for (const path of specs) {
    const result = await compileOne(path, opts, stderr);
    for (const f of result.files) {
      const other = writer.get(f.path);
      if (other !== undefined) fail('io', `'${other}' and '${path}' would both write ${f.path}: compile them into different folders, or rename one of the models`, undefined, path);
      writer.set(f.path, path);
      files.push([f.path, f.contents]);
    }
  }
  return writeIntoDirectory(opts.output, files);
}

export function registerCompile(program: Command, { io }: CliContext): void {
  pipelineOptions(
    declare(program, 'compile')
      .requiredOption('-o, --output <dir>', 'output directory (created if missing)')
      .addOption(new Option('--name <id>', 'file and module name (default: the model name; one spec only)').argParser(fileStemValue))
      .addOption(new Option('--emit <kind>', 'which files to write').choices(['ts', 'js', 'both']).default('ts'))
      .addOption(new Option('--weights-mode <mode>', 'embed the weights, or read safetensors bytes at run time (written next to the module)').choices(['embed', 'external']).default('embed'))
      .option('--no-optimize', 'run no passes: one kernel per spec op')
      .option('--emit-test', 'also write <name>.test.ts/.js: golden vectors checked with node --test')
      .addOption(new Option('--target <kind>', 'inference module <name>.ts, training module <name>.train.ts (class Trainer), or both').choices(['inference', 'training', 'both']).default('inference'))
      .addOption(new Option('--learning-rate <x>', "the training module's default learning rate (default: the spec's)").argParser(positiveNumber))
      .option('--no-simd', 'the pure TypeScript module (default: dense and convolution kernels also as WebAssembly SIMD, embedded, used where the engine has it, else the TypeScript kernels run)')
      .addOption(new Option('--simd', 'WebAssembly SIMD kernels too (the default; kept for scripts that pass it)').hideHelp()),
    true,
  ).action(async (paths: string[], opts: CompileOptions) => {
    if (paths.length > 1 && opts.name !== undefined) throw new UsageError('--name names one module: give one spec with it');
    if (paths.length > 1 && opts.weights !== undefined) throw new UsageError('--weights holds one model\'s parameters: give one spec with it');
    for (const file of await compileCommand(paths, opts, io.stderr)) io.stdout(file + '\n');
  });
}
