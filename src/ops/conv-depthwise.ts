/**
 * Depthwise 2-D convolution over NHWC tensors (depthwise_conv2d), with its
 * Keras layer: each input channel convolved with its own depth_multiplier
 * filters. One op of the conv family (`conv.ts` lists it); the window math is
 * `conv/window.ts`.
 *
 *   %dw: f32[N,3,3,6] = depthwise_conv2d(%x, %dw/depthwise_kernel, %dw/bias)
 *       {strides=[2,2], padding="same", dilation_rate=[1,1]}
 *
 * Keras kernel layout [kh, kw, in, depth_multiplier]; output sizes as
 * conv2d's. Reference kernel (float64, inference), with p = padding before
 * the first cell and cells outside the input read as zero:
 *   y[n,i,j,c*M+m] = b[c*M+m] + sum_{u,v} x[n, i*s+u*d-p, j*s+v*d-p, c] k[u,v,c,m]
 * It is the grouped conv with one group per input channel; its gradient ops
 * (`conv-grad.ts`) are conv2d's seen that way.
 */
import { Type } from '@sinclair/typebox';
import type { Tensor } from '../ir/tensor.js';
import { exampleShape, tensor } from '../ir/types.js';
import { applyEpilogue, epilogueAttr, withActivation, type ActivationName } from './activation.js';
import { depthwiseKernel } from './conv/direct.js';
import type { Dims4 } from './conv/geometry.js';
import { depthwiseSimd } from './conv/simd.js';
import {
  checkBias,
  checkStridesWithDilation,
  convOutputLength,
  forwardGeometry,
  onnxWindow,
  Pair,
  pair,
  Padding,
  spatialOutput,
  windowAttrs,
  windowFoldBefore,
  windowOf,
  windows,
  type ConvAttrs,
} from './conv/window.js';
import { initializer } from './init.js';
import { kerasWeighted, kerasWindow } from './keras-def.js';
import { kerasWeightedConfig, kerasWindowConfig } from './keras-export-def.js';
import { convToOnnx, forwardPads } from './onnx-util.js';
import { kernelAndBias, noEpilogue, weightedLayerAttrs } from './linear.js';
import { defineLayer, defineOp, dim, expectRank, ShapeError, type KernelLayout } from './op-def.js';

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
  kerasExport: (a) => ({
    className: 'DepthwiseConv2D',
    config: { ...kerasWindowConfig(a), depth_multiplier: a.depth_multiplier, ...kerasWeightedConfig(a, 'depthwise_initializer') },
  }),
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
