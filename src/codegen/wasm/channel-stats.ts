/**
 * WebAssembly SIMD kernels for the per-channel statistics over a batch
 * (channel_sum, channel_mean, channel_variance) in the Trainer of `--simd`
 * training modules, channels last: x is [rows, C] with rows = n *
 * rowsPerExample and C a multiple of 4; y is [C]. Same signature as every
 * kernel, (n, x, unused, unused, y), byte offsets:
 *
 *   channel_sum       y = the sum of x over the rows
 *   channel_mean      y = that sum / rows
 *   channel_variance  y = the biased variance: the sum of (x - mean)² / rows,
 *                     two passes (the mean, then the squared deviations), as
 *                     the TypeScript kernel computes it
 *
 * The channels go 16 at a time (4 f32x4 vectors) down the rows, their sums in
 * registers, then the 1-3 vectors left. Sums are float32, in chunks of 64
 * rows added to a running total (the TypeScript kernels sum in float64), so a
 * batch of many rows keeps the error near that of 64-term sums. Divisions by
 * the row count are f32 divisions (correctly rounded), not multiplications by
 * its reciprocal.
 */
import type { ChannelMeanRequest, ChannelStatsRequest, ChannelSumRequest, ChannelVarianceRequest } from '../../ops/simd-def.js';
import type { Code } from './encode.js';
import { add, bump, checkPositive, loopUntil, params, weightlessLayout, type SimdKernel } from './kernel-common.js';

/** f32x4 vectors of channels per walk down the rows. */
const BLOCK = 4;
/** Rows summed into a partial before it joins the running total. */
const CHUNK = 64;

/** What a kernel computes from the per-channel sums: divided by the rows, and over the squared deviations from the mean. */
interface Statistic {
  readonly divide: boolean;
  readonly deviations: boolean;
  readonly what: string;
}

function statsKernel(req: ChannelStatsRequest, stat: Statistic): SimdKernel {
  const rpe = req.rowsPerExample ?? 1;
  const C = req.channels;
  checkPositive(req.kind, C, rpe);
  if (C % 4 !== 0) throw new RangeError(`${req.kind}: channels must be a multiple of 4, got ${C}`);
  const rowBytes = C * 4;
  const name = req.name ?? `${req.kind}_${C}${rpe > 1 ? `_r${rpe}` : ''}`;
  const layout = weightlessLayout(name, req, rpe * C, C, `f32x4 over 16 channels at a time down the rows, float32 sums in chunks of ${CHUNK} rows: ${stat.what}`);
  const build = (c: Code) => {
    const { n, x, y } = params(c);
    const span = c.local('i32'); // rows * rowBytes
    const col = c.local('i32'); // byte offset of the block's first channel
    const p = c.local('i32');
    const end = c.local('i32');
    const chunkEnd = c.local('i32');
    const out = c.local('i32');
    const rows = c.local('v128'); // the row count in every lane
    const vectors = () => Array.from({ length: BLOCK }, () => c.local('v128'));
    const totals = vectors();
    const parts = vectors();
    const means = stat.deviations ? vectors() : [];
    const t = c.local('v128');
    c.get(n).i32Const(rpe * rowBytes).i32('mul').set(span);
    if (stat.divide) {
      c.get(n);
      if (rpe > 1) c.i32Const(rpe).i32('mul');
      c.f32('convert_i32_u').f32x4('splat').set(rows);
    }

    /** totals[v] = the sum over the rows of what `term(v)` pushes (p at the block's channels of a row), in chunks of CHUNK rows. */
    const reduce = (V: number, term: (v: number) => void) => {
      for (let v = 0; v < V; v++) c.v128Const([0, 0, 0, 0]).set(totals[v]!);
      add(c, p, x, col);
      add(c, end, p, span);
      const exit = c.block();
      c.get(p).get(end).i32('eq').brIf(exit);
      const chunks = c.loop();
      for (let v = 0; v < V; v++) c.v128Const([0, 0, 0, 0]).set(parts[v]!);
      // chunkEnd = min(p + CHUNK rows, end)
      c.get(p).i32Const(CHUNK * rowBytes).i32('add');
      c.get(end);
      c.get(p).i32Const(CHUNK * rowBytes).i32('add').get(end).i32('lt_u');
      c.select().set(chunkEnd);
      loopUntil(c, p, chunkEnd, false, () => {
        for (let v = 0; v < V; v++) {
          term(v);
          c.get(parts[v]!).f32x4('add').set(parts[v]!);
        }
        bump(c, p, rowBytes);
      });
      for (let v = 0; v < V; v++) c.get(totals[v]!).get(parts[v]!).f32x4('add').set(totals[v]!);
      c.get(p).get(end).i32('ne').brIf(chunks);
      c.end();
      c.end();
    };

    /** One block of V vectors of channels, from byte `col` of a row. */
    const body = (V: number) => {
      reduce(V, (v) => c.get(p).load('v128', v * 16));
      if (stat.deviations) {
        for (let v = 0; v < V; v++) c.get(totals[v]!).get(rows).f32x4('div').set(means[v]!);
        reduce(V, (v) => {
          c.get(p).load('v128', v * 16).get(means[v]!).f32x4('sub').tee(t);
          c.get(t).f32x4('mul');
        });
      }
      add(c, out, y, col);
      for (let v = 0; v < V; v++) {
        c.get(out).get(totals[v]!);
        if (stat.divide) c.get(rows).f32x4('div');
        c.store('v128', v * 16);
      }
    };

    const vecs = C / 4;
    const full = Math.floor(vecs / BLOCK);
    const rest = vecs - full * BLOCK;
    c.i32Const(0).set(col);
    if (full > 0) {
      const colEnd = c.local('i32');
      c.i32Const(full * BLOCK * 16).set(colEnd);
      loopUntil(c, col, colEnd, false, () => {
        body(BLOCK);
        bump(c, col, BLOCK * 16);
      });
    }
    if (rest > 0) body(rest);
  };
  return { layout, build };
}

export function channelSumKernel(req: ChannelSumRequest): SimdKernel {
  return statsKernel(req, { divide: false, deviations: false, what: 'the sum' });
}

export function channelMeanKernel(req: ChannelMeanRequest): SimdKernel {
  return statsKernel(req, { divide: true, deviations: false, what: 'the sum / rows' });
}

export function channelVarianceKernel(req: ChannelVarianceRequest): SimdKernel {
  return statsKernel(req, { divide: true, deviations: true, what: 'the mean, then the sum of squared deviations / rows' });
}
