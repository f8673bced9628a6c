/**
 * `compile()`: a spec or an IR graph in, the generated files out, in memory.
 * `modelc compile` and `modelc train` are this plus writing the files.
 *
 *   1. load: lower the spec (or take the graph), attach or sample the weights;
 *   2. training module (target training|both): autodiff on the unoptimized
 *      graph (batchnorm unfolded, dropout kept) -> `<name>.train.ts`;
 *   3. inference module (target inference|both): the passes -> `<name>.ts`,
 *      the weights file when external, the golden test when asked.
 *
 * The code generator (ts-morph, prettier) is loaded on the first call only,
 * so that commands which generate nothing start fast.
 */
import { buildTrainingProgram, type TrainingProgram } from '../autodiff/training.js';
import type { Diagnostic } from '../diagnostics/diagnostic.js';
import type { Graph } from '../ir/graph.js';
import { interpret } from '../interp/interpret.js';
import { randomFeeds } from '../passes/equivalence.js';
import { ExplainLog } from '../rewrite/explain.js';
import { checkFileStem, fileStem, loadInput, withWeights, type CompileInput, type WeightsInput } from './inputs.js';
import { pipelineFor, runPasses, type PassRunOptions, type PipelineChoice } from './pipeline.js';

export interface CompileOptions extends PipelineChoice, PassRunOptions {
  /** The modules' name and file stem (default: the model's name as a file name). */
  readonly name?: string;
  /** Which files: TypeScript (default), JavaScript, or both. */
  readonly emit?: 'ts' | 'js' | 'both';
  /** `embed` (default): weights inside the module; `external`: a `<name>.safetensors` the module's `Model` reads. */
  readonly weightsMode?: 'embed' | 'external';
  /** The inference module (default), the training module (`<name>.train.ts`, class `Trainer`), or both. */
  readonly target?: 'inference' | 'training' | 'both';
  /** The training module's default learning rate (default: the train block's). */
  readonly learningRate?: number;
  /**
   * Kernels also as WebAssembly SIMD, used where the engine has it (else the
   * TypeScript kernels run): default true; false gives the pure TypeScript module.
   */
  readonly simd?: boolean;
  /** Also `<name>.test.ts`: golden vectors from the reference interpreter, checked with `node --test`. */
  readonly emitTest?: boolean;
  /** Parameter values; otherwise the initializers are sampled with `seed`. */
  readonly weights?: WeightsInput;
  /** Seed of the initializers (default 0). */
  readonly seed?: number;
  /** Accept NaN and infinite weight values (the input's own or `weights`); by default they are an error naming the tensor. */
  readonly allowNonfinite?: boolean;
  /**
   * Where the model came from, for the modules' header comment, as given
   * (default: the input's file name, without its folder, so the same spec
   * compiled in two checkouts gives the same bytes and no build-machine path
   * ships with the code).
   */
  readonly source?: string;
}

/** A generated file: its path relative to the output directory, and its contents. */
export interface CompiledFile {
  readonly path: string;
  readonly contents: string | Uint8Array;
}

export interface CompileResult {
  /** In the order `modelc compile` writes and lists them. */
  readonly files: readonly CompiledFile[];
  /** The lowered graph with its parameter values: what the passes and the training module start from. */
  readonly graph: Graph;
  /** The inference module's graph, after the passes (without an inference target: `graph`). */
  readonly optimized: Graph;
  /** The passes that ran on the inference graph, in order (none without an inference target). */
  readonly passes: readonly string[];
  /** Every fold and fusion the passes applied or refused, with the reason (empty when none ran). */
  readonly explain: ExplainLog;
  /** With a training target: the step, evaluate and predict graphs of the Trainer. */
  readonly training?: TrainingProgram;
  /** Import warnings of a TF.js or Keras input (severity `warning`): what the import kept or left out. */
  readonly warnings: readonly Diagnostic[];
}

/** The last component of a path (either separator): what a generated module's header names. */
function fileName(path: string): string {
  return path.split(/[\\/]/).pop() || path;
}

/** Compiles a spec or graph to standalone modules; nothing is written. */
export async function compile(input: CompileInput, options: CompileOptions = {}): Promise<CompileResult> {
  if (options.name !== undefined) checkFileStem(options.name);
  const loaded = await loadInput(input, { allowNonfinite: options.allowNonfinite ?? false });
  const graph = withWeights(loaded.graph, options.weights, options.seed, { allowNonfinite: options.allowNonfinite ?? false });
  const name = options.name ?? fileStem(graph.name);
  const source = options.source ?? (loaded.path === undefined ? undefined : fileName(loaded.path));
  const codegen = await import('../codegen/index.js');
  const target = options.target ?? 'inference';
  const emit = (stem: string, generated: { ts: string; js: string }): CompiledFile[] => [
    ...(options.emit !== 'js' ? [{ path: `${stem}.ts`, contents: generated.ts }] : []),
    ...(options.emit === 'js' || options.emit === 'both' ? [{ path: `${stem}.js`, contents: generated.js }] : []),
  ];
  const files: CompiledFile[] = [];
  let training: TrainingProgram | undefined;
  if (target !== 'inference') {
    training = buildTrainingProgram(graph, loaded.training, options.learningRate === undefined ? {} : { learningRate: options.learningRate });
    const trainer = await codegen.generateTrainingModule(training, { name, emit: options.emit ?? 'ts', ...(source ? { source } : {}), ...(options.simd !== false ? { simd: true } : {}) });
    files.push(...emit(`${name}.train`, trainer));
    if (target === 'training') return { files, graph, optimized: graph, passes: [], explain: new ExplainLog(), training, warnings: loaded.warnings };
  }
  const passes = pipelineFor(options, true);
  const run = passes.length > 0 ? runPasses(graph, passes, options) : undefined;
  const optimized = run?.optimized ?? graph;
  const weightsMode = options.weightsMode ?? 'embed';
  const inference = await codegen.generateInferenceModule(optimized, { name, weightsMode, emit: options.emit ?? 'ts', ...(source ? { source } : {}), passes, ...(options.simd !== false ? { simd: true } : {}) });
  files.push(...emit(name, inference));
  if (inference.weights) files.push({ path: `${name}.safetensors`, contents: inference.weights });
  if (options.emitTest) files.push(...emit(`${name}.test`, await codegen.generateGoldenTest(goldenVectors(graph), { name, externalWeights: weightsMode === 'external' })));
  return { files, graph, optimized, passes, explain: run?.explain ?? new ExplainLog(), ...(training ? { training } : {}), warnings: loaded.warnings };
}

/**
 * Two examples of seeded inputs in [-2, 2), rounded to float32 (what the
 * module takes), and the reference interpreter's outputs on the unoptimized
 * graph: the golden test checks the passes and the kernels together.
 */
function goldenVectors(graph: Graph) {
  const batchSize = 2;
  const feeds = randomFeeds(graph, batchSize, 7);
  for (const t of Object.values(feeds)) t.data.forEach((v, i) => (t.data[i] = Math.fround(v)));
  const out = interpret(graph, feeds);
  return {
    batchSize,
    inputs: graph.inputs.map((i) => [i.name, feeds[i.name]!.data] as const),
    outputs: graph.outputs.map((o) => [o, out[o]!.data] as const),
    tolerance: 1e-4,
  };
}

export { checkFileStem, fileStem, loadInput, withWeights, type CompileInput, type LoadedInput, type WeightsInput } from './inputs.js';
export { parsePassList, pipelineFor, runPasses, type PassRun, type PassRunOptions, type PipelineChoice } from './pipeline.js';
