/**
 * Which IR nodes a SIMD kernel can compute: the bridge from an op's codegen
 * request (`OpDef.emit`'s EmitRequest: operand and result types, attrs) to a
 * kernel request. Every WebAssembly kernel needs float32 operands, the first
 * one batched, and static sizes after the first dimension; past that each op
 * says what it has (`OpDef.simd`), so this file keeps no op names.
 *
 * A relu or relu6 epilogue runs in the kernel; any other one is returned as
 * `remaining` (the module generators then keep the TypeScript kernel).
 */
import type { EmitRequest } from '../../ops/emit.js';
import { getOp } from '../../ops/registry.js';
import type { SimdSelection, SimdUse } from '../../ops/simd-def.js';

type Attrs = Readonly<Record<string, unknown>>;

/**
 * The SIMD kernel for a node of `op` in an inference module or the Trainer
 * (`use`), or undefined when none applies (then the TypeScript kernel runs).
 */
export function simdRequestFor(op: string, req: EmitRequest<Attrs>, use: SimdUse = 'inference'): SimdSelection | undefined {
  const def = getOp(op);
  const [first] = req.operands;
  if (!def?.simd || !first || first.shape[0] !== 'N') return undefined;
  if (req.operands.some((t) => t.dtype !== 'f32' || t.shape.slice(1).some((d) => typeof d !== 'number'))) return undefined;
  return def.simd(req, use);
}
