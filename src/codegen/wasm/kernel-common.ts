/**
 * What every WebAssembly SIMD kernel builder shares (the leaf of the kernel
 * builders: `kernels.ts` and `depthwise.ts` for inference, `train-kernels.ts`
 * for the Trainer's dense gradients): the layout a kernel reports, the f32x4
 * register tile of the GEMM-shaped kernels and its default shape, column
 * panels, and small emission helpers (i32 arithmetic on locals, loops that
 * run a pointer to its end, partial vector stores).
 */
import type { AnySimdKernelRequest, Conv2dRequest, DenseRequest, DepthwiseRequest, SimdEpilogue } from '../../ops/simd-def.js';
import type { Code, Local } from './encode.js';
import { emitSigmoid, emitTanh } from './smooth.js';

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
  /** How the kernel computes (`f32x4 GEMM in 4x8 register tiles ...`): the reason of its `simd` plan. */
  readonly summary: string;
}

/** The layout of a kernel that reads no weights (window copies, training batchnorm): nothing to pack. */
export function weightlessLayout(name: string, request: AnySimdKernelRequest, inputFloats: number, outputFloats: number, summary: string): SimdKernelLayout {
  return { name, request, inputFloats, outputFloats, pack: { k: 0, units: 0, panel: 0 }, weightFloats: 0, biasFloats: 0, flopsPerExample: 0, summary };
}

export interface SimdKernel {
  readonly layout: SimdKernelLayout;
  /** Writes the function body; the function's params are (n, x, w, b, y), all i32. */
  readonly build: (code: Code) => void;
}

export const roundUp4 = (v: number) => Math.ceil(v / 4) * 4;

/** Floats of packed [k, units] weights in panels of `panel` columns (the last one rounded up to 4). */
export function packedFloats(k: number, units: number, panel: number): number {
  const full = Math.floor(units / panel);
  return k * (full * panel + roundUp4(units - full * panel));
}

/** Throws unless every size is a positive integer. */
export function checkPositive(what: string, ...vs: number[]): void {
  for (const v of vs) if (!Number.isInteger(v) || v < 1) throw new RangeError(`${what}: expected positive integers, got ${vs.join(', ')}`);
}

/** An i32 value: a constant or a local. */
export type I32 = number | Local;

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

  /** The accumulators start at the tile stored at yp (+ byte offset), rows `yRowStride` bytes apart: whole vectors. */
  load(c: Code, yp: Local, offset: number, yRowStride: number): void {
    for (let r = 0; r < this.rows; r++) for (let v = 0; v < this.vecs; v++) c.get(yp).load('v128', offset + r * yRowStride + v * 16).set(this.acc[r]![v]!);
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
    if (epilogueInPlace(epilogue)) {
      // Once per accumulator, not once per partial store of a tail vector.
      for (const row of this.acc) {
        for (const acc of row) {
          applyEpilogue(c.get(acc), epilogue);
          c.set(acc);
        }
      }
      epilogue = undefined;
    }
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

/** The fused activation on the f32x4 on the stack: relu / relu6 as max / min, tanh and sigmoid by `smooth.ts`. */
export function applyEpilogue(c: Code, epilogue: SimdEpilogue | undefined): void {
  if (epilogue === undefined) return;
  if (epilogue === 'tanh') return emitTanh(c);
  if (epilogue === 'sigmoid') return emitSigmoid(c);
  c.v128Const([0, 0, 0, 0]).f32x4('max');
  if (epilogue === 'relu6') c.v128Const([6, 6, 6, 6]).f32x4('min');
}

/** Whether an epilogue costs enough to apply to a register before storing it (a tail vector's partial stores would each recompute it). */
export function epilogueInPlace(epilogue: SimdEpilogue | undefined): boolean {
  return epilogue === 'tanh' || epilogue === 'sigmoid';
}

/** Stores the first `lanes` lanes of the vector `value` pushes at yp + offset. */
export function storeVector(c: Code, yp: I32, offset: number, lanes: number, value: () => void): void {
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

/**
 * Default tiles: 8 accumulators (4 x 2 for dense, 2 x 4 for conv2d; 4 x 1 or
 * 2 x 3 when the columns are few), the measured optimum on V8 x64.
 */
export function tileFor(req: DenseRequest | Conv2dRequest | DepthwiseRequest, columns: number): { rows: number; vecs: number } {
  if (req.tile) {
    checkPositive('tile', req.tile.rows, req.tile.vecs);
    return req.tile;
  }
  const vecs = Math.min(req.kind === 'dense' ? 2 : 4, Math.ceil(columns / 4));
  return { rows: vecs >= 3 ? 2 : 4, vecs };
}

/** Column panels: `full` panels of `panel` floats, then a tail of `tailVecs` vectors whose last has `tailLanes` lanes. */
export function panelsOf(units: number, panel: number) {
  const full = Math.floor(units / panel);
  const rest = units - full * panel;
  return { full, rest, tailVecs: Math.ceil(rest / 4), tailLanes: rest % 4 === 0 ? 4 : rest % 4 };
}

/** `, relu in registers` for a fused epilogue, for summaries. */
export function inRegisters(req: DenseRequest | Conv2dRequest | DepthwiseRequest): string {
  return req.epilogue ? `, ${req.epilogue} in registers` : '';
}

/** The export-name suffix of the epilogue and a missing bias (`_relu_nobias`). */
export function tagOf(req: DenseRequest | Conv2dRequest | DepthwiseRequest): string {
  return `${req.epilogue ? `_${req.epilogue}` : ''}${req.bias ? '' : '_nobias'}`;
}
