/**
 * Which passes run, and running them: the one parser of a `--passes` list,
 * the rule that picks the pipeline from `passes` / `optimize`, and the pass
 * run that records the explain log and the graph around each pass. The CLI's
 * `ir -O`, `verify`, `export` and `compile` and the library's `compile()` all
 * come through here.
 */
import type { Graph } from '../ir/graph.js';
import { createPassManager, defaultPipeline } from '../passes/pipeline.js';
import { ExplainLog } from '../rewrite/explain.js';
import type { Pass } from '../rewrite/pass.js';

/** Pass ids from a comma-separated list (`--passes fold-bn, dce`); blanks are ignored. */
export function parsePassList(list: string): string[] {
  return list
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

export interface PipelineChoice {
  /** Pass ids, or a comma-separated list of them; given, it wins over `optimize`. */
  readonly passes?: string | readonly string[];
  /** `true`: the default pipeline; `false`: no passes. */
  readonly optimize?: boolean;
}

/** The passes to run: the list given, else the default pipeline when asked for (or by default), else none. */
export function pipelineFor(choice: PipelineChoice, optimizeByDefault: boolean): string[] {
  if (choice.passes !== undefined) return typeof choice.passes === 'string' ? parsePassList(choice.passes) : [...choice.passes];
  if (choice.optimize === false) return [];
  return choice.optimize || optimizeByDefault ? [...defaultPipeline] : [];
}

export interface PassRun {
  readonly original: Graph;
  readonly optimized: Graph;
  /** Every fold and fusion applied or refused, with its reason. */
  readonly explain: ExplainLog;
  /** The graph before and after each pass, by pass id (the last run of it). */
  readonly snapshots: Map<string, { before: Graph; after: Graph }>;
}

export interface PassRunOptions {
  /** Called with each pass's output, in order (printing between passes). */
  readonly afterPass?: (pass: string, graph: Graph) => void;
  /** Passes besides the built-in ones that `passes` may name. */
  readonly extraPasses?: readonly Pass[];
}

/** Runs `passes` in order, the verifier after each; unknown ids fail before any pass runs. */
export function runPasses(graph: Graph, passes: readonly string[], options: PassRunOptions = {}): PassRun {
  const explain = new ExplainLog();
  const snapshots = new Map<string, { before: Graph; after: Graph }>();
  let previous = graph;
  const optimized = createPassManager(options.extraPasses).run(graph, passes, {
    explain,
    after: (pass, g) => {
      snapshots.set(pass.id, { before: previous, after: g });
      previous = g;
      options.afterPass?.(pass.id, g);
    },
  });
  return { original: graph, optimized, explain, snapshots };
}
