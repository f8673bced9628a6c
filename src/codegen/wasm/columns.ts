/**
 * The window copies that turn a training step's convolutions into GEMMs
 * (`--simd` training modules): im2col lays the windows of x out as the rows
 * of a column buffer, so that the forward conv is col · kernel and the kernel
 * gradient is colᵀ · dy (the dense kernels of kernels.ts and
 * train-kernels.ts, with the kernel in its Keras layout); col2im is its
 * adjoint, which sums the column buffer dcol = dy · kernelᵀ back into dx.
 * Same signature as every kernel, (n, a, unused, unused, y), byte offsets:
 *
 *   im2col  col[(e, oy, ox), (ky, kx, ci)] = x[e, iy, ix, ci],
 *           iy = oy*sy + ky*dy - top, ix = ox*sx + kx*dx - left, zero outside the image
 *   col2im  dx[e, iy, ix, ci] = sum of col[(e, oy, ox), (ky, kx, ci)] over the
 *           windows that read (iy, ix), in increasing (oy, ox, ky, kx) order
 *
 * The walk is the same for both: examples, output rows, output columns, then
 * kernel rows; a kernel row wholly inside the image (dilation 1) is one run
 * of kw * c floats, else each tap is a run of c floats or padding. Runs are
 * f32x4 loads and stores with a scalar tail, so x rows need not be aligned.
 * col2im writes dx whole (zeros first), nothing outside it.
 */
import type { Col2imRequest, ConvWindow, Im2colRequest } from '../../ops/simd-def.js';
import type { Code, Local } from './encode.js';
import { bump, checkPositive, loopUntil, params, weightlessLayout, type SimdKernel, type SimdKernelLayout } from './kernel-common.js';

/** A run of floats: copy src to dst, zero dst, or add src into dst. */
type RunMode = 'copy' | 'zero' | 'add';

/** Scratch locals of `run`. */
interface RunLocals {
  readonly d: Local;
  readonly s: Local;
  readonly end: Local;
}

/** Runs this long or shorter are unrolled (vectors at constant offsets). */
const UNROLL_VECS = 8;

function vectorOp(c: Code, mode: RunMode, d: Local, s: Local, offset: number): void {
  c.get(d);
  if (mode === 'zero') c.v128Const([0, 0, 0, 0]);
  else if (mode === 'copy') c.get(s).load('v128', offset);
  else c.get(d).load('v128', offset).get(s).load('v128', offset).f32x4('add');
  c.store('v128', offset);
}

function scalarOp(c: Code, mode: RunMode, d: Local, s: Local, offset: number): void {
  c.get(d);
  if (mode === 'zero') c.f32Const(0);
  else if (mode === 'copy') c.get(s).load('f32', offset);
  else c.get(d).load('f32', offset).get(s).load('f32', offset).f32('add');
  c.store('f32', offset);
}

/** `floats` floats at dst (and src, except for zero): f32x4 vectors, then the 0-3 left one at a time. */
function run(c: Code, mode: RunMode, dst: Local, src: Local, floats: number, l: RunLocals): void {
  const vecs = Math.floor(floats / 4);
  if (vecs <= UNROLL_VECS) {
    for (let v = 0; v < vecs; v++) vectorOp(c, mode, dst, src, v * 16);
  } else {
    c.get(dst).set(l.d);
    c.get(src).set(l.s);
    c.get(dst).i32Const(vecs * 16).i32('add').set(l.end);
    loopUntil(c, l.d, l.end, false, () => {
      vectorOp(c, mode, l.d, l.s, 0);
      bump(c, l.d, 16);
      bump(c, l.s, 16);
    });
  }
  for (let f = vecs * 4; f < floats; f++) scalarOp(c, mode, dst, src, f * 4);
}

/** for (i = 0; i < to; i++) body, for a constant to >= 1. */
function count(c: Code, i: Local, to: number, body: () => void): void {
  c.i32Const(0).set(i);
  const top = c.loop();
  body();
  c.get(i).i32Const(1).i32('add').tee(i).i32Const(to).i32('lt_u').brIf(top);
  c.end();
}

/** i32 on the stack: a * k (nothing multiplied when k is 1). */
function scaled(c: Code, a: Local, k: number): void {
  c.get(a);
  if (k !== 1) c.i32Const(k).i32('mul');
}

function checkWindow(kind: string, w: ConvWindow): void {
  checkPositive(kind, ...w.input, ...w.output, ...w.kernel, ...w.strides, ...w.dilation);
  if (w.before.some((b) => !Number.isInteger(b) || b < 0)) throw new RangeError(`${kind}: padding must be non-negative integers, got ${w.before.join(', ')}`);
}

function layoutOf(req: Im2colRequest | Col2imRequest, inputFloats: number, outputFloats: number, summary: string): SimdKernelLayout {
  const w = req.window;
  const tag = `${w.input.join('x')}_k${w.kernel.join('x')}_o${w.output.join('x')}${w.strides.some((s) => s > 1) ? `_s${w.strides.join('x')}` : ''}${w.dilation.some((d) => d > 1) ? `_d${w.dilation.join('x')}` : ''}${w.before.some((b) => b > 0) ? `_p${w.before.join('x')}` : ''}`;
  return weightlessLayout(req.name ?? `${req.kind}_${tag}`, req, inputFloats, outputFloats, summary);
}

/**
 * The walk both kernels share: for every window cell, `cell(image, col, floats)`
 * with `image` and `col` byte offsets of a run of floats inside the image, or
 * `padding(col, floats)` where the window is outside it.
 */
function walk(c: Code, w: ConvWindow, n: Local, image0: Local, col0: Local, cell: (image: Local, col: Local, floats: number) => void, padding: (col: Local, floats: number) => void): void {
  const [h, wd, ch] = w.input;
  const [oh, ow] = w.output;
  const [kh, kw] = w.kernel;
  const [sy, sx] = w.strides;
  const [dy, dx] = w.dilation;
  const [top, left] = w.before;
  const exampleBytes = h * wd * ch * 4;
  const img = c.local('i32');
  const imgEnd = c.local('i32');
  const col = c.local('i32');
  const oy = c.local('i32');
  const ox = c.local('i32');
  const ky = c.local('i32');
  const kx = c.local('i32');
  const iy = c.local('i32');
  const ix = c.local('i32');
  const ix0 = c.local('i32');
  const row = c.local('i32');
  const at = c.local('i32');
  // A kernel row is one contiguous run when the taps are adjacent and the whole row is inside.
  const wholeRows = dx === 1 && wd >= kw;
  c.get(image0).set(img);
  c.get(col0).set(col);
  c.get(n).i32Const(exampleBytes).i32('mul').get(image0).i32('add').set(imgEnd);
  loopUntil(c, img, imgEnd, true, () => {
    count(c, oy, oh, () => {
      count(c, ox, ow, () => {
        // ix0 = ox * sx - left: the image column of the window's first tap.
        scaled(c, ox, sx);
        c.i32Const(left).i32('sub').set(ix0);
        count(c, ky, kh, () => {
          // iy = oy * sy + ky * dy - top, inside [0, h) (unsigned compare)
          scaled(c, oy, sy);
          scaled(c, ky, dy);
          c.i32('add').i32Const(top).i32('sub').tee(iy).i32Const(h).i32('lt_u');
          c.if();
          c.get(iy).i32Const(wd * ch * 4).i32('mul').get(img).i32('add').set(row);
          const taps = () =>
            count(c, kx, kw, () => {
              c.get(ix0);
              scaled(c, kx, dx);
              c.i32('add').tee(ix).i32Const(wd).i32('lt_u');
              c.if();
              c.get(ix).i32Const(ch * 4).i32('mul').get(row).i32('add').set(at);
              cell(at, col, ch);
              c.else();
              padding(col, ch);
              c.end();
              bump(c, col, ch * 4);
            });
          if (wholeRows) {
            // 0 <= ix0 <= wd - kw: every tap of the row inside.
            c.get(ix0).i32Const(wd - kw).i32('le_u');
            c.if();
            c.get(ix0).i32Const(ch * 4).i32('mul').get(row).i32('add').set(at);
            cell(at, col, kw * ch);
            bump(c, col, kw * ch * 4);
            c.else();
            taps();
            c.end();
          } else {
            taps();
          }
          c.else();
          padding(col, kw * ch);
          bump(c, col, kw * ch * 4);
          c.end();
        });
      });
    });
    bump(c, img, exampleBytes);
  });
}

export function im2colKernel(req: Im2colRequest): SimdKernel {
  const w = req.window;
  checkWindow(req.kind, w);
  const K = w.kernel[0] * w.kernel[1] * w.input[2];
  const layout = layoutOf(req, w.input[0] * w.input[1] * w.input[2], w.output[0] * w.output[1] * K, `the windows of x as ${K}-float rows, f32x4 copies`);
  const build = (c: Code) => {
    const { n, x, y } = params(c);
    const l = { d: c.local('i32'), s: c.local('i32'), end: c.local('i32') };
    walk(c, w, n, x, y, (image, col, floats) => run(c, 'copy', col, image, floats, l), (col, floats) => run(c, 'zero', col, col, floats, l));
  };
  return { layout, build };
}

export function col2imKernel(req: Col2imRequest): SimdKernel {
  const w = req.window;
  checkWindow(req.kind, w);
  const K = w.kernel[0] * w.kernel[1] * w.input[2];
  const exampleFloats = w.input[0] * w.input[1] * w.input[2];
  const layout = layoutOf(req, w.output[0] * w.output[1] * K, exampleFloats, `the ${K}-float rows summed into their windows of dx, f32x4 adds`);
  const build = (c: Code) => {
    const { n, x: cols, y: image } = params(c);
    const l = { d: c.local('i32'), s: c.local('i32'), end: c.local('i32') };
    const p = c.local('i32');
    const end = c.local('i32');
    // dx = 0, one example at a time.
    c.get(image).set(p);
    c.get(n).i32Const(exampleFloats * 4).i32('mul').get(image).i32('add').set(end);
    loopUntil(c, p, end, true, () => {
      run(c, 'zero', p, p, exampleFloats, l);
      bump(c, p, exampleFloats * 4);
    });
    walk(c, w, n, image, cols, (at, col, floats) => run(c, 'add', at, col, floats, l), () => {});
  };
  return { layout, build };
}
