/**
 * 2-D convolution over NHWC tensors, grouped and dilated (conv2d), with its
 * Keras layer, and the conv family: this op plus conv2d_transpose
 * (`conv-transpose.ts`) and depthwise_conv2d (`conv-depthwise.ts`). The
 * window math all three share is `conv/window.ts`; the kernel templates and
 * the cost rule that picks one are `conv/` (`path.ts`); the gradient ops the
 * rule below emits are `conv-grad.ts`.
 *
 *   %conv2d: f32[N,26,26,32] = conv2d(%x, %conv2d/kernel, %conv2d/bias)
 *       {strides=[1,1], padding="valid", dilation_rate=[1,1], groups=1}
 *
 * Keras kernel layout [kh, kw, in/groups, filters]; output sizes follow Keras
 * `conv_output_length`, and `same` padding puts the odd cell of padding at
 * the end (TF). Reference kernel (float64, inference), with p = padding
 * before the first cell and cells outside the input read as zero:
 *   y[n,i,j,f] = b[f] + sum_{u,v,c} x[n, i*s+u*d-p, j*s+v*d-p, g*C/G + c] k[u,v,c,f],  g = f div (F/G)
 */
import { Type } from '@sinclair/typebox';
import type { Tensor } from '../ir/tensor.js';
import { exampleShape, tensor } from '../ir/types.js';
import { applyEpilogue, epilogueAttr, withActivation, type ActivationName } from './activation.js';
import { depthwiseConv2dLayer, depthwiseConv2dOp } from './conv-depthwise.js';
import { conv2dTransposeLayer, conv2dTransposeOp } from './conv-transpose.js';
import type { Dims4 } from './conv/geometry.js';
import { conv2dKernel } from './conv/path.js';
import { conv2dSimd } from './conv/simd.js';
import {
  checkBias,
  checkStridesWithDilation,
  convAttrs,
  convOutputLength,
  forwardGeometry,
  onnxWindow,
  pair,
  spatialOutput,
  windowAttrs,
  windowFoldBefore,
  windowOf,
  windows,
  type ConvAttrs,
  type Padding,
} from './conv/window.js';
import { kerasWeighted, kerasWindow } from './keras-def.js';
import { kerasWeightedConfig, kerasWindowConfig } from './keras-export-def.js';
import { convToOnnx, forwardPads } from './onnx-util.js';
import { kernelAndBias, noEpilogue, weightedLayerAttrs } from './linear.js';
import { defineFamily, defineLayer, defineOp, dim, expectRank, ShapeError, type KernelLayout } from './op-def.js';

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

export const conv2dOp = defineOp({
  name: 'conv2d',
  summary: 'grouped, dilated 2-D convolution (cross-correlation), NHWC',
  traits: ['pure', 'linear-in-weights'],
  linear: { layout: (shape, a) => conv2dLayout(shape, a.groups), foldBefore: windowFoldBefore },
  epilogue: { fuses: 'all' },
  attrs: { ...convAttrs, ...epilogueAttr },
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
  kerasExport: (a) => ({
    className: 'Conv2D',
    config: { filters: a.filters, ...kerasWindowConfig(a), groups: a.groups, ...kerasWeightedConfig(a, 'kernel_initializer') },
  }),
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

/** The 2-D convolutions (their gradient ops are the conv-grad family). */
export const convFamily = defineFamily({
  ops: [conv2dOp, conv2dTransposeOp, depthwiseConv2dOp],
  layers: [conv2dLayer, conv2dTransposeLayer, depthwiseConv2dLayer],
});
