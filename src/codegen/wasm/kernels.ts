/**
 * WebAssembly SIMD kernels with every size baked in: dense GEMM, conv2d and
 * depthwise conv2d (NHWC, Keras kernel layouts), with the bias and an
 * optional relu / relu6 epilogue. Each is one exported function
 *
 *   (n, xPtr, wPtr, bPtr, yPtr) -> ()      every pointer an i32 byte offset
 *
 * over the module's memory: `n` examples of x in, `n` examples of y out. The
 * weights are not in Keras layout but packed (see `packWeights` in module.ts,
 * done once when the weights are copied into the memory):
 *
 *  - GEMM-shaped kernels (dense, conv2d) read the kernel as a [K, units]
 *    matrix (conv2d: K = kh * kw * cin, rows in (ky, kx, c) order, which is
 *    Keras [kh, kw, cin, cout] flattened) cut into column panels of P = 4 *
 *    vecs floats: panel j holds rows 0..K-1 of columns j*P.. j*P+P-1
 *    contiguously, the last panel rounded up to a multiple of 4 columns with
 *    zeros. The inner loop then reads the weights sequentially, and a panel
 *    (K * P floats) stays in cache while every row of x streams past it.
 *  - The bias is padded with zeros to a multiple of 4 floats.
 *  - depthwise conv2d: [kh * kw, c] rows padded to a multiple of 4 channels
 *    (one panel as wide as the padded channels).
 *
 * Nothing is read outside the operands: x elements are loaded one at a time
 * (v128.load32_splat) in the GEMM kernels, channel tails of depthwise x with
 * the zero-extending partial loads, and partial output vectors are stored lane
 * by lane.
 *
 * Register blocking. GEMM: `rows` rows of x times `vecs` f32x4 vectors of
 * output columns are accumulated in rows * vecs v128 locals; per step of the
 * reduction, `vecs` weight vectors and `rows` broadcast x values give rows *
 * vecs multiply-adds. x86-64 V8 has 16 xmm registers; measured (Node 20, Zen
 * 4), 8 accumulators (4 x 2, 2 x 4) reach the machine's peak of 2 f32x4.mul
 * + 2 f32x4.add per cycle, while 9 or more (3 x 3, 4 x 3) and unrolling the
 * reduction loop make TurboFan spill and run at half speed. conv2d is the
 * same micro-kernel over `rows` adjacent output pixels of one output row
 * (implicit GEMM: for each kernel row ky the window's kw * cin inputs are
 * contiguous in NHWC), with the border pixels of `same` padding done one at a
 * time with bounds checks. depthwise conv2d computes one output pixel at a
 * time, its channels in chunks of `vecs` f32x4 accumulators (default 2) over
 * the window taps.
 *
 * Accumulation is in float32 (the pure-TypeScript kernels sum in float64), in
 * the same order: bias, then the reduction index in increasing order, as
 * f32x4.mul then f32x4.add (relaxed-SIMD's fused multiply-add measured no
 * faster here and needs a flag in Node 20).
 *
 * The requests are declared in `ops/simd-def.ts` (each op's `simd` rule makes
 * them); `module.ts` dispatches a request to its builder here or in
 * `train-kernels.ts`.
 */
import { windowAxis } from '../../ops/conv.js';
import type { Conv2dRequest, DenseRequest, DepthwiseRequest } from '../../ops/simd-def.js';
import type { Code, Local } from './encode.js';
import {
  add,
  applyEpilogue,
  bump,
  checkPositive,
  loopUntil,
  packedFloats,
  params,
  push,
  roundUp4,
  storeVector,
  Tile,
  tileCache,
  type I32,
  type SimdKernel,
  type SimdKernelLayout,
} from './kernel-common.js';

/**
 * Default tiles: 8 accumulators (4 x 2 for dense, 2 x 4 for conv2d; 4 x 1 or
 * 2 x 3 when the columns are few), the measured optimum on V8 x64.
 */
function tileFor(req: DenseRequest | Conv2dRequest | DepthwiseRequest, columns: number): { rows: number; vecs: number } {
  if (req.tile) {
    checkPositive('tile', req.tile.rows, req.tile.vecs);
    return req.tile;
  }
  const vecs = Math.min(req.kind === 'dense' ? 2 : 4, Math.ceil(columns / 4));
  return { rows: vecs >= 3 ? 2 : 4, vecs };
}

/** Column panels: `full` panels of `panel` floats, then a tail of `tailVecs` vectors whose last has `tailLanes` lanes. */
function panelsOf(units: number, panel: number) {
  const full = Math.floor(units / panel);
  const rest = units - full * panel;
  return { full, rest, tailVecs: Math.ceil(rest / 4), tailLanes: rest % 4 === 0 ? 4 : rest % 4 };
}

/** `, relu in registers` for a fused epilogue, for summaries. */
function inRegisters(req: DenseRequest | Conv2dRequest | DepthwiseRequest): string {
  return req.epilogue ? `, ${req.epilogue} in registers` : '';
}

function tagOf(req: DenseRequest | Conv2dRequest | DepthwiseRequest): string {
  return `${req.epilogue ? `_${req.epilogue}` : ''}${req.bias ? '' : '_nobias'}`;
}

// ---------------------------------------------------------------------------
// Dense: GEMM

export function denseKernel(req: DenseRequest): SimdKernel {
  const { inDim: K, units: U } = req;
  const rpe = req.rowsPerExample ?? 1;
  checkPositive('dense', K, U, rpe);
  const tile = tileFor(req, U);
  const P = tile.vecs * 4;
  const unroll = req.unroll ?? 1;
  const { full, rest, tailVecs, tailLanes } = panelsOf(U, P);
  const rowMajor = req.rowMajor === true;
  if (rowMajor && U % 4 !== 0) throw new RangeError(`dense: row-major weights need units that are a multiple of 4, got ${U}`);
  const layout: SimdKernelLayout = {
    name: req.name ?? `dense_${K}x${U}${rpe > 1 ? `_r${rpe}` : ''}${tagOf(req)}${rowMajor ? '_rm' : ''}`,
    request: req,
    inputFloats: rpe * K,
    outputFloats: rpe * U,
    // Row-major is the packing with one panel as wide as the units (packPanels copies it as it is).
    pack: { k: K, units: U, panel: rowMajor ? U : P },
    weightFloats: rowMajor ? K * U : packedFloats(K, U, P),
    biasFloats: req.bias ? roundUp4(U) : 0,
    flopsPerExample: 2 * rpe * K * U,
    summary: `f32x4 GEMM in ${tile.rows}x${P} register tiles over ${rowMajor ? 'the row-major kernel' : `column panels of ${P}`}${inRegisters(req)}`,
  };

  const build = (c: Code) => {
    const { n, x, w, b, y } = params(c);
    const rows = c.local('i32');
    const xMainEnd = c.local('i32');
    const xEnd = c.local('i32');
    const xp = c.local('i32');
    const yp = c.local('i32');
    const wpan = c.local('i32');
    const bp = c.local('i32');
    const ycol = c.local('i32');
    const xk = c.local('i32');
    const kp = c.local('i32');
    const kEnd = c.local('i32');
    const wEnd = c.local('i32');
    const tileOf = tileCache((r, v) => new Tile(c, r, v));

    // rows = n * rowsPerExample; the row blocks end at xMainEnd, the single rows at xEnd.
    c.get(n);
    if (rpe > 1) c.i32Const(rpe).i32('mul');
    c.set(rows);
    c.get(rows).get(rows).i32Const(tile.rows).i32('rem_u').i32('sub').i32Const(K * 4).i32('mul').get(x).i32('add').set(xMainEnd);
    c.get(rows).i32Const(K * 4).i32('mul').get(x).i32('add').set(xEnd);

    /** Every row against the panel at wpan, output columns at ycol (a pointer into row 0 of y). */
    const panel = (vecs: number, width: number, lastLanes: number, biasAt: I32 | undefined) => {
      c.get(x).set(xp);
      c.get(ycol).set(yp);
      const passes: [number, Local][] = tile.rows > 1 ? [[tile.rows, xMainEnd], [1, xEnd]] : [[1, xEnd]];
      for (const [R, end] of passes) {
        const t = tileOf(R, vecs);
        loopUntil(c, xp, end, true, () => {
          t.init(c, biasAt, 0);
          c.get(xp).set(xk);
          c.get(wpan).set(kp);
          t.reduce(c, xk, kp, kEnd, K, rowMajor ? U * 4 : width * 4, K * 4, unroll);
          t.store(c, yp, 0, U * 4, lastLanes, req.epilogue);
          bump(c, xp, R * K * 4);
          bump(c, yp, R * U * 4);
        });
      }
    };

    c.get(w).set(wpan);
    c.get(b).set(bp);
    c.get(y).set(ycol);
    if (full > 0) {
      add(c, wEnd, w, full * (rowMajor ? P : K * P) * 4);
      loopUntil(c, wpan, wEnd, false, () => {
        panel(tile.vecs, P, 4, req.bias ? bp : undefined);
        bump(c, wpan, (rowMajor ? P : K * P) * 4);
        bump(c, bp, P * 4);
        bump(c, ycol, P * 4);
      });
    }
    if (rest > 0) panel(tailVecs, tailVecs * 4, tailLanes, req.bias ? bp : undefined);
  };
  return { layout, build };
}

// ---------------------------------------------------------------------------
// Convolutions: the geometry shared by conv2d and depthwise

interface Geometry {
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

function geometry(req: Conv2dRequest | DepthwiseRequest): Geometry {
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
function rowLoops(c: Code, g: Geometry, outChannels: number, wRow: number, body: (row: RowLocals) => void): void {
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

interface RowLocals {
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
function kyLoop(c: Code, g: Geometry, row: RowLocals, l: { xk: Local; wk: Local; xky: Local; wky: Local; kyEnd: Local }, xStart: Local, wStart: I32, wRow: number, body: () => void): void {
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
function columnPlan(g: Geometry, rows: number) {
  const interior = g.oxHi - g.oxLo;
  return {
    borders: [[0, g.oxLo], [g.oxHi, g.ow]].filter(([a, b]) => b! > a!) as [number, number][],
    blocks: Math.floor(interior / rows),
    last: interior % rows,
  };
}

// ---------------------------------------------------------------------------
// conv2d: implicit GEMM over output pixels

export function conv2dKernel(req: Conv2dRequest): SimdKernel {
  const g = geometry(req);
  const F = req.filters;
  checkPositive('conv2d filters', F);
  const K = g.kh * g.kw * g.c;
  const tile = tileFor(req, F);
  const P = tile.vecs * 4;
  const unroll = req.unroll ?? 1;
  const { full, rest, tailVecs, tailLanes } = panelsOf(F, P);
  const geo = `${g.sh > 1 || g.sw > 1 ? `_s${g.sh}x${g.sw}` : ''}${req.padding === 'same' ? '_same' : ''}`;
  const layout: SimdKernelLayout = {
    name: req.name ?? `conv2d_${g.h}x${g.w}x${g.c}_k${g.kh}x${g.kw}_f${F}${geo}${tagOf(req)}`,
    request: req,
    inputFloats: g.h * g.w * g.c,
    outputFloats: g.oh * g.ow * F,
    pack: { k: K, units: F, panel: P },
    weightFloats: packedFloats(K, F, P),
    biasFloats: req.bias ? roundUp4(F) : 0,
    flopsPerExample: 2 * g.oh * g.ow * F * K,
    summary: `f32x4 implicit GEMM, ${tile.rows} output pixels x ${P} filters per register tile${inRegisters(req)}`,
  };
  const cols = columnPlan(g, tile.rows);
  const xPix = g.sw * g.c * 4; // bytes between adjacent output pixels' windows
  const yPix = F * 4;

  const build = (c: Code) => {
    const { w, b } = params(c);
    const wpan = c.local('i32');
    const col = c.local('i32'); // byte offset of the panel's first column
    const wEnd = c.local('i32');
    const xpix = c.local('i32');
    const ypix = c.local('i32');
    const yStop = c.local('i32');
    const bp = c.local('i32');
    const ix = c.local('i32');
    const kx = c.local('i32');
    const l = { xk: c.local('i32'), wk: c.local('i32'), xky: c.local('i32'), wky: c.local('i32'), kyEnd: c.local('i32') };
    const xc = c.local('i32');
    const wc = c.local('i32');
    const kEnd = c.local('i32');
    const tileOf = tileCache((r, v) => new Tile(c, r, v));
    /** Bytes of one kernel row (kw * cin packed rows) of a panel `width` floats wide. */
    const kernelRow = (width: number) => g.kw * g.c * width * 4;
    const wRow = kernelRow(P);

    /** R adjacent interior pixels at xpix / ypix against the panel at wpan (width floats). */
    const interior = (t: Tile, row: RowLocals, width: number, lastLanes: number) => {
      t.init(c, req.bias ? bp : undefined, 0);
      kyLoop(c, g, row, l, xpix, wpan, kernelRow(width), () => {
        t.reduce(c, l.xk, l.wk, kEnd, g.kw * g.c, width * 4, xPix, unroll);
      });
      t.store(c, ypix, 0, yPix, lastLanes, req.epilogue);
    };

    /** One border pixel: every tap checked against the image's columns. */
    const border = (t: Tile, row: RowLocals, width: number, lastLanes: number, ox: I32) => {
      t.init(c, req.bias ? bp : undefined, 0);
      kyLoop(c, g, row, l, xpix, wpan, kernelRow(width), () => {
        c.i32Const(0).set(kx);
        const taps = c.loop();
        // ix = ox * sw - left + kx, inside [0, w) (unsigned compare)
        push(c, ox);
        c.i32Const(g.sw).i32('mul').i32Const(g.left).i32('sub').get(kx).i32('add').tee(ix);
        c.i32Const(g.w).i32('lt_u');
        c.if();
        // x at row ky, column ix; w at tap (ky, kx)
        c.get(l.xky).get(ix).i32Const(g.c * 4).i32('mul').i32('add').set(xc);
        c.get(l.wky).get(kx).i32Const(g.c * width * 4).i32('mul').i32('add').set(wc);
        t.reduce(c, xc, wc, kEnd, g.c, width * 4, 0, unroll);
        c.end();
        c.get(kx).i32Const(1).i32('add').tee(kx).i32Const(g.kw).i32('lt_u').brIf(taps);
        c.end();
      });
      t.store(c, ypix, 0, yPix, lastLanes, req.epilogue);
    };

    const oxLoc = c.local('i32');
    const panelBody = (row: RowLocals, vecs: number, width: number, lastLanes: number) => {
      // xpix for output column ox: xrow + (ox * sw - left) * c * 4
      const at = (ox: number) => {
        add(c, xpix, row.xrow, (ox * g.sw - g.left) * g.c * 4);
        c.get(row.yrow).i32Const(ox * yPix).i32('add').get(col).i32('add').set(ypix);
      };
      if (cols.blocks > 0) {
        const t = tileOf(tile.rows, vecs);
        at(g.oxLo);
        c.get(ypix).i32Const(cols.blocks * tile.rows * yPix).i32('add').set(yStop);
        loopUntil(c, ypix, yStop, false, () => {
          interior(t, row, width, lastLanes);
          bump(c, xpix, tile.rows * xPix);
          bump(c, ypix, tile.rows * yPix);
        });
      }
      if (cols.last > 0) {
        at(g.oxLo + cols.blocks * tile.rows);
        interior(tileOf(cols.last, vecs), row, width, lastLanes);
      }
      for (const [from, to] of cols.borders) {
        const t = tileOf(1, vecs);
        // xpix stays at the row's column 0 - left: border taps compute their own column.
        add(c, xpix, row.xrow, 0);
        c.i32Const(from).set(oxLoc);
        const pixels = c.loop();
        c.get(row.yrow).get(oxLoc).i32Const(yPix).i32('mul').i32('add').get(col).i32('add').set(ypix);
        border(t, row, width, lastLanes, oxLoc);
        c.get(oxLoc).i32Const(1).i32('add').tee(oxLoc).i32Const(to).i32('lt_u').brIf(pixels);
        c.end();
      }
    };

    rowLoops(c, g, F, wRow, (row) => {
      // row.wky0 is kyLo kernel rows of a full panel; the tail panel's rows are narrower (rescaled).
      c.get(w).set(wpan);
      c.get(b).set(bp);
      c.i32Const(0).set(col);
      if (full > 0) {
        add(c, wEnd, w, full * K * P * 4);
        loopUntil(c, wpan, wEnd, false, () => {
          panelBody(row, tile.vecs, P, 4);
          bump(c, wpan, K * P * 4);
          bump(c, bp, P * 4);
          bump(c, col, P * 4);
        });
      }
      if (rest > 0) {
        const width = tailVecs * 4;
        const tailRow: RowLocals = typeof row.wky0 === 'number'
          ? row
          : { ...row, wky0: rescaled(c, row, wRow, kernelRow(width)) };
        panelBody(tailRow, tailVecs, width, tailLanes);
      }
    });
  };
  return { layout, build };
}

/** A local holding wky0 * to / from (kyLo kernel rows of a narrower panel). */
function rescaled(c: Code, row: RowLocals, from: number, to: number): Local {
  const out = c.local('i32');
  push(c, row.wky0);
  c.i32Const(from).i32('div_u').i32Const(to).i32('mul').set(out);
  return out;
}

// ---------------------------------------------------------------------------
// depthwise conv2d (depth multiplier 1): vectors along channels

export function depthwiseKernel(req: DepthwiseRequest): SimdKernel {
  const g = geometry(req);
  const C = g.c;
  const Cp = roundUp4(C);
  const vecsAll = Cp / 4;
  // Channel vectors held per pass: each x vector is used once, so a small chunk (less code, fewer
  // live registers) measured fastest.
  const chunk = Math.min(req.tile?.vecs ?? 2, vecsAll);
  const geo = `${g.sh > 1 || g.sw > 1 ? `_s${g.sh}x${g.sw}` : ''}${req.padding === 'same' ? '_same' : ''}`;
  const layout: SimdKernelLayout = {
    name: req.name ?? `depthwise_conv2d_${g.h}x${g.w}x${C}_k${g.kh}x${g.kw}${geo}${tagOf(req)}`,
    request: req,
    inputFloats: g.h * g.w * C,
    outputFloats: g.oh * g.ow * C,
    pack: { k: g.kh * g.kw, units: C, panel: Cp },
    weightFloats: g.kh * g.kw * Cp,
    biasFloats: req.bias ? Cp : 0,
    flopsPerExample: 2 * g.oh * g.ow * C * g.kh * g.kw,
    summary: `f32x4 vectors along channels, ${chunk} per pass${inRegisters(req)}`,
  };
  const wRow = g.kw * Cp * 4;
  const tailLanes = C % 4 === 0 ? 4 : C % 4;

  // Channel vectors: chunks of `chunk` full vectors in a loop, then the rest (with the partial vector) once.
  const fullVecs = tailLanes === 4 ? vecsAll : vecsAll - 1;
  const loopChunks = Math.floor(fullVecs / chunk);
  const restVecs = vecsAll - loopChunks * chunk;

  const build = (c: Code) => {
    const { w, b } = params(c);
    const acc = Array.from({ length: chunk }, () => c.local('v128'));
    const xpix = c.local('i32');
    const ypix = c.local('i32');
    const oxLoc = c.local('i32');
    const ix = c.local('i32');
    const kx = c.local('i32');
    const xt = c.local('i32');
    const wt = c.local('i32');
    const cOff = c.local('i32');
    const cEnd = c.local('i32');
    const xs = c.local('i32');
    const ws = c.local('i32');
    const bs = c.local('i32');
    const ys = c.local('i32');
    const l = { xk: c.local('i32'), wk: c.local('i32'), xky: c.local('i32'), wky: c.local('i32'), kyEnd: c.local('i32') };

    /** The x vector at `at` + offset: `lanes` channels, zero-extended. */
    const xVector = (at: Local, offset: number, lanes: number) => {
      c.get(at);
      if (lanes === 4) c.load('v128', offset);
      else if (lanes === 1) c.load('v128_load32_zero', offset);
      else {
        c.load('v128_load64_zero', offset);
        if (lanes === 3) c.get(at).load('f32', offset + 8).replaceLane(2);
      }
    };
    /** acc[v] += x[xAt + xOff + v*16] * w[wAt + wOff + v*16] for `count` vectors, the last with `lastLanes` lanes. */
    const tap = (xAt: Local, wAt: Local, xOff: number, wOff: number, count: number, lastLanes: number) => {
      for (let v = 0; v < count; v++) {
        const a = acc[v]!;
        const lanes = v === count - 1 ? lastLanes : 4;
        c.get(a);
        xVector(xAt, xOff + v * 16, lanes);
        c.get(wAt).load('v128', wOff + v * 16).f32x4('mul').f32x4('add').set(a);
      }
    };
    /**
     * `count` channel vectors of one output pixel, from channel byte offset
     * cOff (x at xpix + cOff, weights at w + cOff, ...); `checked` pixels
     * test every tap's column (ox in oxLoc).
     */
    const vectors = (row: RowLocals, checked: boolean, count: number, lastLanes: number) => {
      c.get(xpix).get(cOff).i32('add').set(xs);
      c.get(w).get(cOff).i32('add').set(ws);
      c.get(ypix).get(cOff).i32('add').set(ys);
      if (req.bias) c.get(b).get(cOff).i32('add').set(bs);
      for (let v = 0; v < count; v++) {
        if (req.bias) c.get(bs).load('v128', v * 16);
        else c.v128Const([0, 0, 0, 0]);
        c.set(acc[v]!);
      }
      kyLoop(c, g, row, l, xs, ws, wRow, () => {
        if (!checked) {
          for (let t = 0; t < g.kw; t++) tap(l.xk, l.wk, t * C * 4, t * Cp * 4, count, lastLanes);
          return;
        }
        c.i32Const(0).set(kx);
        const taps = c.loop();
        c.get(oxLoc).i32Const(g.sw).i32('mul').i32Const(g.left).i32('sub').get(kx).i32('add').tee(ix);
        c.i32Const(g.w).i32('lt_u');
        c.if();
        c.get(l.xky).get(ix).i32Const(C * 4).i32('mul').i32('add').set(xt);
        c.get(l.wky).get(kx).i32Const(Cp * 4).i32('mul').i32('add').set(wt);
        tap(xt, wt, 0, 0, count, lastLanes);
        c.end();
        c.get(kx).i32Const(1).i32('add').tee(kx).i32Const(g.kw).i32('lt_u').brIf(taps);
        c.end();
      });
      for (let v = 0; v < count; v++) {
        storeVector(c, ys, v * 16, v === count - 1 ? lastLanes : 4, () => {
          c.get(acc[v]!);
          applyEpilogue(c, req.epilogue);
        });
      }
    };
    const pixel = (row: RowLocals, checked: boolean) => {
      c.i32Const(0).set(cOff);
      if (loopChunks > 0) {
        c.i32Const(loopChunks * chunk * 16).set(cEnd);
        loopUntil(c, cOff, cEnd, false, () => {
          vectors(row, checked, chunk, 4);
          bump(c, cOff, chunk * 16);
        });
      }
      if (restVecs > 0) vectors(row, checked, restVecs, tailLanes);
    };

    rowLoops(c, g, C, wRow, (row) => {
      const yPix = C * 4;
      if (g.oxHi > g.oxLo) {
        add(c, xpix, row.xrow, (g.oxLo * g.sw - g.left) * C * 4);
        add(c, ypix, row.yrow, g.oxLo * yPix);
        c.get(row.yrow).i32Const(g.oxHi * yPix).i32('add').set(oxLoc); // the interior's end, as a y pointer
        loopUntil(c, ypix, oxLoc, false, () => {
          pixel(row, false);
          bump(c, xpix, g.sw * C * 4);
          bump(c, ypix, yPix);
        });
      }
      for (const [from, to] of columnPlan(g, 1).borders) {
        add(c, xpix, row.xrow, 0);
        c.i32Const(from).set(oxLoc);
        const pixels = c.loop();
        c.get(row.yrow).get(oxLoc).i32Const(yPix).i32('mul').i32('add').set(ypix);
        pixel(row, true);
        c.get(oxLoc).i32Const(1).i32('add').tee(oxLoc).i32Const(to).i32('lt_u').brIf(pixels);
        c.end();
      }
    });
  };
  return { layout, build };
}
