/**
 * The window walk the SIMD convolution kernels share (conv2d in `kernels.ts`,
 * depthwise in `depthwise.ts`): the geometry of a request (output size,
 * padding, the columns whose whole window lies inside the image), the loops
 * over examples and output rows, the loop over the kernel rows inside the
 * image, and the split of a row's output columns into border pixels and
 * blocks of interior ones.
 */
import { windowAxis } from '../../ops/conv/window.js';
import type { Conv2dRequest, DepthwiseRequest } from '../../ops/simd-def.js';
import type { Code, Local } from './encode.js';
import { add, bump, checkPositive, loopUntil, params, push, type I32 } from './kernel-common.js';

export interface Geometry {
  readonly h: number;
  readonly w: number;
  readonly c: number;
  readonly kh: number;
  readonly kw: number;
  readonly sh: number;
  readonly sw: number;
  readonly oh: number;
  readonly ow: number;
  readonly top: number;
  readonly left: number;
  /** Output columns whose whole window lies inside the image: [oxLo, oxHi). */
  readonly oxLo: number;
  readonly oxHi: number;
  /** Whether some output row's window leaves the image (then ky runs over a per-row range). */
  readonly rowChecks: boolean;
}

export function geometry(req: Conv2dRequest | DepthwiseRequest): Geometry {
  const [h, w, c] = req.input;
  const [kh, kw] = req.kernel;
  const [sh, sw] = req.strides ?? [1, 1];
  const padding = req.padding ?? 'valid';
  checkPositive(req.kind, h, w, c, kh, kw, sh, sw);
  const rows = windowAxis(h, kh, sh, padding);
  const cols = windowAxis(w, kw, sw, padding);
  if (rows.out < 1 || cols.out < 1) throw new RangeError(`${req.kind}: a ${kh}x${kw} window does not fit a ${h}x${w} input`);
  // ox * sw - left >= 0 and ox * sw - left + kw <= w.
  const oxLo = Math.min(cols.out, Math.ceil(cols.before / sw));
  const oxHi = Math.max(oxLo, Math.min(cols.out, Math.floor((w - kw + cols.before) / sw) + 1));
  const rowChecks = rows.before > 0 || (rows.out - 1) * sh - rows.before + kh > h;
  return { h, w, c, kh, kw, sh, sw, oh: rows.out, ow: cols.out, top: rows.before, left: cols.before, oxLo, oxHi, rowChecks };
}

/**
 * The loops over examples and output rows. Per row it sets, for the body:
 * xrow (x at input row oy * sh - top, column 0), yrow (y at output row oy),
 * kyLo (the first kernel row inside the image), nky (how many) and, as byte
 * offsets, xky0 = kyLo rows of x and wky0 = kyLo kernel rows of packed
 * weights (`wRow` bytes each).
 */
export function rowLoops(c: Code, g: Geometry, outChannels: number, wRow: number, body: (row: RowLocals) => void): void {
  const { n, x, y } = params(c);
  const xRow = g.w * g.c * 4;
  const yRow = g.ow * outChannels * 4;
  const row: RowLocals = {
    xrow: c.local('i32'),
    yrow: c.local('i32'),
    oy: c.local('i32'),
    nky: g.rowChecks ? c.local('i32') : g.kh,
    xky0: g.rowChecks ? c.local('i32') : 0,
    wky0: g.rowChecks ? c.local('i32') : 0,
  };
  const xe = c.local('i32');
  const ye = c.local('i32');
  const yEnd = c.local('i32');
  const kyLo = g.rowChecks ? c.local('i32') : undefined;
  c.get(x).set(xe);
  c.get(y).set(ye);
  c.get(n).i32Const(g.oh * yRow).i32('mul').get(y).i32('add').set(yEnd);
  loopUntil(c, ye, yEnd, true, () => {
    c.i32Const(0).set(row.oy);
    const rows = c.loop();
    // xrow = xe + (oy * sh - top) * xRow (may point before the example: only rows >= kyLo are read)
    c.get(row.oy).i32Const(g.sh * xRow).i32('mul').get(xe).i32('add');
    if (g.top) c.i32Const(g.top * xRow).i32('sub');
    c.set(row.xrow);
    c.get(row.oy).i32Const(yRow).i32('mul').get(ye).i32('add').set(row.yrow);
    if (kyLo) {
      // kyLo = max(0, top - oy * sh); kyHi = min(kh, h + top - oy * sh); nky = kyHi - kyLo
      const iy0 = () => c.get(row.oy).i32Const(g.sh).i32('mul');
      c.i32Const(g.top);
      iy0();
      c.i32('sub').tee(kyLo).i32Const(0).get(kyLo).i32Const(0).i32('gt_s').select().set(kyLo);
      c.i32Const(g.h + g.top);
      iy0();
      c.i32('sub').tee(row.nky as Local).i32Const(g.kh).get(row.nky as Local).i32Const(g.kh).i32('lt_s').select();
      c.get(kyLo).i32('sub').set(row.nky as Local);
      c.get(kyLo).i32Const(xRow).i32('mul').set(row.xky0 as Local);
      c.get(kyLo).i32Const(wRow).i32('mul').set(row.wky0 as Local);
    }
    body(row);
    c.get(row.oy).i32Const(1).i32('add').tee(row.oy).i32Const(g.oh).i32('lt_u').brIf(rows);
    c.end();
    bump(c, xe, g.h * xRow);
    bump(c, ye, g.oh * yRow);
  });
}

export interface RowLocals {
  readonly xrow: Local;
  readonly yrow: Local;
  readonly oy: Local;
  readonly nky: I32;
  readonly xky0: I32;
  readonly wky0: I32;
}

/**
 * for (ky = kyLo; ky < kyLo + nky; ky++) with xk = xStart + ky * xRow and
 * wk = wStart + ky * wRow on entry to each body.
 */
export function kyLoop(c: Code, g: Geometry, row: RowLocals, l: { xk: Local; wk: Local; xky: Local; wky: Local; kyEnd: Local }, xStart: Local, wStart: I32, wRow: number, body: () => void): void {
  const xRow = g.w * g.c * 4;
  add(c, l.xky, xStart, row.xky0);
  if (typeof wStart === 'number') add(c, l.wky, row.wky0, wStart);
  else add(c, l.wky, wStart, row.wky0);
  // kyEnd = xky + nky * xRow: the loop runs while xky != kyEnd.
  if (typeof row.nky === 'number') add(c, l.kyEnd, l.xky, row.nky * xRow);
  else {
    c.get(row.nky).i32Const(xRow).i32('mul').get(l.xky).i32('add').set(l.kyEnd);
  }
  loopUntil(c, l.xky, l.kyEnd, g.rowChecks, () => {
    c.get(l.xky).set(l.xk);
    c.get(l.wky).set(l.wk);
    body();
    bump(c, l.xky, xRow);
    bump(c, l.wky, wRow);
  });
}

/** The ox ranges: [0, oxLo) and [oxHi, ow) checked, [oxLo, oxHi) in blocks of `rows` (and a smaller last block). */
export function columnPlan(g: Geometry, rows: number) {
  const interior = g.oxHi - g.oxLo;
  return {
    borders: [[0, g.oxLo], [g.oxHi, g.ow]].filter(([a, b]) => b! > a!) as [number, number][],
    blocks: Math.floor(interior / rows),
    last: interior % rows,
  };
}

/** A local holding wky0 * to / from (kyLo kernel rows of a narrower panel). */
export function rescaled(c: Code, row: RowLocals, from: number, to: number): Local {
  const out = c.local('i32');
  push(c, row.wky0);
  c.i32Const(from).i32('div_u').i32Const(to).i32('mul').set(out);
  return out;
}
