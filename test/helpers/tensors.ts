/**
 * Helpers of the interpreter tests: tensors from literals, one op's reference
 * kernel, seeded random tensors and parameter values, and closeness checks.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import type { Graph } from '../../src/ir/graph.js';
import { tensorOf, type Tensor } from '../../src/ir/tensor.js';
import { getOp } from '../../src/ops/registry.js';

/** A tensor from a shape and row-major values. */
export const t = (shape: readonly number[], values: readonly number[]): Tensor => tensorOf(shape, values);

/** One op's reference kernel on operand values. */
export function reference(op: string, inputs: readonly Tensor[], attrs: object = {}): Tensor {
  const def = getOp(op);
  if (!def) throw new Error(`no op ${op}`);
  return def.reference(inputs, attrs as never);
}

/** A small deterministic generator (mulberry32): uniform in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let r = Math.imul(a ^ (a >>> 15), 1 | a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A tensor of random values: small integers in [-3, 3] by default, so that sums
 * of products are exact in f64 and differently ordered sums compare equal.
 */
export function randomTensor(shape: readonly number[], seed: number, kind: 'int' | 'float' = 'int'): Tensor {
  const next = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const values = Array.from({ length: n }, () => (kind === 'int' ? Math.floor(next() * 7) - 3 : next() * 2 - 1));
  return tensorOf(shape, values);
}

export const arbSeed = fc.integer({ min: 0, max: 2 ** 31 - 1 });

/** The graph with a random f32 value for every parameter (moving variances positive). */
export function withRandomParams(g: Graph, seed: number): Graph {
  const next = rng(seed);
  const params = g.params.map((p) => {
    const n = p.type.shape.reduce<number>((a, d) => a * (d as number), 1);
    const positive = p.name.endsWith('moving_variance');
    const value = Float32Array.from({ length: n }, () => (positive ? 0.5 + next() : next() * 2 - 1));
    return { ...p, value };
  });
  return { ...g, params };
}

/** Same shape, and every value within `tol` (absolute, relative for large values). */
export function expectClose(actual: Tensor, expected: Tensor | readonly number[], tol = 1e-12): void {
  const want = 'data' in expected ? expected : undefined;
  if (want) expect(actual.shape).toEqual(want.shape);
  const values = want ? [...want.data] : [...(expected as readonly number[])];
  expect(actual.data.length).toBe(values.length);
  const bad = values.flatMap((v, i) => {
    const a = actual.data[i]!;
    return Math.abs(a - v) <= tol * Math.max(1, Math.abs(v)) ? [] : [`[${i}] ${a} != ${v}`];
  });
  expect(bad).toEqual([]);
}

/** The concatenation of tensors along an axis (via the concatenate kernel, or the only one). */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  return xs.length === 1 ? xs[0]! : reference('concatenate', xs, { axis });
}

/** The slice [from, to) of a tensor along its last axis. */
export function sliceLast(x: Tensor, from: number, to: number): Tensor {
  const last = x.shape[x.shape.length - 1]!;
  const values: number[] = [];
  for (let i = 0; i < x.data.length; i += last) values.push(...x.data.subarray(i + from, i + to));
  return tensorOf([...x.shape.slice(0, -1), to - from], values);
}

/** The dot product of two same-shaped tensors. */
export function dot(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += a.data[i]! * b.data[i]!;
  return s;
}
