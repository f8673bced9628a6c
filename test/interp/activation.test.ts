/**
 * Reference kernels of the activations (Keras/TF.js definitions), erf, softmax
 * and the `epilogue` attribute. Expected values are worked out from the
 * definitions in the comments; erf/erfc reference values are those of the C
 * library's erf/erfc (within an ulp; the first digits agree with Abramowitz &
 * Stegun's Table 7.1).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mapTensor } from '../../src/ir/tensor.js';
import { activationFn, epilogueNames, erf, erfc, type ActivationName } from '../../src/ops/activation.js';
import { arbSeed, expectClose, randomTensor, reference, t } from '../helpers/tensors.js';

/** The activation op applied to a row of values. */
function act(name: string, xs: number[], attrs: object = {}): number[] {
  return [...reference(name, [t([1, xs.length], xs)], attrs).data];
}

const E1 = Math.exp(-1) - 1; // e^-1 - 1 = -0.6321205588285577

describe('elementwise activations', () => {
  const cases: [string, object, number[], number[]][] = [
    ['relu', {}, [-2, 0, 3], [0, 0, 3]],
    ['relu6', {}, [-1, 3, 7], [0, 3, 6]],
    // x >= 0: x; else alpha * x
    ['leaky_relu', { alpha: 0.3 }, [-2, 0, 5], [-0.6, 0, 5]],
    // x > 0: x; else alpha * (e^x - 1)
    ['elu', { alpha: 1 }, [-1, 0, 2], [E1, 0, 2]],
    ['elu', { alpha: 2 }, [-1], [2 * E1]],
    // scale * x, or scale * alpha * (e^x - 1): 1.0507009873554805 * 1.6732632423543772 * (e^-1 - 1)
    ['selu', {}, [1, 0, -1], [1.0507009873554805, 0, -1.1113307378125625]],
    // 0.5 x (1 + erf(x / sqrt 2)): Phi(1) = 0.8413447460685429, Phi(-1) = 1 - Phi(1)
    ['gelu', { approximate: false }, [1, 0, -1, 2], [0.8413447460685429, 0, -0.15865525393145707, 1.9544997361036416]],
    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) at 1: tanh(0.7978845608 * 1.044715) = 0.682383981...
    ['gelu', { approximate: true }, [1, 0, -1], [0.8411919906082768, 0, -0.15880800939172324]],
    // x * sigmoid(x): sigmoid(1) = 1 / (1 + e^-1) = 0.7310585786300049
    ['swish', {}, [1, 0, -1], [0.7310585786300049, 0, -0.2689414213699951]],
    ['tanh', {}, [0.5, 0, -0.5], [0.46211715726000974, 0, -0.46211715726000974]],
    // 1 / (1 + e^-x): sigmoid(2) = 0.8807970779778823, sigmoid(-2) = 1 - sigmoid(2)
    ['sigmoid', {}, [0, 2, -2], [0.5, 0.8807970779778823, 0.11920292202211769]],
    // clip(0.2 x + 0.5, 0, 1)
    ['hard_sigmoid', { alpha: 0.2 }, [-3, -2.5, 0, 1, 2.5, 3], [0, 0, 0.5, 0.7, 1, 1]],
    // Keras 3: relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1)
    ['hard_sigmoid', { alpha: 1 / 6 }, [-4, -3, 0, 1.5, 3, 4], [0, 0, 0.5, 0.75, 1, 1]],
    // log(1 + e^x): softplus(0) = ln 2, softplus(2) = 2 + ln(1 + e^-2)
    ['softplus', {}, [0, 2], [Math.LN2, 2.1269280110429727]],
    ['linear', {}, [-1.5, 0, 7], [-1.5, 0, 7]],
  ];
  for (const [name, attrs, xs, ys] of cases) {
    it(`${name} ${JSON.stringify(attrs)} at ${xs.join(', ')}`, () => {
      expectClose(t([1, xs.length], act(name, xs, attrs)), ys, 1e-15);
    });
  }

  it('sigmoid stays finite and accurate for large |x|', () => {
    // naive e^x / (1 + e^x) is Inf/Inf = NaN at 800; e^-40 / (1 + e^-40) = 4.248354255291589e-18
    expect(act('sigmoid', [800, -800, 40])).toEqual([1, 0, 1]);
    expectClose(t([1], act('sigmoid', [-40])), [4.248354255291589e-18], 1e-15);
    expect(act('swish', [-800, 800])).toEqual([-0, 800]);
  });

  it('softplus stays finite and keeps small values for large |x|', () => {
    // log(1 + e^1000) overflows naively; log1p(e^-50) = 1.9287498479639178e-22 (log(1 + e^-50) would be 0)
    expect(act('softplus', [1000, -1000])).toEqual([1000, 0]);
    const [small] = act('softplus', [-50]);
    expect(Math.abs(small! - 1.9287498479639178e-22) / 1.9287498479639178e-22).toBeLessThan(1e-14);
  });

  it('gelu keeps its tiny negative values (erfc, not 1 + erf)', () => {
    // gelu(-10) = -5 erfc(10 / sqrt 2) = -7.619853024160593e-23
    const [v] = act('gelu', [-10], { approximate: false });
    expect(Math.abs(v! / -7.619853024160593e-23 - 1)).toBeLessThan(1e-12);
  });
});

describe('erf', () => {
  // [x, erf(x), erfc(x)], e.g. erf(0.5) = 0.5204998778130465, erfc(5) = 1.5374597944280351e-12
  const table: [number, number, number][] = [
    [0.1, 0.1124629160182849, 0.8875370839817152],
    [0.5, 0.5204998778130465, 0.4795001221869535],
    [1, 0.8427007929497149, 0.15729920705028513],
    [1.5, 0.9661051464753108, 0.033894853524689274],
    [2, 0.9953222650189527, 0.004677734981047265],
    [2.5, 0.999593047982555, 0.0004069520174449589],
    [2.9999, 0.9999778955735178, 2.210442648216091e-5],
    [3, 0.9999779095030014, 2.2090496998585438e-5],
    [3.0001, 0.9999779234241298, 2.2076575870193304e-5],
    [3.5, 0.9999992569016276, 7.430983723414128e-7],
    [4, 0.9999999845827421, 1.541725790028002e-8],
    [5, 0.9999999999984626, 1.5374597944280351e-12],
    [6, 1, 2.1519736712498916e-17],
  ];
  it('matches the table to 1e-15 (erf) and 1e-10 relative (erfc)', () => {
    for (const [x, e, c] of table) {
      expect(Math.abs(erf(x) - e), `erf(${x})`).toBeLessThan(1e-15);
      expect(Math.abs(erf(-x) + e), `erf(-${x})`).toBeLessThan(1e-15);
      expect(Math.abs(erfc(x) / c - 1), `erfc(${x})`).toBeLessThan(1e-10);
      expect(Math.abs(erfc(-x) - (2 - c)), `erfc(-${x})`).toBeLessThan(1e-15);
    }
    expect(erf(0)).toBe(0);
    // erfc(10) = 2.088487583762545e-45, far below what 1 - erf could show
    expect(Math.abs(erfc(10) / 2.088487583762545e-45 - 1)).toBeLessThan(1e-13);
  });

  it('is odd, increasing, and within (-1, 1)', () => {
    fc.assert(
      fc.property(fc.double({ min: -8, max: 8, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), (x, dx) => {
        expect(erf(-x)).toBe(-erf(x));
        expect(erf(x + dx)).toBeGreaterThanOrEqual(erf(x));
        expect(Math.abs(erf(x))).toBeLessThanOrEqual(1);
        expect(Math.abs(erf(x) + erfc(x) - 1)).toBeLessThan(1e-15);
      }),
    );
  });
});

describe('softmax', () => {
  it('normalizes exponentials: softmax([1, 2, 3]) = e^i / (e + e^2 + e^3)', () => {
    expectClose(t([1, 3], act('softmax', [1, 2, 3], { axis: 1 })), [0.09003057317038046, 0.24472847105479767, 0.6652409557748219], 1e-15);
    // subtracting the max first: e^1000 would overflow
    expectClose(t([1, 3], act('softmax', [1000, 1001, 1002], { axis: 1 })), [0.09003057317038046, 0.24472847105479767, 0.6652409557748219], 1e-15);
  });

  it('works along an inner axis', () => {
    // x [1, 2, 2]: along axis 1, the pairs are (x[0,0,j], x[0,1,j]) = (0, ln 3) and (5, 5)
    const y = reference('softmax', [t([1, 2, 2], [0, 5, Math.log(3), 5])], { axis: 1 });
    expectClose(y, t([1, 2, 2], [0.25, 0.5, 0.75, 0.5]), 1e-15);
  });

  it('rows sum to 1 and are invariant to adding a constant', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 3 }), arbSeed, fc.double({ min: -50, max: 50, noNaN: true }), (b, n, inner, seed, shift) => {
        const x = mapTensor(randomTensor([b, n, inner], seed, 'float'), (v) => 10 * v);
        const y = reference('softmax', [x], { axis: 1 });
        for (let o = 0; o < b; o++)
          for (let r = 0; r < inner; r++) {
            let sum = 0;
            for (let i = 0; i < n; i++) sum += y.data[(o * n + i) * inner + r]!;
            expect(Math.abs(sum - 1)).toBeLessThan(1e-14);
          }
        expectClose(reference('softmax', [mapTensor(x, (v) => v + shift)], { axis: 1 }), y, 1e-12);
      }),
    );
  });
});

describe('epilogue', () => {
  const attrsOf = (name: ActivationName, alpha: number, approximate: boolean) =>
    name === 'leaky_relu' || name === 'elu' ? { alpha } : name === 'hard_sigmoid' ? { alpha: Math.abs(alpha) + 0.1 } : name === 'relu_general' ? { max_value: 4, negative_slope: Math.abs(alpha), threshold: 0.5 } : name === 'gelu' ? { approximate } : {};

  it('each fused activation equals the separate activation op (dense, conv2d, affine, add)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...epilogueNames), fc.double({ min: -2, max: 2, noNaN: true }), fc.boolean(), arbSeed, (name, alpha, approximate, seed) => {
        const attrs = attrsOf(name, alpha, approximate);
        const epilogue = { op: name, ...attrs };
        const x = randomTensor([2, 3, 3, 2], seed, 'float');
        const cases: [string, ReturnType<typeof randomTensor>[], object][] = [
          ['dense', [x, randomTensor([2, 3], seed + 1, 'float'), randomTensor([3], seed + 2, 'float')], {}],
          ['conv2d', [x, randomTensor([2, 2, 2, 3], seed + 1, 'float')], { strides: [1, 1], padding: 'same', dilation_rate: [1, 1], groups: 1 }],
          ['affine', [x, randomTensor([2], seed + 1, 'float'), randomTensor([2], seed + 2, 'float')], { axis: 3 }],
          ['add', [x, randomTensor([2, 3, 3, 2], seed + 1, 'float')], {}],
        ];
        for (const [op, inputs, opAttrs] of cases) {
          const fused = reference(op, inputs, { ...opAttrs, epilogue });
          const separate = reference(name, [reference(op, inputs, opAttrs)], attrs);
          expectClose(fused, separate, 0);
        }
      }),
    );
  });

  it('activationFn is the activation op on one element', () => {
    for (const name of epilogueNames) {
      const attrs = attrsOf(name, 0.1, true);
      expect(act(name, [-1.5], attrs)).toEqual([activationFn(name, attrs)(-1.5)]);
    }
  });

  it('an epilogue that lacks its attribute is an error, not a silent default', () => {
    expect(() => reference('add', [t([1], [-1]), t([1], [0])], { epilogue: { op: 'leaky_relu' } })).toThrow(/leaky_relu needs its alpha/);
  });
});
