/**
 * What an op's `simd` rule (`OpDef.simd`) returns: the WebAssembly SIMD
 * kernel (`--simd`) that computes a node, described as a request with every
 * size. The kernels themselves are built from these requests in
 * `codegen/wasm/`; ops only say which kernel fits which node.
 *
 * Every kernel is one function (n, a, b, bias, y) over byte offsets into the
 * WebAssembly memory, summing in float32 (the TypeScript kernels sum in
 * float64).
 */
import type { TensorType } from '../ir/types.js';

/** The activations with SIMD kernels of their own (the Trainer's relu / relu_grad kernels). */
export type SimdRectifier = 'relu' | 'relu6';

/** Fused activations the kernels apply in registers (an activation record's `simd` or `simdEpilogue`); anything else runs as a separate pass. */
export type SimdEpilogue = SimdRectifier | 'tanh' | 'sigmoid';

export interface Common {
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

/** dx[rows, inDim] = dy[rows, units] · kernel[inDim, units]ᵀ (units % 4 == 0). */
export interface DenseGradInputRequest {
  readonly kind: 'dense_grad_input';
  readonly name?: string;
  readonly inDim: number;
  readonly units: number;
  readonly rowsPerExample?: number;
  /**
   * Transpose the kernel first (into a scratch buffer of inDim * units floats
   * passed as the bias argument), then run the GEMM with dy values broadcast:
   * faster than dot products of rows. Needs inDim % 4 == 0.
   */
  readonly transposed?: boolean;
}

/** dk[inDim, units] = x[rows, inDim]ᵀ · dy[rows, units] (units % 4 == 0). */
export interface DenseGradKernelRequest {
  readonly kind: 'dense_grad_kernel';
  readonly name?: string;
  readonly inDim: number;
  readonly units: number;
  readonly rowsPerExample?: number;
}

/**
 * The windows of a conv over NHWC x [h, w, c] as the rows of a matrix
 * (im2col): col[(n, oy, ox), (ky, kx, ci)] = x[n, oy*sy + ky*dy - top, ox*sx + kx*dx - left, ci],
 * zero where the window reaches into the padding. col has kh * kw * c
 * columns, in the order of a Keras kernel [kh, kw, c, filters] flattened
 * to [kh * kw * c, filters], so a conv is col · kernel.
 */
export interface ConvWindow {
  readonly input: readonly [number, number, number];
  /** Output rows and columns. */
  readonly output: readonly [number, number];
  readonly kernel: readonly [number, number];
  readonly strides: readonly [number, number];
  readonly dilation: readonly [number, number];
  /** Padding before the first row and the first column. */
  readonly before: readonly [number, number];
}

/** col = the windows of x (see ConvWindow): n * oh * ow rows of kh * kw * c floats. */
export interface Im2colRequest {
  readonly kind: 'im2col';
  readonly name?: string;
  readonly window: ConvWindow;
}

/** The adjoint of im2col: dx[n, h, w, c] = the sum of every col row's entries at the cells they were read from (zero elsewhere). */
export interface Col2imRequest {
  readonly kind: 'col2im';
  readonly name?: string;
  readonly window: ConvWindow;
}

/**
 * Training batch normalization of x [rows, channels] (channels last, whole
 * f32x4 vectors of channels), by the batch statistics of each channel over
 * all rows = n * rowsPerExample, in float32 (sums in chunks of rows).
 */
interface BatchnormTrainCommon {
  readonly name?: string;
  readonly channels: number;
  readonly rowsPerExample?: number;
  readonly epsilon: number;
}

/** y = gamma (x - mean) / sqrt(var + epsilon) + beta; operands (x, gamma?, beta?) in that order. */
export interface BatchnormTrainRequest extends BatchnormTrainCommon {
  readonly kind: 'batchnorm_train';
  readonly gamma: boolean;
  readonly beta: boolean;
}

/** dx of batchnorm_train through the batch mean and variance; operands (dy, x, gamma?). */
export interface BatchnormTrainGradInputRequest extends BatchnormTrainCommon {
  readonly kind: 'batchnorm_train_grad_input';
  readonly gamma: boolean;
}

/** dgamma = sum over rows of dy (x - mean) / sigma, per channel; operands (dy, x). */
export interface BatchnormTrainGradGammaRequest extends BatchnormTrainCommon {
  readonly kind: 'batchnorm_train_grad_gamma';
}

/**
 * The windows of a pool over NHWC x [h, w, c], c a multiple of 4: window
 * (oy, ox) covers rows oy*sy - top .. oy*sy - top + ph - 1 and columns
 * ox*sx - left .. ox*sx - left + pw - 1, clipped to the image (padding cells
 * take no part); no window is empty.
 */
export interface PoolWindow {
  readonly input: readonly [number, number, number];
  /** Output rows and columns. */
  readonly output: readonly [number, number];
  readonly pool: readonly [number, number];
  readonly strides: readonly [number, number];
  /** Padding before the first row and the first column. */
  readonly before: readonly [number, number];
}

/** Outputs first .. first + count - 1 along an axis, whose windows are `len` cells from start + (o - first) * stride. */
export interface WindowRun {
  readonly first: number;
  readonly count: number;
  readonly start: number;
  readonly len: number;
}

/** The windows along one axis of `size` cells, clipped to it, as runs (see WindowRun). */
export function windowRuns(size: number, out: number, k: number, stride: number, before: number): WindowRun[] {
  const runs: WindowRun[] = [];
  for (let o = 0; o < out; o++) {
    const start = Math.max(o * stride - before, 0);
    const len = Math.min(o * stride - before + k, size) - start;
    if (len < 1) throw new RangeError(`pool window ${o} of ${out} is outside the ${size} cells (pool ${k}, stride ${stride}, padding before ${before})`);
    const last = runs[runs.length - 1];
    if (last !== undefined && last.len === len && last.start + last.count * stride === start) runs[runs.length - 1] = { ...last, count: last.count + 1 };
    else runs.push({ first: o, count: 1, start, len });
  }
  return runs;
}

/**
 * The window cells a pool kernel unrolls: each pair of a row run and a column
 * run of `windowRuns` is one loop nest over windows of its size.
 */
export function unrolledPoolCells(w: PoolWindow): number {
  const runs = [0, 1].map((i) => windowRuns(w.input[i]!, w.output[i]!, w.pool[i]!, w.strides[i]!, w.before[i]!));
  const cells = runs.map((rs) => rs.reduce((s, r) => s + r.len, 0));
  return cells[0]! * cells[1]!;
}

/** y[e, oy, ox, c] = the maximum of x over window (oy, ox), as Math.max (NaN wins, +0 above -0). */
export interface MaxPoolRequest {
  readonly kind: 'max_pool2d';
  readonly name?: string;
  readonly window: PoolWindow;
}

/**
 * dx of max_pool2d; operands (dy, x): each window's dy added at its first
 * maximum in row-major order, as the TypeScript kernel finds it (a cell wins
 * when strictly above the running maximum, which stays NaN after a NaN).
 */
export interface MaxPoolGradRequest {
  readonly kind: 'max_pool2d_grad';
  readonly name?: string;
  readonly window: PoolWindow;
}

/** y = relu(x) or relu6(x) (`fn`), elementwise over `size` floats per example. */
export interface ReluRequest {
  readonly kind: 'relu';
  readonly name?: string;
  readonly fn: SimdRectifier;
  readonly size: number;
}

/** dx = dy * f'(y) of relu or relu6 (`fn`) from its output y: 1 where 0 < y (< 6), else 0; operands (dy, y). */
export interface ReluGradRequest {
  readonly kind: 'relu_grad';
  readonly name?: string;
  readonly fn: SimdRectifier;
  readonly size: number;
}

/**
 * Per-channel statistics over the batch of x [rows, channels] (channels last,
 * whole f32x4 vectors of channels), rows = n * rowsPerExample: y[channels],
 * in float32 (sums in chunks of rows).
 */
interface ChannelStatsCommon {
  readonly name?: string;
  readonly channels: number;
  readonly rowsPerExample?: number;
}

/** y[c] = the sum of x over every row (channel_sum). */
export interface ChannelSumRequest extends ChannelStatsCommon {
  readonly kind: 'channel_sum';
}

/** y[c] = the sum of x over every row / rows (channel_mean). */
export interface ChannelMeanRequest extends ChannelStatsCommon {
  readonly kind: 'channel_mean';
}

/** y[c] = the biased variance, the sum of (x - mean)² / rows, in two passes: the mean, then the squared deviations (channel_variance). */
export interface ChannelVarianceRequest extends ChannelStatsCommon {
  readonly kind: 'channel_variance';
}

export type ChannelStatsRequest = ChannelSumRequest | ChannelMeanRequest | ChannelVarianceRequest;

/** The kernels an inference module uses (weights packed once). */
export type SimdKernelRequest = DenseRequest | Conv2dRequest | DepthwiseRequest;
/** Every kernel: the inference ones, and the dense gradients, window copies, training batchnorm, max pooling, relu and per-channel statistics of training modules. */
export type AnySimdKernelRequest =
  | SimdKernelRequest
  | DenseGradInputRequest
  | DenseGradKernelRequest
  | Im2colRequest
  | Col2imRequest
  | BatchnormTrainRequest
  | BatchnormTrainGradInputRequest
  | BatchnormTrainGradGammaRequest
  | MaxPoolRequest
  | MaxPoolGradRequest
  | ReluRequest
  | ReluGradRequest
  | ChannelSumRequest
  | ChannelMeanRequest
  | ChannelVarianceRequest;

/**
 * Who asks: an inference module (`inference`: weights are parameters, packed
 * into the kernel's layout once when the Model is made) or the Trainer of a
 * training module (`training`: weights change every step, so they stay in
 * their row-major Keras layout in the memory, which needs whole f32x4 vectors
 * of units, and the gradient ops have kernels too).
 */
export type SimdUse = 'inference' | 'training';

/** An op's SIMD kernel for a node. */
export interface SimdSelection {
  readonly request: AnySimdKernelRequest;
  /**
   * The node's fused activation that the kernel does not apply (the caller
   * would run it on y after the kernel), if any; the code generators use
   * SIMD only for nodes without one.
   */
  readonly remaining?: { readonly op: string };
  /**
   * A convolution computed as a GEMM over its windows (training only): with
   * `im2col`, the Trainer first copies the windows of the first operand into
   * a column buffer that `request` then reads in its place; with `col2im`,
   * `request` writes the column buffer and col2im sums it into the result.
   */
  readonly columns?: Im2colRequest | Col2imRequest;
}

/** Rows per example of an activation: the dimensions between the batch and the last (1 for [N, features]). */
export function rowsPerExample(t: TensorType): number {
  return (t.shape.slice(1, -1) as number[]).reduce((p, d) => p * d, 1);
}

/** `{ rowsPerExample }` when it is above 1 (requests leave the default out). */
export function rowsField(t: TensorType): { rowsPerExample?: number } {
  const rows = rowsPerExample(t);
  return rows > 1 ? { rowsPerExample: rows } : {};
}

/** dx = dy · kernelᵀ: transposing the kernel first (a GEMM without horizontal sums) when inDim is in whole vectors. */
export function denseGradInputRequest(sizes: { readonly inDim: number; readonly units: number; readonly rowsPerExample?: number }): DenseGradInputRequest {
  return { kind: 'dense_grad_input', ...sizes, ...(sizes.inDim % 4 === 0 ? { transposed: true } : {}) };
}

/** A selection of `request`, with the epilogue left to the caller if any. */
export function selection(request: AnySimdKernelRequest, remaining?: { readonly op: string }): SimdSelection {
  return { request, ...(remaining ? { remaining } : {}) };
}

/**
 * How a kernel's work divides between threads (`threads` option of the
 * generated modules): `rows`, each example's outputs depend only on that
 * example's inputs, so the threads take consecutive ranges of examples;
 * `reduce`, the result sums over every example (a weight gradient), so each
 * thread sums its range into a partial of its own and the partials are added
 * after; `none`, the kernel reads across examples in ways that do not split
 * (batch statistics) and runs on one thread.
 */
export type SimdSplit = 'rows' | 'reduce' | 'none';

/** The split of each request kind. */
export const simdSplits: { readonly [K in AnySimdKernelRequest['kind']]: SimdSplit } = {
  dense: 'rows',
  conv2d: 'rows',
  depthwise_conv2d: 'rows',
  dense_grad_input: 'rows',
  dense_grad_kernel: 'reduce',
  im2col: 'rows',
  col2im: 'rows',
  batchnorm_train: 'none',
  batchnorm_train_grad_input: 'none',
  batchnorm_train_grad_gamma: 'none',
  max_pool2d: 'rows',
  max_pool2d_grad: 'rows',
  relu: 'rows',
  relu_grad: 'rows',
  channel_sum: 'none',
  channel_mean: 'none',
  channel_variance: 'none',
};
