/**
 * What every convolution template shares (the leaf of `ops/conv/`): the
 * window geometry, the sizes of a grouped conv, and the code pieces for one
 * window axis and for kernel names. The templates (`direct.ts`,
 * `direct-grad.ts`, `im2col.ts`, `winograd.ts`) import this and `../gemm.ts`,
 * never each other; `path.ts` chooses between them.
 */
import type { RuntimeHelper } from '../emit.js';

export type Dims4 = readonly [number, number, number, number];

/** Where a window starts and how it steps, per axis (rows, columns). */
export interface WindowGeometry {
  readonly strides: readonly number[];
  readonly dilation_rate: readonly number[];
  /** Padding before the first cell, rows and columns. */
  readonly before: readonly [number, number];
  readonly valid: boolean;
}

/**
 * Sizes of a grouped conv x [N,h,w,C] * k [kh,kw,cg,F] -> y [N,oh,ow,F]; a
 * depthwise conv is the one with C groups of one channel (its kernel [kh, kw,
 * C, M] has the memory layout of [kh, kw, 1, C*M]).
 */
export interface ConvSizes {
  readonly input: readonly [number, number, number];
  readonly output: readonly [number, number, number];
  readonly kernel: Dims4;
  readonly groups: number;
  readonly window: WindowGeometry;
}

/** What a template generator returns: the kernel body and the helpers it calls. */
export interface ConvTemplate {
  readonly body: string;
  readonly helpers: readonly RuntimeHelper[];
}

/** `const iy = ...; if (outside) continue;` for one window axis. */
export function tap(v: string, out: string, k: string, stride: number, dilation: number, before: number, size: number, valid: boolean): string {
  const terms = [stride === 1 ? out : `${out} * ${stride}`, dilation === 1 ? k : `${k} * ${dilation}`];
  const index = `${terms.join(' + ')}${before ? ` - ${before}` : ''}`;
  return valid ? `const ${v} = ${index};` : `const ${v} = ${index};\nif (${v} < 0 || ${v} >= ${size}) continue;`;
}

/** The part of a kernel name that tells strides, dilation and padding apart (`_s2x2_same`). */
export function geometryTag(g: WindowGeometry): string {
  const s = g.strides.some((v) => v !== 1) ? `_s${g.strides.join('x')}` : '';
  const d = g.dilation_rate.some((v) => v !== 1) ? `_d${g.dilation_rate.join('x')}` : '';
  return `${s}${d}${g.valid ? '' : '_same'}`;
}

/** The kernel-name tag of a gradient conv: input, window, filters, groups, geometry. */
export function sizesTag(s: ConvSizes): string {
  const [kh, kw, , filters] = s.kernel;
  return `${s.input.join('x')}_k${kh}x${kw}_f${filters}${s.groups > 1 ? `_g${s.groups}` : ''}${geometryTag(s.window)}`;
}
