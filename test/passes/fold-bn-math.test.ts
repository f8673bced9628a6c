/**
 * The pure weight arithmetic of fold-bn (src/passes/fold-bn-math.ts) on
 * kernels small enough to work out by hand: each expected number below is
 * computed in the comment beside it, not by running the code. Values are
 * small integers and halves so that float64 results are exact and the
 * assertions can be `toEqual`.
 */
import { describe, expect, it } from 'vitest';
import type { Node } from '../../src/ir/graph.js';
import { tensor, type Attrs } from '../../src/ir/types.js';
import {
  batchnormAffine,
  foldAfter,
  foldBefore,
  FoldRefusal,
  kernelLayout,
  roundToF32,
  type ChannelAffine,
  type KernelLayout,
} from '../../src/passes/fold-bn-math.js';

/** A node of `op` with the given attributes; the layouts read only the op and attributes. */
function node(op: string, attrs: Attrs = {}): Node {
  return { op, result: 'y', type: tensor(['N', 1]), operands: ['x', 'k'], attrs, layer: 'l' };
}

/** Every kernel element's (in, out) channels, as two rows for readable expectations. */
function channelTable(layout: KernelLayout, size: number): { in: number[]; out: number[] } {
  const all = Array.from({ length: size }, (_, i) => layout.channels(i));
  return { in: all.map((c) => c.in), out: all.map((c) => c.out) };
}

function affine(scale: number[], shift: number[]): ChannelAffine {
  return { scale: Float64Array.from(scale), shift: Float64Array.from(shift) };
}

const f32 = (values: number[]) => Float32Array.from(values);

describe('kernelLayout: which input and output channel each kernel element connects', () => {
  it('dense kernel [2, 3]: element i = in * 3 + out', () => {
    const layout = kernelLayout(node('dense'), [2, 3]);
    expect([layout.inChannels, layout.outChannels]).toEqual([2, 3]);
    // i: 0 1 2 | 3 4 5  (row 0, then row 1 of the row-major [in, units] kernel)
    expect(channelTable(layout, 6)).toEqual({ in: [0, 0, 0, 1, 1, 1], out: [0, 1, 2, 0, 1, 2] });
  });

  it('conv2d kernel [1, 2, 2, 3] without groups: the window position repeats the channel pattern', () => {
    const layout = kernelLayout(node('conv2d', { groups: 1 }), [1, 2, 2, 3]);
    expect([layout.inChannels, layout.outChannels]).toEqual([2, 3]);
    // i = (w * 2 + c) * 3 + f: w=0 covers i 0..5, w=1 covers i 6..11, the same (c, f) pairs again.
    expect(channelTable(layout, 12)).toEqual({
      in: [0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1],
      out: [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2],
    });
  });

  it('conv2d 1x1 kernel [1, 1, 2, 4] with 2 groups: filters 0-1 read inputs 0-1, filters 2-3 read inputs 2-3', () => {
    const layout = kernelLayout(node('conv2d', { groups: 2 }), [1, 1, 2, 4]);
    // 2 channels per group x 2 groups = 4 inputs; 4 filters, 2 per group.
    expect([layout.inChannels, layout.outChannels]).toEqual([4, 4]);
    // i = c * 4 + f (c the channel within the group); in = group(f) * 2 + c with group(f) = f div 2:
    //   c=0: f0 -> 0, f1 -> 0, f2 -> 2, f3 -> 2;   c=1: f0 -> 1, f1 -> 1, f2 -> 3, f3 -> 3
    expect(channelTable(layout, 8)).toEqual({ in: [0, 0, 2, 2, 1, 1, 3, 3], out: [0, 1, 2, 3, 0, 1, 2, 3] });
  });

  it('depthwise_conv2d kernel [2, 1, 2, 2] (multiplier 2): output c * 2 + m reads only input c', () => {
    const layout = kernelLayout(node('depthwise_conv2d'), [2, 1, 2, 2]);
    expect([layout.inChannels, layout.outChannels]).toEqual([2, 4]);
    // i = (h * 2 + c) * 2 + m; h=0: i 0..3, h=1: i 4..7 repeat. out = c * 2 + m.
    expect(channelTable(layout, 8)).toEqual({ in: [0, 0, 1, 1, 0, 0, 1, 1], out: [0, 1, 2, 3, 0, 1, 2, 3] });
  });

  it('conv2d_transpose kernel [1, 1, 3, 2] without groups: the filter axis comes before the input axis', () => {
    const layout = kernelLayout(node('conv2d_transpose', { groups: 1 }), [1, 1, 3, 2]);
    // Keras stores a transposed kernel as [kh, kw, filters, in]: i = f * 2 + c.
    expect([layout.inChannels, layout.outChannels]).toEqual([2, 3]);
    expect(channelTable(layout, 6)).toEqual({ in: [0, 1, 0, 1, 0, 1], out: [0, 0, 1, 1, 2, 2] });
  });

  it('conv2d_transpose kernel [1, 1, 2, 4] with 2 groups: inputs 0-1 write filters 0-1, inputs 2-3 write filters 2-3', () => {
    const layout = kernelLayout(node('conv2d_transpose', { groups: 2 }), [1, 1, 2, 4]);
    // 4 inputs (2 per group); 2 filters per group x 2 groups = 4 outputs.
    expect([layout.inChannels, layout.outChannels]).toEqual([4, 4]);
    // i = f * 4 + c; out = group(c) * 2 + f with group(c) = c div 2:
    //   f=0: c0 -> 0, c1 -> 0, c2 -> 2, c3 -> 2;   f=1: c0 -> 1, c1 -> 1, c2 -> 3, c3 -> 3
    expect(channelTable(layout, 8)).toEqual({ in: [0, 1, 2, 3, 0, 1, 2, 3], out: [0, 0, 2, 2, 1, 1, 3, 3] });
  });

  it('an op without linear facts is an internal error, not a layout', () => {
    expect(() => kernelLayout(node('relu'), [2, 3])).toThrow(/relu is not a linear op/);
  });
});

describe('batchnormAffine: bn(x) = x * s + t per channel', () => {
  // epsilon 0.25 with variances 3.75 and 0 gives var + eps = 4 and 0.25, square roots 2 and 0.5.
  const stats = { mean: f32([3, -2]), variance: f32([3.75, 0]) };

  it('s = gamma / sqrt(var + eps), t = beta - mean * s', () => {
    const bn = batchnormAffine({ ...stats, gamma: f32([2, -1]), beta: f32([1, 0.5]) }, 0.25);
    // s = [2 / 2, -1 / 0.5] = [1, -2];  t = [1 - 3 * 1, 0.5 - (-2) * (-2)] = [-2, -3.5]
    expect(Array.from(bn.scale)).toEqual([1, -2]);
    expect(Array.from(bn.shift)).toEqual([-2, -3.5]);
  });

  it('without gamma and beta (scale=false, center=false) they are 1 and 0', () => {
    const bn = batchnormAffine(stats, 0.25);
    // s = [1 / 2, 1 / 0.5] = [0.5, 2];  t = [-3 * 0.5, 2 * 2] = [-1.5, 4]
    expect(Array.from(bn.scale)).toEqual([0.5, 2]);
    expect(Array.from(bn.shift)).toEqual([-1.5, 4]);
  });

  it.each([
    ['is zero', f32([1, -0.25]), /moving_variance \+ epsilon is 0 in channel 1/],
    ['is negative', f32([-1, 1]), /moving_variance \+ epsilon is -0.75 in channel 0/],
    ['is NaN', f32([1, NaN]), /is NaN in channel 1/],
    ['is infinite', f32([Infinity, 1]), /is Infinity in channel 0/],
  ])('refuses when variance + epsilon %s', (_, variance, message) => {
    expect(() => batchnormAffine({ mean: f32([0, 0]), variance }, 0.25)).toThrow(FoldRefusal);
    expect(() => batchnormAffine({ mean: f32([0, 0]), variance }, 0.25)).toThrow(message);
  });

  it('refuses a non-finite scale or shift (an infinite gamma or mean)', () => {
    const variance = f32([0.75, 0.75]);
    expect(() => batchnormAffine({ mean: f32([0, 0]), variance, gamma: f32([1, Infinity]) }, 0.25)).toThrow(/scale or shift of channel 1 is not finite/);
    expect(() => batchnormAffine({ mean: f32([-Infinity, 0]), variance }, 0.25)).toThrow(/scale or shift of channel 0 is not finite/);
  });
});

/** y = x . K + b for a dense kernel [in, units] stored row-major, in float64. */
function dense(x: number[], kernel: ArrayLike<number>, bias: ArrayLike<number>): number[] {
  return Array.from(bias, (b, o) => x.reduce((sum, xi, i) => sum + xi * kernel[i * bias.length + o]!, b));
}

describe('foldAfter: bn(linear(x)) -> linear\'(x) with K\'[i] = K[i] * s[out(i)], b\' = b * s + t', () => {
  // Dense kernel [2, 3] = [[1, 2, 3], [4, 5, 6]], bias [0.5, -1, 2]; bn over the 3 outputs.
  const kernel = f32([1, 2, 3, 4, 5, 6]);
  const bias = f32([0.5, -1, 2]);
  const bn = affine([2, -1, 0.5], [1, 0, -3]);
  const layout = kernelLayout(node('dense'), [2, 3]);

  it('scales each kernel column by its output channel and maps the bias through bn', () => {
    const folded = foldAfter(kernel, bias, layout, bn);
    // columns x [2, -1, 0.5]: [[2, -2, 1.5], [8, -5, 3]]
    expect(Array.from(folded.kernel)).toEqual([2, -2, 1.5, 8, -5, 3]);
    // b' = [0.5 * 2 + 1, -1 * -1 + 0, 2 * 0.5 - 3] = [2, 1, -2]
    expect(Array.from(folded.bias)).toEqual([2, 1, -2]);
    // The contract on x = [1, -1]: y = [-3, -3, -3] + b = [-2.5, -4, -1]; bn(y) = [-4, 4, -3.5].
    expect(dense([1, -1], folded.kernel, folded.bias)).toEqual([-4, 4, -3.5]);
  });

  it('without a bias the folded bias is the shift', () => {
    expect(Array.from(foldAfter(kernel, undefined, layout, bn).bias)).toEqual([1, 0, -3]);
  });

  it('grouped conv2d 1x1 [1, 1, 2, 4], 2 groups: the scale follows the filter (i mod 4)', () => {
    // K[i] = i + 1; s = [1, 2, 3, 4]: K' = [1*1, 2*2, 3*3, 4*4, 5*1, 6*2, 7*3, 8*4]
    const folded = foldAfter(f32([1, 2, 3, 4, 5, 6, 7, 8]), undefined, kernelLayout(node('conv2d', { groups: 2 }), [1, 1, 2, 4]), affine([1, 2, 3, 4], [0.5, 0, -1, 2]));
    expect(Array.from(folded.kernel)).toEqual([1, 4, 9, 16, 5, 12, 21, 32]);
    expect(Array.from(folded.bias)).toEqual([0.5, 0, -1, 2]);
  });
});

describe('foldBefore: linear(bn(x)) -> linear\'(x) with K\'[i] = K[i] * s[in(i)], b\'_o = b_o + sum K[i] * t[in(i)]', () => {
  it('dense [2, 3]: scales each kernel row by its input channel and pushes the shift through the kernel', () => {
    // Kernel [[1, 2, 3], [4, 5, 6]], bias [0.5, -1, 2]; bn over the 2 inputs: s = [2, -1], t = [1, 0.5].
    const folded = foldBefore(f32([1, 2, 3, 4, 5, 6]), f32([0.5, -1, 2]), kernelLayout(node('dense'), [2, 3]), affine([2, -1], [1, 0.5]));
    // rows x [2, -1]: [[2, 4, 6], [-4, -5, -6]]
    expect(Array.from(folded.kernel)).toEqual([2, 4, 6, -4, -5, -6]);
    // b' = [0.5 + 1*1 + 4*0.5, -1 + 2*1 + 5*0.5, 2 + 3*1 + 6*0.5] = [3.5, 3.5, 8]
    expect(Array.from(folded.bias)).toEqual([3.5, 3.5, 8]);
    // The contract on x = [1, -1]: bn(x) = [3, 1.5]; y = [3 + 6, 6 + 7.5, 9 + 9] + b = [9.5, 12.5, 20].
    expect(dense([1, -1], folded.kernel, folded.bias)).toEqual([9.5, 12.5, 20]);
  });

  it('grouped conv2d 1x1 [1, 1, 2, 4], 2 groups: each filter takes the shift of its own group\'s inputs only', () => {
    // K[i] = i + 1 with in(i) = [0, 0, 2, 2, 1, 1, 3, 3], out(i) = i mod 4 (see the layout test);
    // bn over the 4 inputs: s = [1, 2, 3, 4], t = [1, -1, 0.5, 2]; bias [10, 20, 30, 40].
    const layout = kernelLayout(node('conv2d', { groups: 2 }), [1, 1, 2, 4]);
    const folded = foldBefore(f32([1, 2, 3, 4, 5, 6, 7, 8]), f32([10, 20, 30, 40]), layout, affine([1, 2, 3, 4], [1, -1, 0.5, 2]));
    // K' = [1*1, 2*1, 3*3, 4*3, 5*2, 6*2, 7*4, 8*4]
    expect(Array.from(folded.kernel)).toEqual([1, 2, 9, 12, 10, 12, 28, 32]);
    // out 0: 10 + K1*t0 + K5*t1 = 10 + 1 - 5 = 6      out 1: 20 + 2 - 6 = 16
    // out 2: 30 + K3*t2 + K7*t3 = 30 + 1.5 + 14 = 45.5  out 3: 40 + 4*0.5 + 8*2 = 58
    expect(Array.from(folded.bias)).toEqual([6, 16, 45.5, 58]);
  });
});

describe('roundToF32: one rounding at the end, refusing overflow and flushing subnormals', () => {
  const F32_MAX = 3.4028234663852886e38;
  const F32_MIN_NORMAL = 1.1754943508222875e-38;

  it('rounds to nearest f32, keeps the extremes of the normal range, flushes and counts subnormals', () => {
    const { data, flushed } = roundToF32(Float64Array.from([1.5, 1 / 3, F32_MAX, -F32_MIN_NORMAL, 1e-39, -1e-45, 0]), 'kernel');
    // 1/3 is not an f32: it becomes 11184811 / 2^25 = 0.3333333432674408. 1e-39 and -1e-45 are below
    // the smallest normal f32 (2^-126): flushed to zero and counted; the 0 is not counted.
    expect(Array.from(data)).toEqual([1.5, 0.3333333432674408, F32_MAX, -F32_MIN_NORMAL, 0, 0, 0]);
    expect(flushed).toBe(2);
  });

  it.each([
    ['twice the f32 maximum', 2 * F32_MAX, /the folded kernel would overflow f32 \(6\.805646932770577e\+38 at index 1\)/],
    ['-Infinity', -Infinity, /would overflow f32 \(-Infinity at index 1\)/],
    ['NaN', NaN, /would overflow f32 \(NaN at index 1\)/],
  ])('refuses %s', (_, v, message) => {
    expect(() => roundToF32(Float64Array.from([1, v]), 'kernel')).toThrow(FoldRefusal);
    expect(() => roundToF32(Float64Array.from([1, v]), 'kernel')).toThrow(message);
  });
});
