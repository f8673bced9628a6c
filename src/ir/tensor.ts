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
