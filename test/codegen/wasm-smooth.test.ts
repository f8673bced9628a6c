/**
 * The in-register tanh and sigmoid of the SIMD kernels (src/codegen/wasm/smooth.ts,
 * through `applyEpilogue`), run in Node over a dense grid of float32 inputs
 * and special values against Math.tanh and 1 / (1 + exp(-x)) in float64 at
 * the same inputs: within 2e-7 (1 + |y|) everywhere, relatively accurate
 * near 0 (tanh) and in the negative tail (sigmoid), and NaN, ±Infinity, ±0
 * as the TypeScript helpers (src/ops/activations/math.ts) give them.
 */
import { describe, expect, it } from 'vitest';
import { ModuleBuilder } from '../../src/codegen/wasm/encode.js';
import { applyEpilogue, loopUntil, params } from '../../src/codegen/wasm/kernel-common.js';
import type { SimdEpilogue } from '../../src/ops/simd-def.js';
import { wasm } from '../helpers/wasm.js';

const ATOL = 2e-7;

/** y = f(x) over n floats (n a multiple of 4) at byte offsets x and y, through the epilogue; returns y. */
function run(epilogue: SimdEpilogue, xs: Float32Array): Float32Array {
  const bytes = new ModuleBuilder()
    .importMemory(1)
    .func('f', ['i32', 'i32', 'i32', 'i32', 'i32'], [], (c) => {
      const { n, x, y } = params(c);
      const end = c.local('i32');
      c.get(n).i32Const(4).i32('mul').get(x).i32('add').set(end);
      loopUntil(c, x, end, true, () => {
        c.get(y).get(x).load('v128', 0);
        applyEpilogue(c, epilogue);
        c.store('v128', 0);
        c.get(x).i32Const(16).i32('add').set(x);
        c.get(y).i32Const(16).i32('add').set(y);
      });
    })
    .encode();
  expect(wasm.validate(bytes)).toBe(true);
  const n = Math.ceil(xs.length / 4) * 4;
  const memory = new wasm.Memory({ initial: Math.ceil((n * 8 + 64) / 65536) });
  const { exports } = new wasm.Instance(new wasm.Module(bytes), { env: { memory } });
  const f32 = new Float32Array(memory.buffer);
  f32.set(xs, 0);
  f32.fill(NaN, n, 2 * n);
  // NaN-filled y: the inputs are no NaN in the grids, so every output must be written.
  (exports['f'] as (...a: number[]) => void)(n, 0, 0, 0, n * 4);
  return f32.slice(n, n + xs.length);
}

const sigmoid64 = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const reference: Record<'tanh' | 'sigmoid', (x: number) => number> = { tanh: Math.tanh, sigmoid: sigmoid64 };

/** Every float32 step of 2^-12 over [-20, 20], then floats spread geometrically from 1e-30 to 100 of both signs, and the switch points. */
function grid(): Float32Array {
  const v: number[] = [];
  for (let i = -20 * 4096; i <= 20 * 4096; i++) v.push(i / 4096);
  for (let e = -30; e <= 2; e += 0.001) v.push(10 ** e, -(10 ** e));
  for (const t of [0.4, 9, 87, 86.9, 87.3, 88, 88.8, 89, 100, 103, 1e4, 3e38]) for (let k = -4; k <= 4; k++) v.push(t * (1 + k * 2 ** -23), -t * (1 + k * 2 ** -23));
  v.push(1.2e-38, -1.2e-38, 1e-45, -1e-45, 0, -0);
  return Float32Array.from(v);
}

describe.each(['tanh', 'sigmoid'] as const)('%s in f32x4', (fn) => {
  const xs = grid();
  const y = run(fn, xs);
  const f = reference[fn];

  it('is within 2e-7 (1 + |y|) of float64 over a dense grid', () => {
    let worst = 0;
    let at = 0;
    for (let i = 0; i < xs.length; i++) {
      const want = f(xs[i]!);
      const err = Math.abs(y[i]! - want) / (1 + Math.abs(want));
      if (!(err <= worst)) {
        worst = err;
        at = xs[i]!;
      }
    }
    expect(worst, `worst at x = ${at}`).toBeLessThanOrEqual(ATOL);
  });

  it('is relatively accurate where the function is small', () => {
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!;
      const want = f(x);
      // tanh near 0 (its series), sigmoid for x < 0 (e / (1 + e)), while the result is a normal float32.
      const small = fn === 'tanh' ? Math.abs(x) < 1 : x < 0 && x > -87;
      if (small && Math.abs(want) >= 1.2e-38 && !(Math.abs(y[i]! - want) <= 4e-7 * Math.abs(want))) throw new Error(`${fn}(${x}) = ${y[i]}, expected ${want}`);
    }
  });

  it('keeps NaN and gives ±Infinity and ±0 what the TypeScript kernels give', () => {
    const special = run(fn, Float32Array.from([NaN, Infinity, -Infinity, 0, -0, -NaN, 3.4e38, -3.4e38]));
    expect(Number.isNaN(special[0])).toBe(true);
    expect(Number.isNaN(special[5])).toBe(true);
    if (fn === 'tanh') {
      expect([special[1], special[2], special[6], special[7]]).toEqual([1, -1, 1, -1]);
      expect(Object.is(special[3], 0)).toBe(true);
      expect(Object.is(special[4], -0)).toBe(true);
    } else {
      expect([special[1], special[2], special[3], special[4], special[6], special[7]]).toEqual([1, 0, 0.5, 0.5, 1, 0]);
    }
  });

  it('is monotone over the grid and stays within its range', () => {
    const sorted = Float32Array.from(xs).sort();
    const ys = run(fn, sorted);
    for (let i = 1; i < ys.length; i++) if (!(ys[i]! >= ys[i - 1]!)) throw new Error(`${fn} decreases at ${sorted[i]}: ${ys[i - 1]} then ${ys[i]}`);
    expect(Math.min(...ys.subarray(0, 10))).toBeGreaterThanOrEqual(fn === 'tanh' ? -1 : 0);
    expect(Math.max(...ys.subarray(ys.length - 10))).toBeLessThanOrEqual(1);
  });
});
