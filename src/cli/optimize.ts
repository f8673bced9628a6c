/**
 * The options `modelc ir -O`, `verify`, `export` and `compile` share: weights
 * (a safetensors file, or the initializers sampled with a seed), the pipeline
 * (`-O` or `--passes`), printing between passes, and the explain log. The
 * work is the library's (src/compile/); this file reads flags and prints.
 */
import { Option, type Command } from 'commander';
import { runPasses, withWeights as weightsFrom, type PassRun } from '../compile/index.js';
import { fail } from '../diagnostics/diagnostic.js';
import type { Graph } from '../ir/graph.js';
import { printGraph } from '../ir/print.js';
import { createPassManager, defaultPipeline } from '../passes/pipeline.js';
import type { ExplainLog } from '../rewrite/explain.js';
import { passList, passNames, seedValue } from './options.js';

export interface OptimizeOptions {
  optimize?: boolean;
  passes?: string;
  weights?: string;
  seed?: string;
  printAfterAll?: boolean;
  printAfter?: string[];
  explain?: boolean;
  /** --allow-nonfinite: accept NaN and infinite weight values. */
  allowNonfinite?: boolean;
}

/** --allow-nonfinite, on every command that attaches weights (a weights file, or a model's own). */
export function allowNonfiniteOption(): Option {
  return new Option('--allow-nonfinite', 'accept NaN and infinite weight values (by default an error naming the tensor and the first bad index)');
}

/** Adds the weight and pipeline options to a command. */
export function pipelineOptions(cmd: Command, optimizeDefault: boolean): Command {
  return cmd
    .option('-O, --optimize', `run the default inference pipeline (${defaultPipeline.join(',')})${optimizeDefault ? ' (default)' : ''}`)
    .addOption(new Option('--passes <list>', 'run these passes, comma-separated, instead of the default pipeline').argParser(passList))
    .option('--weights <file>', 'parameter values from a safetensors file (default: the initializers, seeded)')
    .addOption(new Option('--seed <n>', 'seed for the initializers').default('0').argParser(seedValue))
    .option('--print-after-all', 'print the IR after every pass (on stderr)')
    .addOption(new Option('--print-after <pass...>', 'print the IR after the named passes (on stderr)').argParser(passNames))
    .option('--explain', 'list every fold and fusion applied or skipped, with the reason (on stderr)')
    .addOption(allowNonfiniteOption());
}

/** --weights, or else the --seed of the initializers (checked only then, as the seed is unused otherwise). */
export function weightsOf(opts: Pick<OptimizeOptions, 'weights' | 'seed'>): { weights: string } | { seed: number } {
  if (opts.weights) return { weights: opts.weights };
  const seed = Number(opts.seed ?? '0');
  if (!Number.isSafeInteger(seed)) fail('weights', `--seed must be an integer, got '${opts.seed}'`);
  return { seed };
}

/** The graph with parameter values, from --weights or the seeded initializers. */
export function withWeights(graph: Graph, opts: OptimizeOptions): Graph {
  const w = weightsOf(opts);
  const options = { allowNonfinite: opts.allowNonfinite ?? false };
  return 'weights' in w ? weightsFrom(graph, w.weights, 0, options) : weightsFrom(graph, undefined, w.seed, options);
}

/**
 * The hook that prints the IR after the passes --print-after names (every
 * pass with --print-after-all). The names are checked when the first pass
 * ends, before anything is printed: a run without passes ignores them.
 */
export function printBetweenPasses(opts: OptimizeOptions, stderr: (t: string) => void): (pass: string, g: Graph) => void {
  const printAfter = new Set(opts.printAfter ?? []);
  let checked = false;
  return (pass, g) => {
    if (!checked) {
      const pm = createPassManager();
      for (const id of printAfter) pm.get(id);
      checked = true;
    }
    if (opts.printAfterAll || printAfter.has(pass)) stderr(`// -----// IR after ${pass} //----- //\n${printGraph(g)}`);
  };
}

/** What --explain prints. */
export function explainText(explain: ExplainLog): string {
  return explain.entries.length > 0 ? explain.format() + '\n' : 'nothing folded, fused or skipped\n';
}

/** Runs the pipeline, printing between passes and the explain log as asked. */
export function optimize(graph: Graph, passes: readonly string[], opts: OptimizeOptions, stderr: (t: string) => void): PassRun {
  const run = runPasses(graph, passes, { afterPass: printBetweenPasses(opts, stderr) });
  if (opts.explain) stderr(explainText(run.explain));
  return run;
}
