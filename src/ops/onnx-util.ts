/**
 * Building blocks of the ONNX rules of windowed ops (convolutions, pools):
 * kernel layout changes and explicit `pads`. modelc places `same` padding as
 * TF does (the odd cell at the end) and its op records compute where a window
 * starts (`before`); these turn that into ONNX's explicit pads, so no
 * auto_pad convention is involved. Pure functions of sizes, apart from
 * `convToOnnx`, which emits through the builder.
 */
import type { OnnxAttr, OnnxBuilder } from './onnx-def.js';
import { onnxInt, onnxInts } from './onnx-def.js';
import type { OpNode } from './op-def.js';

/** Row-major transpose: axis i of the result is axis perm[i] of the input. */
export function permute(data: Float32Array, shape: readonly number[], perm: readonly number[]): Float32Array {
  const rank = shape.length;
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i]!;
  }
  const outShape = perm.map((p) => shape[p]!);
  const strideOf = perm.map((p) => inStrides[p]!);
  const out = new Float32Array(data.length);
  const index = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let at = 0;
    for (let i = 0; i < rank; i++) at += index[i]! * strideOf[i]!;
    out[o] = data[at]!;
    for (let i = rank - 1; i >= 0; i--) {
      if (++index[i]! < outShape[i]!) break;
      index[i] = 0;
    }
  }
  return out;
}

/** The geometry of a 2-D window along [height, width]. */
export interface Window2d {
  /** Input and output lengths. */
  readonly input: readonly number[];
  readonly output: readonly number[];
  readonly kernel: readonly number[];
  readonly strides: readonly number[];
  readonly dilations: readonly number[];
  /** Padding cells before the first input cell, as the op places them. */
  readonly before: readonly number[];
}

/**
 * ONNX `pads` [top, left, bottom, right] of a forward window: `before` as
 * given, after so that ONNX's floor((in + pads - k_eff) / s) + 1 is the
 * output length (0 where the last window ends inside the input).
 */
export function forwardPads(w: Window2d): number[] {
  const after = [0, 1].map((i) => {
    const extent = (w.output[i]! - 1) * w.strides[i]! + (w.kernel[i]! - 1) * w.dilations[i]! + 1;
    return Math.max(extent - w.input[i]! - w.before[i]!, 0);
  });
  return [...w.before, ...after];
}

/**
 * ConvTranspose geometry: output cell o = i*s + u*d - before, as modelc places
 * it; the end padding (or, when the output is longer than the full scatter,
 * output_padding) makes ONNX's s*(in-1) + output_padding + k_eff - pads the
 * output length.
 */
export function transposePads(w: Window2d): { pads: number[]; outputPadding: number[] } {
  const after: number[] = [];
  const outputPadding: number[] = [];
  for (let i = 0; i < 2; i++) {
    const full = w.strides[i]! * (w.input[i]! - 1) + (w.kernel[i]! - 1) * w.dilations[i]! + 1; // the scatter's extent before cropping
    const total = full - w.output[i]!;
    after.push(Math.max(total - w.before[i]!, 0));
    outputPadding.push(Math.max(w.before[i]! - total, 0));
  }
  return { pads: [...w.before, ...after], outputPadding };
}

/** How a convolution maps to an ONNX Conv or ConvTranspose. */
export interface ConvOnnx {
  readonly opType: 'Conv' | 'ConvTranspose';
  /** Names the kernel's ONNX layout (a parameter used in two layouts gets two initializers). */
  readonly layoutTag: string;
  /** The Keras kernel's axes in ONNX order. */
  readonly perm: readonly number[];
  /** The ONNX weight dims from the Keras kernel shape, when they are not just the permuted shape. */
  readonly dims?: (kernelShape: readonly number[]) => number[];
  readonly group: number;
  /** [top, left, bottom, right] (`forwardPads`, `transposePads`). */
  readonly pads: readonly number[];
  /** ConvTranspose only. */
  readonly outputPadding?: readonly number[];
}

/**
 * Emits a convolution `(x, kernel, bias?)` as one channels-first node: x
 * transposed to NCHW (once), the kernel permuted from its Keras layout, the
 * bias as declared.
 */
export function convToOnnx(
  b: OnnxBuilder,
  node: OpNode<{ readonly strides: readonly number[]; readonly dilation_rate: readonly number[] }>,
  conv: ConvOnnx,
): void {
  const [x, kernel, bias] = node.operands;
  const [kh, kw] = b.typeOf(kernel!).shape as number[];
  const input = b.nchw(x!);
  const weights = b.param(kernel!, conv.layoutTag, (shape, value) => ({
    dims: conv.dims ? conv.dims(shape) : conv.perm.map((p) => shape[p]!),
    data: permute(value, shape, conv.perm),
  }));
  const biasInit = bias === undefined ? undefined : b.param(bias);
  const attrs: OnnxAttr[] = [
    onnxInts('kernel_shape', [kh!, kw!]),
    onnxInts('strides', node.attrs.strides),
    onnxInts('dilations', node.attrs.dilation_rate),
    onnxInt('group', conv.group),
    onnxInts('pads', conv.pads),
  ];
  if (conv.outputPadding !== undefined) attrs.push(onnxInts('output_padding', conv.outputPadding));
  b.produce(node, 'nchw', (out) => b.emit(conv.opType, biasInit === undefined ? [input, weights] : [input, weights, biasInit], [out], attrs));
}
