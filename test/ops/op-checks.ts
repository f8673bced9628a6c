/**
 * The checks the conformance suite runs on each example of an op: the type
 * rule through the verifier, the emitted kernel against the reference
 * kernel, the gradient rule against central differences, the textual IR
 * round trip, and the ONNX export run in onnxruntime. Each throws (through
 * `expect`) when the op's record and its behaviour disagree; the gradient
 * check returns whether the example could be differentiated at all.
 */
import ort from 'onnxruntime-node';
import { expect } from 'vitest';
import { exportOnnx } from '../../src/formats/onnx.js';
import { parseGraph } from '../../src/ir/parse.js';
import { printGraph } from '../../src/ir/print.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { verifyGraph } from '../../src/ops/verify.js';
import type { OpDef } from '../../src/ops/op-def.js';
import { expectGradientsMatch, randomValues, ruleGradients } from '../helpers/gradcheck.js';
import { compileKernel, type CompiledKernel } from '../helpers/kernel.js';
import { concreteShape, isBatched, oneNodeGraph, operandValues, seedOf, type Example } from './op-examples.js';

/** Kernels compute in float64 and store float32; rational tanh/sigmoid and Winograd's transforms stay within this. */
const KERNEL_TOLERANCE = 1e-5;
/** onnxruntime accumulates in float32: relative to the largest reference value, as test/formats/onnx.test.ts. */
const ONNX_TOLERANCE = 1e-4;
/** Values past the result that a kernel must leave alone. */
const GUARD = 16;

const seedFor = (def: OpDef, index: number, check: string) => seedOf(`${def.name}#${index}#${check}`);

/** Elementwise |got - want| <= tol * max(1, |want|), with the first offenders listed. */
function expectClose(got: Tensor, want: Tensor, tol: number, what: string): void {
  expect(got.shape, `${what}: shape`).toEqual(want.shape);
  const bad: string[] = [];
  want.data.forEach((w, i) => {
    const g = got.data[i]!;
    if (!(Math.abs(g - w) <= tol * Math.max(1, Math.abs(w)))) bad.push(`[${i}] ${g} != ${w}`);
  });
  expect(bad.slice(0, 5), `${what}: ${bad.length} of ${want.data.length} values differ`).toEqual([]);
}

/** 1. The type rule: `infer` succeeds and the one-node graph passes the verifier (attributes, arity, types). */
export function checkTypeRule(def: OpDef, ex: Example): void {
  verifyGraph(oneNodeGraph(def, ex));
}

/**
 * Runs a kernel on float32 copies of `inputs` into a NaN-filled result (an
 * element left unwritten stays NaN), and checks that it wrote nothing past
 * the result and changed no operand.
 */
function run(kernel: CompiledKernel, inputs: readonly Tensor[], shape: readonly number[], n: number): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const buffers = inputs.map((t) => Float32Array.from(t.data));
  const y = new Float32Array(size + GUARD).fill(NaN);
  kernel(n, ...buffers, y);
  expect(Array.from(y.subarray(size), (v) => Number.isNaN(v)), 'the kernel wrote past its result').toEqual(new Array(GUARD).fill(true));
  buffers.forEach((b, i) => expect(Float64Array.from(b), `the kernel changed operand ${i}`).toEqual(inputs[i]!.data));
  return { shape: [...shape], data: Float64Array.from(y.subarray(0, size)) };
}

/**
 * 2. The emitted kernel against the reference kernel at batch sizes 3 and 1
 * (one compiled kernel for both: the batch is a parameter, and the second
 * call finds the first one's scratch buffers dirty). An alias must be its
 * first operand's data under the reference.
 */
export function checkKernel(def: OpDef, ex: Example, index: number): void {
  const result = def.infer(ex.operands, ex.attrs as never);
  const emitted = def.emit({ operands: ex.operands, result, attrs: ex.attrs as never });
  const kernel = emitted.kind === 'kernel' ? compileKernel(emitted) : undefined;
  if (emitted.kind === 'kernel') expect(emitted.params.length, 'one kernel parameter per operand').toBe(ex.operands.length);
  for (const n of [3, 1]) {
    const inputs = operandValues(ex, n, seedFor(def, index, `kernel${n}`));
    const want = def.reference(inputs, ex.attrs as never);
    const shape = concreteShape(result, n);
    expect(want.shape, `reference result shape at batch ${n}`).toEqual(shape);
    if (kernel === undefined) {
      expect(want.data, `an alias is its first operand's data (batch ${n})`).toEqual(inputs[0]!.data);
      continue;
    }
    expectClose(run(kernel, inputs, shape, n), want, KERNEL_TOLERANCE, `kernel at batch ${n}`);
  }
}

/**
 * 3. The gradient rule against float64 central differences of the reference
 * kernel (batch 2), for every operand the rule differentiates; at least one
 * must be. Gradient rules see graphs before `fuse-activation`, so examples
 * with a fused epilogue are not differentiated: returns false for them.
 */
export function checkGradient(def: OpDef, ex: Example, index: number): boolean {
  if ((ex.attrs as { epilogue?: unknown }).epilogue !== undefined) return false;
  const values = operandValues(ex, 2, seedFor(def, index, 'grad'));
  const operands = values.map((value, i) => ({ value, batched: isBatched(ex.operands[i]!) }));
  const w = randomValues(def.reference(values, ex.attrs as never).shape, 7);
  const given = ruleGradients(def.name, operands, ex.attrs, w).map((g) => g !== undefined);
  expect(given.some(Boolean), 'the rule differentiates at least one operand').toBe(true);
  expectGradientsMatch(def.name, operands.map((o, i) => ({ ...o, check: given[i]! })), ex.attrs);
  return true;
}

/** 4. The textual IR: print(parse(print(g))) === print(g), attributes intact. */
export function checkPrintParse(def: OpDef, ex: Example): void {
  const graph = oneNodeGraph(def, ex);
  const text = printGraph(graph);
  const parsed = parseGraph(text);
  expect(printGraph(parsed)).toBe(text);
  expect(parsed.nodes[0]!.attrs).toEqual(graph.nodes[0]!.attrs);
}

/** 5. The exported one-node model (parameters with values) in onnxruntime, against the reference at batch 3. */
export async function checkOnnx(def: OpDef, ex: Example, index: number): Promise<void> {
  const values = operandValues(ex, 3, seedFor(def, index, 'onnx'));
  const graph = oneNodeGraph(def, ex, values);
  const session = await ort.InferenceSession.create(exportOnnx(graph));
  try {
    expect(session.inputNames.length, 'one ONNX input per batched operand').toBe(graph.inputs.length);
    const feeds: Record<string, ort.Tensor> = {};
    const batchedValues = values.filter((_, i) => isBatched(ex.operands[i]!));
    batchedValues.forEach((v, i) => (feeds[session.inputNames[i]!] = new ort.Tensor('float32', Float32Array.from(v.data), v.shape)));
    const out = (await session.run(feeds))[session.outputNames[0]!]!;
    const got: Tensor = { shape: out.dims.map(Number), data: Float64Array.from(out.data as Float32Array) };
    const want = def.reference(values, ex.attrs as never);
    expect(got.shape, 'ONNX output shape').toEqual(want.shape);
    const scale = want.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    const worst = want.data.reduce((m, v, i) => Math.max(m, Math.abs(v - got.data[i]!)), 0);
    expect(worst, `ONNX max |difference| (reference scale ${scale})`).toBeLessThanOrEqual(ONNX_TOLERANCE * Math.max(1, scale));
  } finally {
    await session.release();
  }
}
