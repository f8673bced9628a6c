/**
 * The SIMD rules (`OpDef.simd`) of conv2d and depthwise_conv2d: inference
 * modules compute them as WebAssembly kernels (`codegen/wasm/kernels.ts`,
 * `depthwise.ts`) for dilation 1, conv2d in one group, depthwise with depth
 * multiplier 1; the Trainer keeps its TypeScript conv kernels.
 */
import type { TensorType } from '../../ir/types.js';
import type { EmitRequest } from '../emit.js';
import { selection, simdCommon, type SimdSelection, type SimdUse } from '../simd-def.js';

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

/** conv2d in one group: the implicit-GEMM kernel over output pixels. */
export function conv2dSimd({ operands: [x, k, b], attrs }: EmitRequest<WindowAttrs>, use: SimdUse): SimdSelection | undefined {
  const window = use === 'inference' ? windowRequest(x!, k!, b !== undefined, attrs) : undefined;
  if (!window || (attrs.groups ?? 1) !== 1) return undefined;
  return selection({ kind: 'conv2d', filters: k!.shape[3] as number, ...window.fields }, window.remaining);
}

/** depthwise_conv2d with depth multiplier 1: vectors along channels (a multiplier above 1 keeps the TS kernel). */
export function depthwiseSimd({ operands: [x, k, b], attrs }: EmitRequest<WindowAttrs>, use: SimdUse): SimdSelection | undefined {
  const window = use === 'inference' ? windowRequest(x!, k!, b !== undefined, attrs) : undefined;
  if (!window || k!.shape[3] !== 1) return undefined;
  return selection({ kind: 'depthwise_conv2d', ...window.fields }, window.remaining);
}
