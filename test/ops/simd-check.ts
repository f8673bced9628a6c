/**
 * The conformance suite's SIMD check: the WebAssembly kernel an op's `simd`
 * rule selects for an example, built alone into a module and run as the
 * generated modules call it, against the op's float64 reference kernel.
 *
 * The call is the one codegen makes (src/codegen/simd.ts, simd-train.ts):
 * `kernel(n, a, b, bias, y)` with byte offsets into the module's memory. An
 * inference module packs the kernel operand and pads the bias once per
 * Model (`SimdRuntime.weights`: `packWeights`, `padBias`); the Trainer passes
 * every operand as it is, and 0 for a missing bias. A `remaining` epilogue
 * of the selection runs after the kernel, as the activation op would. A
 * convolution the Trainer computes as a GEMM over its windows runs as it
 * does there: im2col into a column buffer, then the GEMM on it in place of
 * the first operand; or the GEMM into the column buffer, then col2im.
 *
 * Every buffer sits 16-byte aligned between sentinel guards, the result
 * NaN-filled: an element left unwritten fails the comparison, and a write
 * anywhere but the result (a guard, an operand) fails on its own. A request
 * with the wrong sizes therefore fails one way or the other: it reads guards,
 * leaves NaNs, or writes past the result.
 */
import { expect } from 'vitest';
import type { SimdKernelLayout } from '../../src/codegen/wasm/kernel-common.js';
import { buildSimdModule, packWeights, padBias } from '../../src/codegen/wasm/module.js';
import type { Tensor } from '../../src/ir/tensor.js';
import type { OpDef } from '../../src/ops/op-def.js';
import { getOp } from '../../src/ops/registry.js';
import type { SimdSelection, SimdUse } from '../../src/ops/simd-def.js';
import { concreteShape, operandValues, seedOf, type Example } from './op-examples.js';
import { wasm } from '../helpers/wasm.js';


/**
 * The kernels sum in float32: each result is off by a few float32 ulps of
 * its terms' magnitude (|bias| + sum |a||b|), far below 1e-5 of it for the
 * examples' sizes; a remaining epilogue (Lipschitz about 1) keeps that.
 */
const SIMD_TOLERANCE = 1e-5;
/** Floats of sentinel between buffers. */
const GUARD = 16;
const SENTINEL = -12345.25;

type Buffer = Float32Array | undefined;

/** The kernel's operands as the generated module passes them: (a, b, bias), packed for inference. */
function callBuffers(layout: SimdKernelLayout, use: SimdUse, inputs: readonly Tensor[]): Buffer[] {
  const [a, b, bias] = inputs.map((t) => Float32Array.from(t.data));
  // A transposed dx kernel gets the Trainer's scratch where a bias would go (garbage in it, as there).
  const request = layout.request;
  if ('transposed' in request && request.transposed) return [a, b, new Float32Array(request.inDim * request.units).fill(3.5)];
  if (use === 'training') return [a, b, bias];
  // SimdRuntime.weights: a zero bias block whenever the kernel has one, the node's bias copied in.
  return [a, packWeights(layout, b!), layout.biasFloats > 0 ? padBias(layout, bias ?? new Float32Array(0)) : undefined];
}

/**
 * Runs the kernel of `bytes` on n examples in a fresh memory laid out as
 * [guard, a, guard, b, guard, bias, guard, y, guard], and checks that it
 * wrote nothing but y. Returns y's first `yFloats` floats.
 */
function runKernel(bytes: Uint8Array, layout: SimdKernelLayout, n: number, buffers: readonly Buffer[], yFloats: number): Float32Array {
  const parts = [...buffers, new Float32Array(yFloats).fill(NaN)];
  const floats = parts.reduce((at, p) => at + Math.ceil((p?.length ?? 0) / 4) * 4 + GUARD, GUARD);
  const memory = new wasm.Memory({ initial: Math.ceil((floats * 4) / 65536) });
  const all = new Float32Array(memory.buffer).fill(SENTINEL);
  const at: number[] = [];
  let p = GUARD;
  for (const part of parts) {
    at.push(part === undefined ? 0 : p);
    all.set(part ?? [], p);
    p += Math.ceil((part?.length ?? 0) / 4) * 4 + GUARD;
  }
  const before = all.slice();
  const { exports } = new wasm.Instance(new wasm.Module(bytes), { env: { memory } });
  const kernel = exports[layout.name] as (n: number, a: number, b: number, bias: number, y: number) => void;
  kernel(n, ...(at.map((f) => f * 4) as [number, number, number, number]));
  const y = at[3]!;
  // The scratch of a transposed kernel (in the bias slot) is the kernel's to write.
  const request = layout.request;
  const scratch = 'transposed' in request && request.transposed ? [at[2]!, at[2]! + parts[2]!.length] : [0, 0];
  const touched = all.findIndex((v, i) => (i < y || i >= y + yFloats) && (i < scratch[0]! || i >= scratch[1]!) && !Object.is(v, before[i]));
  const operand = at.findIndex((start, k) => k < 3 && parts[k] !== undefined && touched >= start && touched < start + parts[k]!.length);
  expect(touched, operand >= 0 ? `the SIMD kernel changed operand ${operand}` : 'the SIMD kernel wrote outside its result').toBe(-1);
  return all.slice(y, y + yFloats);
}

/** The kernel's result with the selection's remaining epilogue applied, as the activation op computes it. */
function afterRemaining(y: Tensor, selection: SimdSelection): Tensor {
  if (!selection.remaining) return y;
  const { op, ...attrs } = selection.remaining;
  return getOp(op)!.reference([y], attrs as never);
}

/**
 * 6. The SIMD kernel the op's rule selects for `use`, against the reference
 * at batch sizes 3 and 1 (one module for both). Returns whether the rule
 * selected one; codegen asks the rule through select.ts, which first
 * requires float32 operands with static sizes past the batch, as every
 * example has.
 */
export function checkSimd(def: OpDef, ex: Example, index: number, use: SimdUse): boolean {
  const result = def.infer(ex.operands, ex.attrs as never);
  const selection = def.simd?.({ operands: ex.operands, result, attrs: ex.attrs as never }, use);
  if (selection === undefined) return false;
  const mod = buildSimdModule([selection.request, ...(selection.columns ? [selection.columns] : [])]);
  expect(wasm.validate(mod.bytes), 'the SIMD module validates').toBe(true);
  const [layout, columns] = mod.layouts as [SimdKernelLayout, SimdKernelLayout | undefined];
  const plain = { ...(ex.attrs as object), epilogue: undefined } as never;
  for (const n of [3, 1]) {
    const inputs = operandValues(ex, n, seedOf(`${def.name}#${index}#simd-${use}${n}`));
    const shape = concreteShape(result, n);
    const size = shape.reduce((a, b) => a * b, 1);
    const buffers = callBuffers(layout, use, inputs);
    let y: Float32Array;
    if (columns?.request.kind === 'im2col') {
      const col = runKernel(mod.bytes, columns, n, [buffers[0], undefined, undefined], n * columns.outputFloats);
      y = runKernel(mod.bytes, layout, n, [col, ...buffers.slice(1)], size);
    } else if (columns?.request.kind === 'col2im') {
      const col = runKernel(mod.bytes, layout, n, buffers, n * columns.inputFloats);
      y = runKernel(mod.bytes, columns, n, [col, undefined, undefined], size);
    } else {
      y = runKernel(mod.bytes, layout, n, buffers, size);
    }
    const got = afterRemaining({ shape, data: Float64Array.from(y) }, selection);
    const want = def.reference(inputs, ex.attrs as never);
    const terms = def.reference(inputs.map((t) => ({ ...t, data: t.data.map(Math.abs) })), plain);
    const bad: string[] = [];
    want.data.forEach((w, i) => {
      const g = got.data[i]!;
      if (!(Math.abs(g - w) <= SIMD_TOLERANCE * Math.max(1, terms.data[i]!))) bad.push(`[${i}] ${g} != ${w}`);
    });
    expect(bad.slice(0, 5), `SIMD ${layout.name} (${use}) at batch ${n}: ${bad.length} of ${want.data.length} values differ`).toEqual([]);
  }
  return true;
}
