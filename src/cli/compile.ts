/**
 * `modelc compile`: spec -> weights -> passes -> inference module (and its
 * golden test). Everything is generated in memory first; files are then
 * written atomically, one per line printed, so a failure leaves no partial
 * output behind.
 */
import { buildTrainingProgram } from '../autodiff/training.js';
import { fail } from '../diagnostics/diagnostic.js';
import { compileFile } from '../frontend/load.js';
import type { Graph } from '../ir/graph.js';
import { interpret } from '../interp/interpret.js';
import { randomFeeds } from '../passes/equivalence.js';
import { defaultPipeline } from '../passes/pipeline.js';
import { writeIntoDirectory } from '../util/fs.js';
import { optimize, withWeights, type OptimizeOptions } from './optimize.js';

export interface CompileOptions extends OptimizeOptions {
  output: string;
  name?: string;
  emit: 'ts' | 'js' | 'both';
  weightsMode: 'embed' | 'external';
  emitTest?: boolean;
  /** Which modules: the inference module, the training module (`<name>.train.ts`), or both. */
  target?: 'inference' | 'training' | 'both';
  learningRate?: number;
  /** Dense and convolution kernels also as WebAssembly SIMD. */
  simd?: boolean;
}

/** A file stem from a model name: letters, digits, `_`, `-` and `.`, not starting with a dot. */
export function fileStem(name: string): string {
  const stem = name.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[.]+/, '');
  return stem === '' ? 'model' : stem;
}

/** A `--name` must be a plain file name. */
export function checkName(name: string): void {
  if (name !== fileStem(name) || name.length > 200) {
    fail('io', `--name '${name}' is not a plain file name: use letters, digits, '_', '-' and '.'`);
  }
}

/** Compiles `path`; returns the paths written, in order. */
export async function compileCommand(path: string, opts: CompileOptions, stderr: (t: string) => void): Promise<string[]> {
  if (opts.name !== undefined) checkName(opts.name);
  // The code generator (ts-morph, prettier) loads only for this command.
  const { generateGoldenTest, generateInferenceModule, generateTrainingModule } = await import('../codegen/index.js');
  const compiled = compileFile(path);
  const original = withWeights(compiled.graph, opts);
  const target = opts.target ?? 'inference';
  const files: [string, string | Uint8Array][] = [];
  const wantTs = opts.emit !== 'js';
  const wantJs = opts.emit !== 'ts';
  const name = opts.name ?? fileStem(original.name);
  if (target !== 'inference') {
    // The training module starts from the unoptimized graph: batchnorm unfolded, dropout kept.
    const program = buildTrainingProgram(original, compiled.spec.training, opts.learningRate === undefined ? {} : { learningRate: opts.learningRate });
    const mod = await generateTrainingModule(program, { name, source: path, ...(opts.simd ? { simd: true } : {}) });
    if (wantTs) files.push([`${name}.train.ts`, mod.ts]);
    if (wantJs) files.push([`${name}.train.js`, mod.js]);
    if (target === 'training') return writeIntoDirectory(opts.output, files);
  }
  const passes = opts.passes !== undefined
    ? opts.passes.split(',').map((p) => p.trim()).filter((p) => p !== '')
    : opts.optimize === false ? [] : [...defaultPipeline];
  const graph = passes.length > 0 ? optimize(original, passes, opts, stderr).optimized : original;
  const external = opts.weightsMode === 'external';
  const mod = await generateInferenceModule(graph, { name, weightsMode: opts.weightsMode, source: path, passes, ...(opts.simd ? { simd: true } : {}) });
  if (wantTs) files.push([`${name}.ts`, mod.ts]);
  if (wantJs) files.push([`${name}.js`, mod.js]);
  if (mod.weights) files.push([`${name}.safetensors`, mod.weights]);
  if (opts.emitTest) {
    const test = await generateGoldenTest(goldenVectors(original), { name, externalWeights: external });
    if (wantTs) files.push([`${name}.test.ts`, test.ts]);
    if (wantJs) files.push([`${name}.test.js`, test.js]);
  }
  return writeIntoDirectory(opts.output, files);
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
