/**
 * WebAssembly SIMD kernels for batch normalization in training (the Trainer
 * of `--simd` training modules), channels last: x is [rows, C] with rows =
 * n * rowsPerExample and C a multiple of 4. Same signature as every kernel,
 * (n, a, b, c, y), byte offsets; the operands are the op's, in order:
 *
 *   batchnorm_train             (x, gamma?, beta?) -> y = gamma (x - mean) / sigma + beta
 *   batchnorm_train_grad_input  (dy, x, gamma?)    -> dx = gamma / sigma (dy - mean(dy) - (x - mean) mean(dy (x - mean)) / sigma²)
 *   batchnorm_train_grad_gamma  (dy, x)            -> dgamma[C] = sum of dy (x - mean) / sigma
 *
 * with mean and sigma = sqrt(var + epsilon) the batch statistics of each
 * channel (the biased variance, two passes: the mean, then the squared
 * deviations). The channels go 16 at a time (4 f32x4 vectors: one 64-byte
 * cache line of every row) through every pass over the rows, the statistics
 * of those channels staying in registers. Sums are float32, in chunks of 64
 * rows added to the running total, so that a batch of many rows keeps its
 * error near that of 64-term sums (the TypeScript kernels sum in float64).
 * Renorm, and channels not last or not in whole vectors, keep the TypeScript
 * kernels (the ops' `simd` rules decide).
 */
import type { BatchnormTrainGradGammaRequest, BatchnormTrainGradInputRequest, BatchnormTrainRequest } from '../../ops/simd-def.js';
import type { Code, Local } from './encode.js';
import { add, bump, checkPositive, loopUntil, params, weightlessLayout, type SimdKernel, type SimdKernelLayout } from './kernel-common.js';

type Request = BatchnormTrainRequest | BatchnormTrainGradInputRequest | BatchnormTrainGradGammaRequest;

/** Vectors of channels per pass over the rows. */
const BLOCK = 4;
/** Rows summed into a partial sum before it joins the total. */
const CHUNK = 64;

/** The locals every kernel shares, and the emitters of its passes over the rows of one block of channels. */
class Passes {
  readonly rows: Local;
  readonly span: Local; // rows * C * 4
  readonly col: Local; // byte offset of the block's first channel
  readonly invCount: Local; // 1 / rows, in every lane
  private readonly ps: Local[];
  private readonly yp: Local;
  private readonly end: Local;
  private readonly chunkEnd: Local;
  private readonly parts: Local[];
  private readonly rowBytes: number;

  constructor(
    private readonly c: Code,
    readonly channels: number,
    n: Local,
    rpe: number,
  ) {
    this.rowBytes = channels * 4;
    this.rows = c.local('i32');
    this.span = c.local('i32');
    this.col = c.local('i32');
    this.invCount = c.local('v128');
    this.ps = [c.local('i32'), c.local('i32')];
    this.yp = c.local('i32');
    this.end = c.local('i32');
    this.chunkEnd = c.local('i32');
    this.parts = Array.from({ length: 2 * BLOCK }, () => c.local('v128'));
    c.get(n);
    if (rpe > 1) c.i32Const(rpe).i32('mul');
    c.set(this.rows);
    c.get(this.rows).i32Const(this.rowBytes).i32('mul').set(this.span);
    c.f32Const(1).get(this.rows).f32('convert_i32_u').f32('div').f32x4('splat').set(this.invCount);
  }

  /** V-vector locals. */
  vectors(V: number): Local[] {
    return Array.from({ length: V }, () => this.c.local('v128'));
  }

  /**
   * totals[k] = the sum over every row of what `step` adds into parts[k], with
   * p[i] at the block's channels of row r of bases[i]; in chunks of CHUNK rows.
   */
  reduce(bases: readonly Local[], totals: readonly Local[], step: (p: readonly Local[], parts: readonly Local[]) => void): void {
    const { c } = this;
    const ps = this.ps.slice(0, bases.length);
    const parts = this.parts.slice(0, totals.length);
    for (const t of totals) c.v128Const([0, 0, 0, 0]).set(t);
    bases.forEach((b, i) => c.get(b).get(this.col).i32('add').set(ps[i]!));
    c.get(ps[0]!).get(this.span).i32('add').set(this.end);
    const exit = c.block();
    c.get(ps[0]!).get(this.end).i32('eq').brIf(exit);
    const chunks = c.loop();
    for (const p of parts) c.v128Const([0, 0, 0, 0]).set(p);
    // chunkEnd = min(p + CHUNK rows, end)
    c.get(ps[0]!).i32Const(CHUNK * this.rowBytes).i32('add');
    c.get(this.end);
    c.get(ps[0]!).i32Const(CHUNK * this.rowBytes).i32('add').get(this.end).i32('lt_u');
    c.select().set(this.chunkEnd);
    loopUntil(c, ps[0]!, this.chunkEnd, false, () => {
      step(ps, parts);
      for (const p of ps) bump(c, p, this.rowBytes);
    });
    totals.forEach((t, k) => c.get(t).get(parts[k]!).f32x4('add').set(t));
    c.get(ps[0]!).get(this.end).i32('ne').brIf(chunks);
    c.end();
    c.end();
  }

  /** For every row: `store(p, yp)` with p[i] and yp at the block's channels of that row of bases[i] and y. */
  map(bases: readonly Local[], y: Local, store: (p: readonly Local[], yp: Local) => void): void {
    const { c } = this;
    const ps = this.ps.slice(0, bases.length);
    bases.forEach((b, i) => c.get(b).get(this.col).i32('add').set(ps[i]!));
    c.get(y).get(this.col).i32('add').set(this.yp);
    c.get(ps[0]!).get(this.span).i32('add').set(this.end);
    loopUntil(c, ps[0]!, this.end, true, () => {
      store(ps, this.yp);
      for (const p of ps) bump(c, p, this.rowBytes);
      bump(c, this.yp, this.rowBytes);
    });
  }

  /** mean[v] and inv[v] = 1 / sqrt(var + epsilon) of the block's channels of x. */
  stats(x: Local, mean: readonly Local[], inv: readonly Local[], epsilon: number): void {
    const { c } = this;
    const V = mean.length;
    this.reduce([x], mean, ([p], parts) => {
      for (let v = 0; v < V; v++) c.get(parts[v]!).get(p!).load('v128', v * 16).f32x4('add').set(parts[v]!);
    });
    for (const m of mean) c.get(m).get(this.invCount).f32x4('mul').set(m);
    this.reduce([x], inv, ([p], parts) => {
      for (let v = 0; v < V; v++) {
        c.get(p!).load('v128', v * 16).get(mean[v]!).f32x4('sub');
        c.tee(this.parts[2 * BLOCK - 1]!); // scratch: the deviation
        c.get(this.parts[2 * BLOCK - 1]!).f32x4('mul').get(parts[v]!).f32x4('add').set(parts[v]!);
      }
    });
    for (const s of inv) {
      c.v128Const([1, 1, 1, 1]);
      c.get(s).get(this.invCount).f32x4('mul').v128Const([epsilon, epsilon, epsilon, epsilon]).f32x4('add').f32x4('sqrt');
      c.f32x4('div').set(s);
    }
  }

  /**
   * The block loop: `body(V)` for every block of BLOCK vectors of channels
   * (col at its first channel), then for the 1-3 vectors left.
   */
  blocks(body: (V: number) => void): void {
    const { c } = this;
    const vecs = this.channels / 4;
    const full = Math.floor(vecs / BLOCK);
    const rest = vecs - full * BLOCK;
    c.i32Const(0).set(this.col);
    if (full > 0) {
      const colEnd = c.local('i32');
      c.i32Const(full * BLOCK * 16).set(colEnd);
      loopUntil(c, this.col, colEnd, false, () => {
        body(BLOCK);
        bump(c, this.col, BLOCK * 16);
      });
    }
    if (rest > 0) body(rest);
  }
}

function check(req: Request): number {
  const rpe = req.rowsPerExample ?? 1;
  checkPositive(req.kind, req.channels, rpe);
  if (req.channels % 4 !== 0) throw new RangeError(`${req.kind}: channels must be a multiple of 4, got ${req.channels}`);
  if (!(req.epsilon >= 0)) throw new RangeError(`${req.kind}: epsilon must be a non-negative number, got ${req.epsilon}`);
  return rpe;
}

function layoutOf(req: Request, rpe: number, outputFloats: number, summary: string): SimdKernelLayout {
  const tags = `${'gamma' in req && !req.gamma ? '_nogamma' : ''}${'beta' in req && !req.beta ? '_nobeta' : ''}`;
  return weightlessLayout(req.name ?? `${req.kind}_${req.channels}${rpe > 1 ? `_r${rpe}` : ''}${tags}`, req, rpe * req.channels, outputFloats, summary);
}

/** Loads the V vectors at ptr + col (a per-channel operand), or `fallback` in every lane without one. */
function perChannel(c: Code, ptr: Local | undefined, col: Local, v: number, fallback: number): void {
  if (ptr === undefined) c.v128Const([fallback, fallback, fallback, fallback]);
  else c.get(ptr).get(col).i32('add').load('v128', v * 16);
}

export function batchnormTrainKernel(req: BatchnormTrainRequest): SimdKernel {
  const rpe = check(req);
  const layout = layoutOf(req, rpe, rpe * req.channels, `f32x4 over 16 channels at a time: mean, variance, then (x - mean) scale + shift`);
  const build = (c: Code) => {
    const { n, x, w, b, y } = params(c);
    // The operands after x, in order: gamma if any, then beta if any.
    const gamma = req.gamma ? w : undefined;
    const beta = req.beta ? (req.gamma ? b : w) : undefined;
    const P = new Passes(c, req.channels, n, rpe);
    const mean = P.vectors(BLOCK);
    const scale = P.vectors(BLOCK);
    const shift = P.vectors(BLOCK);
    P.blocks((V) => {
      P.stats(x, mean.slice(0, V), scale.slice(0, V), req.epsilon);
      for (let v = 0; v < V; v++) {
        if (gamma) {
          perChannel(c, gamma, P.col, v, 1);
          c.get(scale[v]!).f32x4('mul').set(scale[v]!);
        }
        perChannel(c, beta, P.col, v, 0);
        c.set(shift[v]!);
      }
      P.map([x], y, ([p], yp) => {
        for (let v = 0; v < V; v++) {
          c.get(yp);
          c.get(p!).load('v128', v * 16).get(mean[v]!).f32x4('sub').get(scale[v]!).f32x4('mul').get(shift[v]!).f32x4('add');
          c.store('v128', v * 16);
        }
      });
    });
  };
  return { layout, build };
}

export function batchnormTrainGradInputKernel(req: BatchnormTrainGradInputRequest): SimdKernel {
  const rpe = check(req);
  const layout = layoutOf(req, rpe, rpe * req.channels, `f32x4 over 16 channels at a time: mean, variance, sums of dy and dy (x - mean), then dx`);
  const build = (c: Code) => {
    const { n, x: dy, w: x, b, y } = params(c);
    const gamma = req.gamma ? b : undefined;
    const P = new Passes(c, req.channels, n, rpe);
    const mean = P.vectors(BLOCK);
    const inv = P.vectors(BLOCK);
    const sums = P.vectors(2 * BLOCK); // sum dy, then sum dy (x - mean), per vector
    const t = c.local('v128');
    P.blocks((V) => {
      P.stats(x, mean.slice(0, V), inv.slice(0, V), req.epsilon);
      const sumDy = sums.slice(0, V);
      const sumDyXm = sums.slice(BLOCK, BLOCK + V);
      P.reduce([dy, x], [...sumDy, ...sumDyXm], ([pd, px], parts) => {
        for (let v = 0; v < V; v++) {
          c.get(pd!).load('v128', v * 16).tee(t).get(parts[v]!).f32x4('add').set(parts[v]!);
          c.get(t).get(px!).load('v128', v * 16).get(mean[v]!).f32x4('sub').f32x4('mul').get(parts[V + v]!).f32x4('add').set(parts[V + v]!);
        }
      });
      // dx = k1 (dy - m1 - (x - mean) k2): k1 = gamma inv, m1 = mean(dy), k2 = inv² mean(dy (x - mean)).
      for (let v = 0; v < V; v++) {
        c.get(sumDy[v]!).get(P.invCount).f32x4('mul').set(sumDy[v]!);
        c.get(inv[v]!).get(inv[v]!).f32x4('mul').get(sumDyXm[v]!).f32x4('mul').get(P.invCount).f32x4('mul').set(sumDyXm[v]!);
        if (gamma) {
          perChannel(c, gamma, P.col, v, 1);
          c.get(inv[v]!).f32x4('mul').set(inv[v]!);
        }
      }
      P.map([dy, x], y, ([pd, px], yp) => {
        for (let v = 0; v < V; v++) {
          c.get(yp);
          c.get(pd!).load('v128', v * 16).get(sumDy[v]!).f32x4('sub');
          c.get(px!).load('v128', v * 16).get(mean[v]!).f32x4('sub').get(sumDyXm[v]!).f32x4('mul');
          c.f32x4('sub').get(inv[v]!).f32x4('mul');
          c.store('v128', v * 16);
        }
      });
    });
  };
  return { layout, build };
}

export function batchnormTrainGradGammaKernel(req: BatchnormTrainGradGammaRequest): SimdKernel {
  const rpe = check(req);
  const layout = layoutOf(req, rpe, req.channels, `f32x4 over 16 channels at a time: mean, variance, then the sum of dy (x - mean) / sigma`);
  const build = (c: Code) => {
    const { n, x: dy, w: x, y } = params(c);
    const P = new Passes(c, req.channels, n, rpe);
    const mean = P.vectors(BLOCK);
    const inv = P.vectors(BLOCK);
    const acc = P.vectors(BLOCK);
    const out = c.local('i32');
    P.blocks((V) => {
      P.stats(x, mean.slice(0, V), inv.slice(0, V), req.epsilon);
      P.reduce([dy, x], acc.slice(0, V), ([pd, px], parts) => {
        for (let v = 0; v < V; v++) {
          c.get(pd!).load('v128', v * 16).get(px!).load('v128', v * 16).get(mean[v]!).f32x4('sub').f32x4('mul');
          c.get(parts[v]!).f32x4('add').set(parts[v]!);
        }
      });
      add(c, out, y, P.col);
      for (let v = 0; v < V; v++) {
        c.get(out).get(acc[v]!).get(inv[v]!).f32x4('mul').store('v128', v * 16);
      }
    });
  };
  return { layout, build };
}
