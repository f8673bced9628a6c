/**
 * 2-D convolutions over NHWC tensors: conv2d (grouped, dilated),
 * conv2d_transpose and depthwise_conv2d.
 *
 *   %conv2d: f32[N,26,26,32] = conv2d(%x, %conv2d/kernel, %conv2d/bias)
 *       {strides=[1,1], padding="valid", dilation_rate=[1,1], groups=1}
 *
 * Keras kernel layouts: conv2d [kh, kw, in/groups, filters]; conv2d_transpose
 * [kh, kw, filters/groups, in] (the kernel of the convolution it transposes);
 * depthwise_conv2d [kh, kw, in, depth_multiplier]. Output sizes follow Keras
 * (`conv_output_length`, `deconv_output_length`); `same` padding puts the odd
 * cell of padding at the end (TF).
 *
 * Reference kernels (float64, inference), with p = padding before the first cell:
 *   conv2d:           y[n,i,j,f] = b[f] + sum_{u,v,c} x[n, i*s+u*d-p, j*s+v*d-p, g*C/G + c] k[u,v,c,f],  g = f div (F/G)
 *   depthwise_conv2d: y[n,i,j,c*M+m] = b[c*M+m] + sum_{u,v} x[n, i*s+u*d-p, j*s+v*d-p, c] k[u,v,c,m]
 *   conv2d_transpose: the adjoint of conv2d (its gradient w.r.t. the input, TF's
 *     conv2d_backprop_input): each input cell scatters x[n,i,j,c] k[u,v,f,c] to
 *     output cell (i*s+u*d-p, j*s+v*d-p, g*F/G + f), g = c div (C/G).
 * Cells outside the input (the padding) read as zero.
 *
 * Gradient rules sit beside each op; the gradient ops they emit are in
 * `conv-grad.ts` (conv2d_transpose's reuse conv2d and conv2d_grad_kernel).
 */
import { Type } from '@sinclair/typebox';
import type { Tensor } from '../ir/tensor.js';
import { exampleShape, tensor, type TensorType } from '../ir/types.js';
import { applyEpilogue, epilogueAttr, withActivation, type ActivationName } from './activation.js';
import { conv2dTransposeKernel, depthwiseKernel } from './conv/direct.js';
import type { WindowGeometry } from './conv/geometry.js';
import { conv2dKernel } from './conv/path.js';
import { conv2dSimd, depthwiseSimd } from './conv/simd.js';
import { initializer } from './init.js';
import { kerasWeighted, kerasWindow } from './keras-def.js';
import type { OnnxBuilder } from './onnx-def.js';
import { convToOnnx, forwardPads, transposePads, type Window2d } from './onnx-util.js';
import { kernelAndBias, noEpilogue, weightedLayerAttrs } from './linear.js';
import { defineFamily, defineLayer, defineOp, dim, expectRank, formatShape, ShapeError, type FoldBefore, type KernelLayout, type OpNode } from './op-def.js';

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

function spatialOutput(
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

function checkBias(bias: TensorType | undefined, channels: number): void {
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== channels)) {
    throw new ShapeError(`bias must have shape [${channels}], got ${formatShape(bias.shape)}`);
  }
}

function checkStridesWithDilation(strides: readonly number[], dilation: readonly number[]): void {
  if (strides.some((s) => s > 1) && dilation.some((d) => d > 1)) {
    throw new ShapeError('strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)');
  }
}

// ---------------------------------------------------------------------------
// Reference kernels. Indices: x[n, iy, ix, c] is x.data[((n * H + iy) * W + ix) * C + c].

type Dims4 = readonly [number, number, number, number];

export interface ConvAttrs {
  readonly strides: readonly number[];
  readonly padding: string;
  readonly dilation_rate: readonly number[];
}

/** Rows and columns of a forward window: output sizes and padding before. */
function windows(x: Tensor, kh: number, kw: number, a: ConvAttrs) {
  const pad = a.padding as Padding;
  const rows = windowAxis(x.shape[1]!, kh, a.strides[0]!, pad, a.dilation_rate[0]);
  const cols = windowAxis(x.shape[2]!, kw, a.strides[1]!, pad, a.dilation_rate[1]);
  return { rows, cols };
}

function conv2dReference(x: Tensor, k: Tensor, bias: Tensor | undefined, a: ConvAttrs & { groups: number }): Tensor {
  const [batch, h, w, c] = x.shape as Dims4;
  const [kh, kw, cPerGroup, filters] = k.shape as Dims4;
  const fPerGroup = filters / a.groups;
  const { rows, cols } = windows(x, kh, kw, a);
  const y = new Float64Array(batch * rows.out * cols.out * filters);
  // y[n, oy, ox, g*fPerGroup + fi] = bias + sum over (ky, kx, ci) of
  //   x[n, iy, ix, g*cPerGroup + ci] * k[ky, kx, ci, g*fPerGroup + fi]
  // Loop order keeps the kernel row k[ky, kx, ci, :] contiguous in the innermost loop.
  for (let n = 0; n < batch; n++)
    for (let oy = 0; oy < rows.out; oy++)
      for (let ox = 0; ox < cols.out; ox++) {
        const yAt = ((n * rows.out + oy) * cols.out + ox) * filters;
        if (bias) for (let f = 0; f < filters; f++) y[yAt + f] = bias.data[f]!;
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * a.strides[0]! + ky * a.dilation_rate[0]! - rows.before;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * a.strides[1]! + kx * a.dilation_rate[1]! - cols.before;
            if (ix < 0 || ix >= w) continue;
            const xAt = ((n * h + iy) * w + ix) * c;
            const kBase = (ky * kw + kx) * cPerGroup * filters;
            for (let g = 0; g < a.groups; g++) {
              for (let ci = 0; ci < cPerGroup; ci++) {
                const v = x.data[xAt + g * cPerGroup + ci]!;
                const kAt = kBase + ci * filters + g * fPerGroup;
                const yg = yAt + g * fPerGroup;
                for (let fi = 0; fi < fPerGroup; fi++) y[yg + fi] += v * k.data[kAt + fi]!;
              }
            }
          }
        }
      }
  return { shape: [batch, rows.out, cols.out, filters], data: y };
}

function depthwiseConv2dReference(x: Tensor, k: Tensor, bias: Tensor | undefined, a: ConvAttrs): Tensor {
  const [batch, h, w, c] = x.shape as Dims4;
  const [kh, kw, , m] = k.shape as Dims4;
  const { rows, cols } = windows(x, kh, kw, a);
  const y = new Float64Array(batch * rows.out * cols.out * c * m);
  let at = 0;
  for (let n = 0; n < batch; n++)
    for (let oy = 0; oy < rows.out; oy++)
      for (let ox = 0; ox < cols.out; ox++)
        for (let ci = 0; ci < c; ci++)
          for (let mi = 0; mi < m; mi++) {
            let sum = bias ? bias.data[ci * m + mi]! : 0;
            for (let ky = 0; ky < kh; ky++) {
              const iy = oy * a.strides[0]! + ky * a.dilation_rate[0]! - rows.before;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = ox * a.strides[1]! + kx * a.dilation_rate[1]! - cols.before;
                if (ix < 0 || ix >= w) continue;
                sum += x.data[((n * h + iy) * w + ix) * c + ci]! * k.data[((ky * kw + kx) * c + ci) * m + mi]!;
              }
            }
            y[at++] = sum;
          }
  return { shape: [batch, rows.out, cols.out, c * m], data: y };
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

function conv2dTransposeReference(
  x: Tensor,
  k: Tensor,
  bias: Tensor | undefined,
  a: ConvAttrs & { groups: number; output_padding: readonly number[] | null },
): Tensor {
  const [batch, h, w, c] = x.shape as Dims4;
  const [kh, kw, fPerGroup] = k.shape as Dims4;
  const filters = fPerGroup * a.groups;
  const cPerGroup = c / a.groups;
  const [sy, sx] = a.strides as [number, number];
  const [dy, dx] = a.dilation_rate as [number, number];
  const pad = a.padding as Padding;
  const op = a.output_padding;
  const oh = deconvOutputLength(h, kh, sy, pad, op ? op[0]! : null, dy);
  const ow = deconvOutputLength(w, kw, sx, pad, op ? op[1]! : null, dx);
  const top = transposePadBefore(h, oh, kh, sy, pad, dy);
  const left = transposePadBefore(w, ow, kw, sx, pad, dx);
  const z = new Float64Array(batch * oh * ow * filters);
  for (let n = 0; n < batch; n++)
    for (let iy = 0; iy < h; iy++)
      for (let ix = 0; ix < w; ix++)
        for (let ci = 0; ci < c; ci++) {
          const v = x.data[((n * h + iy) * w + ix) * c + ci]!;
          const f0 = Math.floor(ci / cPerGroup) * fPerGroup; // first output channel of ci's group
          for (let ky = 0; ky < kh; ky++) {
            const oy = iy * sy + ky * dy - top;
            if (oy < 0 || oy >= oh) continue;
            for (let kx = 0; kx < kw; kx++) {
              const ox = ix * sx + kx * dx - left;
              if (ox < 0 || ox >= ow) continue;
              const zAt = ((n * oh + oy) * ow + ox) * filters + f0;
              const kAt = (ky * kw + kx) * fPerGroup * c + ci;
              for (let fi = 0; fi < fPerGroup; fi++) z[zAt + fi] += v * k.data[kAt + fi * c]!;
            }
          }
        }
  if (bias) for (let i = 0; i < z.length; i++) z[i] += bias.data[i % filters]!;
  return { shape: [batch, oh, ow, filters], data: z };
}

/** Where the forward window of a conv or depthwise conv starts, from its input type. */
export function forwardGeometry(x: TensorType, k: TensorType, a: ConvAttrs): WindowGeometry {
  const pad = a.padding as Padding;
  const rows = windowAxis(dim(x, 1), k.shape[0] as number, a.strides[0]!, pad, a.dilation_rate[0]);
  const cols = windowAxis(dim(x, 2), k.shape[1] as number, a.strides[1]!, pad, a.dilation_rate[1]);
  return { strides: a.strides, dilation_rate: a.dilation_rate, before: [rows.before, cols.before], valid: pad === 'valid' };
}

/** The padding of the conv2d that a transposed conv reverses, from both types. */
function transposeGeometry(x: TensorType, k: TensorType, y: TensorType, a: ConvAttrs): WindowGeometry {
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
function windowFoldBefore(operands: readonly TensorType[], a: { padding: string; strides: number[]; dilation_rate: number[] }): FoldBefore {
  if (a.padding !== 'same') return { kind: 'exact' };
  const [x, k] = operands as [TensorType, TensorType];
  const reaches = [0, 1].some((i) => {
    const input = dim(x, i + 1);
    const out = Math.ceil(input / a.strides[i]!);
    return (out - 1) * a.strides[i]! + ((k.shape[i] as number) - 1) * a.dilation_rate[i]! + 1 - input > 0;
  });
  return reaches ? { kind: 'zero-shift', reason: "has 'same' padding, which would not receive the batchnorm shift" } : { kind: 'exact' };
}

/** conv2d kernel [kh, kw, in/groups, filters]: element i feeds filter i mod F from channel (group of the filter)*perGroup + (i div F) mod perGroup. */
function conv2dLayout(kernelShape: readonly number[], groups: number): KernelLayout {
  const [, , perGroup, filters] = kernelShape as [number, number, number, number];
  const outPerGroup = filters / groups;
  return {
    inChannels: perGroup * groups,
    outChannels: filters,
    channels: (i) => {
      const out = i % filters;
      return { in: Math.floor(out / outPerGroup) * perGroup + (Math.floor(i / filters) % perGroup), out };
    },
  };
}

/** conv2d_transpose kernel [kh, kw, filters/groups, in]: element i reads channel i mod C and writes a filter of that channel's group. */
function conv2dTransposeLayout(kernelShape: readonly number[], groups: number): KernelLayout {
  const [, , outPerGroup, c] = kernelShape as [number, number, number, number];
  const inPerGroup = c / groups;
  return {
    inChannels: c,
    outChannels: outPerGroup * groups,
    channels: (i) => {
      const ch = i % c;
      return { in: ch, out: Math.floor(ch / inPerGroup) * outPerGroup + (Math.floor(i / c) % outPerGroup) };
    },
  };
}

/** depthwise kernel [kh, kw, C, M]: element i reads channel (i div M) mod C and writes output channel c*M + i mod M. */
function depthwiseLayout(kernelShape: readonly number[]): KernelLayout {
  const [, , c, m] = kernelShape as [number, number, number, number];
  return {
    inChannels: c,
    outChannels: c * m,
    channels: (i) => {
      const ch = Math.floor(i / m) % c;
      return { in: ch, out: ch * m + (i % m) };
    },
  };
}

/**
 * A conv node's window in ONNX terms: sizes from the types, the padding
 * before each axis where the op's own kernels place it (`forward` for conv2d
 * and depthwise, `transpose` for the conv2d that conv2d_transpose reverses).
 */
function onnxWindow(b: OnnxBuilder, n: OpNode<ConvAttrs>, place: 'forward' | 'transpose'): Window2d {
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

const convAttrs = {
  strides: Pair,
  padding: Padding,
  dilation_rate: Pair,
  groups: Type.Integer({ minimum: 1 }),
  ...epilogueAttr,
};

export const conv2dOp = defineOp({
  name: 'conv2d',
  summary: 'grouped, dilated 2-D convolution (cross-correlation), NHWC',
  traits: ['pure', 'linear-in-weights'],
  linear: { layout: (shape, a) => conv2dLayout(shape, a.groups), foldBefore: windowFoldBefore },
  epilogue: { fuses: 'all' },
  attrs: convAttrs,
  operands: () => ['x', 'kernel', 'bias?'],
  examples: [
    {
      note: 'Winograd path: 3x3, stride 1, same padding, relu epilogue',
      attrs: { strides: [1, 1], padding: 'same', dilation_rate: [1, 1], groups: 1, epilogue: { op: 'relu' } },
      operands: [tensor(['N', 4, 4, 2]), tensor([3, 3, 2, 3]), tensor([3])],
    },
    {
      note: 'im2col + GEMM path: 2 groups, stride 2, same padding',
      attrs: { strides: [2, 2], padding: 'same', dilation_rate: [1, 1], groups: 2 },
      operands: [tensor(['N', 5, 5, 4]), tensor([3, 3, 2, 6]), tensor([6])],
    },
    {
      note: 'direct path: dilation 2, valid, no bias',
      attrs: { strides: [1, 1], padding: 'valid', dilation_rate: [2, 2], groups: 1 },
      operands: [tensor(['N', 6, 5, 3]), tensor([2, 2, 3, 4])],
    },
    {
      note: 'strides [2, 1], 2x3 window, valid, no bias, relu6 epilogue',
      attrs: { strides: [2, 1], padding: 'valid', dilation_rate: [1, 1], groups: 1, epilogue: { op: 'relu6' } },
      operands: [tensor(['N', 6, 5, 3]), tensor([2, 3, 3, 5])],
    },
  ],
  infer: ([x, kernel, bias], a) => {
    expectRank(x!, 4, 'conv2d');
    expectRank(kernel!, 4, 'conv2d kernel');
    const [kh, kw, cin, filters] = kernel!.shape as number[];
    const channels = dim(x!, 3);
    if (channels % a.groups !== 0 || filters! % a.groups !== 0) {
      throw new ShapeError(`groups=${a.groups} must divide both the input channels (${channels}) and filters (${filters})`);
    }
    if (cin !== channels / a.groups) {
      throw new ShapeError(`conv2d kernel expects ${cin! * a.groups} input channels, got ${channels}`);
    }
    checkBias(bias, filters!);
    checkStridesWithDilation(a.strides, a.dilation_rate);
    const [h, w] = spatialOutput(x!, [kh!, kw!], (n, k, i) =>
      convOutputLength(n, k, a.strides[i]!, a.padding as Padding, a.dilation_rate[i]),
    );
    return tensor(['N', h, w, filters!]);
  },
  reference: ([x, kernel, bias], a) => applyEpilogue(conv2dReference(x!, kernel!, bias, a), a.epilogue),
  emit: ({ operands: [x, k, b], result, attrs: a }) =>
    conv2dKernel(x!, k!, b !== undefined, result, a.groups, forwardGeometry(x!, k!, a), a.epilogue),
  simd: conv2dSimd,
  // Conv: kernel [kh, kw, in/g, out] -> [out, in/g, kh, kw], explicit pads.
  onnx: (b, n) =>
    convToOnnx(b, n, { opType: 'Conv', layoutTag: 'oihw', perm: [3, 2, 0, 1], group: n.attrs.groups, pads: forwardPads(onnxWindow(b, n, 'forward')) }),
  // Each product x[a] k[b] -> y[o] sends dy[o] k[b] to dx[a] (the transposed conv of dy) and
  // x[a] dy[o] to dk[b] (x correlated with dy over the batch); db = dy summed per filter.
  grad: (g, { operands: [x, k, b], attrs: a, result }, dy) => {
    noEpilogue('conv2d', result, a.epilogue);
    const attrs = { ...windowOf(a), groups: a.groups };
    return [
      () => g.op('conv2d_grad_input', [dy, k!], { ...attrs, input_shape: exampleShape(g.typeOf(x!)) }),
      () => g.op('conv2d_grad_kernel', [x!, dy], { ...attrs, kernel_size: g.typeOf(k!).shape.slice(0, 2) }),
      b === undefined ? undefined : () => g.op('channel_sum', [dy], { axis: 3 }),
    ];
  },
});

/** A conv's window attributes, without the epilogue: what its gradient ops take. */
function windowOf(a: ConvAttrs): { strides: readonly number[]; padding: string; dilation_rate: readonly number[] } {
  return { strides: a.strides, padding: a.padding, dilation_rate: a.dilation_rate };
}

/**
 * The conv2d that a transposed conv is the adjoint of, as attributes: with
 * them, conv2d maps the transposed conv's output shape `y` back onto its
 * input shape `x` through the same window. It fails only for `same` padding
 * with an even window and output_padding 0, which TF rejects too.
 */
function adjointConv(result: string, x: TensorType, k: TensorType, y: TensorType, a: ConvAttrs & { groups: number }) {
  const pad = a.padding as Padding;
  for (const i of [0, 1]) {
    const [from, to, size] = [dim(x, i + 1), dim(y, i + 1), k.shape[i] as number];
    const axis = windowAxis(to, size, a.strides[i]!, pad, a.dilation_rate[i]);
    if (axis.out !== from || axis.before !== transposePadBefore(from, to, size, a.strides[i]!, pad, a.dilation_rate[i]!)) {
      throw new Error(
        `conv2d_transpose ${result}: no conv2d maps its output ${formatShape(y.shape)} back onto its input ${formatShape(x.shape)} ` +
          '(same padding, an even window and output_padding 0, which TF rejects too); it has no gradient',
      );
    }
  }
  return { ...windowOf(a), groups: a.groups };
}

export const conv2dTransposeOp = defineOp({
  name: 'conv2d_transpose',
  summary: 'transposed 2-D convolution (the gradient of conv2d with respect to its input), NHWC',
  traits: ['pure', 'linear-in-weights'],
  linear: {
    layout: (shape, a) => conv2dTransposeLayout(shape, a.groups),
    foldBefore: () => ({ kind: 'never', reason: 'is a transposed convolution (its outputs see varying numbers of inputs)' }),
  },
  epilogue: { fuses: 'all' },
  attrs: {
    ...convAttrs,
    output_padding: Type.Union([Type.Null(), Type.Array(Type.Integer({ minimum: 0 }), { minItems: 2, maxItems: 2 })]),
  },
  operands: () => ['x', 'kernel', 'bias?'],
  examples: [
    {
      note: 'valid 3x3, stride 2',
      attrs: { strides: [2, 2], padding: 'valid', dilation_rate: [1, 1], groups: 1, output_padding: null },
      operands: [tensor(['N', 3, 3, 2]), tensor([3, 3, 4, 2]), tensor([4])],
    },
    {
      note: 'same 3x3, stride 2, output_padding 1, 2 groups',
      attrs: { strides: [2, 2], padding: 'same', dilation_rate: [1, 1], groups: 2, output_padding: [1, 1] },
      operands: [tensor(['N', 3, 3, 4]), tensor([3, 3, 2, 4]), tensor([4])],
    },
    {
      note: 'same, dilation 2, no bias, relu6 epilogue',
      attrs: { strides: [1, 1], padding: 'same', dilation_rate: [2, 2], groups: 1, output_padding: null, epilogue: { op: 'relu6' } },
      operands: [tensor(['N', 3, 3, 2]), tensor([3, 3, 2, 2])],
    },
  ],
  infer: ([x, kernel, bias], a) => {
    expectRank(x!, 4, 'conv2d_transpose');
    expectRank(kernel!, 4, 'conv2d_transpose kernel');
    const [kh, kw, perGroup, cin] = kernel!.shape as number[];
    const channels = dim(x!, 3);
    if (cin !== channels) throw new ShapeError(`conv2d_transpose kernel expects ${cin} input channels, got ${channels}`);
    if (channels % a.groups !== 0) {
      throw new ShapeError(`groups=${a.groups} must divide the input channels (${channels})`);
    }
    const filters = perGroup! * a.groups;
    checkBias(bias, filters);
    checkStridesWithDilation(a.strides, a.dilation_rate);
    const op = a.output_padding;
    if (op && op.some((p, i) => p >= a.strides[i]!)) {
      throw new ShapeError(`output_padding ${formatShape(op)} must be smaller than strides ${formatShape(a.strides)}`);
    }
    const [h, w] = spatialOutput(x!, [kh!, kw!], (n, k, i) =>
      deconvOutputLength(n, k, a.strides[i]!, a.padding as Padding, op ? op[i]! : null, a.dilation_rate[i]),
    );
    return tensor(['N', h, w, filters]);
  },
  reference: ([x, kernel, bias], a) => applyEpilogue(conv2dTransposeReference(x!, kernel!, bias, a), a.epilogue),
  emit: ({ operands: [x, k, b], result, attrs: a }) =>
    conv2dTransposeKernel(x!, k!, b !== undefined, result, a.groups, transposeGeometry(x!, k!, result, a), a.epilogue),
  // ConvTranspose: kernel [kh, kw, F/g, C] -> [C, F/g, kh, kw], pads and output_padding.
  onnx: (b, n) => {
    const { pads, outputPadding } = transposePads(onnxWindow(b, n, 'transpose'));
    convToOnnx(b, n, { opType: 'ConvTranspose', layoutTag: 'iohw', perm: [3, 2, 0, 1], group: n.attrs.groups, pads, outputPadding });
  },
  // y = convᵀ(x, k) with conv = conv2d from y's shape to x's, same kernel: dx = conv(dy, k),
  // dk = conv2d_grad_kernel(dy, x) (the roles of input and output swap), db = dy summed per filter.
  grad: (g, { operands: [x, k, b], attrs: a, result }, dy) => {
    noEpilogue('conv2d_transpose', result, a.epilogue);
    const conv = () => adjointConv(result, g.typeOf(x!), g.typeOf(k!), g.typeOf(dy), a);
    return [
      () => g.op('conv2d', [dy, k!], conv()),
      () => g.op('conv2d_grad_kernel', [dy, x!], { ...conv(), kernel_size: g.typeOf(k!).shape.slice(0, 2) }),
      b === undefined ? undefined : () => g.op('channel_sum', [dy], { axis: 3 }),
    ];
  },
});

export const depthwiseConv2dOp = defineOp({
  name: 'depthwise_conv2d',
  summary: 'per-channel 2-D convolution with depth_multiplier outputs per channel, NHWC',
  traits: ['pure', 'linear-in-weights'],
  linear: { layout: (shape) => depthwiseLayout(shape), foldBefore: windowFoldBefore },
  epilogue: { fuses: 'all' },
  attrs: { strides: Pair, padding: Padding, dilation_rate: Pair, ...epilogueAttr },
  operands: () => ['x', 'kernel', 'bias?'],
  examples: [
    {
      note: 'depth multiplier 2, same padding, stride 2',
      attrs: { strides: [2, 2], padding: 'same', dilation_rate: [1, 1] },
      operands: [tensor(['N', 5, 5, 3]), tensor([3, 3, 3, 2]), tensor([6])],
    },
    {
      note: 'valid 3x2 window, no bias',
      attrs: { strides: [1, 1], padding: 'valid', dilation_rate: [1, 1] },
      operands: [tensor(['N', 4, 5, 2]), tensor([3, 2, 2, 1])],
    },
    {
      note: 'dilation 2, same padding, relu epilogue',
      attrs: { strides: [1, 1], padding: 'same', dilation_rate: [2, 2], epilogue: { op: 'relu' } },
      operands: [tensor(['N', 5, 5, 2]), tensor([3, 3, 2, 1]), tensor([2])],
    },
    {
      note: 'strides [1, 2], same padding, 5 channels, relu6 epilogue',
      attrs: { strides: [1, 2], padding: 'same', dilation_rate: [1, 1], epilogue: { op: 'relu6' } },
      operands: [tensor(['N', 5, 6, 5]), tensor([3, 3, 5, 1]), tensor([5])],
    },
  ],
  infer: ([x, kernel, bias], a) => {
    expectRank(x!, 4, 'depthwise_conv2d');
    expectRank(kernel!, 4, 'depthwise_conv2d kernel');
    const [kh, kw, cin, multiplier] = kernel!.shape as number[];
    if (cin !== dim(x!, 3)) {
      throw new ShapeError(`depthwise_conv2d kernel expects ${cin} input channels, got ${dim(x!, 3)}`);
    }
    checkBias(bias, cin! * multiplier!);
    checkStridesWithDilation(a.strides, a.dilation_rate);
    const [h, w] = spatialOutput(x!, [kh!, kw!], (n, k, i) =>
      convOutputLength(n, k, a.strides[i]!, a.padding as Padding, a.dilation_rate[i]),
    );
    return tensor(['N', h, w, cin! * multiplier!]);
  },
  reference: ([x, kernel, bias], a) => applyEpilogue(depthwiseConv2dReference(x!, kernel!, bias, a), a.epilogue),
  emit: ({ operands: [x, k, b], result, attrs: a }) =>
    depthwiseKernel(x!, k!, b !== undefined, result, forwardGeometry(x!, k!, a), a.epilogue),
  simd: depthwiseSimd,
  // Conv with group = C: kernel [kh, kw, C, M] -> [C, M, kh, kw] = [C*M, 1, kh, kw] (output channel c*M + m, in group c).
  onnx: (b, n) =>
    convToOnnx(b, n, {
      opType: 'Conv',
      layoutTag: 'oihw',
      perm: [2, 3, 0, 1],
      dims: ([kh, kw, c, m]) => [c! * m!, 1, kh!, kw!],
      group: dim(b.typeOf(n.operands[0]!), 3),
      pads: forwardPads(onnxWindow(b, n, 'forward')),
    }),
  // The grouped conv with one group per input channel: the same rule as conv2d's.
  grad: (g, { operands: [x, k, b], attrs: a, result }, dy) => {
    noEpilogue('depthwise_conv2d', result, a.epilogue);
    return [
      () => g.op('depthwise_conv2d_grad_input', [dy, k!], { ...windowOf(a), input_shape: exampleShape(g.typeOf(x!)) }),
      () => g.op('depthwise_conv2d_grad_kernel', [x!, dy], { ...windowOf(a), kernel_size: g.typeOf(k!).shape.slice(0, 2) }),
      b === undefined ? undefined : () => g.op('channel_sum', [dy], { axis: 3 }),
    ];
  },
});

const windowAttrs = {
  kernel_size: intPair(),
  strides: intPair(1),
  padding: Padding,
  dilation_rate: intPair(1),
};

export const conv2dLayer = defineLayer({
  type: 'conv2d',
  keras: 'Conv2D',
  kerasImport: {
    classes: ['Conv2D', 'Convolution2D'],
    fromConfig: (c) => {
      c.set('filters', c.int('filters'));
      c.set('kernel_size', c.intPair('kernel_size'));
      kerasWindow(c);
      c.set('groups', c.optional('groups', (k) => c.int(k)));
      kerasWeighted(c, 'kernel_initializer');
    },
  },
  examples: [
    { attrs: { filters: 4, kernel_size: [3, 2], strides: 2, padding: 'same', activation: 'relu' }, inputs: [[7, 6, 2]] },
    { attrs: { filters: 4, kernel_size: 3, dilation_rate: 2, groups: 2, use_bias: false }, inputs: [[9, 9, 4]] },
  ],
  namePrefix: 'conv2d',
  summary: '2-D convolution',
  attrs: { filters: Type.Integer({ minimum: 1 }), ...windowAttrs, groups: Type.Integer({ minimum: 1, default: 1 }), ...weightedLayerAttrs },
  positional: ['filters', 'kernel_size'],
  arity: [1, 1],
  lower: (ctx, [x], a) => {
    const t = ctx.typeOf(x!);
    expectRank(t, 4, 'conv2d');
    const channels = dim(t, 3);
    if (channels % a.groups !== 0) throw new ShapeError(`groups=${a.groups} must divide the input channels (${channels})`);
    const [kh, kw] = pair(a.kernel_size);
    const params = kernelAndBias(ctx, [kh, kw, channels / a.groups, a.filters], a.filters, a);
    const attrs = { strides: pair(a.strides), padding: a.padding, dilation_rate: pair(a.dilation_rate), groups: a.groups };
    return withActivation(ctx, 'conv2d', [x!, ...params], attrs, a.activation as ActivationName | undefined);
  },
});

export const conv2dTransposeLayer = defineLayer({
  type: 'conv2d_transpose',
  keras: 'Conv2DTranspose',
  kerasImport: {
    classes: ['Conv2DTranspose', 'Convolution2DTranspose'],
    fromConfig: (c) => {
      c.set('filters', c.int('filters'));
      c.set('kernel_size', c.intPair('kernel_size'));
      kerasWindow(c);
      c.set('output_padding', c.optional('output_padding', (k) => c.intPair(k, 0)));
      c.set('groups', c.optional('groups', (k) => c.int(k)));
      kerasWeighted(c, 'kernel_initializer');
    },
  },
  examples: [{ attrs: { filters: 3, kernel_size: 3, strides: 2, padding: 'same', output_padding: 1, activation: 'sigmoid' }, inputs: [[4, 5, 2]] }],
  namePrefix: 'conv2d_transpose',
  summary: 'transposed 2-D convolution',
  attrs: {
    filters: Type.Integer({ minimum: 1 }),
    ...windowAttrs,
    output_padding: Type.Optional(intPair(undefined, 0)),
    groups: Type.Integer({ minimum: 1, default: 1 }),
    ...weightedLayerAttrs,
  },
  positional: ['filters', 'kernel_size'],
  arity: [1, 1],
  lower: (ctx, [x], a) => {
    const t = ctx.typeOf(x!);
    expectRank(t, 4, 'conv2d_transpose');
    if (a.filters % a.groups !== 0) throw new ShapeError(`groups=${a.groups} must divide filters (${a.filters})`);
    const [kh, kw] = pair(a.kernel_size);
    const params = kernelAndBias(ctx, [kh, kw, a.filters / a.groups, dim(t, 3)], a.filters, a);
    const attrs = {
      strides: pair(a.strides),
      padding: a.padding,
      dilation_rate: pair(a.dilation_rate),
      groups: a.groups,
      output_padding: a.output_padding === undefined ? null : pair(a.output_padding),
    };
    return withActivation(ctx, 'conv2d_transpose', [x!, ...params], attrs, a.activation as ActivationName | undefined);
  },
});

export const depthwiseConv2dLayer = defineLayer({
  type: 'depthwise_conv2d',
  keras: 'DepthwiseConv2D',
  kerasImport: {
    classes: ['DepthwiseConv2D'],
    fromConfig: (c) => {
      c.set('kernel_size', c.intPair('kernel_size'));
      kerasWindow(c);
      c.set('depth_multiplier', c.optional('depth_multiplier', (k) => c.int(k)));
      // Keras 2's DepthwiseConv2D config inherits Conv2D's `groups` (always 1)
      if ((c.optional('groups', (k) => c.int(k)) ?? 1) !== 1) c.fail('groups', 'groups is not supported for a depthwise convolution');
      kerasWeighted(c, 'depthwise_initializer');
    },
  },
  examples: [{ attrs: { kernel_size: 3, strides: 2, padding: 'same', depth_multiplier: 2, activation: 'relu6' }, inputs: [[6, 6, 3]] }],
  namePrefix: 'depthwise_conv2d',
  summary: 'depthwise 2-D convolution',
  attrs: {
    ...windowAttrs,
    depth_multiplier: Type.Integer({ minimum: 1, default: 1 }),
    activation: weightedLayerAttrs.activation,
    use_bias: weightedLayerAttrs.use_bias,
    depthwise_initializer: initializer('glorot_uniform'),
    bias_initializer: initializer('zeros'),
  },
  positional: ['kernel_size'],
  arity: [1, 1],
  lower: (ctx, [x], a) => {
    const t = ctx.typeOf(x!);
    expectRank(t, 4, 'depthwise_conv2d');
    const [kh, kw] = pair(a.kernel_size);
    const channels = dim(t, 3);
    const params = kernelAndBias(
      ctx,
      [kh, kw, channels, a.depth_multiplier],
      channels * a.depth_multiplier,
      { ...a, kernel_initializer: a.depthwise_initializer },
      'depthwise_kernel',
    );
    const attrs = { strides: pair(a.strides), padding: a.padding, dilation_rate: pair(a.dilation_rate) };
    return withActivation(ctx, 'depthwise_conv2d', [x!, ...params], attrs, a.activation as ActivationName | undefined);
  },
});

/** The 2-D convolutions (their gradient ops are the conv-grad family). */
export const convFamily = defineFamily({
  ops: [conv2dOp, conv2dTransposeOp, depthwiseConv2dOp],
  layers: [conv2dLayer, conv2dTransposeLayer, depthwiseConv2dLayer],
});
