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
 * This file builds dense and conv2d; depthwise is in `depthwise.ts`, the
 * window walk both convolutions share in `window.ts`. The requests are
 * declared in `ops/simd-def.ts` (each op's `simd` rule makes them);
 * `module.ts` dispatches a request to its builder.
 */
import type { Conv2dRequest, DenseRequest } from '../../ops/simd-def.js';
import type { Code, Local } from './encode.js';
import {
  add,
  bump,
  checkPositive,
  inRegisters,
  loopUntil,
  packedFloats,
  panelsOf,
  params,
  push,
  roundUp4,
  tagOf,
  Tile,
  tileCache,
  tileFor,
  type I32,
  type SimdKernel,
  type SimdKernelLayout,
} from './kernel-common.js';
import { columnPlan, geometry, kyLoop, rescaled, rowLoops, type RowLocals } from './window.js';

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
