/**
 * The WebAssembly SIMD depthwise conv2d (depth multiplier 1), NHWC: one
 * output pixel at a time, its channels as f32x4 vectors in chunks of `vecs`
 * accumulators (default 2) over the window taps; the weights are [kh * kw, c]
 * rows padded to a multiple of 4 channels, channel tails of x are read with
 * the zero-extending partial loads. See `kernels.ts` for the conventions every
 * kernel follows.
 */
import type { DepthwiseRequest } from '../../ops/simd-def.js';
import type { Code, Local } from './encode.js';
import { add, applyEpilogue, bump, epilogueInPlace, inRegisters, loopUntil, params, roundUp4, storeVector, tagOf, type SimdKernel, type SimdKernelLayout } from './kernel-common.js';
import { columnPlan, geometry, kyLoop, rowLoops, type RowLocals } from './window.js';

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
      const inPlace = epilogueInPlace(req.epilogue);
      for (let v = 0; v < count; v++) {
        if (inPlace) {
          applyEpilogue(c.get(acc[v]!), req.epilogue);
          c.set(acc[v]!);
        }
        storeVector(c, ys, v * 16, v === count - 1 ? lastLanes : 4, () => {
          c.get(acc[v]!);
          if (!inPlace) applyEpilogue(c, req.epilogue);
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
