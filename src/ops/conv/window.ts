/**
 * The window math the convolution records share (conv2d in `../conv.ts`,
 * conv2d_transpose in `../conv-transpose.ts`, depthwise_conv2d in
 * `../conv-depthwise.ts`, their gradient ops in `../conv-grad.ts`) and the
 * pools reuse: the Keras attribute shapes (`intPair`, `Padding`, `Pair`),
 * output lengths (Keras `conv_output_length`, `deconv_output_length`), where
 * a window starts on each axis (TF `same` puts the odd cell of padding at the
 * end), the type-rule checks, when batchnorm folds into a conv exactly, and a
 * conv node's window in ONNX terms. It imports no op family file, so each op
 * file can import it without a cycle.
 *
 * Indices: x[n, iy, ix, c] is x.data[((n * H + iy) * W + ix) * C + c]; a
 * window tap reads input cell i*s + u*d - p (p = padding before the first
 * cell), and cells outside the input read as zero.
 */
import { Type } from '@sinclair/typebox';
import type { Tensor } from '../../ir/tensor.js';
import type { TensorType } from '../../ir/types.js';
import type { OnnxBuilder } from '../onnx-def.js';
import type { Window2d } from '../onnx-util.js';
import { dim, formatShape, ShapeError, type FoldBefore, type OpNode } from '../op-def.js';
import type { WindowGeometry } from './geometry.js';

/** An int or an [h, w] pair, as Keras accepts for kernel_size, strides, ... */
export function intPair(defaultValue?: number, minimum = 1) {
  const opts = defaultValue === undefined ? {} : { default: defaultValue };
  return Type.Union(
    [Type.Integer({ minimum }), Type.Array(Type.Integer({ minimum }), { minItems: 2, maxItems: 2 })],
    { description: 'an integer or [height, width]', ...opts },
  );
}

export function pair(v: number | readonly number[]): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0]!, v[1]!];
}

export const Padding = Type.Union([Type.Literal('valid'), Type.Literal('same')], { default: 'valid' });
export type Padding = 'valid' | 'same';

/** An [h, w] pair of positive integers: IR attributes are always complete pairs. */
export const Pair = Type.Array(Type.Integer({ minimum: 1 }), { minItems: 2, maxItems: 2 });

/** Keras `conv_output_length`: how many windows fit along one spatial axis. */
export function convOutputLength(input: number, k: number, stride: number, padding: Padding, dilation = 1): number {
  const effective = (k - 1) * dilation + 1;
  return padding === 'same' ? Math.ceil(input / stride) : Math.floor((input - effective) / stride) + 1;
}

/** Keras `deconv_output_length`. */
export function deconvOutputLength(
  input: number,
  k: number,
  stride: number,
  padding: Padding,
  outputPadding: number | null,
  dilation = 1,
): number {
  const effective = (k - 1) * dilation + 1;
  if (outputPadding === null) {
    return padding === 'same' ? input * stride : input * stride + Math.max(effective - stride, 0);
  }
  const pad = padding === 'same' ? Math.floor(effective / 2) : 0;
  return (input - 1) * stride + effective - 2 * pad + outputPadding;
}

/**
 * One spatial axis of a sliding window: the output length and the padding
 * before the first input cell. TF `same`: out = ceil(in/s),
 * total = max((out-1)*s + (k-1)*d + 1 - in, 0), before = floor(total/2).
 */
export function windowAxis(input: number, k: number, stride: number, padding: Padding, dilation = 1): { out: number; before: number } {
  const out = convOutputLength(input, k, stride, padding, dilation);
  if (padding === 'valid') return { out, before: 0 };
  const total = Math.max((out - 1) * stride + (k - 1) * dilation + 1 - input, 0);
  return { out, before: Math.floor(total / 2) };
}

/**
 * The padding before the first cell of the conv2d that a transposed conv
 * reverses: that conv maps `out` cells to `input` cells, so (TF)
 * before = floor(max((input-1)*s + (k-1)*d + 1 - out, 0) / 2) for `same`.
 */
export function transposePadBefore(input: number, out: number, k: number, stride: number, padding: Padding, dilation: number): number {
  if (padding === 'valid') return 0;
  return Math.floor(Math.max((input - 1) * stride + (k - 1) * dilation + 1 - out, 0) / 2);
}

// ---------------------------------------------------------------------------
// Type-rule checks

/** The output's [h, w] by `length` per axis; fails when no whole window fits. */
export function spatialOutput(
  x: TensorType,
  k: readonly number[],
  length: (input: number, k: number, axis: 0 | 1) => number,
): [number, number] {
  const out: [number, number] = [length(dim(x, 1), k[0]!, 0), length(dim(x, 2), k[1]!, 1)];
  if (out[0] < 1 || out[1] < 1) {
    throw new ShapeError(
      `input ${formatShape(x.shape.slice(1))} is too small for kernel ${formatShape(k.slice(0, 2))}: the output would be ${formatShape(out)}`,
    );
  }
  return out;
}

export function checkBias(bias: TensorType | undefined, channels: number): void {
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== channels)) {
    throw new ShapeError(`bias must have shape [${channels}], got ${formatShape(bias.shape)}`);
  }
}

export function checkStridesWithDilation(strides: readonly number[], dilation: readonly number[]): void {
  if (strides.some((s) => s > 1) && dilation.some((d) => d > 1)) {
    throw new ShapeError('strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)');
  }
}

// ---------------------------------------------------------------------------
// Attributes and geometry

export interface ConvAttrs {
  readonly strides: readonly number[];
  readonly padding: string;
  readonly dilation_rate: readonly number[];
}

/** The window and groups attributes of conv2d and conv2d_transpose in IR (depthwise_conv2d has no groups); the ops add their epilogue. */
export const convAttrs = {
  strides: Pair,
  padding: Padding,
  dilation_rate: Pair,
  groups: Type.Integer({ minimum: 1 }),
};

/** The window attributes of the three conv layers, as Keras accepts them (an int or a pair). */
export const windowAttrs = {
  kernel_size: intPair(),
  strides: intPair(1),
  padding: Padding,
  dilation_rate: intPair(1),
};

/** A conv's window attributes, without the epilogue: what its gradient ops take. */
export function windowOf(a: ConvAttrs): { strides: readonly number[]; padding: string; dilation_rate: readonly number[] } {
  return { strides: a.strides, padding: a.padding, dilation_rate: a.dilation_rate };
}

/** Rows and columns of a forward window over a float64 tensor: output sizes and padding before. */
export function windows(x: Tensor, kh: number, kw: number, a: ConvAttrs) {
  const pad = a.padding as Padding;
  const rows = windowAxis(x.shape[1]!, kh, a.strides[0]!, pad, a.dilation_rate[0]);
  const cols = windowAxis(x.shape[2]!, kw, a.strides[1]!, pad, a.dilation_rate[1]);
  return { rows, cols };
}

/** Where the forward window of a conv or depthwise conv starts, from its input type. */
export function forwardGeometry(x: TensorType, k: TensorType, a: ConvAttrs): WindowGeometry {
  const pad = a.padding as Padding;
  const rows = windowAxis(dim(x, 1), k.shape[0] as number, a.strides[0]!, pad, a.dilation_rate[0]);
  const cols = windowAxis(dim(x, 2), k.shape[1] as number, a.strides[1]!, pad, a.dilation_rate[1]);
  return { strides: a.strides, dilation_rate: a.dilation_rate, before: [rows.before, cols.before], valid: pad === 'valid' };
}

/** The padding of the conv2d that a transposed conv reverses, from both types. */
export function transposeGeometry(x: TensorType, k: TensorType, y: TensorType, a: ConvAttrs): WindowGeometry {
  const pad = a.padding as Padding;
  const before = [0, 1].map((i) =>
    transposePadBefore(dim(x, i + 1), dim(y, i + 1), k.shape[i] as number, a.strides[i]!, pad, a.dilation_rate[i]!),
  ) as [number, number];
  return { strides: a.strides, dilation_rate: a.dilation_rate, before, valid: pad === 'valid' };
}

/**
 * Folding batchnorm forward into a conv (`linear(bn(x))`) moves bn's shift
 * into the bias, which is exact only where every output sees a whole window of
 * real input cells: with `same` padding that the windows reach, the padded
 * zeros would not receive the shift (TF 'same': total = (out-1)*s + k_eff - in).
 */
export function windowFoldBefore(operands: readonly TensorType[], a: { padding: string; strides: number[]; dilation_rate: number[] }): FoldBefore {
  if (a.padding !== 'same') return { kind: 'exact' };
  const [x, k] = operands as [TensorType, TensorType];
  const reaches = [0, 1].some((i) => {
    const input = dim(x, i + 1);
    const out = Math.ceil(input / a.strides[i]!);
    return (out - 1) * a.strides[i]! + ((k.shape[i] as number) - 1) * a.dilation_rate[i]! + 1 - input > 0;
  });
  return reaches ? { kind: 'zero-shift', reason: "has 'same' padding, which would not receive the batchnorm shift" } : { kind: 'exact' };
}

/**
 * A conv node's window in ONNX terms: sizes from the types, the padding
 * before each axis where the op's own kernels place it (`forward` for conv2d
 * and depthwise, `transpose` for the conv2d that conv2d_transpose reverses).
 */
export function onnxWindow(b: OnnxBuilder, n: OpNode<ConvAttrs>, place: 'forward' | 'transpose'): Window2d {
  const x = b.typeOf(n.operands[0]!);
  const k = b.typeOf(n.operands[1]!);
  const { before } = place === 'forward' ? forwardGeometry(x, k, n.attrs) : transposeGeometry(x, k, n.type, n.attrs);
  return {
    input: [dim(x, 1), dim(x, 2)],
    output: [dim(n.type, 1), dim(n.type, 2)],
    kernel: k.shape.slice(0, 2) as number[],
    strides: n.attrs.strides,
    dilations: n.attrs.dilation_rate,
    before,
  };
}
