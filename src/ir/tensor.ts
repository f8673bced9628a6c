/**
 * Dense row-major tensors with concrete shapes, for parameter values and the
 * reference interpreter. Parameters are stored as f32 (`Float32Array`, what a
 * weights file holds); the interpreter computes in f64 (`Float64Array`).
 */
export interface Tensor {
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

export function size(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function zeros(shape: readonly number[]): Tensor {
  return { shape: [...shape], data: new Float64Array(size(shape)) };
}

export function fromF32(shape: readonly number[], data: Float32Array): Tensor {
  return { shape: [...shape], data: Float64Array.from(data) };
}

/** Row-major strides of a shape. */
export function strides(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= shape[i]!;
  }
  return out;
}

/** A tensor from a shape and its row-major values (copied); throws when the sizes differ. */
export function tensorOf(shape: readonly number[], values: ArrayLike<number>): Tensor {
  if (values.length !== size(shape)) {
    throw new Error(`a tensor of shape [${shape.join(', ')}] needs ${size(shape)} values, got ${values.length}`);
  }
  return { shape: [...shape], data: Float64Array.from(values) };
}

/** Applies `f` to every element. */
export function mapTensor(t: Tensor, f: (x: number) => number): Tensor {
  return { shape: [...t.shape], data: t.data.map(f) };
}

/**
 * A shape seen as [outer, n, inner] around one axis: the element at flat
 * index (o * n + i) * inner + r has index i along `axis`.
 */
export function aroundAxis(shape: readonly number[], axis: number): { outer: number; n: number; inner: number } {
  return { outer: size(shape.slice(0, axis)), n: shape[axis]!, inner: size(shape.slice(axis + 1)) };
}
