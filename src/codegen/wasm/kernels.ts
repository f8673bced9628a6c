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
 */
import { windowAxis } from '../../ops/conv.js';
import type { Code, Local } from './encode.js';
import { denseGradInputKernel, denseGradKernelKernel, type DenseGradInputRequest, type DenseGradKernelRequest } from './train-kernels.js';

export type { DenseGradInputRequest, DenseGradKernelRequest } from './train-kernels.js';

/** Fused activations the kernels apply in registers; anything else runs as a separate pass. */
export type SimdEpilogue = 'relu' | 'relu6';

interface Common {
  /** The export's name; default: derived from the kind and sizes (`dense_784x64_relu`). */
  readonly name?: string;
  readonly bias: boolean;
  readonly epilogue?: SimdEpilogue;
  /** Register tile: rows (GEMM rows or adjacent output pixels) x f32x4 vectors of output columns. */
  readonly tile?: { readonly rows: number; readonly vecs: number };
  /**
   * Reduction steps per loop iteration (default 1: on V8 x64 unrolling
   * lengthens live ranges and the register allocator spills).
   */
  readonly unroll?: number;
}

/** y[rows, units] = x[rows, inDim] . kernel[inDim, units] + bias, rows = n * rowsPerExample. */
export interface DenseRequest extends Common {
  readonly kind: 'dense';
  readonly inDim: number;
  readonly units: number;
  /** Rows per example: the product of x's dimensions between the batch and the last (default 1). */
  readonly rowsPerExample?: number;
  /**
   * The kernel as it is, [inDim, units] row-major (Keras layout), instead of
   * packed: for weights that change every call (training). Needs units % 4 == 0.
   */
  readonly rowMajor?: boolean;
}

/** conv2d NHWC, kernel [kh, kw, cin, filters], dilation 1, one group. */
export interface Conv2dRequest extends Common {
  readonly kind: 'conv2d';
  /** Per-example input shape [h, w, cin]. */
  readonly input: readonly [number, number, number];
  readonly kernel: readonly [number, number];
  readonly filters: number;
  readonly strides?: readonly [number, number];
  readonly padding?: 'valid' | 'same';
}

/** depthwise conv2d NHWC, kernel [kh, kw, c, 1] (depth multiplier 1), dilation 1. */
export interface DepthwiseRequest extends Common {
  readonly kind: 'depthwise_conv2d';
  readonly input: readonly [number, number, number];
  readonly kernel: readonly [number, number];
  readonly strides?: readonly [number, number];
  readonly padding?: 'valid' | 'same';
}

/** The kernels an inference module uses (weights packed once). */
export type SimdKernelRequest = DenseRequest | Conv2dRequest | DepthwiseRequest;
/** Every kernel: the inference ones and the dense gradients of training modules (train-kernels.ts). */
export type AnySimdKernelRequest = SimdKernelRequest | DenseGradInputRequest | DenseGradKernelRequest;

/** How one kernel reads memory: what the JS side must lay out for it. */
export interface SimdKernelLayout {
  readonly name: string;
  readonly request: AnySimdKernelRequest;
  /** x and y floats per example. */
  readonly inputFloats: number;
  readonly outputFloats: number;
  /** The weights as a [k, units] matrix packed in column panels of `panel` floats. */
  readonly pack: { readonly k: number; readonly units: number; readonly panel: number };
  /** Floats of the packed weights and of the padded bias (0 without a bias). */
  readonly weightFloats: number;
  readonly biasFloats: number;
  /** Multiply-adds x 2 per example (for GFLOP/s). */
  readonly flopsPerExample: number;
}

export interface SimdKernel {
  readonly layout: SimdKernelLayout;
  /** Writes the function body; the function's params are (n, x, w, b, y), all i32. */
  readonly build: (code: Code) => void;
}

const roundUp4 = (v: number) => Math.ceil(v / 4) * 4;

/** Floats of packed [k, units] weights in panels of `panel` columns (the last one rounded up to 4). */
export function packedFloats(k: number, units: number, panel: number): number {
  const full = Math.floor(units / panel);
  return k * (full * panel + roundUp4(units - full * panel));
}

export function checkPositive(what: string, ...vs: number[]): void {
  for (const v of vs) if (!Number.isInteger(v) || v < 1) throw new RangeError(`${what}: expected positive integers, got ${vs.join(', ')}`);
}

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

export function simdKernel(req: AnySimdKernelRequest): SimdKernel {
  switch (req.kind) {
    case 'dense':
      return denseKernel(req);
    case 'conv2d':
      return conv2dKernel(req);
    case 'depthwise_conv2d':
      return depthwiseKernel(req);
    case 'dense_grad_input':
      return denseGradInputKernel(req);
    case 'dense_grad_kernel':
      return denseGradKernelKernel(req);
  }
}

// ---------------------------------------------------------------------------
// Emission helpers

/** An i32 value: a constant or a local. */
type I32 = number | Local;

export function push(c: Code, v: I32): void {
  if (typeof v === 'number') c.i32Const(v);
  else c.get(v);
}

/** dst = a + b (i32). */
export function add(c: Code, dst: Local, a: I32, b: I32): void {
  if (typeof b === 'number' && b === 0) {
    push(c, a);
  } else {
    push(c, a);
    push(c, b);
    c.i32('add');
  }
  c.set(dst);
}

/** dst += by. */
export function bump(c: Code, dst: Local, by: I32): void {
  if (by !== 0) add(c, dst, dst, by);
}

/**
 * do { body } while (ptr != end), after `ptr`'s start is set by the caller.
 * With `guard`, the loop is skipped when ptr == end on entry. `body` must
 * advance ptr so that it meets `end` exactly.
 */
export function loopUntil(c: Code, ptr: Local, end: I32, guard: boolean, body: () => void): void {
  const exit = c.block();
  if (guard) {
    c.get(ptr);
    push(c, end);
    c.i32('eq');
    c.brIf(exit);
  }
  const top = c.loop();
  body();
  c.get(ptr);
  push(c, end);
  c.i32('ne');
  c.brIf(top);
  c.end();
  c.end();
}

/** One register tile per shape, made on first use (its locals are declared once per function). */
export function tileCache<T>(make: (rows: number, cols: number) => T): (rows: number, cols: number) => T {
  const tiles = new Map<string, T>();
  return (rows, cols) => {
    const key = `${rows}x${cols}`;
    let t = tiles.get(key);
    if (t === undefined) tiles.set(key, (t = make(rows, cols)));
    return t;
  };
}

/** The f32x4 locals of a register tile and the emission of its steps. */
export class Tile {
  readonly acc: Local[][];
  readonly w: Local[];
  readonly x: Local;

  constructor(c: Code, readonly rows: number, readonly vecs: number) {
    this.acc = Array.from({ length: rows }, () => Array.from({ length: vecs }, () => c.local('v128')));
    this.w = Array.from({ length: vecs }, () => c.local('v128'));
    this.x = c.local('v128');
  }

  /** The accumulators start at the bias vectors at `bp` (+ byte offset), or zero. */
  init(c: Code, bp: I32 | undefined, offset: number): void {
    for (let v = 0; v < this.vecs; v++) {
      if (bp === undefined) c.v128Const([0, 0, 0, 0]);
      else {
        push(c, bp);
        c.load('v128', offset + v * 16);
      }
      c.set(this.acc[0]![v]!);
      for (let r = 1; r < this.rows; r++) c.get(this.acc[0]![v]!).set(this.acc[r]![v]!);
    }
  }

  /** acc[r][v] += x * w[v], x on the stack consumed into `this.x` first. */
  private madd(c: Code, r: number, v: number): void {
    const acc = this.acc[r]![v]!;
    c.get(acc).get(this.x).get(this.w[v]!).f32x4('mul').f32x4('add').set(acc);
  }

  /**
   * One reduction step at byte offset `step * 4` of x and `step * wStride` of
   * w: the weight vectors, then per row a broadcast x value and its
   * multiply-adds. Row r of x is `r * xRowStride` bytes after `xp`.
   */
  step(c: Code, xp: Local, wp: Local, xOffset: number, wOffset: number, xRowStride: number): void {
    for (let v = 0; v < this.vecs; v++) c.get(wp).load('v128', wOffset + v * 16).set(this.w[v]!);
    for (let r = 0; r < this.rows; r++) {
      c.get(xp).load('v128_load32_splat', xOffset + r * xRowStride).set(this.x);
      for (let v = 0; v < this.vecs; v++) this.madd(c, r, v);
    }
  }

  /**
   * `count` reduction steps from xp (x advancing 4 bytes per step) and wp (w
   * advancing `wStride` bytes per step), `unroll` steps per loop iteration.
   * Clobbers xp, wp and `end`.
   */
  reduce(c: Code, xp: Local, wp: Local, end: Local, count: number, wStride: number, xRowStride: number, unroll: number): void {
    const iterations = Math.floor(count / unroll);
    if (iterations === 1) {
      for (let u = 0; u < unroll; u++) this.step(c, xp, wp, u * 4, u * wStride, xRowStride);
    } else if (iterations > 1) {
      add(c, end, xp, iterations * unroll * 4);
      loopUntil(c, xp, end, false, () => {
        for (let u = 0; u < unroll; u++) this.step(c, xp, wp, u * 4, u * wStride, xRowStride);
        bump(c, xp, unroll * 4);
        bump(c, wp, unroll * wStride);
      });
    }
    const done = iterations === 1 ? unroll : 0;
    for (let t = 0; t < count % unroll; t++) this.step(c, xp, wp, (done + t) * 4, (done + t) * wStride, xRowStride);
  }

  /**
   * Stores the tile at yp (+ byte offset), rows `yRowStride` bytes apart,
   * after the epilogue; the last vector keeps only `lastLanes` lanes.
   */
  store(c: Code, yp: Local, offset: number, yRowStride: number, lastLanes: number, epilogue: SimdEpilogue | undefined): void {
    for (let r = 0; r < this.rows; r++) {
      for (let v = 0; v < this.vecs; v++) {
        const at = offset + r * yRowStride + v * 16;
        const lanes = v === this.vecs - 1 ? lastLanes : 4;
        storeVector(c, yp, at, lanes, () => {
          c.get(this.acc[r]![v]!);
          applyEpilogue(c, epilogue);
        });
      }
    }
  }
}

function applyEpilogue(c: Code, epilogue: SimdEpilogue | undefined): void {
  if (epilogue === undefined) return;
  c.v128Const([0, 0, 0, 0]).f32x4('max');
  if (epilogue === 'relu6') c.v128Const([6, 6, 6, 6]).f32x4('min');
}

/** Stores the first `lanes` lanes of the vector `value` pushes at yp + offset. */
function storeVector(c: Code, yp: I32, offset: number, lanes: number, value: () => void): void {
  const part = (bits: 32 | 64, lane: number, at: number) => {
    push(c, yp);
    value();
    c.storeLane(bits, lane, at);
  };
  if (lanes === 4) {
    push(c, yp);
    value();
    c.store('v128', offset);
  } else if (lanes === 1) part(32, 0, offset);
  else if (lanes === 2) part(64, 0, offset);
  else {
    part(64, 0, offset);
    part(32, 2, offset + 8);
  }
}

/** The five i32 parameters of every kernel. */
export function params(c: Code) {
  const [n, x, w, b, y] = c.params as [Local, Local, Local, Local, Local];
  return { n, x, w, b, y };
}

/** Column panels: `full` panels of `panel` floats, then a tail of `tailVecs` vectors whose last has `tailLanes` lanes. */
function panelsOf(units: number, panel: number) {
  const full = Math.floor(units / panel);
  const rest = units - full * panel;
  return { full, rest, tailVecs: Math.ceil(rest / 4), tailLanes: rest % 4 === 0 ? 4 : rest % 4 };
}

function tagOf(req: Common): string {
  return `${req.epilogue ? `_${req.epilogue}` : ''}${req.bias ? '' : '_nobias'}`;
}

// ---------------------------------------------------------------------------
// Dense: GEMM

function denseKernel(req: DenseRequest): SimdKernel {
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

function conv2dKernel(req: Conv2dRequest): SimdKernel {
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

function depthwiseKernel(req: DepthwiseRequest): SimdKernel {
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
