/**
 * What `modelc ir -O` and `modelc verify` share: weights (a safetensors file,
 * or the initializers sampled with a seed), the pipeline (`-O` or
 * `--passes`), printing between passes, and the explain log.
 */
import { Option, type Command } from 'commander';
import { readFileSync } from 'node:fs';
import { fail } from '../diagnostics/diagnostic.js';
import { readSafetensors } from '../formats/safetensors.js';
import type { Graph } from '../ir/graph.js';
import { printGraph } from '../ir/print.js';
import { materialize } from '../ops/init.js';
import { createPassManager, defaultPipeline } from '../passes/pipeline.js';
import { ExplainLog } from '../rewrite/explain.js';
import { attachWeights } from '../weights/attach.js';

export interface OptimizeOptions {
  optimize?: boolean;
  passes?: string;
  weights?: string;
  seed?: string;
  printAfterAll?: boolean;
  printAfter?: string[];
  explain?: boolean;
}

/** Adds the weight and pipeline options to a command. */
export function pipelineOptions(cmd: Command, optimizeDefault: boolean): Command {
  return cmd
    .option('-O, --optimize', `run the default inference pipeline (${defaultPipeline.join(',')})${optimizeDefault ? ' (default)' : ''}`)
    .option('--passes <list>', 'run these passes, comma-separated, instead of the default pipeline')
    .option('--weights <file>', 'parameter values from a safetensors file (default: the initializers, seeded)')
    .addOption(new Option('--seed <n>', 'seed for the initializers').default('0'))
    .option('--print-after-all', 'print the IR after every pass (on stderr)')
    .option('--print-after <pass...>', 'print the IR after the named passes (on stderr)')
    .option('--explain', 'list every fold and fusion applied or skipped, with the reason (on stderr)');
}

/** The graph with parameter values, from --weights or the seeded initializers. */
export function withWeights(graph: Graph, opts: OptimizeOptions): Graph {
  if (opts.weights) {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(opts.weights);
    } catch (err) {
      return fail('io', `cannot read file: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`, undefined, opts.weights);
    }
    const { tensors } = readSafetensors(bytes, opts.weights);
    return attachWeights(graph, tensors, opts.weights);
  }
  const seed = Number(opts.seed ?? '0');
  if (!Number.isSafeInteger(seed)) fail('weights', `--seed must be an integer, got '${opts.seed}'`);
  return materialize(graph, seed);
}

export function pipelineOf(opts: OptimizeOptions, optimizeDefault: boolean): string[] {
  if (opts.passes !== undefined) return opts.passes.split(',').map((p) => p.trim()).filter((p) => p !== '');
  return opts.optimize || optimizeDefault ? [...defaultPipeline] : [];
}

export interface Optimized {
  readonly original: Graph;
  readonly optimized: Graph;
  readonly explain: ExplainLog;
  /** The graph before and after each pass, by pass id (the last run of it). */
  readonly snapshots: Map<string, { before: Graph; after: Graph }>;
}

/** Runs the pipeline, printing between passes as asked. */
export function optimize(graph: Graph, passes: readonly string[], opts: OptimizeOptions, stderr: (t: string) => void): Optimized {
  const explain = new ExplainLog();
  const snapshots = new Map<string, { before: Graph; after: Graph }>();
  let previous = graph;
  const printAfter = new Set(opts.printAfter ?? []);
  const pm = createPassManager();
  for (const id of printAfter) pm.get(id); // unknown names fail before anything runs
  const optimized = pm.run(graph, passes, {
    explain,
    after: (pass, g) => {
      snapshots.set(pass.id, { before: previous, after: g });
      previous = g;
      if (opts.printAfterAll || printAfter.has(pass.id)) stderr(`// -----// IR after ${pass.id} //----- //\n${printGraph(g)}`);
    },
  });
  if (opts.explain) stderr(explain.entries.length > 0 ? explain.format() + '\n' : 'nothing folded, fused or skipped\n');
  return { original: graph, optimized, explain, snapshots };
}
