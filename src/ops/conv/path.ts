/**
 * Which template computes a convolution, and the kernel it gives: the one
 * place that chooses between the direct loops (`direct.ts`,
 * `direct-grad.ts`), im2col + GEMM (`im2col.ts`) and Winograd F(2x2, 3x3)
 * (`winograd.ts`) for conv2d and its gradients, by the cost rule `convPlan`.
 * The choice is returned as the kernel's `plan` (path and reason), which
 * codegen records per kernel; the summary line says the same in words.
 */
import type { TensorType } from '../../ir/types.js';
import { epilogueCode, type Epilogue } from '../activation.js';
import { kernel, shapeTag, type KernelCode, type KernelPlan } from '../emit.js';
import { BLOCK_COLS, BLOCK_ROWS } from '../gemm.js';
import { conv2dDirectBody } from './direct.js';
import { gradInputDirectBody, gradKernelDirectBody } from './direct-grad.js';
import { geometryTag, sizesTag, type ConvSizes, type ConvTemplate, type WindowGeometry } from './geometry.js';
import { conv2dGemmBody, gradInputGemmBody, gradKernelGemmBody } from './im2col.js';
import { conv2dWinogradBody, winogradApplies } from './winograd.js';

/** The templates of a conv: the direct loops, im2col + GEMM, Winograd F(2x2, 3x3) (forward only). */
export type ConvPath = 'direct' | 'im2col-gemm' | 'winograd';

/** A conv kernel's plan: one of the conv templates. */
export interface ConvPlan extends KernelPlan {
  readonly path: ConvPath;
}

/** What the cost rule looks at: the sum length (kh*kw*cg) and the GEMM's columns. */
export interface ConvCostShape {
  readonly kind: 'forward' | 'grad_input' | 'grad_kernel';
  readonly depth: number;
  readonly cols: number;
  readonly strided?: boolean;
  /**
   * Forward only, where Winograd F(2x2, 3x3) computes the conv (3x3 window, stride 1, dilation 1,
   * one group, `winogradApplies`): the output's rows and columns.
   */
  readonly winogradOutput?: readonly [number, number];
}

/**
 * The cost rule between the direct loops, im2col + GEMM and (forward only)
 * Winograd F(2x2, 3x3), per shape at compile time. Per output cell the GEMM
 * packs `depth` floats (about 0.9 ns each), then runs its multiply-adds in
 * 3x4 register blocks, about 1.5x faster than the direct loops' blocks of 4
 * filters and 2-3x faster than their leftover filters, done one at a time. So:
 *   - forward and kernel gradient (columns = filters per group): the GEMM,
 *     except for sums of fewer than 8 terms (kh*kw*cg: packing costs what it
 *     saves), exactly 4 columns (one full direct block, 12% faster than the
 *     GEMM) and 1 column (no block to gain: 24% faster direct);
 *   - input gradient (columns = input channels per group): the GEMM from 4
 *     columns at stride 1 (the direct gather does 2 loads per multiply-add and
 *     tests every tap: the GEMM is 1.5-2.4x faster); with strides most taps of
 *     the gather find no output cell, which a panel would hold as zeros;
 *   - forward with a 3x3 window at stride 1, dilation 1, one group
 *     (`winogradOutput` set): Winograd F(2x2, 3x3) (`winograd.ts`),
 *     16 multiply-adds per 2x2 tile and channel pair instead of 36, from 2
 *     input channels and where partial tiles waste little (`winogradPays`).
 * Measured by bench/micro/conv-paths.js, every path of each shape side by
 * side: the mnist_cnn convolutions ran 1.4-2.3x faster as GEMMs than direct;
 * 2, 3 and 6 filters 1.1-1.6x, 4 filters 0.9x, 1 filter 0.8x. Winograd ran
 * 1.7-2.9x faster than the GEMM on the 3x3 shapes there, 3 to 64 channels and
 * 1 to 64 filters (mnist conv2, 26x26x32 -> 64: 12.3 against 26.1 ms at batch
 * 8; 14x14x64 -> 64 same: 8.2 against 17.5 ms), 1.9-2.1x faster than the
 * direct loops where those beat the GEMM (1 and 4 filters), and 1.2-1.3x
 * faster where its transforms or partial tiles weigh more (2 channels -> 32
 * filters, a 3x3 output). Not from 1 channel (each ξ's product is then an
 * outer product, bound by its stores: mnist conv1, 28x28x1 -> 32, ties at
 * 0.99x) nor for a 1x1 output (one tile of 16 products for 9: 1.9x slower).
 */
export function convPlan(s: ConvCostShape & { readonly kind: 'grad_input' | 'grad_kernel' }): ConvPlan & { readonly path: 'im2col-gemm' | 'direct' };
export function convPlan(s: ConvCostShape): ConvPlan;
export function convPlan(s: ConvCostShape): ConvPlan {
  const gemm = (reason: string): ConvPlan => ({ path: 'im2col-gemm', reason });
  const direct = (reason: string): ConvPlan => ({ path: 'direct', reason });
  if (s.kind === 'grad_input') {
    if (s.strided) return direct('strided: most taps of the gather find no output cell, which a panel would hold as zeros');
    if (s.cols < 4) return direct(`${s.cols} input channel${s.cols === 1 ? '' : 's'} per group: fewer than 4 GEMM columns`);
    return gemm(`stride 1, ${s.cols} input channels per group: the gather does 2 loads per multiply-add`);
  }
  if (s.kind === 'forward' && s.winogradOutput !== undefined && winogradPays(s.depth / 9, s.winogradOutput)) {
    return { path: 'winograd', reason: `3x3 window at stride 1, ${s.depth / 9} input channels: 16 products per 2x2 tile instead of 36` };
  }
  if (s.depth < 8) return direct(`sums of ${s.depth} terms: packing costs what the GEMM saves`);
  if (s.cols === 1) return direct('1 column per group: no register block to gain');
  if (s.cols === 4) return direct('4 columns per group: one full block of the direct loops');
  return gemm(`sums of ${s.depth} terms into ${s.cols} columns per group`);
}

/**
 * Whether Winograd beats im2col + GEMM (the cost rule `convPlan` asks): from 2
 * input channels (with 1, each ξ's GEMM is an outer product, bound by its
 * stores), and where the output's 2x2 tiles (16 products each, partial at odd
 * sizes) cost at most 80% of the direct products (9 per cell): every even
 * size, odd ones from 3x3, never a row or column of 1.
 */
export function winogradPays(channels: number, [rows, cols]: readonly [number, number]): boolean {
  return channels >= 2 && 16 * Math.ceil(rows / 2) * Math.ceil(cols / 2) <= 0.8 * 9 * rows * cols;
}

/** The plan of a forced path (tests and benchmarks compare the templates on one shape). */
function forced<P extends ConvPath>(path: P): ConvPlan & { readonly path: P } {
  return { path, reason: 'forced by the caller' };
}

/** The sizes of conv2d x * k -> result in `groups` groups over window `g`. */
function forwardSizes(x: TensorType, k: TensorType, result: TensorType, groups: number, g: WindowGeometry): ConvSizes {
  const [h, w, c] = x.shape.slice(1) as number[];
  const [oh, ow, filters] = result.shape.slice(1) as number[];
  return { input: [h!, w!, c!], output: [oh!, ow!, filters!], kernel: k.shape as [number, number, number, number], groups, window: g };
}

/** The cost rule's choice for conv2d (Winograd only where it applies). */
export function forwardPlan(s: ConvSizes): ConvPlan {
  const [kh, kw, cg, filters] = s.kernel;
  const winogradOutput = winogradApplies(s) ? ([s.output[0], s.output[1]] as const) : undefined;
  return convPlan({ kind: 'forward', depth: kh * kw * cg, cols: filters / s.groups, winogradOutput });
}

/**
 * conv2d: im2col + GEMM, Winograd F(2x2, 3x3) or the direct loops, as `path`
 * forces (default: the cost rule's plan).
 */
export function conv2dKernel(
  x: TensorType,
  k: TensorType,
  bias: boolean,
  result: TensorType,
  groups: number,
  g: WindowGeometry,
  epilogue: Epilogue | undefined,
  path?: ConvPath,
): KernelCode {
  const s = forwardSizes(x, k, result, groups, g);
  const [h, w, c] = s.input;
  const [oh, ow, filters] = s.output;
  const [kh, kw] = s.kernel;
  const plan = path ? forced(path) : forwardPlan(s);
  const ep = epilogueCode(epilogue).tag;
  const tag = `${shapeTag(x)}_k${kh}x${kw}_f${filters}${groups > 1 ? `_g${groups}` : ''}${geometryTag(g)}${ep ? `_${ep}` : ''}`;
  const what = `conv2d ${kh}x${kw}, ${c} -> ${filters} channels${groups > 1 ? ` in ${groups} groups` : ''}, ${h}x${w} -> ${oh}x${ow}`;
  const how = {
    winograd: ', Winograd F(2x2, 3x3): 16 GEMMs per chunk of 2x2 output tiles',
    'im2col-gemm': `, im2col + GEMM in ${BLOCK_ROWS}x${BLOCK_COLS} register blocks`,
    direct: groups === 1 ? ', 4 filters per register block' : '',
  }[plan.path];
  const template: ConvTemplate =
    plan.path === 'winograd' ? conv2dWinogradBody(s, bias, epilogue)
    : plan.path === 'im2col-gemm' ? conv2dGemmBody(s, bias, epilogue)
    : conv2dDirectBody(s, bias, epilogue);
  const summary = `${what}${how}${ep ? `, ${ep}` : ''}`;
  return kernel(`conv2d_${tag}`, bias ? ['x', 'k', 'b'] : ['x', 'k'], summary, template.body, template.helpers, plan);
}

/** The cost rule's choice for dx: sums over kh*kw*fg terms into cg columns, stride 1 only. */
export function gradInputPlan(s: ConvSizes): ConvPlan & { readonly path: 'im2col-gemm' | 'direct' } {
  const [kh, kw, cg, filters] = s.kernel;
  return convPlan({ kind: 'grad_input', depth: kh * kw * (filters / s.groups), cols: cg, strided: s.window.strides.some((v) => v !== 1) });
}

/** The cost rule's choice for dk: sums over the batch into [kh*kw*cg, fg] per group. */
export function gradKernelPlan(s: ConvSizes): ConvPlan & { readonly path: 'im2col-gemm' | 'direct' } {
  const [kh, kw, cg, filters] = s.kernel;
  return convPlan({ kind: 'grad_kernel', depth: kh * kw * cg, cols: filters / s.groups });
}

/**
 * dx = the transposed conv of dy (params dy, k) for conv2d and depthwise_conv2d
 * (`op`): im2col + GEMM or a gather per input cell and channel, as `path`
 * forces (default: the cost rule's plan).
 */
export function convGradInputKernel(op: string, s: ConvSizes, path?: 'im2col-gemm' | 'direct'): KernelCode {
  const [h, w, c] = s.input;
  const [oh, ow, filters] = s.output;
  const plan = path ? forced(path) : gradInputPlan(s);
  const gemm = plan.path === 'im2col-gemm';
  const { body, helpers } = gemm ? gradInputGemmBody(op, s) : { body: gradInputDirectBody(s), helpers: [] };
  const how = gemm ? 'im2col of dy + GEMM with the flipped kernel' : 'gathered per input cell';
  const what = `${op}: dy ${oh}x${ow}x${filters} -> dx ${h}x${w}x${c}${s.groups > 1 ? ` in ${s.groups} groups` : ''}, ${how}`;
  return kernel(`${op}_${sizesTag(s)}`, ['dy', 'k'], what, body, helpers, plan);
}

/**
 * dk = x correlated with dy over the batch (params x, dy); a static result of
 * the kernel's shape. im2col + GEMM or direct loops, as `path` forces
 * (default: the cost rule's plan).
 */
export function convGradKernelKernel(op: string, s: ConvSizes, path?: 'im2col-gemm' | 'direct'): KernelCode {
  const [h, w, c] = s.input;
  const [oh, ow] = s.output;
  const [kh, kw, cg, filters] = s.kernel;
  const plan = path ? forced(path) : gradKernelPlan(s);
  const gemm = plan.path === 'im2col-gemm';
  const { body, helpers } = gemm ? gradKernelGemmBody(s) : { body: gradKernelDirectBody(s), helpers: [] };
  const how = gemm ? 'im2col of x transposed times dy, summed in float64' : 'summed in float64 over the batch';
  const what = `${op}: x ${h}x${w}x${c} with dy ${oh}x${ow}x${filters} -> [${kh}, ${kw}, ${cg}, ${filters}], ${how}`;
  return kernel(`${op}_${sizesTag(s)}`, ['x', 'dy'], what, body, helpers, plan);
}
