/**
 * Runs one op's codegen template (`OpDef.emit`) outside a module: the kernel
 * body is transpiled from TypeScript and called on float32 copies of the
 * operands, so templates are checked against the reference kernels directly.
 */
import { ts } from 'ts-morph';
import type { Tensor } from '../../src/ir/tensor.js';
import { tensor, type Attrs, type TensorType } from '../../src/ir/types.js';
import type { KernelCode, RuntimeHelper } from '../../src/ops/emit.js';
import { getOp } from '../../src/ops/registry.js';

/** The IR type of a concrete operand: batched (N first) or static. */
function typeOf(t: Tensor, batched: boolean): TensorType {
  return batched ? tensor(['N', ...t.shape.slice(1)]) : tensor(t.shape);
}

function helperSources(helpers: readonly RuntimeHelper[], seen = new Map<string, string>()): Map<string, string> {
  for (const h of helpers) {
    seen.set(h.name, h.source);
    helperSources(h.uses ?? [], seen);
  }
  return seen;
}

/**
 * The emitted kernel of `op` run on `operands` (`batched[i]` says whether
 * operand i has the batch dimension first; default: rank >= 2). Returns the
 * result as float64 values of the float32 output.
 */
export function runKernel(op: string, operands: readonly Tensor[], attrs: Attrs = {}, batched?: readonly boolean[]): Tensor {
  const def = getOp(op);
  if (!def) throw new Error(`no op ${op}`);
  const types = operands.map((t, i) => typeOf(t, batched?.[i] ?? t.shape.length >= 2));
  const result = def.infer(types, attrs as never);
  const emitted = def.emit({ operands: types, result, attrs: attrs as never });
  const first = types.findIndex((t) => t.shape[0] === 'N');
  const n = first >= 0 ? operands[first]!.shape[0]! : 1;
  const shape = result.shape.map((d) => (d === 'N' ? n : d));
  if (emitted.kind === 'alias') return { shape, data: Float64Array.from(operands[0]!.data) };
  return runEmitted(emitted, operands, shape, n);
}

/**
 * A kernel (`KernelCode`, from a template called directly) run on float32
 * copies of `operands` with batch size `n`; the result has `shape`. Its
 * output buffer starts as NaN, so a kernel that leaves an element unwritten
 * shows it.
 */
export function runEmitted(emitted: KernelCode, operands: readonly Tensor[], shape: readonly number[], n: number): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const kernel = compileKernel(emitted);
  const y = new Float32Array(size).fill(NaN);
  kernel(n, ...operands.map((t) => Float32Array.from(t.data)), y);
  return { shape: [...shape], data: Float64Array.from(y) };
}

/** A kernel `(n, ...operands, y)` as a function with its runtime helpers, transpiled as a module's code is. */
export type CompiledKernel = (n: number, ...buffers: Float32Array[]) => void;

/** TypeScript source as the JavaScript a generated module runs. */
export function transpile(source: string): string {
  return ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022 } }).outputText;
}

export function compileKernel(code: KernelCode): CompiledKernel {
  const helpers = [...helperSources(code.helpers).values()].join('\n');
  const params = code.params.map((p) => `${p}: Float32Array`).join(', ');
  const source = `${helpers}\nreturn function kernel(n: number, ${params}, y: Float32Array): void {\n${code.body}\n};`;
  return new Function(transpile(source))() as CompiledKernel;
}

/** A runtime helper `name(x)` and the helpers it calls, as one JavaScript function. */
export function compileHelper(helper: RuntimeHelper): (x: number) => number {
  const sources = [...helperSources([helper]).values()].join('\n');
  return new Function(`${transpile(sources)}\nreturn ${helper.name};`)() as (x: number) => number;
}
