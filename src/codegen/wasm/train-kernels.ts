/**
 * WebAssembly SIMD kernels for the gradients of dense layers, the hot loops
 * of a training step (`--simd` training modules). Unlike the inference
 * kernels, every operand is in its natural row-major layout (weights change
 * every step, so there is nothing to pack once), and the reduction of the
 * kernel gradient runs over the batch, whose size is only known at run time.
 * Same signature as every kernel, (n, a, b, unused, y), byte offsets:
 *
 *   dense_grad_input   dx[rows, K] = dy[rows, U] · kernel[K, U]ᵀ
 *                      per output, a dot product of two contiguous rows: a
 *                      tile of 4 dy rows x 2 kernel rows keeps 8 f32x4 partial
 *                      sums over U (6 vector loads per 8 multiply-adds), then
 *                      adds each one's 4 lanes. With K a multiple of 4 the
 *                      rules ask for `transposed`: the kernel is copied
 *                      transposed into a scratch buffer (passed where a bias
 *                      would be), then dx is the row-major dense GEMM of
 *                      kernels.ts, without horizontal sums.
 *   dense_grad_kernel  dk[K, U] = x[rows, K]ᵀ · dy[rows, U]
 *                      the GEMM micro-kernel of kernel-common.ts (4 kernel rows x 2
 *                      f32x4 vectors of units; broadcast x values, dy vectors)
 *                      with the reduction index walking down the batch in
 *                      chunks of rows that stay in cache: each tile starts
 *                      from the previous chunk's sums (the same order of
 *                      additions as one walk).
 *
 * rows = n * rowsPerExample. U must be a multiple of 4 (whole vectors: no
 * load reaches past a row); the ops' `simd` rules (use `training`) leave
 * other shapes to the TypeScript kernels. Sums are float32, in increasing
 * reduction order (the grad-input dot product: by lane, then the lanes in
 * order 0-3).
 */
import type { DenseGradInputRequest, DenseGradKernelRequest } from '../../ops/simd-def.js';
import type { Code, Local } from './encode.js';
import { add, bump, checkPositive, loopUntil, params, Tile, tileCache, type SimdKernel, type SimdKernelLayout } from './kernel-common.js';
import { denseKernel } from './kernels.js';

function checkUnits(kind: string, inDim: number, units: number, rpe: number): void {
  checkPositive(kind, inDim, units, rpe);
  if (units % 4 !== 0) throw new RangeError(`${kind}: units must be a multiple of 4, got ${units}`);
}

function layoutOf(req: DenseGradInputRequest | DenseGradKernelRequest, inputFloats: number, outputFloats: number, summary: string): SimdKernelLayout {
  const rpe = req.rowsPerExample ?? 1;
  return {
    name: req.name ?? `${req.kind}_${req.inDim}x${req.units}${rpe > 1 ? `_r${rpe}` : ''}`,
    request: req,
    inputFloats,
    outputFloats,
    // No packing: panel = units.
    pack: { k: req.inDim, units: req.units, panel: req.units },
    weightFloats: req.inDim * req.units,
    biasFloats: 0,
    flopsPerExample: 2 * rpe * req.inDim * req.units,
    summary,
  };
}

/** rows = n * rowsPerExample into `rows`. */
function rowsOf(c: Code, n: Local, rpe: number, rows: Local): void {
  c.get(n);
  if (rpe > 1) c.i32Const(rpe).i32('mul');
  c.set(rows);
}

export function denseGradInputKernel(req: DenseGradInputRequest): SimdKernel {
  const { inDim: K, units: U } = req;
  const rpe = req.rowsPerExample ?? 1;
  checkUnits(req.kind, K, U, rpe);
  if (req.transposed) return transposedGradInput(req);
  const layout = layoutOf(req, rpe * U, rpe * K, 'f32x4 dot products of dy and kernel rows, 4 x 2 per register tile');
  const build = (c: Code) => {
    const { n, x: dy, w, y } = params(c);
    const rows = c.local('i32');
    const dyp = c.local('i32'); // the row block of dy
    const dyMainEnd = c.local('i32');
    const dyEnd = c.local('i32');
    const yp = c.local('i32'); // y at the row block, column k
    const wp = c.local('i32'); // kernel row k
    const wMainEnd = c.local('i32');
    const wEnd = c.local('i32');
    const ap = c.local('i32');
    const bp = c.local('i32');
    const apEnd = c.local('i32');
    const tileOf = tileCache((r, k) => new DotTile(c, r, k));
    rowsOf(c, n, rpe, rows);
    // Row blocks of 4 end at dyMainEnd, single rows at dyEnd; kernel rows in pairs end at wMainEnd.
    c.get(rows).get(rows).i32Const(4).i32('rem_u').i32('sub').i32Const(U * 4).i32('mul').get(dy).i32('add').set(dyMainEnd);
    c.get(rows).i32Const(U * 4).i32('mul').get(dy).i32('add').set(dyEnd);
    add(c, wMainEnd, w, Math.floor(K / 2) * 2 * U * 4);
    add(c, wEnd, w, K * U * 4);
    c.get(dy).set(dyp);
    c.get(y).set(yp);
    for (const [R, rowEnd] of [[4, dyMainEnd], [1, dyEnd]] as const) {
      loopUntil(c, dyp, rowEnd, true, () => {
        c.get(w).set(wp);
        for (const [C, kEnd] of [[2, wMainEnd], [1, wEnd]] as const) {
          const t = tileOf(R, C);
          loopUntil(c, wp, kEnd, true, () => {
            t.zero(c);
            c.get(dyp).set(ap);
            c.get(wp).set(bp);
            add(c, apEnd, dyp, U * 4);
            loopUntil(c, ap, apEnd, false, () => {
              t.step(c, ap, bp, U * 4, U * 4);
              bump(c, ap, 16);
              bump(c, bp, 16);
            });
            t.store(c, yp, K * 4);
            bump(c, wp, C * U * 4);
            bump(c, yp, C * 4);
          });
        }
        // yp walked K columns; move it to the next row block.
        bump(c, yp, (R - 1) * K * 4);
        bump(c, dyp, R * U * 4);
      });
    }
  };
  return { layout, build };
}

export function denseGradKernelKernel(req: DenseGradKernelRequest): SimdKernel {
  const { inDim: K, units: U } = req;
  const rpe = req.rowsPerExample ?? 1;
  checkUnits(req.kind, K, U, rpe);
  const layout = layoutOf(req, rpe * K, K * U, `f32x4 GEMM down the batch in chunks of ${chunkRows(K, U)} rows, 4 kernel rows x 8 units per register tile`);
  const P = 8; // columns per panel: 2 f32x4 vectors
  const fullPanels = Math.floor(U / P);
  const tailVecs = (U - fullPanels * P) / 4;
  const CH = chunkRows(K, U);
  const build = (c: Code) => {
    const { n, x, w: dy, y } = params(c);
    const rows = c.local('i32');
    const span = c.local('i32'); // rows * K * 4: the bytes of x the reduction walks
    const rowOff = c.local('i32'); // the chunk's first row, as a byte offset into x
    const dyOff = c.local('i32'); // ... and into dy
    const chunk = c.local('i32'); // bytes of x in this chunk
    const first = c.local('i32'); // 1 in the first chunk: the tiles start at zero, later ones at what y holds
    const col = c.local('i32'); // byte offset of the panel's first unit
    const colEnd = c.local('i32');
    const xk = c.local('i32'); // x at column k (row 0)
    const xMainEnd = c.local('i32');
    const xEnd = c.local('i32');
    const yp = c.local('i32');
    const xp = c.local('i32');
    const dp = c.local('i32');
    const end = c.local('i32');
    const tileOf = tileCache((r, v) => new Tile(c, r, v));
    rowsOf(c, n, rpe, rows);
    c.get(rows)
      .i32Const(K * 4)
      .i32('mul')
      .set(span);
    add(c, xMainEnd, x, Math.floor(K / 4) * 16);
    add(c, xEnd, x, K * 4);
    /** Output columns [col, col + vecs * 4) of every row k of dk, summed over the chunk's rows. */
    const panel = (vecs: number) => {
      c.get(x).set(xk);
      c.get(y).get(col).i32('add').set(yp);
      for (const [R, kEnd] of [
        [4, xMainEnd],
        [1, xEnd],
      ] as const) {
        const t = tileOf(R, vecs);
        loopUntil(c, xk, kEnd, true, () => {
          c.get(first);
          c.if();
          t.init(c, undefined, 0);
          c.else();
          t.load(c, yp, 0, U * 4);
          c.end();
          c.get(xk).get(rowOff).i32('add').set(xp);
          c.get(dy).get(col).i32('add').get(dyOff).i32('add').set(dp);
          c.get(xp).get(chunk).i32('add').set(end);
          // Down the chunk: x[i, k..k+R) broadcast, dy[i, col..] as vectors.
          loopUntil(c, xp, end, true, () => {
            t.step(c, xp, dp, 0, 0, 4);
            bump(c, xp, K * 4);
            bump(c, dp, U * 4);
          });
          t.store(c, yp, 0, U * 4, 4, undefined);
          bump(c, xk, R * 4);
          bump(c, yp, R * U * 4);
        });
      }
    };
    // Chunks of CH rows, so that the x rows every tile walks stay in cache across the tiles.
    c.i32Const(0).set(rowOff);
    c.i32Const(0).set(dyOff);
    c.i32Const(1).set(first);
    const chunks = c.loop();
    // chunk = min(CH rows, what is left)
    c.i32Const(CH * K * 4);
    c.get(span).get(rowOff).i32('sub');
    c.i32Const(CH * K * 4)
      .get(span)
      .get(rowOff)
      .i32('sub')
      .i32('lt_u');
    c.select().set(chunk);
    c.i32Const(0).set(col);
    if (fullPanels > 0) {
      c.i32Const(fullPanels * P * 4).set(colEnd);
      loopUntil(c, col, colEnd, false, () => {
        panel(2);
        bump(c, col, P * 4);
      });
    }
    if (tailVecs > 0) panel(tailVecs);
    c.i32Const(0).set(first);
    bump(c, rowOff, CH * K * 4);
    bump(c, dyOff, CH * U * 4);
    c.get(rowOff).get(span).i32('lt_u').brIf(chunks);
    c.end();
  };
  return { layout, build };
}

/**
 * Rows per chunk of dk's reduction: about 256 KiB of x and dy rows, which stay
 * in the core's cache while every tile of dk walks them (walking the whole
 * batch per tile streamed x from memory once per 8 units).
 */
function chunkRows(K: number, U: number): number {
  return Math.max(16, Math.min(4096, Math.floor(262144 / (4 * (K + U)))));
}

/** The f32x4 partial sums of an R x C block of dot products, and the steps over their rows. */
class DotTile {
  private readonly acc: Local[][];
  private readonly a: Local;
  private readonly b: Local[];
  private readonly sum: Local;

  constructor(c: Code, readonly rows: number, readonly cols: number) {
    this.acc = Array.from({ length: rows }, () => Array.from({ length: cols }, () => c.local('v128')));
    this.a = c.local('v128');
    this.b = Array.from({ length: cols }, () => c.local('v128'));
    this.sum = c.local('v128');
  }

  zero(c: Code): void {
    for (const row of this.acc) for (const acc of row) c.v128Const([0, 0, 0, 0]).set(acc);
  }

  /** One vector of every row: a rows `aRow` bytes apart from ap, b rows `bRow` bytes apart from bp. */
  step(c: Code, ap: Local, bp: Local, aRow: number, bRow: number): void {
    this.b.forEach((b, j) => c.get(bp).load('v128', j * bRow).set(b));
    this.acc.forEach((row, i) => {
      c.get(ap).load('v128', i * aRow).set(this.a);
      row.forEach((acc, j) => c.get(acc).get(this.a).get(this.b[j]!).f32x4('mul').f32x4('add').set(acc));
    });
  }

  /** y[i, j] = the lanes of acc[i][j] added in order, rows `yRow` bytes apart from yp. */
  store(c: Code, yp: Local, yRow: number): void {
    this.acc.forEach((row, i) =>
      row.forEach((acc, j) => {
        c.get(yp);
        c.get(acc).tee(this.sum).extractLane(0);
        for (let lane = 1; lane < 4; lane++) c.get(this.sum).extractLane(lane).f32('add');
        c.store('f32', i * yRow + j * 4);
      }),
    );
  }
}

/**
 * dx = dy · kernelᵀ as the row-major dense GEMM: the kernel [K, U] is first
 * transposed into the scratch buffer the caller passes in the bias argument
 * (K * U floats; K * U scalar copies, against rows * K * U multiply-adds),
 * then dx[rows, K] = dy[rows, U] · kernelᵀ[U, K] runs in register tiles of
 * broadcast dy values and kernelᵀ vectors, without the dot products'
 * horizontal sums. Needs K a multiple of 4 (whole vectors of dx columns).
 */
function transposedGradInput(req: DenseGradInputRequest): SimdKernel {
  const { inDim: K, units: U } = req;
  const rpe = req.rowsPerExample ?? 1;
  if (K % 4 !== 0) throw new RangeError(`${req.kind}: a transposed kernel needs inDim a multiple of 4, got ${K}`);
  const gemm = denseKernel({ kind: 'dense', inDim: U, units: K, bias: false, rowMajor: true, ...(rpe > 1 ? { rowsPerExample: rpe } : {}) });
  const layout = layoutOf(req, rpe * U, rpe * K, `kernelᵀ into scratch, then ${gemm.layout.summary}`);
  const build = (c: Code) => {
    const { w, b: scratch } = params(c);
    const src = c.local('i32'); // walks the kernel row by row
    const srcEnd = c.local('i32');
    const col = c.local('i32'); // scratch column k
    const colEnd = c.local('i32');
    const dst = c.local('i32');
    c.get(w).set(src);
    c.get(scratch).set(col);
    add(c, colEnd, scratch, K * 4);
    loopUntil(c, col, colEnd, false, () => {
      c.get(col).set(dst);
      add(c, srcEnd, src, U * 4);
      loopUntil(c, src, srcEnd, false, () => {
        c.get(dst).get(src).load('f32').store('f32');
        bump(c, src, 4);
        bump(c, dst, K * 4);
      });
      bump(c, col, 4);
    });
    // The GEMM reads its weights at w: the transposed kernel; it has no bias.
    c.get(scratch).set(w);
    gemm.build(c);
  };
  return { layout, build };
}
