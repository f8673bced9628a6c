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
 * (`conv_output_length`, `deconv_output_length`).
 */
import { Type } from '@sinclair/typebox';
import { tensor, type TensorType } from '../ir/types.js';
import { epilogueAttr, withActivation, type ActivationName } from './activation.js';
import { initializer } from './init.js';
import { kernelAndBias, weightedLayerAttrs } from './linear.js';
import { defineLayer, defineOp, dim, expectRank, formatShape, ShapeError } from './op-def.js';

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

const Pair = Type.Array(Type.Integer({ minimum: 1 }), { minItems: 2, maxItems: 2 });

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
  attrs: convAttrs,
  operands: () => ['x', 'kernel', 'bias?'],
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
});

export const conv2dTransposeOp = defineOp({
  name: 'conv2d_transpose',
  summary: 'transposed 2-D convolution (the gradient of conv2d with respect to its input), NHWC',
  traits: ['pure', 'linear-in-weights'],
  attrs: {
    ...convAttrs,
    output_padding: Type.Union([Type.Null(), Type.Array(Type.Integer({ minimum: 0 }), { minItems: 2, maxItems: 2 })]),
  },
  operands: () => ['x', 'kernel', 'bias?'],
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
});

export const depthwiseConv2dOp = defineOp({
  name: 'depthwise_conv2d',
  summary: 'per-channel 2-D convolution with depth_multiplier outputs per channel, NHWC',
  traits: ['pure', 'linear-in-weights'],
  attrs: { strides: Pair, padding: Padding, dilation_rate: Pair, ...epilogueAttr },
  operands: () => ['x', 'kernel', 'bias?'],
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
