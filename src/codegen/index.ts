/**
 * Code generation: the final IR to standalone TypeScript (and JavaScript)
 * modules. `inference.ts` assembles the inference module and `training.ts`
 * the Trainer; `plan.ts` asks each node's op for its kernel (`emit`) and
 * places values in scratch buffers; `kernels.ts` writes one function per
 * distinct kernel and records it (op, layers, plan); `simd.ts` and
 * `simd-train.ts` wire in the WebAssembly kernels of `wasm/`; `names.ts`
 * keeps spec names safe; `format.ts` runs prettier and the transpiler.
 */
import { endianness } from 'node:os';
import type { Graph } from '../ir/graph.js';
import { writeSafetensors } from '../formats/safetensors.js';
import { dataText, fill, formatJavaScript, formatTypeScript } from './format.js';
import { buildInference, type InferenceOptions } from './inference.js';
import type { KernelRecord } from './kernels.js';
import { buildTraining, type TrainingModuleOptions } from './training.js';
import type { TrainingProgram } from '../autodiff/training.js';

export type { InferenceOptions } from './inference.js';
export type { KernelRecord } from './kernels.js';
export type { TrainingModuleOptions } from './training.js';
export { generateGoldenTest, type GoldenTestOptions, type GoldenVectors } from './golden.js';
export { commentText, Namer, safeIdentifier, str } from './names.js';

/** Which twins to produce: the `.js` costs a transpile and a second prettier run, so it is made only when asked. */
export interface EmitChoice {
  /** Default `both`; with `ts` the module's `js` is empty. */
  readonly emit?: 'ts' | 'js' | 'both';
}

export interface GeneratedModule {
  readonly name: string;
  readonly ts: string;
  /** Empty when generated with `emit: 'ts'`. */
  readonly js: string;
  /** With `weightsMode: 'external'`: the safetensors bytes the module's Model takes. */
  readonly weights?: Uint8Array;
  /** Every kernel function of the module: name, op, layers and the plan (path and reason) its op chose. */
  readonly kernels: readonly KernelRecord[];
}

/**
 * The inference module of `graph`, which must carry parameter values (loaded
 * or sampled, then optimized as wanted).
 */
export async function generateInferenceModule(graph: Graph, options: InferenceOptions & EmitChoice = {}): Promise<GeneratedModule> {
  const unit = buildInference(graph, options);
  let { ts, js } = await formatBoth(unit.text, options);
  const name = options.name ?? graph.name;
  if (options.weightsMode !== 'external') {
    if (unit.placeholder) ({ ts, js } = fillBoth(ts, js, unit.placeholder, base64Weights(unit.params.map((p) => p.value))));
    return { name, ts, js, kernels: unit.kernels };
  }
  const weights = writeSafetensors(new Map(unit.params.map((p) => [p.name, { shape: p.shape, data: p.value }])));
  return { name, ts, js, weights, kernels: unit.kernels };
}

/**
 * The training module (`<name>.train.ts`) of a training program: a Trainer
 * over the three graphs, with the program's initial weights embedded.
 */
export async function generateTrainingModule(program: TrainingProgram, options: TrainingModuleOptions & EmitChoice = {}): Promise<GeneratedModule> {
  const unit = buildTraining(program, options);
  let { ts, js } = await formatBoth(unit.text, options);
  if (unit.placeholder) ({ ts, js } = fillBoth(ts, js, unit.placeholder, base64Weights(unit.weights.map((w) => w.value))));
  return { name: options.name ?? program.step.name.replace(/_step$/, ''), ts, js, kernels: unit.kernels };
}

/** The formatted TypeScript, and its JavaScript twin unless only TypeScript is wanted. */
async function formatBoth(text: string, choice: EmitChoice): Promise<{ ts: string; js: string }> {
  const ts = await formatTypeScript(text);
  return { ts, js: choice.emit === 'ts' ? '' : await formatJavaScript(ts) };
}

/** Both texts with the weights in place of the placeholder (an empty, not emitted, twin stays empty). */
function fillBoth(ts: string, js: string, placeholder: string, base64: string): { ts: string; js: string } {
  const data = dataText(base64);
  return { ts: fill(ts, placeholder, data), js: js === '' ? '' : fill(js, placeholder, data) };
}

/**
 * Every value as little-endian float32, concatenated, in base64. On a
 * little-endian host the arrays' own bytes are those bytes (one copy, not a
 * writeFloatLE per float: 1.2 s of a VGG16 compile).
 */
export function base64Weights(values: readonly Float32Array[]): string {
  if (endianness() === 'LE') return Buffer.concat(values.map((v) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength))).toString('base64');
  const total = values.reduce((s, v) => s + v.length, 0);
  const bytes = Buffer.alloc(total * 4);
  let at = 0;
  for (const v of values) for (const x of v) at = bytes.writeFloatLE(x, at);
  return bytes.toString('base64');
}
