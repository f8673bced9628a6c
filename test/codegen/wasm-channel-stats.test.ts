/**
 * The Trainer's per-channel statistics SIMD kernels (src/codegen/wasm/channel-stats.ts),
 * asked for through the channel_sum / channel_mean / channel_variance `simd`
 * rules, against the ops' float64 reference kernels: odd row counts, rows
 * past several 64-row chunks, channel counts that fill whole 16-channel
 * blocks (64), leave a tail block (4, 8, 20, 36), inputs whose mean is far
 * from zero (the two-pass variance keeps its precision). Operands sit between
 * NaN guards; y starts as NaN, so an unwritten channel fails.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildSimdModule } from '../../src/codegen/wasm/module.js';
import { tensor, type TensorType } from '../../src/ir/types.js';
import { getOp } from '../../src/ops/registry.js';
import type { ChannelStatsRequest } from '../../src/ops/simd-def.js';
import { runSimdKernel } from '../helpers/simd-kernel.js';
import { rng } from '../helpers/tensors.js';

type Kind = ChannelStatsRequest['kind'];
const kinds: readonly Kind[] = ['channel_sum', 'channel_mean', 'channel_variance'];

/** The selection of the op's rule for the Trainer, for x of this per-example shape (channels last). */
function selected(kind: Kind, perExample: readonly number[], use: 'training' | 'inference' = 'training', axis = perExample.length) {
  const x: TensorType = tensor(['N', ...perExample]);
  const def = getOp(kind)!;
  return def.simd!({ operands: [x], result: def.infer([x], { axis } as never), attrs: { axis } as never }, use);
}

const tally = { cases: 0, sum: 0, mean: 0, variance: 0, tailBlock: 0, wholeBlocks: 0, chunks: 0, oddRows: 0, offset: 0 };

/**
 * The kernel on n examples of rpe rows of C channels against the reference:
 * every error within `tol` of the scale of its terms (sum |x| for the sum,
 * mean |x| for the mean, the variance itself for the variance).
 */
function check(kind: Kind, n: number, rpe: number, C: number, offset: number, seed: number, tol = 1e-5): void {
  const perExample = rpe > 1 ? [rpe, C] : [C];
  const sel = selected(kind, perExample);
  expect(sel, `${kind}: the rule selects the SIMD kernel`).toEqual({ request: { kind, channels: C, ...(rpe > 1 ? { rowsPerExample: rpe } : {}) } });
  const next = rng(seed);
  const rows = n * rpe;
  const x = Float32Array.from({ length: rows * C }, (_, i) => offset * (1 + (i % C) / C) + (next() * 2 - 1) * (1 + (i % 3)));
  const y = runSimdKernel(sel!.request, n, [x], C);
  const shape = [n, ...perExample];
  const want = getOp(kind)!.reference([{ shape, data: Float64Array.from(x) }], { axis: shape.length - 1 } as never).data;
  const absSum = getOp('channel_sum')!.reference([{ shape, data: Float64Array.from(x, Math.abs) }], { axis: shape.length - 1 } as never).data;
  expect(want.length).toBe(C);
  const bad: string[] = [];
  for (let c = 0; c < C; c++) {
    const scale = kind === 'channel_sum' ? absSum[c]! : kind === 'channel_mean' ? absSum[c]! / rows : want[c]!;
    if (!(Math.abs(y[c]! - want[c]!) <= tol * Math.max(scale, 1e-30))) bad.push(`[${c}] ${y[c]} != ${want[c]}`);
  }
  expect(bad.slice(0, 5), `${kind} C=${C} rows=${rows} (${n} x ${rpe}) offset ${offset}: ${bad.length} of ${C} off`).toEqual([]);
  tally.cases++;
  tally[kind.slice('channel_'.length) as 'sum' | 'mean' | 'variance']++;
  if (C % 16 !== 0) tally.tailBlock++;
  if (C >= 16) tally.wholeBlocks++;
  if (rows > 64) tally.chunks++;
  if (rows % 2 === 1) tally.oddRows++;
  if (offset !== 0) tally.offset++;
}

describe('per-channel statistics SIMD kernels', () => {
  it('match the float64 reference on odd row counts, over 4, 8 and 64 channels', () => {
    for (const kind of kinds) {
      check(kind, 3, 7, 4, 0, 1);
      check(kind, 1, 1, 8, 0, 2);
      check(kind, 5, 13, 64, 0, 3);
      check(kind, 7, 1, 20, 0.5, 4);
      check(kind, 1, 129, 36, 0, 5);
    }
  });

  it('keep their precision over many 64-row chunks, and with the mean far from zero (two-pass variance)', () => {
    for (const kind of kinds) {
      check(kind, 9, 111, 16, 0, 11);
      check(kind, 4, 150, 8, 50, 12);
    }
  });

  it("mnist_cnn's statistics: 26x26x32 and 24x24x64 per example (36 and 27 chunks at batch 4 and 3)", () => {
    for (const kind of kinds) {
      check(kind, 4, 26 * 26, 32, 0.2, 21);
      check(kind, 3, 24 * 24, 64, 0.2, 22);
    }
  });

  it('match the reference on random sizes and batches (property)', () => {
    const start = { ...tally };
    fc.assert(
      fc.property(
        fc.constantFrom(...kinds),
        fc.integer({ min: 1, max: 18 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 5 }),
        fc.constantFrom(0, 0, 3, -20),
        fc.integer({ min: 0, max: 10000 }),
        (kind, vecs, rpe, n, offset, seed) => check(kind, n, rpe, vecs * 4, offset, seed),
      ),
      { numRuns: 150 },
    );
    const seen = Object.fromEntries(Object.entries(tally).map(([k, v]) => [k, v - start[k as keyof typeof tally]]));
    expect(seen['cases']).toBeGreaterThanOrEqual(150);
    for (const k of ['sum', 'mean', 'variance', 'tailBlock', 'wholeBlocks', 'chunks', 'oddRows', 'offset']) expect(seen[k], k).toBeGreaterThanOrEqual(15);
  });

  it('carry NaN and infinities to their own channel only, as the TypeScript kernels do', () => {
    const C = 8;
    const x = Float32Array.from({ length: 5 * C }, (_, i) => (i % C) + 1);
    x[2 * C + 1] = NaN;
    x[3 * C + 6] = Infinity;
    for (const kind of kinds) {
      const y = runSimdKernel(selected(kind, [C])!.request, 5, [x], C);
      const want = getOp(kind)!.reference([{ shape: [5, C], data: Float64Array.from(x) }], { axis: 1 } as never).data;
      expect([...y], kind).toEqual([...Float32Array.from(want)]);
    }
  });

  it('are chosen only for the Trainer, channels last in whole vectors', () => {
    for (const kind of kinds) {
      expect(selected(kind, [5, 5, 6]), `${kind}: 6 channels`).toBeUndefined();
      expect(selected(kind, [8, 5, 4], 'training', 1), `${kind}: channels first`).toBeUndefined();
      expect(selected(kind, [5, 5, 8], 'inference'), `${kind}: inference`).toBeUndefined();
      expect(selected(kind, [5, 5, 8])).toEqual({ request: { kind, channels: 8, rowsPerExample: 25 } });
    }
    expect(() => buildSimdModule([{ kind: 'channel_sum', channels: 6 }])).toThrow(/multiple of 4/);
    expect(() => buildSimdModule([{ kind: 'channel_mean', channels: 8, rowsPerExample: 0 }])).toThrow(/positive integers/);
    expect(buildSimdModule([{ kind: 'channel_variance', channels: 64, rowsPerExample: 576 }]).exports).toEqual(['channel_variance_64_r576']);
  });
});
