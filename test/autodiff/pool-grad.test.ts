/**
 * Gradient rules of the ops that move or pool data: max and average pooling
 * (every geometry), the global pools, reshape, concatenate, dropout, and
 * affine, checked against float64 central differences of the reference
 * kernels; the tie rule of max pooling; and every new gradient op's emitted
 * kernel against its reference kernel.
 */
import { describe, expect, it } from 'vitest';
import type { Tensor } from '../../src/ir/tensor.js';
import type { Attrs } from '../../src/ir/types.js';
import { expectGradientsMatch, randomValues } from '../helpers/gradcheck.js';
import { runKernel } from '../helpers/kernel.js';
import { reference } from '../helpers/tensors.js';

/** [input shape (with batch), pool_size, strides, padding] */
const geometries: [number[], number[], number[], string][] = [
  [[2, 4, 4, 2], [2, 2], [2, 2], 'valid'],
  [[2, 5, 6, 2], [3, 3], [1, 1], 'valid'],
  [[1, 7, 5, 3], [3, 2], [2, 2], 'valid'],
  [[2, 5, 5, 2], [2, 2], [2, 2], 'same'],
  [[1, 4, 5, 2], [3, 3], [1, 1], 'same'],
  [[1, 5, 7, 2], [3, 3], [2, 2], 'same'],
  [[1, 6, 3, 1], [4, 1], [1, 2], 'same'],
];

const poolAttrs = ([, p, s, padding]: (typeof geometries)[number]): Attrs => ({ pool_size: p, strides: s, padding });

/** The same values as float32 (what an emitted kernel sees), in float64. */
const f32 = (t: Tensor): Tensor => ({ shape: t.shape, data: t.data.map(Math.fround) });

function expectKernelMatches(op: string, operands: Tensor[], attrs: Attrs, batched?: boolean[]): void {
  const got = runKernel(op, operands, attrs, batched);
  const want = reference(op, operands, attrs);
  expect(got.shape).toEqual(want.shape);
  got.data.forEach((v, i) => expect(v, `${op} [${i}]`).toBeCloseTo(want.data[i]!, 5));
}

describe('pooling gradients', () => {
  it.each(geometries)('max_pool2d over %j, pool %j, strides %j, %s', (...g) => {
    expectGradientsMatch('max_pool2d', [{ value: randomValues(g[0], 1) }], poolAttrs(g));
  });
  it.each(geometries)('avg_pool2d over %j, pool %j, strides %j, %s', (...g) => {
    expectGradientsMatch('avg_pool2d', [{ value: randomValues(g[0], 2) }], poolAttrs(g));
  });
  it.each([false, true])('global max and average pools, keepdims %s', (keepdims) => {
    expectGradientsMatch('global_max_pool2d', [{ value: randomValues([2, 3, 4, 3], 3) }], { keepdims });
    expectGradientsMatch('global_avg_pool2d', [{ value: randomValues([2, 3, 4, 3], 4) }], { keepdims });
  });

  it('a tie sends dy to the first maximum in row-major order (TF)', () => {
    const x: Tensor = { shape: [1, 2, 2, 1], data: Float64Array.from([1, 5, 5, 5]) };
    const dy: Tensor = { shape: [1, 1, 1, 1], data: Float64Array.of(3) };
    const attrs = { pool_size: [2, 2], strides: [2, 2], padding: 'valid' };
    expect([...reference('max_pool2d_grad', [dy, x], attrs).data]).toEqual([0, 3, 0, 0]);
    expect([...runKernel('max_pool2d_grad', [dy, x], attrs).data]).toEqual([0, 3, 0, 0]);
    expect([...reference('global_max_pool2d_grad', [{ shape: [1, 1], data: Float64Array.of(3) }, x]).data]).toEqual([0, 3, 0, 0]);
  });

  it('same padding divides by the cells inside the image', () => {
    // 3x3 input, 2x2 windows at stride 2: counts 4, 2, 2, 1.
    const dy: Tensor = { shape: [1, 2, 2, 1], data: Float64Array.from([4, 2, 2, 1]) };
    const attrs = { pool_size: [2, 2], strides: [2, 2], padding: 'same', input_shape: [3, 3, 1] };
    expect([...reference('avg_pool2d_grad', [dy], attrs).data]).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1]);
  });
});

describe('reshape, concatenate, dropout and affine gradients', () => {
  it('reshape back to the operand shape', () => {
    expectGradientsMatch('reshape', [{ value: randomValues([2, 3, 4], 1) }], { shape: [12] });
    expectGradientsMatch('reshape', [{ value: randomValues([2, 6], 2) }], { shape: [3, 2] });
  });
  it('concatenate along the last axis (three inputs)', () => {
    const xs = [[2, 2, 3, 2], [2, 2, 3, 3], [2, 2, 3, 1]].map((s, i) => ({ value: randomValues(s, i + 1) }));
    expectGradientsMatch('concatenate', xs, { axis: 3 });
  });
  it('concatenate along a middle axis', () => {
    const xs = [[2, 1, 3, 2], [2, 2, 3, 2]].map((s, i) => ({ value: randomValues(s, i + 4) }));
    expectGradientsMatch('concatenate', xs, { axis: 1 });
  });
  it('dropout is the identity outside training', () => {
    expectGradientsMatch('dropout', [{ value: randomValues([2, 5], 1) }], { rate: 0.5, seed: null });
  });
  it.each([
    [[2, 3, 4, 3], 3],
    [[2, 4, 3], 1],
  ])('affine over %j along axis %i: x, scale and shift', (shape, axis) => {
    const c = shape[axis]!;
    expectGradientsMatch('affine', [
      { value: randomValues(shape, 1) },
      { value: randomValues([c], 2), batched: false },
      { value: randomValues([c], 3), batched: false },
    ], { axis });
  });
});

describe('emitted gradient kernels equal the reference kernels', () => {
  it.each(geometries)('max_pool2d_grad and avg_pool2d_grad over %j, pool %j, strides %j, %s', (...g) => {
    const x = f32(randomValues(g[0], 1));
    const dy = f32(randomValues(reference('max_pool2d', [x], poolAttrs(g)).shape, 2));
    expectKernelMatches('max_pool2d_grad', [dy, x], poolAttrs(g));
    expectKernelMatches('avg_pool2d_grad', [dy], { ...poolAttrs(g), input_shape: g[0].slice(1) });
  });
  it.each([[[3, 2]], [[3, 1, 1, 2]]])('global pool gradients with dy %j', (dyShape) => {
    const x = f32(randomValues([3, 4, 3, 2], 1));
    const dy = f32(randomValues(dyShape, 2));
    expectKernelMatches('global_max_pool2d_grad', [dy, x], {});
    expectKernelMatches('global_avg_pool2d_grad', [dy], { input_shape: [4, 3, 2] });
  });
  it('slice along a middle and the last axis, and of a static value', () => {
    const x = f32(randomValues([3, 4, 5, 2], 1));
    expectKernelMatches('slice', [x], { axis: 2, start: 1, size: 3 });
    expectKernelMatches('slice', [x], { axis: 3, start: 1, size: 1 });
    expectKernelMatches('slice', [f32(randomValues([4, 6], 2))], { axis: 1, start: 2, size: 4 }, [false]);
  });
  it('channel_scale along a middle and the last axis', () => {
    const x = f32(randomValues([3, 4, 5], 1));
    expectKernelMatches('channel_scale', [x, f32(randomValues([4], 2))], { axis: 1 }, [true, false]);
    expectKernelMatches('channel_scale', [x, f32(randomValues([5], 3))], { axis: 2 }, [true, false]);
  });
});
