/**
 * Training-mode batch normalization: forward semantics by hand, the exact
 * backward pass (through the batch mean and variance) against float64 central
 * differences, batch renormalization with r and d held constant, and the
 * emitted kernels against the reference kernels.
 */
import { describe, expect, it } from 'vitest';
import type { Tensor } from '../../src/ir/tensor.js';
import { expectGradientsMatch, randomValues, ruleGradients } from '../helpers/gradcheck.js';
import { runKernel } from '../helpers/kernel.js';
import { reference } from '../helpers/tensors.js';

const noClip = { rmax: null, rmin: 0, dmax: null };
const attrs = (over: object = {}) => ({ axis: 1, epsilon: 0.001, center: true, scale: true, renorm: false, renorm_clipping: noClip, ...over });

describe('batchnorm_train forward', () => {
  it('normalizes each channel by the batch mean and biased variance', () => {
    // channel 0: 1, 3 -> mean 2, var 1; channel 1: 0, 4 -> mean 2, var 4
    const x: Tensor = { shape: [2, 2], data: Float64Array.from([1, 0, 3, 4]) };
    const y = reference('batchnorm_train', [x], attrs({ center: false, scale: false, epsilon: 1e-9 }));
    [-1, -1, 1, 1].forEach((v, i) => expect(y.data[i]).toBeCloseTo(v, 6));
  });
  it('renorm: r and d from the moving statistics, clipped', () => {
    const x: Tensor = { shape: [2, 1], data: Float64Array.from([1, 3]) }; // mean 2, var 1
    const mm: Tensor = { shape: [1], data: Float64Array.from([0]) };
    const mv: Tensor = { shape: [1], data: Float64Array.from([4]) }; // sigma 2: r = 0.5, d = 1
    const a = attrs({ center: false, scale: false, renorm: true, epsilon: 1e-12 });
    const y = reference('batchnorm_train', [x, mm, mv], a);
    expect(y.data[0]).toBeCloseTo(0.5 * -1 + 1, 6);
    const clipped = reference('batchnorm_train', [x, mm, mv], { ...a, renorm_clipping: { rmax: null, rmin: 0.8, dmax: 0.25 } });
    expect(clipped.data[1]).toBeCloseTo(0.8 * 1 + 0.25, 6);
  });
});

describe('batchnorm_train gradient', () => {
  const gamma = randomValues([3], 11);
  const beta = randomValues([3], 12);
  it('rank 2: x, gamma and beta', () => {
    expectGradientsMatch('batchnorm_train', [{ value: randomValues([4, 3], 1) }, { value: gamma }, { value: beta }], attrs());
  });
  it('rank 4, channels last', () => {
    expectGradientsMatch('batchnorm_train', [{ value: randomValues([2, 2, 3, 3], 2) }, { value: gamma }, { value: beta }], attrs({ axis: 3 }));
  });
  it('rank 4, a middle axis, no gamma, no beta', () => {
    expectGradientsMatch('batchnorm_train', [{ value: randomValues([2, 3, 2, 2], 3) }], attrs({ axis: 1, center: false, scale: false }));
  });
  it('renorm with r and d clipped to constants', () => {
    const a = attrs({ renorm: true, renorm_clipping: { rmax: 1.5, rmin: 1.5, dmax: 0 } });
    const mm = randomValues([3], 5);
    const mv = { shape: [3], data: Float64Array.from([0.5, 1, 2]) };
    expectGradientsMatch('batchnorm_train', [{ value: randomValues([5, 3], 4) }, { value: gamma }, { value: beta }, { value: mm, check: false }, { value: mv, check: false }], a);
  });
  it('renorm treats r and d as constants: dx is r times the dx of gamma * r', () => {
    const x = randomValues([6, 3], 6);
    const mm = randomValues([3], 7);
    const mv = { shape: [3], data: Float64Array.from([0.5, 1, 2]) };
    const w = randomValues([6, 3], 8);
    const a = attrs({ renorm: true });
    const [dx] = ruleGradients('batchnorm_train', [{ value: x }, { value: gamma }, { value: beta }, { value: mm, check: false }, { value: mv, check: false }], a, w);
    // r per channel, from the batch and moving statistics
    const r = [0, 1, 2].map((c) => {
      const v = [0, 1, 2, 3, 4, 5].map((k) => x.data[k * 3 + c]!);
      const mean = v.reduce((s, e) => s + e, 0) / 6;
      const variance = v.reduce((s, e) => s + (e - mean) ** 2, 0) / 6;
      return Math.sqrt(variance + 0.001) / Math.sqrt(mv.data[c]! + 0.001);
    });
    const scaledGamma = { shape: [3], data: gamma.data.map((g, c) => g * r[c]!) };
    const [plain] = ruleGradients('batchnorm_train', [{ value: x }, { value: scaledGamma }, { value: beta }], attrs(), w);
    dx!.data.forEach((v, i) => expect(v).toBeCloseTo(plain!.data[i]!, 12));
  });
});

describe('emitted kernels equal the reference kernels', () => {
  const x = randomValues([5, 2, 3], 1);
  const dy = randomValues([5, 2, 3], 2);
  const g = randomValues([3], 3);
  const b = randomValues([3], 4);
  const mm = randomValues([3], 5);
  const mv = { shape: [3], data: Float64Array.from([0.5, 1, 2]) };
  const renorm = attrs({ axis: 2, renorm: true, renorm_clipping: { rmax: 1.2, rmin: 0.9, dmax: 0.1 } });
  const cases: [string, Tensor[], object][] = [
    ['batchnorm_train', [x, g, b], attrs({ axis: 2 })],
    ['batchnorm_train', [x, g, b, mm, mv], renorm],
    ['batchnorm_train', [x], attrs({ axis: 1, center: false, scale: false })],
    ['batchnorm_train_grad_input', [dy, x, g], attrs({ axis: 2 })],
    ['batchnorm_train_grad_input', [dy, x, g, mm, mv], renorm],
    ['batchnorm_train_grad_gamma', [dy, x], attrs({ axis: 2 })],
    ['batchnorm_train_grad_gamma', [dy, x, mm, mv], renorm],
  ];
  it.each(cases)('%s', (op, operands, a) => {
    const got = runKernel(op, operands, a as never);
    const want = reference(op, operands, a);
    expect(got.shape).toEqual(want.shape);
    got.data.forEach((v, i) => expect(v).toBeCloseTo(want.data[i]!, 4));
  });
});

describe('inference-mode batchnorm gradient (moving statistics constant)', () => {
  const mm = randomValues([3], 21);
  const mv = { shape: [3], data: Float64Array.from([0.5, 1, 2]) };
  const a = { axis: 3, epsilon: 0.001, momentum: 0.99, center: true, scale: true, renorm: false, renorm_clipping: noClip, renorm_momentum: 0.99 };
  it('x, gamma and beta by central differences', () => {
    expectGradientsMatch('batchnorm', [{ value: randomValues([2, 2, 2, 3], 22) }, { value: randomValues([3], 23) }, { value: randomValues([3], 24) }, { value: mm, check: false }, { value: mv, check: false }], a);
  });
  it('without gamma, along a middle axis', () => {
    expectGradientsMatch('batchnorm', [{ value: randomValues([2, 3, 2], 25) }, { value: randomValues([3], 24) }, { value: mm, check: false }, { value: mv, check: false }], { ...a, axis: 1, scale: false });
  });
  it('emitted kernels equal the reference', () => {
    const dy = randomValues([4, 2, 3], 26);
    const x = randomValues([4, 2, 3], 27);
    const g = randomValues([3], 28);
    for (const wrt of ['x', 'gamma'] as const) {
      const attrs = { axis: 2, epsilon: 0.001, scale: true, wrt };
      const got = runKernel('batchnorm_grad', [dy, x, g, mm, mv], attrs);
      const want = reference('batchnorm_grad', [dy, x, g, mm, mv], attrs);
      got.data.forEach((v, i) => expect(v).toBeCloseTo(want.data[i]!, 4));
    }
  });
});
