/**
 * The commands that read a spec and print or rewrite it: check, ir, verify,
 * convert, fmt. They need the frontend and the passes, never codegen.
 */
import type { Command } from 'commander';
import { Option } from 'commander';
import { pipelineFor } from '../compile/pipeline.js';
import { fail } from '../diagnostics/diagnostic.js';
import { printDsl } from '../frontend/dsl/print.js';
import { printJsonSpec } from '../frontend/json.js';
import { detectFormat, loadSpecAsync, lowerFileAsync, type SpecFormat } from '../frontend/load.js';
import { activationSizes, batchProblem } from '../ir/limits.js';
import { printGraph } from '../ir/print.js';
import { readSource, writeFileAtomic } from '../util/fs.js';
import { declare } from './commands.js';
import { printed, UsageError, type CliContext } from './context.js';
import { allowNonfiniteOption, optimize, pipelineOptions, withWeights, type OptimizeOptions } from './optimize.js';
import { summarize } from './summary.js';
import { verifyOptimization } from './verify.js';
import { warned } from './warnings.js';

export function registerCheck(program: Command, { io }: CliContext): void {
  declare(program, 'check')
    .addOption(allowNonfiniteOption())
    .action(async (path: string, opts: { allowNonfinite?: boolean }) => {
      const { spec, graph, layers } = warned(await lowerFileAsync(path, { allowNonfinite: opts.allowNonfinite ?? false }), io.stderr, io.color);
      io.stdout(printed(summarize(spec, graph, layers)));
    });
}

export function registerIr(program: Command, { io }: CliContext): void {
  pipelineOptions(declare(program, 'ir').option('-o, --output <file>', 'write the IR to a file instead of stdout'), false).action(async (path: string, opts: OptimizeOptions & { output?: string }) => {
    let graph = warned(await lowerFileAsync(path, { allowNonfinite: opts.allowNonfinite ?? false }), io.stderr, io.color).graph;
    const passes = pipelineFor(opts, false);
    if (passes.length > 0) graph = optimize(withWeights(graph, opts), passes, opts, io.stderr).optimized;
    const text = printGraph(graph);
    if (opts.output) writeFileAtomic(opts.output, text);
    else io.stdout(text);
  });
}

export function registerVerify(program: Command, { io, state }: CliContext): void {
  pipelineOptions(
    declare(program, 'verify').option('--tolerance <x>', 'maximum relative difference', '1e-5').option('--batch <n>', 'random examples per input', '4'),
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
}

function formatFor(path: string, explicit?: string): SpecFormat {
  if (explicit === 'nn' || explicit === 'json') return explicit;
  if (/\.nn$/i.test(path)) return 'nn';
  if (/\.json$/i.test(path)) return 'json';
  throw new UsageError(`cannot tell the output format of '${path}': use a .nn or .json name, or --to nn|json`);
}

export function registerConvert(program: Command, { io }: CliContext): void {
  declare(program, 'convert')
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
}

export function registerFmt(program: Command, { io, state }: CliContext): void {
  declare(program, 'fmt')
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
}
