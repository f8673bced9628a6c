/**
 * Reference kernels of dense, batchnorm, affine, pooling, reshape, add,
 * concatenate and dropout, on small hand-computed cases (arithmetic in the
 * comments).
 */
import { describe, expect, it } from 'vitest';
import { expectClose, reference, t } from '../helpers/tensors.js';

describe('dense', () => {
  // x = [[1,2,3],[4,5,6]], kernel = [[1,0],[0,1],[1,1]], bias = [10,20]
  // row 0: [1 + 3, 2 + 3] + bias = [14, 25]; row 1: [4 + 6, 5 + 6] + bias = [20, 31]
  const kernel = t([3, 2], [1, 0, 0, 1, 1, 1]);
  it('computes x · kernel + bias', () => {
    expectClose(reference('dense', [t([2, 3], [1, 2, 3, 4, 5, 6]), kernel, t([2], [10, 20])]), t([2, 2], [14, 25, 20, 31]));
  });
  it('works on the last axis of a rank-3 input, without bias', () => {
    expectClose(reference('dense', [t([1, 2, 3], [1, 2, 3, 4, 5, 6]), kernel]), t([1, 2, 2], [4, 5, 10, 11]));
  });
});

describe('batchnorm (inference)', () => {
  const attrs = (axis: number, center: boolean, scale: boolean) => ({
    axis,
    epsilon: 1,
    momentum: 0.99,
    center,
    scale,
    renorm: false,
    renorm_clipping: { rmax: null, rmin: 0, dmax: null },
    renorm_momentum: 0.99,
  });
  // x = [[1,2],[3,4]], moving_mean = [1,2], moving_variance = [3,8], epsilon = 1:
  // sqrt(3 + 1) = 2, sqrt(8 + 1) = 3, so (x - mean) / sqrt(var + eps) = [[0, 0], [1, 2/3]]
  const x = t([2, 2], [1, 2, 3, 4]);
  const gamma = t([2], [2, 3]);
  const beta = t([2], [10, 20]);
  const mean = t([2], [1, 2]);
  const variance = t([2], [3, 8]);

  it('computes gamma * (x - mean) / sqrt(var + eps) + beta', () => {
    // [[2*0 + 10, 3*0 + 20], [2*1 + 10, 3*(2/3) + 20]]
    expectClose(reference('batchnorm', [x, gamma, beta, mean, variance], attrs(1, true, true)), [10, 20, 12, 22]);
  });
  it('uses gamma = 1 without scale and beta = 0 without center (the operand list follows)', () => {
    expectClose(reference('batchnorm', [x, beta, mean, variance], attrs(1, true, false)), [10, 20, 11, 20 + 2 / 3]);
    expectClose(reference('batchnorm', [x, gamma, mean, variance], attrs(1, false, true)), [0, 0, 2, 2]);
    expectClose(reference('batchnorm', [x, mean, variance], attrs(1, false, false)), [0, 0, 1, 2 / 3]);
  });
  it('normalizes along an inner axis', () => {
    // x [1,2,1,2] along axis 1: channel 0 holds [1, 2], channel 1 holds [3, 4];
    // mean [0, 10], var [3, 8]: [1/2, 2/2, (3-10)/3, (4-10)/3]
    const y = reference('batchnorm', [t([1, 2, 1, 2], [1, 2, 3, 4]), t([2], [0, 10]), variance], attrs(1, false, false));
    expectClose(y, t([1, 2, 1, 2], [0.5, 1, -7 / 3, -2]));
  });
});

describe('affine', () => {
  // x [1,2,2] along axis 1: rows are channels. scale [2,3], shift [-3,-1]:
  // [1*2 - 3, 2*2 - 3, 3*3 - 1, 4*3 - 1] = [-1, 1, 8, 11]
  const inputs = [t([1, 2, 2], [1, 2, 3, 4]), t([2], [2, 3]), t([2], [-3, -1])];
  it('computes x * scale + shift per channel', () => {
    expectClose(reference('affine', inputs, { axis: 1 }), [-1, 1, 8, 11]);
  });
  it('applies its epilogue', () => {
    expectClose(reference('affine', inputs, { axis: 1, epilogue: { op: 'relu' } }), [0, 1, 8, 11]);
  });
});

describe('pooling', () => {
  const pool = (pool_size: number[], strides: number[], padding: string) => ({ pool_size, strides, padding });
  // 4x4 image 1..16; 2x2 windows, stride 2 (valid): [[1,2,5,6], [3,4,7,8], [9,10,13,14], [11,12,15,16]]
  const x4 = t([1, 4, 4, 1], Array.from({ length: 16 }, (_, i) => i + 1));
  it('max and average over 2x2 windows, stride 2', () => {
    expectClose(reference('max_pool2d', [x4], pool([2, 2], [2, 2], 'valid')), t([1, 2, 2, 1], [6, 8, 14, 16]));
    // (1+2+5+6)/4 = 3.5, (3+4+7+8)/4 = 5.5, (9+10+13+14)/4 = 11.5, (11+12+15+16)/4 = 13.5
    expectClose(reference('avg_pool2d', [x4], pool([2, 2], [2, 2], 'valid')), t([1, 2, 2, 1], [3.5, 5.5, 11.5, 13.5]));
  });

  // 3x3 image 1..9, 2x2 windows, stride 1, same: total padding 2 + 2 - 3 = 1, all of it after.
  const x3 = t([1, 3, 3, 1], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  it('average pooling with same padding divides by the valid cells of each window', () => {
    // row 0: (1+2+4+5)/4 = 3, (2+3+5+6)/4 = 4, (3+6)/2 = 4.5
    // row 1: (4+5+7+8)/4 = 6, (5+6+8+9)/4 = 7, (6+9)/2 = 7.5
    // row 2: (7+8)/2 = 7.5, (8+9)/2 = 8.5, 9/1 = 9
    expectClose(reference('avg_pool2d', [x3], pool([2, 2], [1, 1], 'same')), t([1, 3, 3, 1], [3, 4, 4.5, 6, 7, 7.5, 7.5, 8.5, 9]));
    // 3x3 windows: one cell of padding on each side; corner (0,0) = (1+2+4+5)/4 = 3 (not 12/9)
    const y = reference('avg_pool2d', [x3], pool([3, 3], [1, 1], 'same'));
    // edges: (0,1) = (1+2+3+4+5+6)/6 = 3.5; centre 45/9 = 5; (2,2) = (5+6+8+9)/4 = 7
    expectClose(y, t([1, 3, 3, 1], [3, 3.5, 4, 4.5, 5, 5.5, 6, 6.5, 7]));
  });
  it('max pooling with same padding ignores the padding cells, even for negative inputs', () => {
    expectClose(reference('max_pool2d', [x3], pool([2, 2], [1, 1], 'same')), t([1, 3, 3, 1], [5, 6, 6, 8, 9, 9, 8, 9, 9]));
    const negative = t([1, 3, 3, 1], [-1, -2, -3, -4, -5, -6, -7, -8, -9]);
    // the window at (2,2) holds only -9: a zero of padding must not win
    expectClose(reference('max_pool2d', [negative], pool([2, 2], [1, 1], 'same')), t([1, 3, 3, 1], [-1, -2, -3, -4, -5, -6, -7, -8, -9]));
  });
  it('same padding with stride 2 on an odd size pads at the end', () => {
    // width 5, pool 2, stride 2: out 3, total 2*2 + 2 - 5 = 1 after: windows [1,2] [3,4] [5]
    const y = reference('avg_pool2d', [t([1, 1, 5, 1], [1, 2, 3, 4, 5])], pool([1, 2], [1, 2], 'same'));
    expectClose(y, t([1, 1, 3, 1], [1.5, 3.5, 5]));
  });

  // x [1,2,2,2]: channel 0 = [1,2,3,4], channel 1 = [5,-6,7,-8] (interleaved in NHWC)
  const xg = t([1, 2, 2, 2], [1, 5, 2, -6, 3, 7, 4, -8]);
  it('global pools reduce height and width, with or without keepdims', () => {
    // mean: [10/4, -2/4] = [2.5, -0.5]; max: [4, 7]
    expectClose(reference('global_avg_pool2d', [xg], { keepdims: false }), t([1, 2], [2.5, -0.5]));
    expectClose(reference('global_max_pool2d', [xg], { keepdims: false }), t([1, 2], [4, 7]));
    expectClose(reference('global_avg_pool2d', [xg], { keepdims: true }), t([1, 1, 1, 2], [2.5, -0.5]));
    expectClose(reference('global_max_pool2d', [xg], { keepdims: true }), t([1, 1, 1, 2], [4, 7]));
  });
});

describe('shape and merge ops', () => {
  it('reshape keeps the row-major data and the batch dimension', () => {
    expectClose(reference('reshape', [t([2, 2, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])], { shape: [3, 2] }), t([2, 3, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
  });

  it('add sums any number of inputs and applies its epilogue', () => {
    const xs = [t([1, 3], [1, 2, 3]), t([1, 3], [10, 20, 30]), t([1, 3], [-20, -20, -20])];
    expectClose(reference('add', xs), [-9, 2, 13]);
    expectClose(reference('add', xs, { epilogue: { op: 'relu' } }), [0, 2, 13]);
  });

  it('concatenate joins along the axis', () => {
    // axis 1: [[1,2],[3,4]] then [[5,6]] -> [[1,2],[3,4],[5,6]]
    expectClose(reference('concatenate', [t([1, 2, 2], [1, 2, 3, 4]), t([1, 1, 2], [5, 6])], { axis: 1 }), t([1, 3, 2], [1, 2, 3, 4, 5, 6]));
    // axis 2: rows [1] + [3,4] + [7] and [2] + [5,6] + [8]
    const y = reference('concatenate', [t([1, 2, 1], [1, 2]), t([1, 2, 2], [3, 4, 5, 6]), t([1, 2, 1], [7, 8])], { axis: 2 });
    expectClose(y, t([1, 2, 4], [1, 3, 4, 7, 2, 5, 6, 8]));
    // batch 2, axis 1: each example keeps its own blocks
    const z = reference('concatenate', [t([2, 1], [1, 2]), t([2, 2], [3, 4, 5, 6])], { axis: 1 });
    expectClose(z, t([2, 3], [1, 3, 4, 2, 5, 6]));
  });

  it('dropout is the identity at inference', () => {
    const x = t([2, 2], [1, -2, 3, -4]);
    expect(reference('dropout', [x], { rate: 0.5, seed: 1 })).toEqual(x);
  });
});
