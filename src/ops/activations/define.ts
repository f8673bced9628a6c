/**
 * What an activation function is: one record (`defineActivation`) holding
 * every fact about it, from which `ops/activation.ts` builds the activation
 * op (reference kernel, emit, gradient, ONNX rule, examples), its shorthand
 * layer, its fused-epilogue form and its Keras/TF.js import names. Adding an
 * activation is one record in a family file and one line in `records.ts`.
 *
 * A record has one of three forms:
 *  - `elementwise`: a scalar function f with its generated helper and f'.
 *    These can be a fused epilogue of the op that produces their input.
 *  - `rows`: a normalization along an axis (softmax), with its kernel, its
 *    in-place row form (a per-row epilogue, over the last axis only) and its
 *    gradient rule. Its one attribute is `axis`.
 *  - `identity`: `linear`, kept in the IR so that `remove-identity` removes it;
 *    never an epilogue.
 */
import type { Static, TObject, TProperties } from '@sinclair/typebox';
import type { Tensor } from '../../ir/tensor.js';
import type { LossName } from '../../spec/training.js';
import type { TensorType } from '../../ir/types.js';
import type { KernelCode, RuntimeHelper } from '../emit.js';
import type { OnnxEmitter } from '../onnx-def.js';
import type { SimdEpilogue, SimdRectifier } from '../simd-def.js';
import { ShapeError, type GradBuilder } from '../op-def.js';

/** Which value f' is computed from: the activation's output y, or its input x. */
export type Source = 'output' | 'input';

/** f' of an elementwise activation, as reference and as generated helper. */
export interface Derivative {
  readonly from: Source;
  /** f' as a function of y (from the output) or x (from the input). */
  readonly ref: (v: number) => number;
  /** The generated `name(v)` computing the same. */
  readonly helper: RuntimeHelper;
  /** The helper's documented error when it approximates f' (through an approximate helper it calls). */
  readonly accuracy?: Accuracy;
}

/**
 * A name Keras or TF.js gives the function as an `activation` string: the
 * name alone means the default attributes; with `attrs`, the attributes it fixes
 * (TF.js `gelu_new` is `gelu` with `approximate: true`).
 */
export type KerasName<A> = string | { readonly name: string; readonly attrs: Partial<A> };

/** How far a generated helper may be from the reference: |helper - ref| <= absolute + relative * |ref|. */
export interface Accuracy {
  readonly absolute?: number;
  readonly relative?: number;
}

interface ActivationCommon<N extends string, P extends TProperties> {
  /** The modelc name: op, shorthand layer and epilogue `op`. */
  readonly name: N;
  readonly summary: string;
  /** Attributes with Keras defaults (the IR stores them resolved). */
  readonly attrs: P;
  /** The Keras/TF.js `activation` strings that mean this function; `[name]` when absent. */
  readonly keras?: readonly KerasName<Static<TObject<P>>>[];
  /**
   * Keras 3 `activation` strings that mean this function with other
   * attributes than the same string in Keras 2 and TF.js (Keras 3's
   * `hard_sigmoid` has slope 1/6); they win over `keras` in a Keras 3 config.
   */
  readonly keras3?: readonly KerasName<Static<TObject<P>>>[];
  /**
   * Losses with a `from_logits` form that computes this activation inside:
   * a training graph scores its input instead (no log(0), no vanishing
   * gradient when it saturates). A `rows` activation only over the last axis.
   */
  readonly logitsLosses?: readonly LossName[];
  /**
   * The ONNX nodes computing the function from `input` to `output` (a `rows`
   * activation's `axis` already in the exported value's layout).
   */
  onnx(e: OnnxEmitter, input: string, output: string, attrs: Static<TObject<P>>): void;
  /** Attribute sets (defaults filled in for the rest) that the conformance tests run; the first is the doc example. */
  readonly examples: readonly Partial<Static<TObject<P>>>[];
}

export interface ElementwiseActivation<N extends string = string, P extends TProperties = TProperties> extends ActivationCommon<N, P> {
  readonly form: 'elementwise';
  /** f in float64, as Keras and TF.js define it. */
  reference(attrs: Static<TObject<P>>): (x: number) => number;
  /** The generated helper computing f, named after the function and its attributes (equal names mean equal code). */
  helper(attrs: Static<TObject<P>>): RuntimeHelper;
  /** f', from the output where f' is a function of it (the producer then keeps one reader). */
  derivative(attrs: Static<TObject<P>>): Derivative;
  /** The helper's documented error when it approximates f; exact to 1e-15 relative when absent. */
  readonly helperAccuracy?: Accuracy;
  /**
   * The Trainer's WebAssembly SIMD kernels of f and of dy * f' from the output
   * (`relu`, `relu6`: simd-def.ts, codegen/wasm/relu.ts), for functions without
   * attributes that have them (the activation op and activation_grad select
   * them).
   */
  readonly simd?: SimdRectifier;
  /**
   * The fused epilogue the SIMD dense / conv2d / depthwise kernels apply in
   * registers where the function has no kernel of its own (`tanh`, `sigmoid`:
   * codegen/wasm/smooth.ts); `simd` is one too.
   */
  readonly simdEpilogue?: SimdEpilogue;
}

export interface RowsActivation<N extends string = string, P extends TProperties = TProperties> extends ActivationCommon<N, P> {
  readonly form: 'rows';
  /** The reference over every fibre along `axis` (positive, counting the batch). */
  reference(x: Tensor, axis: number): Tensor;
  /** The op's kernel for values of type `t` along `axis`. */
  kernel(t: TensorType, axis: number): KernelCode;
  /** As an epilogue: code normalizing `rows` contiguous rows of `len` values of `y` in place. */
  rowsCode(rows: string, len: number): string;
  /** Emits dx from dy and the activation's output y; returns dx. */
  grad(g: GradBuilder, dy: string, y: string, axis: number): string;
}

export interface IdentityActivation<N extends string = string, P extends TProperties = TProperties> extends ActivationCommon<N, P> {
  readonly form: 'identity';
}

export type ActivationDef<N extends string = string, P extends TProperties = TProperties> =
  | ElementwiseActivation<N, P>
  | RowsActivation<N, P>
  | IdentityActivation<N, P>;

/** Identity helpers that keep each record's name and attribute types precise. */
export function defineActivation<N extends string, P extends TProperties>(def: ElementwiseActivation<N, P>): ElementwiseActivation<N, P>;
export function defineActivation<N extends string, P extends TProperties>(def: RowsActivation<N, P>): RowsActivation<N, P>;
export function defineActivation<N extends string, P extends TProperties>(def: IdentityActivation<N, P>): IdentityActivation<N, P>;
export function defineActivation(def: ActivationDef): ActivationDef {
  return def;
}

/** A helper `name(x)` whose body is `return <expr>;`. */
export function scalarHelper(name: string, doc: string, expr: string, uses: RuntimeHelper[] = []): RuntimeHelper {
  return { name, source: `/** ${doc} */\nfunction ${name}(x: number): number {\n  return ${expr};\n}`, uses };
}

/** A derivative: its source, reference, and a helper `<name>(y or x)` with a body of statements. */
export function derivative(
  from: Source, name: string, doc: string, ref: (v: number) => number, body: string, uses: RuntimeHelper[] = [], accuracy?: Accuracy,
): Derivative {
  const v = from === 'output' ? 'y' : 'x';
  const helper = { name, source: `/** ${doc} */\nfunction ${name}(${v}: number): number {\n  ${body}\n}`, uses };
  return accuracy === undefined ? { from, ref, helper } : { from, ref, helper, accuracy };
}

/** An axis in the IR is positive and counts the batch dimension. */
export function normalizeAxis(axis: number, rank: number): number {
  const a = axis < 0 ? rank + axis : axis;
  if (a <= 0 || a >= rank) {
    throw new ShapeError(`axis ${axis} is out of range for a rank-${rank} tensor (axis 0 is the batch)`);
  }
  return a;
}
