/**
 * Scalar functions that several activation records share, in two forms each:
 * the float64 reference (what the interpreter runs) and the generated helper
 * (module-level source text a generated module carries, since it imports
 * nothing). Both are written with the same formulas and overflow guards.
 */
import type { RuntimeHelper } from '../emit.js';

/** SELU's constants (Klambauer et al. 2017), as Keras writes them. */
export const SELU_ALPHA = 1.6732632423543772;
export const SELU_SCALE = 1.0507009873554805;

/** sigmoid without overflow: exp is only taken of a non-positive number. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** log(1 + exp(x)) = max(x, 0) + log(1 + exp(-|x|)): no overflow, no lost digits for x << 0. */
export function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/**
 * erfc to about 1e-15 (absolute; relative for x >= 3):
 *  - |x| < 3: 1 - erf(x), with erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))
 *    (Abramowitz-Stegun 7.1.6: all terms have the sign of x, so nothing cancels; <= 50 terms);
 *  - x >= 3: exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
 *    (A-S 7.1.14, partial numerators k/2), evaluated bottom-up from depth 60;
 *  - x <= -3: 2 - erfc(-x).
 */
export function erfc(x: number): number {
  if (x <= -3) return 2 - erfc(-x);
  if (x < 3) return 1 - erf(x);
  let f = x;
  for (let k = 60; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** The error function; see `erfc` for the method. */
export function erf(x: number): number {
  if (Math.abs(x) >= 3) return x > 0 ? 1 - erfc(x) : erfc(-x) - 1;
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; Math.abs(term) > Math.abs(sum) * 1e-17; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}

/**
 * tanh as a rational function: odd [13/6] minimax on [-c, c], c = 7.90531110763549805,
 * and ±1 beyond (Eigen's fast float tanh). Absolute error below 3e-7 everywhere (2.6e-8
 * inside [-c, c]; at c, 1 - tanh(c) = 2.6e-7), checked on a dense grid in
 * test/codegen/helpers.test.ts. About 2.5 ns against 10-20 ns for Math.tanh
 * (bench/micro/activations.js). NaN stays NaN (the clamp's comparisons are false).
 */
export const tanhHelper: RuntimeHelper = {
  name: 'tanh',
  source: `/** tanh to within 3e-7 (absolute): a rational minimax fit on [-7.905, 7.905], ±1 beyond. */
function tanh(x: number): number {
  const v = x < -7.90531110763549805 ? -7.90531110763549805 : x > 7.90531110763549805 ? 7.90531110763549805 : x;
  const v2 = v * v;
  const p = v * (4.89352455891786e-3 + v2 * (6.37261928875436e-4 + v2 * (1.48572235717979e-5 + v2 * (5.12229709037114e-8 + v2 * (-8.60467152213735e-11 + v2 * (2.00018790482477e-13 + v2 * -2.76076847742355e-16))))));
  const q = 4.89352518554385e-3 + v2 * (2.2684346324390e-3 + v2 * (1.18534705686654e-4 + v2 * 1.19825839466702e-6));
  return p / q;
}`,
};

/**
 * sigmoid(x) = (1 + tanh(x / 2)) / 2 through the rational tanh for |x| <= 4,
 * where its relative error, in sigmoid and in 1 - sigmoid alike, stays below
 * 6e-7 (so log(p) and log(1 - p) of a loss keep their accuracy); beyond, the
 * exact form with exp of a non-positive number. About 3 ns against 8 ns.
 */
export const sigmoidHelper: RuntimeHelper = {
  name: 'sigmoid',
  source: `/** 1 / (1 + exp(-x)): (1 + tanh(x / 2)) / 2 for |x| <= 4 (relative error < 6e-7), else exp of a non-positive number. */
function sigmoid(x: number): number {
  if (x >= -4 && x <= 4) return 0.5 + 0.5 * tanh(0.5 * x);
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}`,
  uses: [tanhHelper],
};

export const erfcHelper: RuntimeHelper = {
  name: 'erfc',
  source: `/** erfc to about 1e-15: a series for |x| < 3, a continued fraction beyond (Abramowitz-Stegun 7.1.6, 7.1.14). */
function erfc(x: number): number {
  if (x <= -3) return 2 - erfc(-x);
  if (x < 3) {
    const x2 = x * x;
    let term = x;
    let sum = x;
    for (let n = 1; Math.abs(term) > Math.abs(sum) * 1e-17; n++) {
      term *= (2 * x2) / (2 * n + 1);
      sum += term;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
  }
  let f = x;
  for (let k = 60; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}`,
};
