/**
 * Which IR nodes a SIMD kernel can compute: the bridge from an op's codegen
 * request (`OpDef.emit`'s EmitRequest: operand and result types, attrs) to a
 * `SimdKernelRequest`.
 *
 * Supported: `dense` (any rank: rows per example = the dimensions between
 * the batch and the last), `conv2d` with one group and dilation 1, and
 * `depthwise_conv2d` with depth multiplier 1 and dilation 1, float32, with or
 * without a bias. A relu or relu6 epilogue runs in the kernel; any other
 * epilogue (tanh, sigmoid, softmax, ...) is returned as `remaining`: the
 * caller applies it to y after the kernel (the TS epilogue code of
 * `epilogueCode(remaining)`: `scalar` over y, then `rows`).
 */
import type { Epilogue } from '../../ops/activation.js';
import type { EmitRequest } from '../../ops/emit.js';
import type { TensorType } from '../../ir/types.js';
import type { SimdEpilogue, SimdKernelRequest } from './kernels.js';

export interface SimdSelection {
  readonly request: SimdKernelRequest;
  /** The epilogue the kernel does not apply (the caller runs it on y), if any. */
  readonly remaining?: Epilogue;
}

type Attrs = Readonly<Record<string, unknown>>;

/** The SIMD kernel for a node of `op`, or undefined when none applies (then use the TS kernel). */
export function simdRequestFor(op: string, req: EmitRequest<Attrs>): SimdSelection | undefined {
  const [x, k, b] = req.operands;
  if (!x || !k || req.operands.some((t) => t.dtype !== 'f32') || x.shape[0] !== 'N' || !staticAfterBatch(x) || !staticAll(k)) return undefined;
  const bias = b !== undefined;
  const { fused, remaining } = splitEpilogue(req.attrs['epilogue'] as Epilogue | undefined);
  const common = { bias, ...(fused ? { epilogue: fused } : {}) };
  const done = (request: SimdKernelRequest): SimdSelection => ({ request, ...(remaining ? { remaining } : {}) });

  if (op === 'dense') {
    if (k.shape.length !== 2 || x.shape.length < 2) return undefined;
    const [inDim, units] = k.shape as [number, number];
    const rowsPerExample = (x.shape.slice(1, -1) as number[]).reduce((p, d) => p * d, 1);
    return done({ kind: 'dense', inDim, units, ...(rowsPerExample > 1 ? { rowsPerExample } : {}), ...common });
  }
  if (op !== 'conv2d' && op !== 'depthwise_conv2d') return undefined;
  if (x.shape.length !== 4 || k.shape.length !== 4) return undefined;
  const strides = pairOf(req.attrs['strides']);
  const dilation = pairOf(req.attrs['dilation_rate'] ?? [1, 1]);
  const padding = req.attrs['padding'];
  if (!strides || !dilation || dilation[0] !== 1 || dilation[1] !== 1) return undefined;
  if (padding !== 'valid' && padding !== 'same') return undefined;
  const input = x.shape.slice(1) as [number, number, number];
  const [kh, kw, , last] = k.shape as [number, number, number, number];
  const window = { input, kernel: [kh, kw] as [number, number], strides, padding, ...common } as const;
  if (op === 'conv2d') {
    if ((req.attrs['groups'] ?? 1) !== 1) return undefined;
    return done({ kind: 'conv2d', filters: last, ...window });
  }
  if (last !== 1) return undefined; // depth multiplier > 1: the TS kernel
  return done({ kind: 'depthwise_conv2d', ...window });
}

/** relu / relu6 run in the kernel; other epilogues are left to the caller. */
function splitEpilogue(e: Epilogue | undefined): { fused?: SimdEpilogue; remaining?: Epilogue } {
  if (e === undefined) return {};
  if (e.op === 'relu' || e.op === 'relu6') return { fused: e.op };
  return { remaining: e };
}

function staticAfterBatch(t: TensorType): boolean {
  return t.shape.slice(1).every((d) => typeof d === 'number');
}

function staticAll(t: TensorType): boolean {
  return t.shape.every((d) => typeof d === 'number');
}

function pairOf(v: unknown): [number, number] | undefined {
  return Array.isArray(v) && v.length === 2 && v.every((d) => Number.isInteger(d) && d >= 1) ? [v[0], v[1]] : undefined;
}
