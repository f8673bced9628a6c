/**
 * The activation helpers that generated modules carry are source text written
 * beside the reference functions (a module imports nothing). This pins them
 * together: each helper, compiled as a module would compile it, computes what
 * the reference `activationFn` computes: to 1e-15, except the rational tanh
 * (and sigmoid and swish through it), which are checked against Math.tanh and
 * the exact sigmoid on a dense grid to their documented error.
 */
import { describe, expect, it } from 'vitest';
import { activationFn, activationHelper, epilogueNames, type ScalarActivationAttrs } from '../../src/ops/activation.js';
import { compileHelper } from '../helpers/kernel.js';


const points = [
  ...Array.from({ length: 401 }, (_, i) => -10 + i * 0.05),
  -40, -3, -2.999999, 3, 2.999999, 40, 1e-8, -1e-8, 0, -0, 700, -700, Infinity, -Infinity, NaN,
];

const attrsOf: Partial<Record<string, ScalarActivationAttrs[]>> = {
  leaky_relu: [{ alpha: 0.3 }, { alpha: 0.01 }],
  elu: [{ alpha: 1 }, { alpha: 0.5 }],
  gelu: [{ approximate: false }, { approximate: true }],
  hard_sigmoid: [{ alpha: 0.2 }, { alpha: 1 / 6 }],
  relu_general: [
    { max_value: 4, negative_slope: 0.1, threshold: 0.5 },
    { max_value: null, negative_slope: 0, threshold: 1 },
    { max_value: 6, negative_slope: 0.2, threshold: 0 },
  ],
};

/**
 * Allowed |helper - reference| at x for the approximated helpers: tanh within
 * 3e-7 absolute; sigmoid within 6e-7 relative to both s and 1 - s (what a
 * log-loss reads); swish = x * sigmoid(x) within 6e-7 relative.
 */
const approximate: Partial<Record<string, (x: number, want: number) => number>> = {
  tanh: () => 3e-7,
  sigmoid: (_x, want) => 6e-7 * Math.min(want, 1 - want),
  swish: (_x, want) => 6e-7 * Math.abs(want),
};

describe('generated activation helpers equal the reference functions', () => {
  for (const name of epilogueNames) {
    for (const attrs of attrsOf[name] ?? [{}]) {
      it(`${name} ${JSON.stringify(attrs)}`, () => {
        const helper = compileHelper(activationHelper(name as Parameters<typeof activationHelper>[0], attrs));
        const reference = activationFn(name as Parameters<typeof activationFn>[0], attrs);
        const tolerance = approximate[name] ?? ((_x: number, want: number) => 1e-15 * Math.max(1, Math.abs(want)));
        for (const x of points) {
          const want = reference(x);
          const got = helper(x);
          if (Number.isNaN(want)) expect(got, `${name}(${x})`).toBeNaN();
          else if (!Number.isFinite(want)) expect(got, `${name}(${x})`).toBe(want);
          else expect(Math.abs(got - want), `${name}(${x}): ${got} vs ${want}`).toBeLessThanOrEqual(Math.max(tolerance(x, want), 1e-15 * Math.max(1, Math.abs(want))));
        }
      });
    }
  }
});

describe('the rational tanh and the sigmoid through it, on a dense grid', () => {
  // Every 1e-4 over [-20, 20] (400,001 points), and the odd symmetry at each.
  const grid = Array.from({ length: 400001 }, (_, i) => -20 + i * 1e-4);
  it('tanh is within 3e-7 of Math.tanh (under the 1e-6 asked), odd, and in [-1, 1]', () => {
    const tanh = compileHelper(activationHelper('tanh'));
    let worst = 0;
    const broken: number[] = [];
    for (const x of grid) {
      const got = tanh(x);
      worst = Math.max(worst, Math.abs(got - Math.tanh(x)));
      if (tanh(-x) !== -got || Math.abs(got) > 1) broken.push(x);
    }
    expect(worst).toBeLessThan(3e-7);
    expect(broken, 'not odd or outside [-1, 1] at').toEqual([]);
    expect(Object.is(tanh(-0), -0)).toBe(true);
  });
  it('sigmoid is within 6e-7 relative of the exact sigmoid, in s and in 1 - s', () => {
    const sigmoid = compileHelper(activationHelper('sigmoid'));
    const exact = activationFn('sigmoid', {});
    let worst = 0;
    for (const x of grid) {
      const want = exact(x);
      worst = Math.max(worst, Math.abs(sigmoid(x) - want) / Math.min(want, 1 - want || 1));
    }
    expect(worst).toBeLessThan(6e-7);
  });
});
