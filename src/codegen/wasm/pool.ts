/**
 * WebAssembly SIMD kernels for max pooling in the Trainer (`--simd` training
 * modules), NHWC with the channels in whole f32x4 vectors. Same signature as
 * every kernel, (n, a, b, unused, y), byte offsets; the operands are the op's:
 *
 *   max_pool2d       (x)      -> y[e, oy, ox, c] = the maximum of x[e, iy, ix, c] over window (oy, ox)
 *   max_pool2d_grad  (dy, x)  -> dx: each window's dy[e, oy, ox, c] added at the window's first maximum
 *
 * Windows are clipped to the image (padding cells take no part). Along each
 * axis the outputs fall into runs (`windowRuns`, simd-def.ts) whose windows
 * have one length and start a stride apart (valid padding: one run; same
 * padding: the full windows, and a few clipped ones at either end); each pair
 * of a row run and a column run is one loop nest whose window cells sit at
 * constant offsets from the window's first cell, unrolled (the op's rule
 * keeps that under 4096 cells). The channels go up to 4 vectors (a cache line
 * of each cell) at a time.
 *
 * The maximum is f32x4.max, which is Math.max (NaN wins, +0 above -0): the
 * float64 reference exactly (the TypeScript kernel's branch-free max2 may
 * give +0 for a maximum of -0). The gradient finds each window's argument as
 * the TypeScript kernel does: a running maximum from -Infinity, a cell
 * winning only when strictly above it, the running maximum NaN from a NaN on
 * (nothing wins after it); no winner drops dy. Per lane the winner is kept as
 * its index in the window, a float (-1: all bits set, a NaN, equal to no
 * index), and a second pass over the window writes dy where the index is the
 * cell's, +0 elsewhere; dy + 0 (the TypeScript kernel's 0 + dy) turns a -0 into
 * +0. Windows that overlap (strides below the pool size) add into dx, zeroed
 * first, in the TypeScript kernel's order (output rows, then columns): bit for
 * bit its sums. Windows that do not overlap store, zeroing dx first only when
 * some cell is in no window.
 */
import { windowRuns, type MaxPoolGradRequest, type MaxPoolRequest, type PoolWindow } from '../../ops/simd-def.js';
import type { Code, Local } from './encode.js';
import { add, bump, checkPositive, loopUntil, params, weightlessLayout, type SimdKernel, type SimdKernelLayout } from './kernel-common.js';

/** Whether windows along an axis overlap, and whether they cover every cell. */
function axisCover(size: number, out: number, k: number, stride: number, before: number): { overlap: boolean; covered: boolean } {
  const runs = windowRuns(size, out, k, stride, before);
  let end = 0;
  let overlap = false;
  let covered = true;
  for (const r of runs) {
    for (let i = 0; i < r.count; i++) {
      const start = r.start + i * stride;
      if (start < end) overlap = true;
      if (start > end) covered = false;
      end = Math.max(end, start + r.len);
    }
  }
  return { overlap, covered: covered && end === size };
}

/** Whether some windows share cells (their dy add up in dx), and whether every cell is in some window. */
export function windowCover(w: PoolWindow): { overlap: boolean; covered: boolean } {
  const axes = [0, 1].map((i) => axisCover(w.input[i]!, w.output[i]!, w.pool[i]!, w.strides[i]!, w.before[i]!));
  return { overlap: axes.some((a) => a.overlap), covered: axes.every((a) => a.covered) };
}

function checkWindow(kind: string, w: PoolWindow): void {
  checkPositive(kind, ...w.input, ...w.output, ...w.pool, ...w.strides);
  if (w.input[2] % 4 !== 0) throw new RangeError(`${kind}: channels must be whole f32x4 vectors, got ${w.input[2]}`);
  if (w.before.some((b) => !Number.isInteger(b) || b < 0)) throw new RangeError(`${kind}: padding must be non-negative integers, got ${w.before.join(', ')}`);
}

function layoutOf(req: MaxPoolRequest | MaxPoolGradRequest, inputFloats: number, outputFloats: number, summary: string): SimdKernelLayout {
  const w = req.window;
  const tag = `${w.input.join('x')}_p${w.pool.join('x')}_s${w.strides.join('x')}_o${w.output.join('x')}${w.before.some((b) => b > 0) ? `_b${w.before.join('x')}` : ''}`;
  return weightlessLayout(req.name ?? `${req.kind}_${tag}`, req, inputFloats, outputFloats, summary);
}

/** Channel vectors per pass: 4, 2 or 1, whichever divides the channel vectors first (at most `most`). */
function vectorsPerPass(channels: number, most: number): number {
  const vecs = channels / 4;
  return [4, 2, 1].find((v) => v <= most && vecs % v === 0)!;
}

/** for `count` times: body (a down-counting loop; straight code for one). */
function repeat(c: Code, counter: Local, count: number, body: () => void): void {
  if (count === 1) return body();
  c.i32Const(count).set(counter);
  const top = c.loop();
  body();
  c.get(counter).i32Const(1).i32('sub').tee(counter).brIf(top);
  c.end();
}

const locals = (c: Code, k: number) => Array.from({ length: k }, () => c.local('i32'));
const setFrom = (c: Code, dst: readonly Local[], src: readonly Local[], offset: number) => dst.forEach((d, i) => add(c, d, src[i]!, offset));
const bumpAll = (c: Code, ps: readonly Local[], by: number) => ps.forEach((p) => bump(c, p, by));

/**
 * Every window of every example: `body(ins, outs, rows, cols)` once per
 * `vecs` channel vectors, with ins[i] at those channels of the window's first
 * cell in the i-th tensor shaped as the input (x, dx), outs[j] at those
 * channels of the output pixel in the j-th shaped as the output (y, dy), and
 * the window `rows` x `cols` cells. `perExample(ins)` runs first in each
 * example, with ins at its start.
 */
function walk(
  c: Code,
  w: PoolWindow,
  n: Local,
  inBases: readonly Local[],
  outBases: readonly Local[],
  vecs: number,
  body: (ins: readonly Local[], outs: readonly Local[], rows: number, cols: number) => void,
  perExample?: (ins: readonly Local[]) => void,
): void {
  const [h, wd, ch] = w.input;
  const [oh, ow] = w.output;
  const rowRuns = windowRuns(h, oh, w.pool[0], w.strides[0], w.before[0]);
  const colRuns = windowRuns(wd, ow, w.pool[1], w.strides[1], w.before[1]);
  const pixel = ch * 4;
  const [inRow, outRow] = [wd * pixel, ow * pixel];
  const [inExample, outExample] = [h * inRow, oh * outRow];
  const img = locals(c, inBases.length), out = locals(c, outBases.length);
  const rowIn = locals(c, inBases.length), rowOut = locals(c, outBases.length);
  const winIn = locals(c, inBases.length), winOut = locals(c, outBases.length);
  const blockIn = locals(c, inBases.length), blockOut = locals(c, outBases.length);
  const [end, blockEnd, i, j] = locals(c, 4) as [Local, Local, Local, Local];
  setFrom(c, img, inBases, 0);
  setFrom(c, out, outBases, 0);
  c.get(n).i32Const(inExample).i32('mul').get(img[0]!).i32('add').set(end);
  const blocks = ch / 4 / vecs;
  loopUntil(c, img[0]!, end, true, () => {
    perExample?.(img);
    for (const R of rowRuns) {
      setFrom(c, rowIn, img, R.start * inRow);
      setFrom(c, rowOut, out, R.first * outRow);
      repeat(c, i, R.count, () => {
        for (const S of colRuns) {
          setFrom(c, winIn, rowIn, S.start * pixel);
          setFrom(c, winOut, rowOut, S.first * pixel);
          repeat(c, j, S.count, () => {
            if (blocks === 1) {
              body(winIn, winOut, R.len, S.len);
            } else {
              setFrom(c, blockIn, winIn, 0);
              setFrom(c, blockOut, winOut, 0);
              add(c, blockEnd, winIn[0]!, pixel);
              loopUntil(c, blockIn[0]!, blockEnd, false, () => {
                body(blockIn, blockOut, R.len, S.len);
                bumpAll(c, blockIn, vecs * 16);
                bumpAll(c, blockOut, vecs * 16);
              });
            }
            bumpAll(c, winIn, w.strides[1] * pixel);
            bumpAll(c, winOut, pixel);
          });
        }
        bumpAll(c, rowIn, w.strides[0] * inRow);
        bumpAll(c, rowOut, outRow);
      });
    }
    bumpAll(c, img, inExample);
    bumpAll(c, out, outExample);
  });
}

/** Byte offsets of a window's cells from its first, row-major, for a `rows` x `cols` window. */
function cellOffsets(w: PoolWindow, rows: number, cols: number): number[] {
  const pixel = w.input[2] * 4;
  return Array.from({ length: rows * cols }, (_, k) => Math.floor(k / cols) * w.input[1] * pixel + (k % cols) * pixel);
}

export function maxPoolKernel(req: MaxPoolRequest): SimdKernel {
  const w = req.window;
  checkWindow(req.kind, w);
  const [h, wd, ch] = w.input;
  const layout = layoutOf(req, h * wd * ch, w.output[0] * w.output[1] * ch, `f32x4 maxima of ${w.pool.join('x')} windows, ${ch} channels`);
  const build = (c: Code) => {
    const { n, x, y } = params(c);
    const vecs = vectorsPerPass(ch, 4);
    const acc = Array.from({ length: vecs }, () => c.local('v128'));
    walk(c, w, n, [x], [y], vecs, ([p], [q], rows, cols) => {
      cellOffsets(w, rows, cols).forEach((at, k) => {
        for (let u = 0; u < vecs; u++) {
          if (k === 0) c.get(p!).load('v128', at + u * 16).set(acc[u]!);
          else c.get(acc[u]!).get(p!).load('v128', at + u * 16).f32x4('max').set(acc[u]!);
        }
      });
      for (let u = 0; u < vecs; u++) c.get(q!).get(acc[u]!).store('v128', u * 16);
    });
  };
  return { layout, build };
}

export function maxPoolGradKernel(req: MaxPoolGradRequest): SimdKernel {
  const w = req.window;
  checkWindow(req.kind, w);
  const [h, wd, ch] = w.input;
  const exampleFloats = h * wd * ch;
  const { overlap, covered } = windowCover(w);
  const zeroFirst = overlap || !covered;
  const how = overlap ? 'added into dx (zeroed first)' : zeroFirst ? 'stored (dx zeroed first: cells in no window)' : 'stored';
  const layout = layoutOf(req, w.output[0] * w.output[1] * ch, exampleFloats, `dy to the first maximum of each ${w.pool.join('x')} window, f32x4 compares, ${how}`);
  const build = (c: Code) => {
    const { n, x: dyBase, w: xBase, y: dxBase } = params(c);
    const vecs = vectorsPerPass(ch, 2);
    const best = Array.from({ length: vecs }, () => c.local('v128'));
    const arg = Array.from({ length: vecs }, () => c.local('v128'));
    const d = Array.from({ length: vecs }, () => c.local('v128'));
    const v = c.local('v128');
    const [zp, zEnd] = locals(c, 2) as [Local, Local];
    const zero = (ins: readonly Local[]) => {
      // dx = 0 over the example (whole vectors: the channels are).
      c.get(ins[1]!).set(zp);
      add(c, zEnd, zp, exampleFloats * 4);
      loopUntil(c, zp, zEnd, false, () => {
        c.get(zp).v128Const([0, 0, 0, 0]).store('v128');
        bump(c, zp, 16);
      });
    };
    walk(c, w, n, [xBase, dxBase], [dyBase], vecs, ([xp, dxp], [dyp], rows, cols) => {
      const cells = cellOffsets(w, rows, cols);
      // Pass 1: per lane, the index of the first cell strictly above the running maximum.
      cells.forEach((at, k) => {
        for (let u = 0; u < vecs; u++) {
          c.get(xp!).load('v128', at + u * 16).set(v);
          if (k === 0) {
            // above -Infinity: index 0, else none (all bits set); the running maximum is the cell.
            c.get(v).v128Const([-Infinity, -Infinity, -Infinity, -Infinity]).f32x4('gt').v128('not').set(arg[u]!);
            c.get(v).set(best[u]!);
          } else {
            c.v128Const([k, k, k, k]).get(arg[u]!).get(v).get(best[u]!).f32x4('gt').v128('bitselect').set(arg[u]!);
            c.get(best[u]!).get(v).f32x4('max').set(best[u]!);
          }
        }
      });
      // Pass 2: dy + 0 where the cell's index is the winner's, +0 elsewhere.
      for (let u = 0; u < vecs; u++) c.get(dyp!).load('v128', u * 16).v128Const([0, 0, 0, 0]).f32x4('add').set(d[u]!);
      cells.forEach((at, k) => {
        for (let u = 0; u < vecs; u++) {
          c.get(dxp!);
          if (overlap) c.get(dxp!).load('v128', at + u * 16);
          c.get(arg[u]!).v128Const([k, k, k, k]).f32x4('eq').get(d[u]!).v128('and');
          if (overlap) c.f32x4('add');
          c.store('v128', at + u * 16);
        }
      });
    }, zeroFirst ? zero : undefined);
  };
  return { layout, build };
}
