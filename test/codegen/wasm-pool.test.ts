/**
 * The Trainer's max pooling SIMD kernels (src/codegen/wasm/pool.ts), the
 * gradient's asked for through max_pool2d_grad's `simd` rule (the forward's
 * over the same windows): the forward against the float64
 * reference exactly (both are Math.max), and the gradient against the
 * TypeScript kernel the Trainer runs without SIMD, bit for bit (signed zeros
 * and NaNs included): ties (the first maximum wins), windows clipped by
 * `same` padding, strides below, at and above the pool size (overlapping
 * windows add up; cells in no window get zeros), NaN and -Infinity in x.
 * Operands sit between NaN guards and must come back unchanged; y starts as
 * NaN, so every float left unwritten shows.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { windowCover } from '../../src/codegen/wasm/pool.js';
import { buildSimdModule } from '../../src/codegen/wasm/module.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { tensor } from '../../src/ir/types.js';
import { getOp } from '../../src/ops/registry.js';
import { unrolledPoolCells, windowRuns, type MaxPoolGradRequest } from '../../src/ops/simd-def.js';
import { runKernel as runTypeScript } from '../helpers/kernel.js';
import { runSimdKernel } from '../helpers/simd-kernel.js';
import { rng } from '../helpers/tensors.js';

interface Pool {
  readonly h: number;
  readonly w: number;
  readonly c: number;
  readonly pool: readonly [number, number];
  readonly strides: readonly [number, number];
  readonly padding: 'valid' | 'same';
}

/** x values: `ties` draws from a few values (equal maxima, ±0), with a NaN or ±Infinity now and then. */
function values(len: number, next: () => number, mode: 'ties' | 'floats' | 'special'): Float32Array {
  const few = [-2, -1, -0, 0, 1, 2];
  const special = [NaN, -Infinity, Infinity, -0, 0, 1, -1];
  return Float32Array.from({ length: len }, () => {
    if (mode === 'floats') return next() * 2 - 1;
    if (mode === 'special' && next() < 0.15) return special[Math.floor(next() * special.length)]!;
    return few[Math.floor(next() * few.length)]!;
  });
}

const tensorOf = (data: Float32Array, shape: number[]): Tensor => ({ shape, data: Float64Array.from(data) });

const tally = { cases: 0, overlapping: 0, clipped: 0, uncovered: 0, ties: 0, nan: 0, blocks: 0, oneExample: 0 };

/** Whether some window of x holds its maximum in two cells of one channel: the first-maximum rule decides. */
function hasTie(x: Float32Array, p: Pool, n: number, oh: number, ow: number): boolean {
  const rows = windowRuns(p.h, oh, p.pool[0], p.strides[0], before(p.h, oh, p.pool[0], p.strides[0], p.padding));
  const cols = windowRuns(p.w, ow, p.pool[1], p.strides[1], before(p.w, ow, p.pool[1], p.strides[1], p.padding));
  const starts = (runs: typeof rows, s: number) => runs.flatMap((r) => Array.from({ length: r.count }, (_, i) => [r.start + i * s, r.len] as const));
  for (let e = 0; e < n; e++)
    for (const [y0, rowsIn] of starts(rows, p.strides[0]))
      for (const [x0, colsIn] of starts(cols, p.strides[1]))
        for (let ch = 0; ch < p.c; ch++) {
          const cells: number[] = [];
          for (let dy = 0; dy < rowsIn; dy++) for (let dx = 0; dx < colsIn; dx++) cells.push(x[((e * p.h + y0 + dy) * p.w + x0 + dx) * p.c + ch]!);
          const max = Math.max(...cells);
          if (cells.filter((v) => v === max).length > 1) return true;
        }
  return false;
}

function before(size: number, out: number, k: number, s: number, padding: string): number {
  return padding === 'valid' ? 0 : Math.floor(Math.max((out - 1) * s + k - size, 0) / 2);
}

/** The forward and the gradient kernels the op rules select for `p`, checked on n examples. */
function check(p: Pool, n: number, seed: number, mode: 'ties' | 'floats' | 'special'): void {
  const attrs = { pool_size: [...p.pool], strides: [...p.strides], padding: p.padding };
  const fwd = getOp('max_pool2d')!;
  const grad = getOp('max_pool2d_grad')!;
  const xType = tensor(['N', p.h, p.w, p.c]);
  const yType = fwd.infer([xType], attrs as never);
  const [, oh, ow] = yType.shape as [string, number, number, number];
  const gradSel = grad.simd!({ operands: [yType, xType], result: xType, attrs: attrs as never }, 'training');
  expect(gradSel, 'the rule selects the SIMD kernel for whole vectors of channels').toBeTruthy();
  // The forward over the same windows (max_pool2d does not select it yet).
  const fwdSel = { request: { kind: 'max_pool2d', window: (gradSel!.request as MaxPoolGradRequest).window } as const };

  const next = rng(seed);
  const xShape = [n, p.h, p.w, p.c];
  const yShape = [n, oh, ow, p.c];
  const x = values(n * p.h * p.w * p.c, next, mode);
  const y = runSimdKernel(fwdSel!.request, n, [x], n * oh * ow * p.c);
  // Exactly the float64 reference (Math.max), signed zeros included.
  expect(y).toEqual(Float32Array.from(fwd.reference([tensorOf(x, xShape)], attrs as never).data));
  // The TypeScript kernel, but for the sign of a zero maximum (its max2 may give +0).
  const ts = runTypeScript('max_pool2d', [tensorOf(x, xShape)], attrs);
  expect(Float32Array.from(y, (v) => v + 0)).toEqual(Float32Array.from(ts.data, (v) => v + 0));

  const dy = Float32Array.from({ length: n * oh * ow * p.c }, () => (next() < 0.05 ? -0 : next() * 2 - 1));
  const dx = runSimdKernel(gradSel!.request, n, [dy, x], n * p.h * p.w * p.c);
  // The TypeScript kernel bit for bit.
  expect(dx).toEqual(Float32Array.from(runTypeScript('max_pool2d_grad', [tensorOf(dy, yShape), tensorOf(x, xShape)], attrs).data));

  const rows = windowRuns(p.h, oh, p.pool[0], p.strides[0], before(p.h, oh, p.pool[0], p.strides[0], p.padding));
  const cols = windowRuns(p.w, ow, p.pool[1], p.strides[1], before(p.w, ow, p.pool[1], p.strides[1], p.padding));
  tally.cases++;
  if (p.strides[0] < p.pool[0] || p.strides[1] < p.pool[1]) tally.overlapping++;
  if (rows.length > 1 || cols.length > 1) tally.clipped++;
  if (!windowCover((gradSel!.request as MaxPoolGradRequest).window).covered) tally.uncovered++;
  if (hasTie(x, p, n, oh, ow)) tally.ties++;
  if (x.some(Number.isNaN)) tally.nan++;
  if (p.c > 16) tally.blocks++;
  if (n === 1) tally.oneExample++;
}

describe('max pooling SIMD kernels', () => {
  it("mnist_cnn's pool: 24x24x64, 2x2, stride 2, valid", () => {
    check({ h: 24, w: 24, c: 64, pool: [2, 2], strides: [2, 2], padding: 'valid' }, 3, 1, 'floats');
    check({ h: 24, w: 24, c: 64, pool: [2, 2], strides: [2, 2], padding: 'valid' }, 2, 2, 'ties');
  });

  it('odd sizes with same padding (clipped windows at both ends), overlapping windows, strides above the pool size', () => {
    check({ h: 5, w: 7, c: 8, pool: [3, 3], strides: [2, 2], padding: 'same' }, 2, 3, 'ties');
    check({ h: 5, w: 6, c: 12, pool: [2, 3], strides: [1, 1], padding: 'same' }, 3, 4, 'ties');
    check({ h: 7, w: 5, c: 4, pool: [2, 2], strides: [3, 3], padding: 'valid' }, 2, 5, 'ties');
    check({ h: 3, w: 3, c: 4, pool: [5, 5], strides: [1, 1], padding: 'same' }, 1, 6, 'ties');
    check({ h: 9, w: 4, c: 24, pool: [3, 1], strides: [2, 1], padding: 'valid' }, 2, 7, 'special');
  });

  it('route dy to the first of equal maxima, and past NaN and -Infinity as the TypeScript kernel does', () => {
    // One example, 2x2 windows over 4 channels: lane 0 ties (first wins), lane 1 a NaN first (nothing
    // wins: dy dropped), lane 2 all -Infinity (nothing wins), lane 3 a NaN after the maximum.
    const x = Float32Array.from([
      [1, NaN, -Infinity, 5], [1, 2, -Infinity, NaN],
      [0, 3, -Infinity, 1], [1, 1, -Infinity, 7],
    ].flat());
    const window = { input: [2, 2, 4], output: [1, 1], pool: [2, 2], strides: [2, 2], before: [0, 0] } as const;
    const dx = runSimdKernel({ kind: 'max_pool2d_grad', window }, 1, [Float32Array.from([10, 20, 30, 40]), x], 16);
    expect([...dx]).toEqual([10, 0, 0, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const y = runSimdKernel({ kind: 'max_pool2d', window }, 1, [x], 4);
    expect([...y]).toEqual([1, NaN, -Infinity, NaN]);
  });

  it('agree with the reference and the TypeScript kernel on random pools (property)', () => {
    const start = { ...tally };
    fc.assert(
      fc.property(
        fc.record({
          h: fc.integer({ min: 1, max: 9 }),
          w: fc.integer({ min: 1, max: 9 }),
          c: fc.constantFrom(4, 8, 12, 20, 32),
          ph: fc.integer({ min: 1, max: 4 }),
          pw: fc.integer({ min: 1, max: 4 }),
          sy: fc.integer({ min: 1, max: 4 }),
          sx: fc.integer({ min: 1, max: 4 }),
          padding: fc.constantFrom<'valid' | 'same'>('valid', 'same'),
          n: fc.integer({ min: 1, max: 3 }),
          mode: fc.constantFrom<'ties' | 'floats' | 'special'>('ties', 'floats', 'special'),
          seed: fc.integer({ min: 0, max: 1000 }),
        }),
        (r) => {
          fc.pre(r.padding === 'same' || (r.h >= r.ph && r.w >= r.pw));
          check({ h: r.h, w: r.w, c: r.c, pool: [r.ph, r.pw], strides: [r.sy, r.sx], padding: r.padding }, r.n, r.seed, r.mode);
        },
      ),
      { numRuns: 150 },
    );
    const seen = Object.fromEntries(Object.entries(tally).map(([k, v]) => [k, v - start[k as keyof typeof tally]]));
    expect(seen['cases']).toBeGreaterThanOrEqual(100);
    for (const k of ['overlapping', 'clipped', 'uncovered', 'ties', 'nan', 'blocks', 'oneExample']) expect(seen[k], k).toBeGreaterThanOrEqual(10);
  });

  it('are not chosen for channels in part of a vector, nor for inference; refuse such windows', () => {
    const attrs = { pool_size: [2, 2], strides: [2, 2], padding: 'valid' } as never;
    expect(getOp('max_pool2d_grad')!.simd!({ operands: [tensor(['N', 2, 2, 6]), tensor(['N', 4, 4, 6])], result: tensor(['N', 4, 4, 6]), attrs }, 'training')).toBeUndefined();
    expect(getOp('max_pool2d_grad')!.simd!({ operands: [tensor(['N', 2, 2, 4]), tensor(['N', 4, 4, 4])], result: tensor(['N', 4, 4, 4]), attrs }, 'inference')).toBeUndefined();
    // A 20x20 pool at stride 1, same, over 24x24: 20 runs of windows a side, 300 x 300 cells unrolled: the TypeScript kernel. 3x3: 7 x 7.
    const big = (k: number) => getOp('max_pool2d_grad')!.simd!({ operands: [tensor(['N', 24, 24, 4]), tensor(['N', 24, 24, 4])], result: tensor(['N', 24, 24, 4]), attrs: { pool_size: [k, k], strides: [1, 1], padding: 'same' } as never }, 'training');
    expect(big(20)).toBeUndefined();
    expect(unrolledPoolCells((big(3)!.request as MaxPoolGradRequest).window)).toBe(49);
    const window = { input: [4, 4, 6], output: [2, 2], pool: [2, 2], strides: [2, 2], before: [0, 0] } as const;
    expect(() => buildSimdModule([{ kind: 'max_pool2d', window }])).toThrow(/whole f32x4 vectors/);
    expect(() => buildSimdModule([{ kind: 'max_pool2d_grad', window: { ...window, input: [4, 4, 4], output: [5, 2] } }])).toThrow(/outside/);
  });
});
