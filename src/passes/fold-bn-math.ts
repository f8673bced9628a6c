/**
 * The weight arithmetic of fold-bn, apart from the graph surgery: pure
 * functions in float64, rounded to f32 once at the end (`roundToF32`).
 *
 * An inference-mode batchnorm is a per-channel affine map
 *     bn(x)_c = x_c * s_c + t_c,   s = gamma / sqrt(var + eps),   t = beta - mean * s.
 * Every linear op is  y_o = sum_i K[i] * x_in(i) + b_o  over its kernel
 * elements i (o = out(i)); `KernelLayout` says which input and output channel
 * each kernel element connects. With that one description:
 *
 *   after  (bn(linear(x))):  K'[i] = K[i] * s[out(i)],      b'_o = b_o * s_o + t_o
 *   before (linear(bn(x))):  K'[i] = K[i] * s[in(i)],       b'_o = b_o + sum_{out(i)=o} K[i] * t[in(i)]
 *
 * Contract: linear'(x) == bn(linear(x)), resp. linear'(x) == linear(bn(x)),
 * exactly in real arithmetic. "before" holds only where every output sees a
 * whole kernel window (dense; convolutions without padding).
 */
import type { Node } from '../ir/graph.js';
import type { KernelLayout, LinearFacts } from '../ops/op-def.js';
import { getOp } from '../ops/registry.js';

export type { KernelLayout } from '../ops/op-def.js';

export interface ChannelAffine {
  readonly scale: Float64Array;
  readonly shift: Float64Array;
}

/** Why a fold cannot be done (numerically); the pass reports it and leaves the graph alone. */
export class FoldRefusal extends Error {}

/** bn(x) = x * s + t per channel; refuses statistics that make it undefined. */
export function batchnormAffine(
  stats: { gamma?: Float32Array; beta?: Float32Array; mean: Float32Array; variance: Float32Array },
  epsilon: number,
): ChannelAffine {
  const n = stats.mean.length;
  const scale = new Float64Array(n);
  const shift = new Float64Array(n);
  for (let c = 0; c < n; c++) {
    const denom = stats.variance[c]! + epsilon;
    if (!(denom > 0) || !Number.isFinite(denom)) {
      throw new FoldRefusal(`moving_variance + epsilon is ${denom} in channel ${c}, so batchnorm is undefined there`);
    }
    scale[c] = (stats.gamma ? stats.gamma[c]! : 1) / Math.sqrt(denom);
    shift[c] = (stats.beta ? stats.beta[c]! : 0) - stats.mean[c]! * scale[c]!;
    if (!Number.isFinite(scale[c]!) || !Number.isFinite(shift[c]!)) {
      throw new FoldRefusal(`the batchnorm scale or shift of channel ${c} is not finite`);
    }
  }
  return { scale, shift };
}

/** The kernel layout of a linear op, from its record's `linear` facts (Keras layouts). */
export function kernelLayout(node: Node, kernelShape: readonly number[]): KernelLayout {
  return linearFacts(node).layout(kernelShape, node.attrs as never);
}

/** The folding facts of a node's op; only ops with the `linear-in-weights` trait reach here. */
export function linearFacts(node: Node): LinearFacts<unknown> {
  const facts = getOp(node.op)?.linear;
  if (!facts) throw new Error(`internal: ${node.op} is not a linear op (its record has no linear facts)`);
  return facts as LinearFacts<unknown>;
}

export interface FoldedWeights {
  readonly kernel: Float64Array;
  readonly bias: Float64Array;
}

/** bn(linear(x)) -> linear'(x). */
export function foldAfter(kernel: Float32Array, bias: Float32Array | undefined, layout: KernelLayout, bn: ChannelAffine): FoldedWeights {
  const k = new Float64Array(kernel.length);
  for (let i = 0; i < kernel.length; i++) k[i] = kernel[i]! * bn.scale[layout.channels(i).out]!;
  const b = new Float64Array(layout.outChannels);
  for (let o = 0; o < b.length; o++) b[o] = (bias ? bias[o]! : 0) * bn.scale[o]! + bn.shift[o]!;
  return { kernel: k, bias: b };
}

/** linear(bn(x)) -> linear'(x); exact only when every output sees whole kernel windows. */
export function foldBefore(kernel: Float32Array, bias: Float32Array | undefined, layout: KernelLayout, bn: ChannelAffine): FoldedWeights {
  const k = new Float64Array(kernel.length);
  const b = new Float64Array(layout.outChannels);
  for (let o = 0; o < b.length; o++) b[o] = bias ? bias[o]! : 0;
  for (let i = 0; i < kernel.length; i++) {
    const { in: c, out: o } = layout.channels(i);
    k[i] = kernel[i]! * bn.scale[c]!;
    b[o] = b[o]! + kernel[i]! * bn.shift[c]!;
  }
  return { kernel: k, bias: b };
}

const F32_MAX = 3.4028234663852886e38;
const F32_MIN_NORMAL = 1.1754943508222875e-38;

/**
 * Rounds float64 results to f32 once. Refuses values that overflow f32;
 * flushes subnormals to zero and counts them (the pass reports the count).
 */
export function roundToF32(values: Float64Array, what: string): { data: Float32Array; flushed: number } {
  const data = new Float32Array(values.length);
  let flushed = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v) || Math.abs(v) > F32_MAX) throw new FoldRefusal(`the folded ${what} would overflow f32 (${v} at index ${i})`);
    if (v !== 0 && Math.abs(v) < F32_MIN_NORMAL) {
      flushed++;
      continue;
    }
    data[i] = v;
  }
  return { data, flushed };
}

