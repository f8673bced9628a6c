/**
 * tanh and sigmoid on an f32x4 in registers: the fused `tanh` / `sigmoid`
 * epilogues of the dense, conv2d and depthwise kernels. Branch-free: both
 * sides of every case are computed and chosen by lane masks.
 *
 *   exp(z), z in [-87, 0]: n = nearest(z log2 e), r = z - n ln2 in two steps
 *     (Cody-Waite: n * LN2_HI is exact), e^r by its Taylor polynomial of degree
 *     7 (|r| <= ln2 / 2: truncation 5e-9 relative), scaled by 2^n by adding
 *     n << 23 to the bits (the result stays normal down to z = -87.3).
 *   tanh(x) = x + x u Q(u), u = x^2 (the Taylor series through x^13) for
 *     |x| < 0.4 (relative accuracy near 0), else sign(x) (1 - e) / (1 + e),
 *     e = exp(-2 min(|x|, 9)) (±1 beyond 9, as in float32 and the TypeScript
 *     kernel's ±1 for ±Infinity); x's sign bit ORed in last, so -0 stays -0.
 *   sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0,
 *     e = exp(-min(|x|, 87)) (relative accuracy in both tails); 0 below -87
 *     (the TypeScript kernel's 0 at -Infinity).
 *
 * NaN stays NaN in both (f32x4.min propagates it, and no mask selects it
 * away). Within 2e-7 (1 + |y|) of the float64 functions: test/codegen/wasm-smooth.test.ts.
 */
import type { Code, Local } from './encode.js';

const LN2_HI = 0.693359375; // 355 / 512: n * LN2_HI is exact in float32 for |n| < 2^15
const LN2_LO = Math.LN2 - LN2_HI;
/** Where tanh switches from its series to the exp form. */
const TANH_SERIES_BELOW = 0.4;
/** tanh is 1 in float32 from here on. */
const TANH_ONE_FROM = 9;
/** exp's lowest argument with a normal result through the bit scaling. */
const EXP_LOWEST = -87;

/** 1/k! for k = 0..7. */
const EXP_TAYLOR = Array.from({ length: 8 }, (_, k) => 1 / Array.from({ length: k }, (_, i) => i + 1).reduce((p, v) => p * v, 1));

/**
 * tanh's Taylor coefficients of x^3, x^5, ..., x^13: 2^2n (2^2n - 1) B_2n / (2n)!,
 * B_2n the Bernoulli numbers B_4 .. B_14.
 */
const BERNOULLI = [-1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6];
const TANH_SERIES = BERNOULLI.map((b, i) => {
  const n = i + 2;
  const p = 4 ** n;
  let fact = 1;
  for (let k = 2; k <= 2 * n; k++) fact *= k;
  return (p * (p - 1) * b) / fact;
});

const splat = (v: number) => [v, v, v, v] as const;

interface Scratch {
  readonly x: Local;
  readonly a: Local;
  readonly u: Local;
  readonly e: Local;
  readonly z: Local;
  readonly n: Local;
  readonly r: Local;
}

/** The v128 scratch locals of a function, declared on first use and shared by every epilogue it applies. */
const scratchOf = new WeakMap<Code, Scratch>();

function scratch(c: Code): Scratch {
  let s = scratchOf.get(c);
  if (s === undefined) {
    const v = () => c.local('v128');
    s = { x: v(), a: v(), u: v(), e: v(), z: v(), n: v(), r: v() };
    scratchOf.set(c, s);
  }
  return s;
}

/** Horner: the polynomial with `coefficients` (highest degree first) at `at`, pushed. */
function horner(c: Code, at: Local, coefficients: readonly number[]): void {
  c.v128Const(splat(coefficients[0]!));
  for (const k of coefficients.slice(1)) c.get(at).f32x4('mul').v128Const(splat(k)).f32x4('add');
}

/** exp of the f32x4 on the stack, whose lanes are in [-87, 0] (or NaN). */
function exp(c: Code, s: Scratch): void {
  c.set(s.z);
  c.get(s.z).v128Const(splat(Math.LOG2E)).f32x4('mul').f32x4('nearest').set(s.n);
  c.get(s.z).get(s.n).v128Const(splat(LN2_HI)).f32x4('mul').f32x4('sub').get(s.n).v128Const(splat(LN2_LO)).f32x4('mul').f32x4('sub').set(s.r);
  horner(c, s.r, [...EXP_TAYLOR].reverse());
  c.get(s.n).i32x4('trunc_sat_f32x4_s').i32Const(23).i32x4('shl').i32x4('add');
}

/** tanh of the f32x4 on the stack. */
export function emitTanh(c: Code): void {
  const s = scratch(c);
  c.set(s.x);
  c.get(s.x).get(s.x).f32x4('mul').set(s.u);
  // x + x (u Q(u))
  c.get(s.x).get(s.x).get(s.u);
  horner(c, s.u, [...TANH_SERIES].reverse());
  c.f32x4('mul').f32x4('mul').f32x4('add');
  // (1 - e) / (1 + e), e = exp(-2 min(|x|, 9)): tanh |x|
  c.get(s.x).f32x4('abs').tee(s.a).v128Const(splat(TANH_ONE_FROM)).f32x4('min').v128Const(splat(-2)).f32x4('mul');
  exp(c, s);
  c.set(s.e);
  c.v128Const(splat(1)).get(s.e).f32x4('sub').v128Const(splat(1)).get(s.e).f32x4('add').f32x4('div');
  c.get(s.a).v128Const(splat(TANH_SERIES_BELOW)).f32x4('lt').v128('bitselect');
  // The sign bit of x ORed in: the sign of tanh |x|, and -0 for -0 (the series gives +0 there).
  c.get(s.x).v128Const(splat(-0)).v128('and').v128('or');
}

/** sigmoid of the f32x4 on the stack. */
export function emitSigmoid(c: Code): void {
  const s = scratch(c);
  c.set(s.x);
  c.get(s.x).f32x4('abs').v128Const(splat(-EXP_LOWEST)).f32x4('min').f32x4('neg');
  exp(c, s);
  c.set(s.e);
  // sigmoid(|x|) = 1 / (1 + e), sigmoid(-|x|) = e / (1 + e): one division, one rounding
  c.get(s.e).v128Const(splat(1)).get(s.x).v128Const(splat(0)).f32x4('lt').v128('bitselect');
  c.v128Const(splat(1)).get(s.e).f32x4('add').f32x4('div');
  c.get(s.x).v128Const(splat(EXP_LOWEST)).f32x4('lt').v128('andnot');
}
