/**
 * Keras's SeparableConv2D as a layer over existing ops: a depthwise
 * convolution (depth_multiplier filters per input channel, no bias) and then
 * a pointwise 1x1 conv2d with the bias and the activation (Keras 3
 * `ops.separable_conv`: strides, padding and dilation apply to the depthwise
 * step; the pointwise step is 1x1, stride 1, valid).
 *
 *   %sep/depthwise: f32[N,4,3,6] = depthwise_conv2d(%x, %sep/depthwise_kernel)
 *       {strides=[2,2], padding="same", dilation_rate=[1,1]}
 *   %sep: f32[N,4,3,4] = conv2d(%sep/depthwise, %sep/pointwise_kernel, %sep/bias)
 *       {strides=[1,1], padding="valid", dilation_rate=[1,1], groups=1}
 *
 * No op of its own: the two ops already have every fact (kernels, SIMD,
 * gradients, ONNX), and a batchnorm after the layer meets a plain conv2d,
 * which fold-bn folds into (the pointwise kernel and bias). Parameters are
 * named and shaped as Keras saves them: `depthwise_kernel` [kh, kw, C, M],
 * `pointwise_kernel` [1, 1, C*M, filters], `bias` [filters].
 */
import { Type } from '@sinclair/typebox';
import { withActivation, type ActivationName } from './activation.js';
import { pair, windowAttrs } from './conv/window.js';
import { initializer, initSpec } from './init.js';
import { kerasWeighted, kerasWindow } from './keras-def.js';
import { kerasInitializer, kerasWeightedConfig, kerasWindowConfig } from './keras-export-def.js';
import { weightedLayerAttrs } from './linear.js';
import { defineFamily, defineLayer, dim, expectRank } from './op-def.js';

export const separableConv2dLayer = defineLayer({
  type: 'separable_conv2d',
  keras: 'SeparableConv2D',
  kerasImport: {
    classes: ['SeparableConv2D', 'SeparableConvolution2D'],
    fromConfig: (c) => {
      c.set('filters', c.int('filters'));
      c.set('kernel_size', c.intPair('kernel_size'));
      kerasWindow(c);
      c.set('depth_multiplier', c.optional('depth_multiplier', (k) => c.int(k)));
      kerasWeighted(c, 'depthwise_initializer');
      c.set('pointwise_initializer', c.initializer('pointwise_initializer'));
    },
  },
  kerasExport: (a) => ({
    className: 'SeparableConv2D',
    config: {
      filters: a.filters, ...kerasWindowConfig(a), depth_multiplier: a.depth_multiplier,
      ...kerasWeightedConfig(a, 'depthwise_initializer'), pointwise_initializer: kerasInitializer(a.pointwise_initializer),
    },
  }),
  examples: [
    { attrs: { filters: 4, kernel_size: 3, strides: 2, padding: 'same', depth_multiplier: 2, activation: 'relu' }, inputs: [[7, 6, 3]] },
    { attrs: { filters: 2, kernel_size: [2, 3], dilation_rate: 2, use_bias: false }, inputs: [[6, 7, 2]] },
  ],
  namePrefix: 'separable_conv2d',
  summary: 'depthwise separable 2-D convolution (depthwise, then pointwise 1x1)',
  attrs: {
    filters: Type.Integer({ minimum: 1 }),
    ...windowAttrs,
    depth_multiplier: Type.Integer({ minimum: 1, default: 1 }),
    activation: weightedLayerAttrs.activation,
    use_bias: weightedLayerAttrs.use_bias,
    depthwise_initializer: initializer('glorot_uniform'),
    pointwise_initializer: initializer('glorot_uniform'),
    bias_initializer: initializer('zeros'),
  },
  positional: ['filters', 'kernel_size'],
  arity: [1, 1],
  lower: (ctx, [x], a) => {
    const t = ctx.typeOf(x!);
    expectRank(t, 4, 'separable_conv2d');
    const [kh, kw] = pair(a.kernel_size);
    const mid = dim(t, 3) * a.depth_multiplier;
    // Keras's variable order: depthwise_kernel, pointwise_kernel, bias.
    const depthwise = ctx.param('depthwise_kernel', [kh, kw, dim(t, 3), a.depth_multiplier], initSpec(a.depthwise_initializer));
    const pointwise = ctx.param('pointwise_kernel', [1, 1, mid, a.filters], initSpec(a.pointwise_initializer));
    const bias = a.use_bias ? [ctx.param('bias', [a.filters], initSpec(a.bias_initializer))] : [];
    const window = { strides: pair(a.strides), padding: a.padding, dilation_rate: pair(a.dilation_rate) };
    const h = ctx.op('depthwise_conv2d', [x!, depthwise], window, 'depthwise');
    const pointwiseAttrs = { strides: [1, 1], padding: 'valid', dilation_rate: [1, 1], groups: 1 };
    return withActivation(ctx, 'conv2d', [h, pointwise, ...bias], pointwiseAttrs, a.activation as ActivationName | undefined);
  },
});

/** Layers only: separable convolution lowers to the conv family's ops. */
export const separableConvFamily = defineFamily({ ops: [], layers: [separableConv2dLayer] });
