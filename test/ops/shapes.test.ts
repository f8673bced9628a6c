/**
 * Type rules of the ops and lowering of the layers, against Keras.
 *
 * Every expected size below is worked out by hand from the Keras formulas
 * (keras/src/utils/conv_utils.py, keras/src/ops/operation_utils.py), written
 * next to the case, never copied from modelc's output:
 *
 *   conv_output_length:   valid: floor((n - ((k-1)*d + 1)) / s) + 1     same: ceil(n / s)
 *   deconv_output_length (k' = (k-1)*d + 1):
 *     output_padding None:  valid: n*s + max(k' - s, 0)                  same: n*s
 *     output_padding p:     (n-1)*s + k' - 2*pad + p, pad = valid ? 0 : floor(k'/2)
 *   pooling uses conv_output_length with d = 1; strides default to pool_size.
 *
 * Parameter counts are Keras `model.summary()` counts.
 */
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { tensor, type Attrs, type Dim } from '../../src/ir/types.js';
import { ShapeError } from '../../src/ops/op-def.js';
import { getOp } from '../../src/ops/registry.js';
import { diagnosticOf, lowerJson, model, nodeNamed, outputType, paramShapes, shapeMessage } from '../helpers/graphs.js';

// ---------------------------------------------------------------------------
// Op type rules: getOp(name).infer(operand types, attributes)

const conv = (strides: number[], padding: string, dilation_rate = [1, 1], groups = 1) => ({ strides, padding, dilation_rate, groups });
const deconv = (strides: number[], padding: string, output_padding: number[] | null, dilation_rate = [1, 1], groups = 1) => ({
  strides,
  padding,
  dilation_rate,
  groups,
  output_padding,
});
const bn = (axis: number, center = true, scale = true) => ({
  axis,
  epsilon: 0.001,
  momentum: 0.99,
  center,
  scale,
  renorm: false,
  renorm_clipping: { rmax: null, rmin: 0, dmax: null },
  renorm_momentum: 0.99,
});
const pool = (pool_size: number[], strides: number[], padding: string) => ({ pool_size, strides, padding });

function opDef(name: string) {
  const def = getOp(name);
  if (!def) throw new Error(`no op ${name}`);
  return def;
}

function infer(op: string, operands: readonly Dim[][], attrs: Attrs): Dim[] {
  return [...opDef(op).infer(operands.map((s) => tensor(s)), attrs as never).shape];
}

/** Attributes of an op case must be valid IR attributes, or a case could pass by accident. */
function expectValidAttrs(op: string, attrs: Attrs): void {
  const schema = Type.Object(opDef(op).attrs, { additionalProperties: false });
  expect([...Value.Errors(schema, attrs)].map((e) => `${e.path}: ${e.message}`)).toEqual([]);
}

describe('op type rules', () => {
  it.each<[string, string, Dim[][], Attrs, Dim[]]>([
    // dense: y[..., units] = x[..., in] . kernel[in, units]
    ['dense rank 2', 'dense', [['N', 16], [16, 64], [64]], {}, ['N', 64]],
    ['dense rank 2 without bias', 'dense', [['N', 16], [16, 64]], {}, ['N', 64]],
    ['dense rank 3 applies to the last axis', 'dense', [['N', 5, 16], [16, 8], [8]], {}, ['N', 5, 8]],
    // conv2d, kernel [kh, kw, in/groups, filters]
    ['conv2d valid s1: 28-3+1 = 26', 'conv2d', [['N', 28, 28, 1], [3, 3, 1, 32], [32]], conv([1, 1], 'valid'), ['N', 26, 26, 32]],
    ['conv2d same s1: ceil(28/1) = 28', 'conv2d', [['N', 28, 28, 1], [3, 3, 1, 32]], conv([1, 1], 'same'), ['N', 28, 28, 32]],
    ['conv2d valid s2: floor(25/2)+1 = 13', 'conv2d', [['N', 28, 28, 1], [3, 3, 1, 8]], conv([2, 2], 'valid'), ['N', 13, 13, 8]],
    ['conv2d same s2: ceil(28/2) = 14', 'conv2d', [['N', 28, 28, 1], [3, 3, 1, 8]], conv([2, 2], 'same'), ['N', 14, 14, 8]],
    ['conv2d valid s3: floor(7/3)+1 = 3', 'conv2d', [['N', 10, 10, 2], [3, 3, 2, 4]], conv([3, 3], 'valid'), ['N', 3, 3, 4]],
    ['conv2d same s3: ceil(10/3) = 4', 'conv2d', [['N', 10, 10, 2], [3, 3, 2, 4]], conv([3, 3], 'same'), ['N', 4, 4, 4]],
    ['conv2d valid d2: k_eff 5, 11-5+1 = 7', 'conv2d', [['N', 11, 11, 1], [3, 3, 1, 4]], conv([1, 1], 'valid', [2, 2]), ['N', 7, 7, 4]],
    ['conv2d same d2: ceil(11/1) = 11', 'conv2d', [['N', 11, 11, 1], [3, 3, 1, 4]], conv([1, 1], 'same', [2, 2]), ['N', 11, 11, 4]],
    ['conv2d per-axis kernel/strides: h floor(6/2)+1 = 4, w floor(7/3)+1 = 3', 'conv2d', [['N', 9, 12, 2], [3, 5, 2, 8]], conv([2, 3], 'valid'), ['N', 4, 3, 8]],
    ['conv2d valid k4 s2 on 7: floor(3/2)+1 = 2', 'conv2d', [['N', 7, 7, 1], [4, 4, 1, 2]], conv([2, 2], 'valid'), ['N', 2, 2, 2]],
    ['conv2d same k4 s2 on 7: ceil(7/2) = 4', 'conv2d', [['N', 7, 7, 1], [4, 4, 1, 2]], conv([2, 2], 'same'), ['N', 4, 4, 2]],
    ['grouped conv2d: 8 channels, 4 groups, kernel [3,3,2,16]', 'conv2d', [['N', 8, 8, 8], [3, 3, 2, 16], [16]], conv([1, 1], 'valid', [1, 1], 4), ['N', 6, 6, 16]],
    // conv2d_transpose, kernel [kh, kw, filters/groups, in]
    ['conv2d_transpose valid s2 on 7: 7*2 + max(3-2,0) = 15', 'conv2d_transpose', [['N', 7, 7, 8], [3, 3, 4, 8], [4]], deconv([2, 2], 'valid', null), ['N', 15, 15, 4]],
    ['conv2d_transpose same s2 on 7: 7*2 = 14', 'conv2d_transpose', [['N', 7, 7, 8], [3, 3, 4, 8]], deconv([2, 2], 'same', null), ['N', 14, 14, 4]],
    ['conv2d_transpose same s2 op1: 6*2+3-2*1+1 = 14', 'conv2d_transpose', [['N', 7, 7, 8], [3, 3, 4, 8]], deconv([2, 2], 'same', [1, 1]), ['N', 14, 14, 4]],
    ['conv2d_transpose same s2 op0: 6*2+3-2*1+0 = 13', 'conv2d_transpose', [['N', 7, 7, 8], [3, 3, 4, 8]], deconv([2, 2], 'same', [0, 0]), ['N', 13, 13, 4]],
    ['conv2d_transpose valid s2 op1: 6*2+3-0+1 = 16', 'conv2d_transpose', [['N', 7, 7, 8], [3, 3, 4, 8]], deconv([2, 2], 'valid', [1, 1]), ['N', 16, 16, 4]],
    ['conv2d_transpose valid s1 d2 on 5: k_eff 5, 5*1 + max(5-1,0) = 9', 'conv2d_transpose', [['N', 5, 5, 2], [3, 3, 1, 2]], deconv([1, 1], 'valid', null, [2, 2]), ['N', 9, 9, 1]],
    ['conv2d_transpose per-axis strides: h 4*2+max(3-2,0) = 9, w 5*3+max(3-3,0) = 15', 'conv2d_transpose', [['N', 4, 5, 3], [3, 3, 6, 3]], deconv([2, 3], 'valid', null), ['N', 9, 15, 6]],
    ['grouped conv2d_transpose: filters = 2 groups x 3', 'conv2d_transpose', [['N', 4, 4, 4], [1, 1, 3, 4]], deconv([1, 1], 'valid', null, [1, 1], 2), ['N', 4, 4, 6]],
    // depthwise_conv2d, kernel [kh, kw, in, multiplier], out channels in*multiplier
    ['depthwise_conv2d valid, multiplier 2: 10-3+1 = 8, 8*2 channels', 'depthwise_conv2d', [['N', 10, 10, 8], [3, 3, 8, 2], [16]], { strides: [1, 1], padding: 'valid', dilation_rate: [1, 1] }, ['N', 8, 8, 16]],
    ['depthwise_conv2d same s2: ceil(10/2) = 5', 'depthwise_conv2d', [['N', 10, 10, 3], [3, 3, 3, 1]], { strides: [2, 2], padding: 'same', dilation_rate: [1, 1] }, ['N', 5, 5, 3]],
    ['depthwise_conv2d valid d2: 10-5+1 = 6', 'depthwise_conv2d', [['N', 10, 10, 3], [3, 3, 3, 1]], { strides: [1, 1], padding: 'valid', dilation_rate: [2, 2] }, ['N', 6, 6, 3]],
    // batchnorm keeps the type; statistics have the size of `axis`
    ['batchnorm axis 3 on NHWC', 'batchnorm', [['N', 5, 6, 7], [7], [7], [7], [7]], bn(3), ['N', 5, 6, 7]],
    ['batchnorm axis 1 on NHWC', 'batchnorm', [['N', 5, 6, 7], [5], [5], [5], [5]], bn(1), ['N', 5, 6, 7]],
    ['batchnorm without gamma and beta', 'batchnorm', [['N', 64], [64], [64]], bn(1, false, false), ['N', 64]],
    // pools
    ['max_pool2d 2/2 valid: floor(8/2)+1 = 5', 'max_pool2d', [['N', 10, 10, 3]], pool([2, 2], [2, 2], 'valid'), ['N', 5, 5, 3]],
    ['max_pool2d 3/3 valid: floor(7/3)+1 = 3', 'max_pool2d', [['N', 10, 10, 3]], pool([3, 3], [3, 3], 'valid'), ['N', 3, 3, 3]],
    ['avg_pool2d 3/3 same: ceil(10/3) = 4', 'avg_pool2d', [['N', 10, 10, 3]], pool([3, 3], [3, 3], 'same'), ['N', 4, 4, 3]],
    ['avg_pool2d 3/1 valid: 10-3+1 = 8', 'avg_pool2d', [['N', 10, 10, 3]], pool([3, 3], [1, 1], 'valid'), ['N', 8, 8, 3]],
    ['global_avg_pool2d', 'global_avg_pool2d', [['N', 7, 7, 5]], { keepdims: false }, ['N', 5]],
    ['global_max_pool2d keepdims', 'global_max_pool2d', [['N', 7, 7, 5]], { keepdims: true }, ['N', 1, 1, 5]],
    // shape and merge
    ['reshape keeps N', 'reshape', [['N', 4, 4, 3]], { shape: [48] }, ['N', 48]],
    ['reshape to rank 3', 'reshape', [['N', 24]], { shape: [2, 4, 3] }, ['N', 2, 4, 3]],
    ['add of two', 'add', [['N', 4], ['N', 4]], {}, ['N', 4]],
    ['add of three', 'add', [['N', 2, 3], ['N', 2, 3], ['N', 2, 3]], {}, ['N', 2, 3]],
    ['concatenate last axis', 'concatenate', [['N', 4, 4, 3], ['N', 4, 4, 5]], { axis: 3 }, ['N', 4, 4, 8]],
    ['concatenate axis 1', 'concatenate', [['N', 2, 4, 3], ['N', 5, 4, 3], ['N', 1, 4, 3]], { axis: 1 }, ['N', 8, 4, 3]],
    // elementwise
    ['relu keeps the type', 'relu', [['N', 3, 3, 2]], {}, ['N', 3, 3, 2]],
    ['leaky_relu keeps the type', 'leaky_relu', [['N', 3]], { alpha: 0.3 }, ['N', 3]],
    ['softmax keeps the type', 'softmax', [['N', 4, 5]], { axis: 2 }, ['N', 4, 5]],
    ['dropout keeps the type', 'dropout', [['N', 9]], { rate: 0.5, seed: null }, ['N', 9]],
  ])('%s', (_title, op, operands, attrs, expected) => {
    expectValidAttrs(op, attrs);
    expect(infer(op, operands, attrs)).toEqual(expected);
  });

  it.each<[string, string, Dim[][], Attrs, string]>([
    ['dense on a mismatched kernel', 'dense', [['N', 12], [16, 8]], {}, 'dense kernel expects 16 input features, got 12'],
    ['dense with a wrong bias', 'dense', [['N', 16], [16, 8], [4]], {}, 'dense bias must have shape [8], got [4]'],
    ['conv2d on rank 2', 'conv2d', [['N', 8], [3, 3, 1, 4]], conv([1, 1], 'valid'), 'conv2d expects a rank-4 input (batch, height, width, channels), got shape [N, 8]'],
    ['conv2d kernel for other channels', 'conv2d', [['N', 8, 8, 3], [3, 3, 4, 8]], conv([1, 1], 'valid'), 'conv2d kernel expects 4 input channels, got 3'],
    ['conv2d groups not dividing the channels', 'conv2d', [['N', 8, 8, 6], [3, 3, 1, 8]], conv([1, 1], 'valid', [1, 1], 4), 'groups=4 must divide both the input channels (6) and filters (8)'],
    ['conv2d groups not dividing the filters', 'conv2d', [['N', 8, 8, 8], [3, 3, 2, 6]], conv([1, 1], 'valid', [1, 1], 4), 'groups=4 must divide both the input channels (8) and filters (6)'],
    ['conv2d strides 2 with dilation 2', 'conv2d', [['N', 9, 9, 1], [3, 3, 1, 4]], conv([2, 2], 'valid', [2, 2]), 'strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)'],
    ['conv2d strides 2 with dilation 2 on the other axis', 'conv2d', [['N', 9, 9, 1], [3, 3, 1, 4]], conv([2, 1], 'valid', [1, 2]), 'strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)'],
    ['conv2d kernel larger than the input', 'conv2d', [['N', 2, 2, 1], [3, 3, 1, 4]], conv([1, 1], 'valid'), 'input [2, 2, 1] is too small for kernel [3, 3]: the output would be [0, 0]'],
    ['conv2d with a wrong bias', 'conv2d', [['N', 8, 8, 1], [3, 3, 1, 4], [8]], conv([1, 1], 'valid'), 'bias must have shape [4], got [8]'],
    ['conv2d_transpose kernel for other channels', 'conv2d_transpose', [['N', 7, 7, 8], [3, 3, 4, 6]], deconv([2, 2], 'valid', null), 'conv2d_transpose kernel expects 6 input channels, got 8'],
    ['conv2d_transpose output_padding = strides', 'conv2d_transpose', [['N', 7, 7, 8], [3, 3, 4, 8]], deconv([2, 2], 'same', [2, 2]), 'output_padding [2, 2] must be smaller than strides [2, 2]'],
    ['conv2d_transpose groups not dividing the channels', 'conv2d_transpose', [['N', 4, 4, 3], [1, 1, 2, 3]], deconv([1, 1], 'valid', null, [1, 1], 2), 'groups=2 must divide the input channels (3)'],
    ['depthwise_conv2d kernel for other channels', 'depthwise_conv2d', [['N', 8, 8, 3], [3, 3, 4, 1]], { strides: [1, 1], padding: 'valid', dilation_rate: [1, 1] }, 'depthwise_conv2d kernel expects 4 input channels, got 3'],
    ['depthwise_conv2d strides 2 with dilation 2', 'depthwise_conv2d', [['N', 9, 9, 3], [3, 3, 3, 1]], { strides: [2, 2], padding: 'valid', dilation_rate: [2, 2] }, 'strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)'],
    ['batchnorm statistics of the wrong axis', 'batchnorm', [['N', 5, 6, 7], [5], [5], [5], [5]], bn(3), 'batchnorm statistics must have shape [7], got [5]'],
    ['batchnorm axis past the rank', 'batchnorm', [['N', 4, 4, 3], [3], [3], [3], [3]], bn(4), 'batchnorm axis 4 is out of range for [N, 4, 4, 3]'],
    ['max_pool2d window larger than the input', 'max_pool2d', [['N', 3, 3, 1]], pool([4, 4], [4, 4], 'valid'), 'input [3, 3, 1] is smaller than pool_size [4, 4]'],
    ['global_avg_pool2d on rank 2', 'global_avg_pool2d', [['N', 5]], { keepdims: false }, 'global_avg_pool2d expects a rank-4 input (batch, height, width, channels), got shape [N, 5]'],
    ['reshape to another element count', 'reshape', [['N', 6, 4]], { shape: [5, 5] }, 'cannot reshape [6, 4] (24 elements) to [5, 5] (25 elements)'],
    ['add of different shapes', 'add', [['N', 4], ['N', 5]], {}, 'add cannot broadcast f32[N,4] and f32[N,5]: axis 1 has sizes 4 and 5 (each must match or be 1)'],
    ['add of different ranks', 'add', [['N', 4], ['N', 4], ['N', 4, 1]], {}, 'add cannot broadcast f32[N,4] and f32[N,4] and f32[N,4,1]: the ranks differ'],
    ['concatenate mismatch off the axis', 'concatenate', [['N', 4, 4, 3], ['N', 4, 5, 3]], { axis: 3 }, 'concatenate along axis 3 needs inputs that match on every other axis, got f32[N,4,4,3] and f32[N,4,5,3]'],
    ['concatenate of different ranks', 'concatenate', [['N', 4], ['N', 4, 1]], { axis: 1 }, 'concatenate along axis 1 needs inputs that match on every other axis, got f32[N,4] and f32[N,4,1]'],
    ['concatenate axis past the rank', 'concatenate', [['N', 4], ['N', 4]], { axis: 2 }, 'concatenate axis 2 is out of range for rank 2'],
    ['softmax over the batch axis', 'softmax', [['N', 4]], { axis: 0 }, 'axis 0 is out of range for a rank-2 tensor (axis 0 is the batch)'],
    ['softmax axis past the rank', 'softmax', [['N', 4]], { axis: 2 }, 'axis 2 is out of range for a rank-2 tensor (axis 0 is the batch)'],
  ])('rejects %s', (_title, op, operands, attrs, message) => {
    let error: unknown;
    try {
      infer(op, operands, attrs);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ShapeError);
    expect((error as ShapeError).message).toBe(message);
  });
});

// ---------------------------------------------------------------------------
// Layer lowering: JSON spec -> IR, through the real front end

interface LayerCase {
  input: number[];
  layer: Record<string, unknown>;
  /** Per-example output shape. */
  out: number[];
  /** Every declared parameter, in declaration order. */
  params: Record<string, number[]>;
}

const layerCases: [string, LayerCase][] = [
  ['dense on rank 2', { input: [16], layer: { type: 'dense', units: 64 }, out: [64], params: { 'dense/kernel': [16, 64], 'dense/bias': [64] } }],
  ['dense on rank 3 (last axis)', { input: [5, 16], layer: { type: 'dense', units: 8 }, out: [5, 8], params: { 'dense/kernel': [16, 8], 'dense/bias': [8] } }],
  ['dense without bias', { input: [16], layer: { type: 'dense', units: 4, use_bias: false }, out: [4], params: { 'dense/kernel': [16, 4] } }],
  ['conv2d valid (defaults)', { input: [28, 28, 1], layer: { type: 'conv2d', filters: 32, kernel_size: 3 }, out: [26, 26, 32], params: { 'conv2d/kernel': [3, 3, 1, 32], 'conv2d/bias': [32] } }],
  ['conv2d same', { input: [28, 28, 1], layer: { type: 'conv2d', filters: 32, kernel_size: 3, padding: 'same' }, out: [28, 28, 32], params: { 'conv2d/kernel': [3, 3, 1, 32], 'conv2d/bias': [32] } }],
  ['conv2d valid strides 2: floor(25/2)+1 = 13', { input: [28, 28, 3], layer: { type: 'conv2d', filters: 8, kernel_size: 3, strides: 2 }, out: [13, 13, 8], params: { 'conv2d/kernel': [3, 3, 3, 8], 'conv2d/bias': [8] } }],
  ['conv2d same strides 2: ceil(28/2) = 14', { input: [28, 28, 3], layer: { type: 'conv2d', filters: 8, kernel_size: 3, strides: 2, padding: 'same' }, out: [14, 14, 8], params: { 'conv2d/kernel': [3, 3, 3, 8], 'conv2d/bias': [8] } }],
  ['conv2d valid strides 3: floor(7/3)+1 = 3', { input: [10, 10, 1], layer: { type: 'conv2d', filters: 2, kernel_size: 3, strides: 3 }, out: [3, 3, 2], params: { 'conv2d/kernel': [3, 3, 1, 2], 'conv2d/bias': [2] } }],
  ['conv2d same strides 3: ceil(10/3) = 4', { input: [10, 10, 1], layer: { type: 'conv2d', filters: 2, kernel_size: 3, strides: 3, padding: 'same' }, out: [4, 4, 2], params: { 'conv2d/kernel': [3, 3, 1, 2], 'conv2d/bias': [2] } }],
  ['conv2d valid dilation 2: 11-5+1 = 7', { input: [11, 11, 1], layer: { type: 'conv2d', filters: 2, kernel_size: 3, dilation_rate: 2 }, out: [7, 7, 2], params: { 'conv2d/kernel': [3, 3, 1, 2], 'conv2d/bias': [2] } }],
  ['conv2d same dilation 2', { input: [11, 11, 1], layer: { type: 'conv2d', filters: 2, kernel_size: 3, dilation_rate: 2, padding: 'same' }, out: [11, 11, 2], params: { 'conv2d/kernel': [3, 3, 1, 2], 'conv2d/bias': [2] } }],
  ['conv2d [h,w] pairs: h floor(6/2)+1 = 4, w floor(7/3)+1 = 3', { input: [9, 12, 2], layer: { type: 'conv2d', filters: 8, kernel_size: [3, 5], strides: [2, 3] }, out: [4, 3, 8], params: { 'conv2d/kernel': [3, 5, 2, 8], 'conv2d/bias': [8] } }],
  ['grouped conv2d: kernel [3,3,8/4,16]', { input: [8, 8, 8], layer: { type: 'conv2d', filters: 16, kernel_size: 3, groups: 4 }, out: [6, 6, 16], params: { 'conv2d/kernel': [3, 3, 2, 16], 'conv2d/bias': [16] } }],
  ['conv2d_transpose valid s2 on 7: 15', { input: [7, 7, 8], layer: { type: 'conv2d_transpose', filters: 4, kernel_size: 3, strides: 2 }, out: [15, 15, 4], params: { 'conv2d_transpose/kernel': [3, 3, 4, 8], 'conv2d_transpose/bias': [4] } }],
  ['conv2d_transpose same s2 on 7: 14', { input: [7, 7, 8], layer: { type: 'conv2d_transpose', filters: 4, kernel_size: 3, strides: 2, padding: 'same' }, out: [14, 14, 4], params: { 'conv2d_transpose/kernel': [3, 3, 4, 8], 'conv2d_transpose/bias': [4] } }],
  ['conv2d_transpose same s2 output_padding 1: 14', { input: [7, 7, 8], layer: { type: 'conv2d_transpose', filters: 4, kernel_size: 3, strides: 2, padding: 'same', output_padding: 1 }, out: [14, 14, 4], params: { 'conv2d_transpose/kernel': [3, 3, 4, 8], 'conv2d_transpose/bias': [4] } }],
  ['conv2d_transpose valid s2 output_padding 1: 16', { input: [7, 7, 8], layer: { type: 'conv2d_transpose', filters: 4, kernel_size: 3, strides: 2, output_padding: 1 }, out: [16, 16, 4], params: { 'conv2d_transpose/kernel': [3, 3, 4, 8], 'conv2d_transpose/bias': [4] } }],
  ['conv2d_transpose same s2 output_padding 0: 13', { input: [7, 7, 8], layer: { type: 'conv2d_transpose', filters: 4, kernel_size: 3, strides: 2, padding: 'same', output_padding: 0 }, out: [13, 13, 4], params: { 'conv2d_transpose/kernel': [3, 3, 4, 8], 'conv2d_transpose/bias': [4] } }],
  ['grouped conv2d_transpose: kernel [1,1,6/2,4]', { input: [5, 5, 4], layer: { type: 'conv2d_transpose', filters: 6, kernel_size: 1, groups: 2 }, out: [5, 5, 6], params: { 'conv2d_transpose/kernel': [1, 1, 3, 4], 'conv2d_transpose/bias': [6] } }],
  ['depthwise_conv2d multiplier 2', { input: [10, 10, 8], layer: { type: 'depthwise_conv2d', kernel_size: 3, depth_multiplier: 2 }, out: [8, 8, 16], params: { 'depthwise_conv2d/depthwise_kernel': [3, 3, 8, 2], 'depthwise_conv2d/bias': [16] } }],
  ['batchnorm axis -1 on NHWC', { input: [5, 6, 7], layer: { type: 'batchnorm' }, out: [5, 6, 7], params: { 'batch_normalization/gamma': [7], 'batch_normalization/beta': [7], 'batch_normalization/moving_mean': [7], 'batch_normalization/moving_variance': [7] } }],
  ['batchnorm axis 1 on NHWC', { input: [5, 6, 7], layer: { type: 'batchnorm', axis: 1 }, out: [5, 6, 7], params: { 'batch_normalization/gamma': [5], 'batch_normalization/beta': [5], 'batch_normalization/moving_mean': [5], 'batch_normalization/moving_variance': [5] } }],
  ['batchnorm axis -2 on NHWC', { input: [5, 6, 7], layer: { type: 'batch_normalization', axis: -2 }, out: [5, 6, 7], params: { 'batch_normalization/gamma': [6], 'batch_normalization/beta': [6], 'batch_normalization/moving_mean': [6], 'batch_normalization/moving_variance': [6] } }],
  ['batchnorm center false: no beta', { input: [64], layer: { type: 'batchnorm', center: false }, out: [64], params: { 'batch_normalization/gamma': [64], 'batch_normalization/moving_mean': [64], 'batch_normalization/moving_variance': [64] } }],
  ['batchnorm scale false: no gamma', { input: [64], layer: { type: 'batchnorm', scale: false }, out: [64], params: { 'batch_normalization/beta': [64], 'batch_normalization/moving_mean': [64], 'batch_normalization/moving_variance': [64] } }],
  ['max_pool2d defaults: pool 2, strides 2', { input: [10, 10, 3], layer: { type: 'max_pool2d' }, out: [5, 5, 3], params: {} }],
  ['max_pool2d pool 3, strides default 3, valid: 3', { input: [10, 10, 3], layer: { type: 'max_pool2d', pool_size: 3 }, out: [3, 3, 3], params: {} }],
  ['max_pool2d pool 3, strides default 3, same: 4', { input: [10, 10, 3], layer: { type: 'max_pool2d', pool_size: 3, padding: 'same' }, out: [4, 4, 3], params: {} }],
  ['avg_pool2d pool 3 strides 1 valid: 8', { input: [10, 10, 3], layer: { type: 'avg_pool2d', pool_size: 3, strides: 1 }, out: [8, 8, 3], params: {} }],
  ['avg_pool2d pool [2,3]: h 5, w floor(7/3)+1 = 3', { input: [10, 10, 3], layer: { type: 'avg_pool2d', pool_size: [2, 3] }, out: [5, 3, 3], params: {} }],
  ['global_avg_pool2d', { input: [7, 7, 5], layer: { type: 'global_avg_pool2d' }, out: [5], params: {} }],
  ['global_max_pool2d keepdims', { input: [7, 7, 5], layer: { type: 'global_max_pool2d', keepdims: true }, out: [1, 1, 5], params: {} }],
  ['flatten', { input: [4, 4, 3], layer: { type: 'flatten' }, out: [48], params: {} }],
  ['reshape with -1: 24 / 8 = 3', { input: [6, 4], layer: { type: 'reshape', target_shape: [-1, 8] }, out: [3, 8], params: {} }],
  ['reshape with -1 in the middle: 24 / 6 = 4', { input: [24], layer: { type: 'reshape', target_shape: [2, -1, 3] }, out: [2, 4, 3], params: {} }],
  ['reshape without -1', { input: [6, 4], layer: { type: 'reshape', target_shape: [4, 6] }, out: [4, 6], params: {} }],
  ['softmax', { input: [4, 5], layer: { type: 'softmax' }, out: [4, 5], params: {} }],
  ['dropout', { input: [9], layer: { type: 'dropout', rate: 0.25 }, out: [9], params: {} }],
];

describe('layer lowering', () => {
  it.each(layerCases)('%s', (_title, c) => {
    const { graph, layers } = lowerJson(model(c.input, [c.layer]));
    expect(outputType(graph).shape).toEqual(['N', ...c.out]);
    expect(layers[0]!.output.shape).toEqual(['N', ...c.out]);
    expect(paramShapes(graph)).toEqual(c.params);
    // Parameter keys are checked in order too: toEqual ignores key order.
    expect(Object.keys(paramShapes(graph))).toEqual(Object.keys(c.params));
  });

  it.each<[string, number[], Record<string, unknown>, string, Attrs]>([
    ['conv2d ints become [h,w] pairs', [8, 8, 1], { type: 'conv2d', filters: 2, kernel_size: 3, strides: 2, padding: 'same' }, 'conv2d', { strides: [2, 2], padding: 'same', dilation_rate: [1, 1], groups: 1 }],
    ['conv2d_transpose without output_padding stores null', [7, 7, 8], { type: 'conv2d_transpose', filters: 4, kernel_size: 3, strides: 2 }, 'conv2d_transpose', { strides: [2, 2], padding: 'valid', dilation_rate: [1, 1], groups: 1, output_padding: null }],
    ['conv2d_transpose output_padding becomes a pair', [7, 7, 8], { type: 'conv2d_transpose', filters: 4, kernel_size: 3, strides: 2, output_padding: 1 }, 'conv2d_transpose', { strides: [2, 2], padding: 'valid', dilation_rate: [1, 1], groups: 1, output_padding: [1, 1] }],
    ['depthwise_conv2d', [8, 8, 3], { type: 'depthwise_conv2d', kernel_size: 3, dilation_rate: 2 }, 'depthwise_conv2d', { strides: [1, 1], padding: 'valid', dilation_rate: [2, 2] }],
    ['pool strides default to pool_size', [9, 9, 1], { type: 'max_pool2d', pool_size: 3 }, 'max_pool2d', { pool_size: [3, 3], strides: [3, 3], padding: 'valid' }],
    ['pool explicit strides', [9, 9, 1], { type: 'avg_pool2d', pool_size: [3, 2], strides: [1, 2] }, 'avg_pool2d', { pool_size: [3, 2], strides: [1, 2], padding: 'valid' }],
    ['global pool keepdims defaults to false', [4, 4, 2], { type: 'global_avg_pool2d' }, 'global_avg_pool2d', { keepdims: false }],
    ['flatten is a reshape to the element count', [4, 4, 3], { type: 'flatten' }, 'reshape', { shape: [48] }],
    ['reshape stores the resolved shape', [6, 4], { type: 'reshape', target_shape: [-1, 8] }, 'reshape', { shape: [3, 8] }],
    ['softmax axis -1 on rank 2 is 1', [10], { type: 'softmax' }, 'softmax', { axis: 1 }],
    ['softmax axis -1 on rank 3 is 2', [4, 5], { type: 'softmax', axis: -1 }, 'softmax', { axis: 2 }],
    ['softmax axis -2 on rank 3 is 1', [4, 5], { type: 'softmax', axis: -2 }, 'softmax', { axis: 1 }],
    ['softmax positive axis is kept', [4, 5], { type: 'softmax', axis: 1 }, 'softmax', { axis: 1 }],
    ['activation layer softmax', [4, 5], { type: 'activation', activation: 'softmax' }, 'softmax', { axis: 2 }],
    ['leaky_relu alpha defaults to Keras LeakyReLU 0.3', [4], { type: 'leaky_relu' }, 'leaky_relu', { alpha: 0.3 }],
    ['dropout seed defaults to null', [4], { type: 'dropout', rate: 0.5 }, 'dropout', { rate: 0.5, seed: null }],
  ])('IR attributes: %s', (_title, input, layer, op, attrs) => {
    const { graph } = lowerJson(model(input, [layer]));
    expect(graph.nodes.map((n) => n.op)).toEqual([op]);
    expect(graph.nodes[0]!.attrs).toEqual(attrs);
  });

  it('batchnorm stores a positive axis and Keras defaults, operands in Keras weight order', () => {
    const { graph } = lowerJson(model([5, 6, 7], [{ type: 'batchnorm', name: 'bn' }, { type: 'batchnorm', name: 'bn1', axis: 1, center: false }]));
    const bn0 = nodeNamed(graph, 'bn');
    expect(bn0.attrs).toEqual({
      axis: 3,
      epsilon: 0.001,
      momentum: 0.99,
      center: true,
      scale: true,
      renorm: false,
      renorm_clipping: { rmax: null, rmin: 0, dmax: null },
      renorm_momentum: 0.99,
    });
    expect(bn0.operands).toEqual(['x', 'bn/gamma', 'bn/beta', 'bn/moving_mean', 'bn/moving_variance']);
    const bn1 = nodeNamed(graph, 'bn1');
    expect(bn1.attrs['axis']).toBe(1);
    expect(bn1.operands).toEqual(['bn', 'bn1/gamma', 'bn1/moving_mean', 'bn1/moving_variance']);
    expect(graph.params.filter((p) => !p.trainable).map((p) => p.name)).toEqual([
      'bn/moving_mean',
      'bn/moving_variance',
      'bn1/moving_mean',
      'bn1/moving_variance',
    ]);
  });

  it('an activation attribute lowers to the linear op then the activation', () => {
    const { graph } = lowerJson(model([16], [{ type: 'dense', units: 3, activation: 'softmax' }]));
    expect(graph.nodes.map((n) => [n.result, n.op, n.operands, n.layer])).toEqual([
      ['dense/linear', 'dense', ['x', 'dense/kernel', 'dense/bias'], 'dense'],
      ['dense', 'softmax', ['dense/linear'], 'dense'],
    ]);
    expect(nodeNamed(graph, 'dense').attrs).toEqual({ axis: 1 });
    expect(graph.outputs).toEqual(['dense']);
  });

  it.each<[string, number[][], Record<string, unknown>[], number[], Attrs]>([
    ['add', [[4], [4]], [{ type: 'add', inputs: ['a', 'b'] }], [4], {}],
    ['add of three', [[2, 3], [2, 3], [2, 3]], [{ type: 'add', inputs: ['a', 'b', 'c'] }], [2, 3], {}],
    ['concatenate along the last axis (default -1)', [[4, 4, 3], [4, 4, 5]], [{ type: 'concatenate', inputs: ['a', 'b'] }], [4, 4, 8], { axis: 3 }],
    ['concatenate along axis 1', [[2, 4, 3], [5, 4, 3]], [{ type: 'concatenate', axis: 1, inputs: ['a', 'b'] }], [7, 4, 3], { axis: 1 }],
    ['concatenate along axis -2', [[4, 2, 3], [4, 5, 3]], [{ type: 'concatenate', axis: -2, inputs: ['a', 'b'] }], [4, 7, 3], { axis: 2 }],
  ])('merge: %s', (_title, shapes, layers, out, attrs) => {
    const names = ['a', 'b', 'c'];
    const { graph } = lowerJson({ name: 't', inputs: shapes.map((shape, i) => ({ name: names[i], shape })), layers });
    expect(outputType(graph).shape).toEqual(['N', ...out]);
    expect(graph.nodes[0]!.operands).toEqual(names.slice(0, shapes.length));
    expect(graph.nodes[0]!.attrs).toEqual(attrs);
  });
});

describe('layer errors', () => {
  const two = (a: number[], b: number[], layer: Record<string, unknown>) => ({
    name: 't',
    inputs: [{ name: 'a', shape: a }, { name: 'b', shape: b }],
    layers: [{ ...layer, inputs: ['a', 'b'] }],
  });

  it.each<[string, Record<string, unknown>, string, string]>([
    ['conv2d groups not dividing the channels', model([8, 8, 6], [{ type: 'conv2d', filters: 8, kernel_size: 3, groups: 4 }]), 'conv2d', 'groups=4 must divide the input channels (6)'],
    ['conv2d groups not dividing the filters', model([8, 8, 8], [{ type: 'conv2d', filters: 6, kernel_size: 3, groups: 4 }]), 'conv2d', 'groups=4 must divide both the input channels (8) and filters (6)'],
    ['conv2d strides with dilation', model([9, 9, 1], [{ type: 'conv2d', filters: 2, kernel_size: 3, strides: 2, dilation_rate: 2 }]), 'conv2d', 'strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)'],
    ['conv2d_transpose strides with dilation', model([5, 5, 1], [{ type: 'conv2d_transpose', filters: 2, kernel_size: 3, strides: 2, dilation_rate: 2 }]), 'conv2d_transpose', 'strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)'],
    ['concatenate axis -4 on rank 3 names the axis as written', two([4, 4], [4, 4], { type: 'concatenate', axis: -4 }), 'concatenate', 'concatenate axis -4 is out of range for rank 3 (axis 0 is the batch)'],
    ['depthwise_conv2d strides with dilation', model([9, 9, 1], [{ type: 'depthwise_conv2d', kernel_size: 3, strides: [1, 2], dilation_rate: [2, 1] }]), 'depthwise_conv2d', 'strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)'],
    ['conv2d on a rank-2 input', model([16], [{ type: 'conv2d', filters: 2, kernel_size: 3 }]), 'conv2d', 'conv2d expects a rank-4 input (batch, height, width, channels), got shape [N, 16]'],
    ['conv2d kernel larger than the input', model([2, 2, 1], [{ type: 'conv2d', filters: 2, kernel_size: 3 }]), 'conv2d', 'input [2, 2, 1] is too small for kernel [3, 3]: the output would be [0, 0]'],
    ['conv2d_transpose groups not dividing the filters', model([4, 4, 4], [{ type: 'conv2d_transpose', filters: 3, kernel_size: 1, groups: 2 }]), 'conv2d_transpose', 'groups=2 must divide filters (3)'],
    ['conv2d_transpose output_padding not below strides', model([7, 7, 8], [{ type: 'conv2d_transpose', filters: 4, kernel_size: 3, strides: 2, output_padding: 2 }]), 'conv2d_transpose', 'output_padding [2, 2] must be smaller than strides [2, 2]'],
    ['batchnorm axis 0 (the batch)', model([5, 6, 7], [{ type: 'batchnorm', axis: 0 }]), 'batch_normalization', 'batchnorm axis 0 is out of range for input rank 4 (axis 0 is the batch)'],
    ['batchnorm axis 4 on rank 4', model([5, 6, 7], [{ type: 'batchnorm', axis: 4 }]), 'batch_normalization', 'batchnorm axis 4 is out of range for input rank 4 (axis 0 is the batch)'],
    ['batchnorm axis -4 on rank 4 (the batch)', model([5, 6, 7], [{ type: 'batchnorm', axis: -4 }]), 'batch_normalization', 'batchnorm axis -4 is out of range for input rank 4 (axis 0 is the batch)'],
    ['max_pool2d larger than the input', model([3, 3, 1], [{ type: 'max_pool2d', pool_size: 4 }]), 'max_pooling2d', 'input [3, 3, 1] is smaller than pool_size [4, 4]'],
    ['reshape with two -1', model([6, 4], [{ type: 'reshape', target_shape: [-1, -1] }]), 'reshape', 'target_shape [-1, -1] may contain at most one -1'],
    ['reshape to another element count', model([6, 4], [{ type: 'reshape', target_shape: [5, 5] }]), 'reshape', 'cannot reshape [6, 4] (24 elements) to [5, 5] (25 elements)'],
    ['reshape -1 that does not divide', model([6, 4], [{ type: 'reshape', target_shape: [-1, 5] }]), 'reshape', 'cannot reshape [6, 4] (24 elements) to [-1, 5]'],
    ['reshape with a 0', model([6, 4], [{ type: 'reshape', target_shape: [0, 24] }]), 'reshape', 'target_shape [0, 24] contains 0'],
    ['softmax over the batch axis', model([4, 5], [{ type: 'softmax', axis: 0 }]), 'activation', 'axis 0 is out of range for a rank-3 tensor (axis 0 is the batch)'],
    ['softmax axis -3 on rank 3 (the batch)', model([4, 5], [{ type: 'softmax', axis: -3 }]), 'activation', 'axis -3 is out of range for a rank-3 tensor (axis 0 is the batch)'],
    ['add of different shapes', two([4], [5], { type: 'add' }), 'add', 'add cannot broadcast f32[N,4] and f32[N,5]: axis 1 has sizes 4 and 5 (each must match or be 1)'],
    ['concatenate mismatch off the axis', two([4, 4, 3], [4, 5, 3], { type: 'concatenate' }), 'concatenate', 'concatenate along axis 3 needs inputs that match on every other axis, got f32[N,4,4,3] and f32[N,4,5,3]'],
    ['concatenate along axis 1, mismatch on the last axis', two([2, 3], [5, 4], { type: 'concatenate', axis: 1 }), 'concatenate', 'concatenate along axis 1 needs inputs that match on every other axis, got f32[N,2,3] and f32[N,5,4]'],
  ])('%s', (_title, spec, layer, message) => {
    const d = diagnosticOf(() => lowerJson(spec));
    expect(d.code).toBe('shape');
    expect(d.message).toBe(shapeMessage(layer, message));
  });
});

// ---------------------------------------------------------------------------
// Keras parameter counts (model.summary(): total and trainable)

describe('parameter counts', () => {
  it.each<[string, number[], Record<string, unknown>, number, number]>([
    ['dense 16->64: 16*64 + 64', [16], { type: 'dense', units: 64 }, 1088, 1088],
    ['dense 16->64 without bias: 16*64', [16], { type: 'dense', units: 64, use_bias: false }, 1024, 1024],
    ['dense on [5,16] -> 8: 16*8 + 8 (shared over the middle axis)', [5, 16], { type: 'dense', units: 8 }, 136, 136],
    ['conv2d 3x3 1->32: 9*32 + 32', [28, 28, 1], { type: 'conv2d', filters: 32, kernel_size: 3 }, 320, 320],
    ['conv2d 3x3 3->16 without bias: 9*3*16', [8, 8, 3], { type: 'conv2d', filters: 16, kernel_size: 3, use_bias: false }, 432, 432],
    ['grouped conv2d 3x3 8->16, 4 groups: 9*2*16 + 16', [8, 8, 8], { type: 'conv2d', filters: 16, kernel_size: 3, groups: 4 }, 304, 304],
    ['depthwise_conv2d 3x3 on 8, multiplier 2: 9*8*2 + 16', [10, 10, 8], { type: 'depthwise_conv2d', kernel_size: 3, depth_multiplier: 2 }, 160, 160],
    ['conv2d_transpose 3x3 8->4: 9*4*8 + 4', [7, 7, 8], { type: 'conv2d_transpose', filters: 4, kernel_size: 3 }, 292, 292],
    ['batchnorm on 64 channels: 4*64, moving statistics non-trainable', [64], { type: 'batchnorm' }, 256, 128],
    ['batchnorm on NHWC axis -1 (16 channels)', [8, 8, 16], { type: 'batchnorm' }, 64, 32],
    ['batchnorm center false: gamma + 2 statistics', [64], { type: 'batchnorm', center: false }, 192, 64],
    ['batchnorm scale false: beta + 2 statistics', [64], { type: 'batchnorm', scale: false }, 192, 64],
    ['batchnorm center and scale false: statistics only', [64], { type: 'batchnorm', center: false, scale: false }, 128, 0],
    ['max_pool2d', [8, 8, 3], { type: 'max_pool2d' }, 0, 0],
    ['global_avg_pool2d', [8, 8, 3], { type: 'global_avg_pool2d' }, 0, 0],
    ['flatten', [8, 8, 3], { type: 'flatten' }, 0, 0],
    ['dropout', [8], { type: 'dropout', rate: 0.5 }, 0, 0],
    ['relu', [8], { type: 'relu' }, 0, 0],
  ])('%s', (_title, input, layer, total, trainable) => {
    const { graph, layers } = lowerJson(model(input, [layer]));
    expect(layers[0]!.params).toBe(total);
    expect(layers[0]!.trainableParams).toBe(trainable);
    // The summary counts what the graph declares.
    const count = (ps: typeof graph.params) => ps.reduce((n, p) => n + p.type.shape.reduce<number>((a, d) => a * (d as number), 1), 0);
    expect(count(graph.params)).toBe(total);
    expect(count(graph.params.filter((p) => p.trainable))).toBe(trainable);
  });
});

// ---------------------------------------------------------------------------
// Shared weights: {"reuse": "<layer>"}

describe('reuse', () => {
  const siamese = (bShape: number[], extra: Record<string, unknown> = {}) => ({
    name: 'siamese',
    inputs: [
      { name: 'a', shape: [16] },
      { name: 'b', shape: bShape },
    ],
    layers: [
      { type: 'dense', name: 'enc', units: 8, inputs: ['a'], ...extra },
      { reuse: 'enc', inputs: ['b'] },
      { type: 'add', inputs: ['enc', 'enc_1'] },
    ],
  });

  it('declares the parameters once and applies them twice', () => {
    const { graph, layers } = lowerJson(siamese([16]));
    expect(paramShapes(graph)).toEqual({ 'enc/kernel': [16, 8], 'enc/bias': [8] });
    expect(graph.nodes.map((n) => [n.result, n.op, n.operands])).toEqual([
      ['enc', 'dense', ['a', 'enc/kernel', 'enc/bias']],
      ['enc_1', 'dense', ['b', 'enc/kernel', 'enc/bias']],
      ['add', 'add', ['enc', 'enc_1']],
    ]);
    // Keras counts shared weights once, on the layer that owns them.
    expect(layers.map((l) => [l.name, l.type, l.reuses, l.params])).toEqual([
      ['enc', 'dense', undefined, 136],
      ['enc_1', 'reuse', 'enc', 0],
      ['add', 'add', undefined, 0],
    ]);
  });

  it('reuses the activation of the layer it applies again', () => {
    const { graph } = lowerJson(siamese([16], { activation: 'relu' }));
    expect(graph.nodes.map((n) => [n.result, n.op, n.operands])).toEqual([
      ['enc/linear', 'dense', ['a', 'enc/kernel', 'enc/bias']],
      ['enc', 'relu', ['enc/linear']],
      ['enc_1/linear', 'dense', ['b', 'enc/kernel', 'enc/bias']],
      ['enc_1', 'relu', ['enc_1/linear']],
      ['add', 'add', ['enc', 'enc_1']],
    ]);
    expect(graph.params.map((p) => p.name)).toEqual(['enc/kernel', 'enc/bias']);
  });

  it('rejects applying a dense layer to a different feature size', () => {
    const d = diagnosticOf(() => lowerJson(siamese([12])));
    expect(d.code).toBe('shape');
    expect(d.message).toBe(shapeMessage('enc_1', 'enc is applied to inputs that need kernel f32[12,8], but its kernel is f32[16,8]'));
  });

  it('allows a dense layer on inputs that differ only before the last axis (Keras Dense)', () => {
    const { graph } = lowerJson({
      name: 't',
      inputs: [
        { name: 'a', shape: [16] },
        { name: 'b', shape: [3, 16] },
      ],
      layers: [
        { type: 'dense', name: 'enc', units: 8, inputs: ['a'] },
        { reuse: 'enc', name: 'enc_b', inputs: ['b'] },
      ],
      outputs: ['enc', 'enc_b'],
    });
    expect(nodeNamed(graph, 'enc_b').type.shape).toEqual(['N', 3, 8]);
    expect(graph.params.map((p) => p.name)).toEqual(['enc/kernel', 'enc/bias']);
  });
});
