/**
 * The seeded weight generator of the keras.applications fixtures, the
 * TypeScript half of scripts/keras/seeded_weights.py (whose docstring is the
 * definition; both must produce the same float32 bits): a parameter named
 * `<layer>/<variable>` is the mulberry32 stream seeded by the FNV-1a hash of
 * its name, mapped into a range chosen by the variable's role. Keras's
 * outputs for these weights are committed; the weights are not.
 */
import { size } from '../../src/ir/tensor.js';

/** 32-bit FNV-1a of the name's UTF-8 bytes. */
export function fnv1a(name: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(name)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h;
}

/** mulberry32: n draws in [0, 1) from the seed. */
export function mulberry32(seed: number, n: number): Float64Array {
  const out = new Float64Array(n);
  let a = seed | 0;
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t = (t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t;
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  return out;
}

/** Values lo + (hi - lo) * u in float64, rounded to float32 as they are stored. */
export function uniform(name: string, n: number, lo: number, hi: number): Float32Array {
  const u = mulberry32(fnv1a(name), n);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * u[i]!;
  return out;
}

/** The range of a variable by its role (the name after the last slash). */
export function bounds(name: string, shape: readonly number[]): [number, number] {
  const role = name.slice(name.lastIndexOf('/') + 1);
  if (role === 'kernel' || role === 'pointwise_kernel' || role === 'depthwise_kernel') {
    // a depthwise kernel [h, w, channels, multiplier] reads h * w inputs per output
    const dims = shape.slice(0, role === 'depthwise_kernel' ? -2 : -1);
    const fanIn = Math.max(1, size(dims));
    const b = Math.sqrt(6 / fanIn);
    return [-b, b];
  }
  if (role === 'gamma' || role === 'moving_variance' || role === 'variance') return [0.5, 1.5];
  return [-0.01, 0.01];
}

/** The value of parameter `name` of this shape (Keras layout, row-major). */
export function seededWeight(name: string, shape: readonly number[]): Float32Array {
  const [lo, hi] = bounds(name, shape);
  return uniform(name, size(shape), lo, hi);
}

/** A fixture input: `input:<tag>` in [lo, hi]. */
export function seededInput(tag: string, shape: readonly number[], lo: number, hi: number): Float32Array {
  return uniform(`input:${tag}`, size(shape), lo, hi);
}
