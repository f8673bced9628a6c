/**
 * Tensor types of the IR. Every value is f32; shapes are channels-last (NHWC)
 * and the leading dimension of activations is the symbolic batch size `N`.
 * Parameters (kernels, biases, BN statistics) have fully static shapes.
 */
export type DType = 'f32';

/** A dimension: a static size, or the symbolic batch dimension. */
export type Dim = number | 'N';

export interface TensorType {
  readonly dtype: DType;
  readonly shape: readonly Dim[];
}

export const BATCH: Dim = 'N';

export function tensor(shape: readonly Dim[]): TensorType {
  return { dtype: 'f32', shape: [...shape] };
}

/** An activation type: the batch dimension followed by a per-example shape. */
export function batched(example: readonly number[]): TensorType {
  return tensor([BATCH, ...example]);
}

/**
 * A type rule's complaint; the caller locates it (spec layer or IR line).
 * Declared here, under the op table, so that the verifier can tell a graph's
 * error from a crash of the rule itself.
 */
export class ShapeError extends Error {
  override readonly name = 'ShapeError';
}

export function formatType(t: TensorType): string {
  return `${t.dtype}[${t.shape.join(',')}]`;
}

export function sameType(a: TensorType, b: TensorType): boolean {
  return a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
}

/** The per-example shape of an activation (everything after `N`). */
export function exampleShape(t: TensorType): number[] {
  return t.shape.slice(1) as number[];
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Attribute values: JSON-like data, printed and parsed by the textual IR. */
export type AttrValue = number | string | boolean | null | readonly AttrValue[] | { readonly [key: string]: AttrValue };
export type Attrs = { readonly [key: string]: AttrValue };
