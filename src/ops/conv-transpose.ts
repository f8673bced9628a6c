/**
 * Transposed 2-D convolution over NHWC tensors (conv2d_transpose), with its
 * Keras layer: the adjoint of conv2d, that is conv2d's gradient with respect
 * to its input (TF's conv2d_backprop_input). One op of the conv family
 * (`conv.ts` lists it); the window math is `conv/window.ts`.
 *
 *   %up: f32[N,8,8,3] = conv2d_transpose(%x, %up/kernel, %up/bias)
 *       {strides=[2,2], padding="same", dilation_rate=[1,1], groups=1, output_padding=null}
 *
 * Keras kernel layout [kh, kw, filters/groups, in] (the kernel of the
 * convolution it transposes); output sizes follow Keras
 * `deconv_output_length`. Reference kernel (float64, inference): each input
 * cell scatters x[n,i,j,c] k[u,v,f,c] to output cell
 * (i*s+u*d-p, j*s+v*d-p, g*F/G + f), g = c div (C/G), where p is the padding
 * before the first cell of the conv2d it reverses; cells outside the output
 * are dropped. Its gradient reuses conv2d and conv2d_grad_kernel
 * (`conv-grad.ts`).
 */
import { Type } from '@sinclair/typebox';
import type { Tensor } from '../ir/tensor.js';
import { tensor, type TensorType } from '../ir/types.js';
import { applyEpilogue, epilogueAttr, withActivation, type ActivationName } from './activation.js';
import { conv2dTransposeKernel } from './conv/direct.js';
import type { Dims4 } from './conv/geometry.js';
import {
  checkBias,
  checkStridesWithDilation,
  convAttrs,
  deconvOutputLength,
  intPair,
  onnxWindow,
  pair,
  spatialOutput,
  transposeGeometry,
  transposePadBefore,
  windowAttrs,
  windowAxis,
  windowOf,
  type ConvAttrs,
  type Padding,
} from './conv/window.js';
import { kerasWeighted, kerasWindow } from './keras-def.js';
import { kerasPair, kerasWeightedConfig, kerasWindowConfig, noKerasForm } from './keras-export-def.js';
import { convToOnnx, transposePads } from './onnx-util.js';
import { kernelAndBias, noEpilogue, weightedLayerAttrs } from './linear.js';
import { defineLayer, defineOp, dim, expectRank, formatShape, ShapeError, type KernelLayout } from './op-def.js';

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
    ...epilogueAttr,
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
  kerasExport: (a) => {
    if (a.groups !== 1) noKerasForm(`groups ${a.groups}: Keras 3's Conv2DTranspose has no groups`);
    const outputPadding = a.output_padding === undefined ? null : kerasPair(a.output_padding);
    return {
      className: 'Conv2DTranspose',
      config: { filters: a.filters, ...kerasWindowConfig(a), output_padding: outputPadding, ...kerasWeightedConfig(a, 'kernel_initializer') },
    };
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
