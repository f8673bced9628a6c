/**
 * What an op's codegen template (`OpDef.emit`) returns, and small helpers for
 * writing templates.
 *
 * A kernel is the body of a function
 *
 *   function <name>(n: number, <param>: Float32Array, ..., y: Float32Array): void
 *
 * where `n` is the batch size, the params are the operands in operand order
 * (activations batch-major and row-major, weights in Keras layouts) and `y` is
 * the result buffer, which holds at least `n` examples and never shares
 * memory with an operand. Every size except `n` is a constant in the body. The
 * code generator emits one function per distinct body, so two layers with the
 * same shape signature share a kernel.
 *
 * Kernels compute in float64 (JavaScript numbers) and store float32.
 */
import type { TensorType } from '../ir/types.js';

export interface EmitRequest<A> {
  /** Operand types in operand order (activations have the batch dimension `N` first). */
  readonly operands: readonly TensorType[];
  readonly result: TensorType;
  readonly attrs: A;
}

/** A module-level function a kernel calls (`sigmoid`, `erfc`); emitted once per module. */
export interface RuntimeHelper {
  readonly name: string;
  readonly source: string;
  /** Helpers this one calls. */
  readonly uses?: readonly RuntimeHelper[];
}

/**
 * Which template computes a kernel. Ops with one template use `direct`;
 * those with several choose per shape by a cost rule (conv2d and its
 * gradients: `conv/path.ts`). `simd` is codegen's choice, not an emit's: a
 * WebAssembly kernel from the op's `simd` rule that runs instead of the
 * TypeScript one where the engine has SIMD (`--simd`).
 */
export type KernelPath =
  /** plain loops over the result, sizes inlined */
  | 'direct'
  /** a register-blocked GEMM over the operands as they are (`gemm.ts`): dense and its gradients */
  | 'gemm'
  /** windows packed into panels, then the register-blocked GEMM */
  | 'im2col-gemm'
  /** Winograd F(2x2, 3x3): transforms around 16 GEMMs per chunk of tiles */
  | 'winograd'
  /** a WebAssembly SIMD kernel (`--simd`) */
  | 'simd';

/** The template a kernel takes for its shape, and why: data that codegen records and tests read. */
export interface KernelPlan {
  readonly path: KernelPath;
  readonly reason: string;
}

/** The plan of a kernel whose op has a single template. */
export const onlyTemplate: KernelPlan = { path: 'direct', reason: 'the op has one template' };

export interface KernelCode {
  readonly kind: 'kernel';
  /** The start of the function's name: op and shape (`dense_784x64`); made unique by the generator. */
  readonly stem: string;
  /** One parameter name per operand, in operand order (never `n` or `y`). */
  readonly params: readonly string[];
  /** The function body: statements over `n`, the params and `y`. */
  readonly body: string;
  /** One line on what the kernel does, for its doc comment (`GEMM [rows, 784] x [784, 64] in 3x4 register blocks, bias, relu`). */
  readonly summary: string;
  readonly helpers: readonly RuntimeHelper[];
  /** The template this kernel took, and why. */
  readonly plan: KernelPlan;
}

/** The result is the first operand's data under another type (reshape, dropout at inference, linear). */
export interface AliasCode {
  readonly kind: 'alias';
}

export type Emitted = KernelCode | AliasCode;

export const alias: AliasCode = { kind: 'alias' };

export function kernel(
  stem: string,
  params: readonly string[],
  summary: string,
  body: string,
  helpers: readonly RuntimeHelper[] = [],
  plan: KernelPlan = onlyTemplate,
): KernelCode {
  return { kind: 'kernel', stem, params, summary, body, helpers, plan };
}

/** Elements per example: the product of every dimension after the batch. */
export function perExample(t: TensorType): number {
  let size = 1;
  for (const d of t.shape.slice(1)) {
    if (typeof d !== 'number') throw new Error(`a non-leading dimension is not static: ${t.shape.join(',')}`);
    size *= d;
  }
  return size;
}

/**
 * The number of elements of a value of type `t` as a code expression: `n * 64`
 * for an activation (batch dimension first), `4096` for a static value (a
 * weight gradient, a loss).
 */
export function total(t: TensorType): string {
  if (t.shape[0] === 'N') return times('n', perExample(t));
  return String(t.shape.reduce<number>((a, d) => a * (d as number), 1));
}

/** Whether a type has the batch dimension (activations) rather than a static shape (weights, losses). */
export function isBatched(t: TensorType): boolean {
  return t.shape[0] === 'N';
}

/** The static dimensions of a type, batch dimension dropped (`28x28x1`), for kernel names. */
export function shapeTag(t: TensorType): string {
  return t.shape.filter((d) => d !== 'N').join('x');
}

/** A numeric literal for generated code (`-0`, `Infinity` and `NaN` included). */
export function lit(x: number): string {
  if (Object.is(x, -0)) return '-0';
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  return String(x);
}

/** A number as identifier characters, for helper names: 0.3 -> 0p3, -1e-5 -> m1em5. */
export function numberTag(x: number): string {
  return lit(x).replace(/[.\-+]/g, (c) => (c === '.' ? 'p' : c === '-' ? 'm' : ''));
}

/** `n * size`, without `* 1`. */
export function times(n: string, size: number): string {
  return size === 1 ? n : `${n} * ${size}`;
}
