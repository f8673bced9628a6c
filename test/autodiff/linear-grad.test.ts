/**
 * Gradient rules of dense, add and multiply, and the per-channel reductions,
 * checked against float64 central differences of the reference kernels.
 */
import { describe, expect, it } from 'vitest';
import { expectGradientsMatch, randomValues } from '../helpers/gradcheck.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { runKernel } from '../helpers/kernel.js';
import { reference } from '../helpers/tensors.js';

describe('dense gradient', () => {
  it('matches central differences for x, kernel and bias', () => {
    const x = randomValues([3, 5], 1);
    const w = randomValues([5, 4], 2);
    const b = randomValues([4], 3);
    expectGradientsMatch('dense', [{ value: x }, { value: w, batched: false }, { value: b }]);
  });
  it('handles rank-3 inputs (rows over every leading axis) and no bias', () => {
    expectGradientsMatch('dense', [{ value: randomValues([2, 3, 5], 4) }, { value: randomValues([5, 6], 5), batched: false }]);
  });
  it('the rule is exact: dx = dy · wᵀ by hand', () => {
    const w = { shape: [2, 3], data: Float64Array.from([1, 2, 3, 4, 5, 6]) };
    const dy = { shape: [1, 3], data: Float64Array.from([1, 0, -1]) };
    expect([...reference('dense_grad_input', [dy, w]).data]).toEqual([1 - 3, 4 - 6]);
    const x = { shape: [1, 2], data: Float64Array.from([2, -1]) };
    expect([...reference('dense_grad_kernel', [x, dy]).data]).toEqual([2, 0, -2, -1, 0, 1]);
  });
});

describe('add and multiply gradients', () => {
  it('add passes dy to every operand', () => {
    expectGradientsMatch('add', [{ value: randomValues([2, 3], 1) }, { value: randomValues([2, 3], 2) }, { value: randomValues([2, 3], 3) }]);
  });
  it('add of static values (gradient accumulation)', () => {
    expectGradientsMatch('add', [{ value: randomValues([4, 3], 1), batched: false }, { value: randomValues([4, 3], 2), batched: false }]);
  });
  it('multiply', () => {
    expectGradientsMatch('multiply', [{ value: randomValues([2, 6], 1) }, { value: randomValues([2, 6], 2) }]);
  });
});

describe('channel reductions', () => {
  const x = { shape: [2, 2, 3], data: Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) };
  it('sum, mean and biased variance per channel along the last axis', () => {
    expect([...reference('channel_sum', [x], { axis: 2 }).data]).toEqual([22, 26, 30]);
    expect([...reference('channel_mean', [x], { axis: 2 }).data]).toEqual([5.5, 6.5, 7.5]);
    // values of channel 0: 1, 4, 7, 10 -> mean 5.5, squared deviations 20.25 + 2.25 + 2.25 + 20.25 = 45, / 4
    expect([...reference('channel_variance', [x], { axis: 2 }).data]).toEqual([11.25, 11.25, 11.25]);
  });
  it('along a middle axis', () => {
    expect([...reference('channel_sum', [x], { axis: 1 }).data]).toEqual([1 + 2 + 3 + 7 + 8 + 9, 4 + 5 + 6 + 10 + 11 + 12]);
  });
});

describe('emitted kernels equal the reference kernels', () => {
  const cases: [string, Tensor[], Record<string, number>][] = [
    ['dense_grad_input', [randomValues([5, 6], 1), randomValues([3, 6], 2)], {}],
    ['dense_grad_kernel', [randomValues([5, 3], 1), randomValues([5, 7], 2)], {}],
    ['multiply', [randomValues([5, 3], 1), randomValues([5, 3], 2)], {}],
    ['channel_sum', [randomValues([5, 2, 3], 1)], { axis: 2 }],
    ['channel_mean', [randomValues([5, 2, 3], 1)], { axis: 1 }],
    ['channel_variance', [randomValues([5, 2, 3], 1)], { axis: 2 }],
  ];
  it.each(cases)('%s', (op, operands, attrs) => {
    const batched = operands.map((t) => !(op === 'dense_grad_input' && t === operands[1]));
    const got = runKernel(op, operands, attrs, batched);
    const want = reference(op, operands, attrs);
    expect(got.shape).toEqual(want.shape);
    got.data.forEach((v, i) => expect(v).toBeCloseTo(want.data[i]!, 5));
  });
});
