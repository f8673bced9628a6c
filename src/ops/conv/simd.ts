/**
 * The SIMD rules (`OpDef.simd`) of conv2d, depthwise_conv2d and the conv2d
 * gradients. Inference modules compute conv2d and depthwise_conv2d as
 * WebAssembly kernels (`codegen/wasm/kernels.ts`, `depthwise.ts`) for
 * dilation 1, conv2d in one group, depthwise with depth multiplier 1. The
 * Trainer computes a conv2d in one group with filters a multiple of 4 as
 * GEMMs over its windows (`codegen/wasm/columns.ts`): forward col · kernel,
 * dk = colᵀ · dy, dx = col2im(dy · kernelᵀ), the kernel in its Keras layout
 * (it changes every step); a 1x1 conv with stride 1 and no padding needs no
 * copy (x is already its column buffer).
 */
import type { TensorType } from '../../ir/types.js';
import type { EmitRequest } from '../emit.js';
import { simdCommon } from '../simd-common.js';
import { denseGradInputRequest, selection, type ConvWindow, type SimdSelection, type SimdUse } from '../simd-def.js';
import type { ConvSizes } from './geometry.js';
import { forwardGeometry } from './window.js';

/** The attributes the rules read (conv2d's and depthwise_conv2d's, `groups` only conv2d's). */
interface WindowAttrs {
  readonly strides: readonly number[];
  readonly padding: string;
  readonly dilation_rate: readonly number[];
  readonly groups?: number;
  readonly epilogue?: { readonly op: string };
}

/** The window fields both requests share, and the epilogue left over; undefined where no kernel applies. */
function windowRequest(x: TensorType, k: TensorType, bias: boolean, a: WindowAttrs) {
  if (x.shape.length !== 4 || k.shape.length !== 4 || k.shape.some((d) => typeof d !== 'number')) return undefined;
  if (a.dilation_rate.some((d) => d !== 1) || (a.padding !== 'valid' && a.padding !== 'same')) return undefined;
  const { common, remaining } = simdCommon(bias, a.epilogue);
  const fields = {
    input: x.shape.slice(1) as [number, number, number],
    kernel: [k.shape[0], k.shape[1]] as [number, number],
    strides: [a.strides[0]!, a.strides[1]!] as [number, number],
    padding: a.padding as 'valid' | 'same',
    ...common,
  };
  return { fields, remaining };
}

/** conv2d in one group: the implicit-GEMM kernel over output pixels, or in the Trainer a GEMM over its windows. */
export function conv2dSimd(request: EmitRequest<WindowAttrs>, use: SimdUse): SimdSelection | undefined {
  if (use === 'training') return conv2dTrainingSimd(request);
  const { operands: [x, k, b], attrs } = request;
  const window = windowRequest(x!, k!, b !== undefined, attrs);
  if (!window || (attrs.groups ?? 1) !== 1) return undefined;
  return selection({ kind: 'conv2d', filters: k!.shape[3] as number, ...window.fields }, window.remaining);
}

/** depthwise_conv2d with depth multiplier 1: vectors along channels (a multiplier above 1 keeps the TS kernel). */
export function depthwiseSimd({ operands: [x, k, b], attrs }: EmitRequest<WindowAttrs>, use: SimdUse): SimdSelection | undefined {
  const window = use === 'inference' ? windowRequest(x!, k!, b !== undefined, attrs) : undefined;
  if (!window || k!.shape[3] !== 1) return undefined;
  return selection({ kind: 'depthwise_conv2d', ...window.fields }, window.remaining);
}

/** The windows of a conv of these sizes, when the Trainer's GEMM kernels apply: one group, filters in whole f32x4 vectors. */
function gemmWindow(s: ConvSizes): ConvWindow | undefined {
  const [kh, kw, , filters] = s.kernel;
  if (s.groups !== 1 || filters % 4 !== 0) return undefined;
  const g = s.window;
  return {
    input: s.input,
    output: [s.output[0], s.output[1]],
    kernel: [kh, kw],
    strides: [g.strides[0]!, g.strides[1]!],
    dilation: [g.dilation_rate[0]!, g.dilation_rate[1]!],
    before: g.before,
  };
}

/** A 1x1 window with stride 1 and no padding: x is its own column buffer. */
function isPointwise(w: ConvWindow): boolean {
  return w.kernel[0] === 1 && w.kernel[1] === 1 && w.strides.every((s) => s === 1) && w.before.every((b) => b === 0);
}

/** The GEMM's sizes: rows per example (output cells), reduction (kh * kw * c) and units (filters). */
function gemmSizes(w: ConvWindow, filters: number) {
  return { inDim: w.kernel[0] * w.kernel[1] * w.input[2], units: filters, rowsPerExample: w.output[0] * w.output[1] };
}

/** The Trainer's conv2d: y = im2col(x) · kernel + bias (relu / relu6 fused). */
function conv2dTrainingSimd({ operands: [x, k, b], result, attrs }: EmitRequest<WindowAttrs>): SimdSelection | undefined {
  if (x!.shape.length !== 4 || k!.shape.some((d) => typeof d !== 'number') || result.shape.slice(1).some((d) => typeof d !== 'number')) return undefined;
  if (attrs.padding !== 'valid' && attrs.padding !== 'same') return undefined;
  const kernel = k!.shape as [number, number, number, number];
  const window = gemmWindow({
    input: x!.shape.slice(1) as [number, number, number],
    output: result.shape.slice(1) as [number, number, number],
    kernel,
    groups: attrs.groups ?? 1,
    window: forwardGeometry(x!, k!, attrs),
  });
  if (!window) return undefined;
  const { common, remaining } = simdCommon(b !== undefined, attrs.epilogue);
  if (remaining) return undefined;
  const request = { kind: 'dense', ...gemmSizes(window, kernel[3]), ...common, rowMajor: true } as const;
  return isPointwise(window) ? selection(request) : { request, columns: { kind: 'im2col', window } };
}

/** The Trainer's conv2d_grad_input: dx = col2im(dy · kernelᵀ). */
export function convGradInputSimd(s: ConvSizes): SimdSelection | undefined {
  const window = gemmWindow(s);
  if (!window) return undefined;
  const request = denseGradInputRequest(gemmSizes(window, s.kernel[3]));
  return isPointwise(window) ? selection(request) : { request, columns: { kind: 'col2im', window } };
}

/** The Trainer's conv2d_grad_kernel: dk = im2col(x)ᵀ · dy. */
export function convGradKernelSimd(s: ConvSizes): SimdSelection | undefined {
  const window = gemmWindow(s);
  if (!window) return undefined;
  const request = { kind: 'dense_grad_kernel', ...gemmSizes(window, s.kernel[3]) } as const;
  return isPointwise(window) ? selection(request) : { request, columns: { kind: 'im2col', window } };
}
