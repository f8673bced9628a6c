/**
 * The SIMD kernels of training modules (src/codegen/wasm/train-kernels.ts,
 * and the row-major dense forward of kernels.ts) against float64 sums:
 * dense forward with the kernel unpacked, dx = dy · kernelᵀ and
 * dk = xᵀ · dy, over row counts around the 4-row block, inDim around the
 * 2- and 4-row blocks and units around the 8-unit panel. Operands sit
 * between guard floats: the kernels write y and nothing else, and read
 * nothing past their operands (NaN guards would poison a sum that did).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildSimdModule } from '../../src/codegen/wasm/module.js';
import type { AnySimdKernelRequest } from '../../src/ops/simd-def.js';
import { rng } from '../helpers/tensors.js';
import { wasm } from '../helpers/wasm.js';

const GUARD = 8;

type Kind = 'dense' | 'dense_grad_input' | 'dense_grad_kernel';

/** Runs one kernel on operands a, b (and bias) placed between NaN guards; returns y and checks the guards. */
function run(req: AnySimdKernelRequest, n: number, a: Float32Array, b: Float32Array, bias: Float32Array | undefined, yFloats: number): Float32Array {
  const mod = buildSimdModule([req]);
  const name = mod.layouts[0]!.name;
  const parts = [a, b, bias ?? new Float32Array(0), new Float32Array(yFloats).fill(-7)];
  const floats = parts.reduce((s, p) => s + Math.ceil(p.length / 4) * 4 + GUARD, GUARD);
  const memory = new wasm.Memory({ initial: Math.ceil((floats * 4 + 64) / 65536) });
  const all = new Float32Array(memory.buffer);
  all.fill(NaN);
  const at: number[] = [];
  let p = GUARD;
  for (const part of parts) {
    at.push(p);
    all.set(part, p);
    p += Math.ceil(part.length / 4) * 4 + GUARD;
  }
  const { exports } = new wasm.Instance(new wasm.Module(mod.bytes), { env: { memory } });
  (exports[name] as (...args: number[]) => void)(n, at[0]! * 4, at[1]! * 4, bias ? at[2]! * 4 : 0, at[3]! * 4);
  const y = all.slice(at[3]!, at[3]! + yFloats);
  const before = all.slice(at[3]! - GUARD, at[3]!);
  const after = all.slice(at[3]! + yFloats, at[3]! + Math.ceil(yFloats / 4) * 4 + GUARD);
  expect([...before, ...after].every(Number.isNaN)).toBe(true);
  // Operands unchanged; a transposed dx kernel's scratch (in the bias slot) is its own to write.
  const scratch = 'transposed' in req && req.transposed === true;
  parts.slice(0, scratch ? 2 : 3).forEach((part, i) => expect(all.slice(at[i]!, at[i]! + part.length)).toEqual(part));
  return y;
}

/** Float64 reference and the magnitude of the summed terms, for the tolerance. */
function reference(kind: Kind, rows: number, K: number, U: number, a: Float32Array, b: Float32Array, bias?: Float32Array) {
  const sum = (len: number, term: (t: number) => number) => {
    let s = 0, m = 0;
    for (let t = 0; t < len; t++) {
      s += term(t);
      m += Math.abs(term(t));
    }
    return [s, m] as const;
  };
  const out: [number, number][] = [];
  if (kind === 'dense') {
    for (let i = 0; i < rows; i++) for (let u = 0; u < U; u++) {
      const [s, m] = sum(K, (t) => a[i * K + t]! * b[t * U + u]!);
      out.push([s + (bias?.[u] ?? 0), m + Math.abs(bias?.[u] ?? 0)]);
    }
  } else if (kind === 'dense_grad_input') {
    for (let i = 0; i < rows; i++) for (let k = 0; k < K; k++) out.push([...sum(U, (u) => a[i * U + u]! * b[k * U + u]!)]);
  } else {
    for (let k = 0; k < K; k++) for (let u = 0; u < U; u++) out.push([...sum(rows, (i) => a[i * K + k]! * b[i * U + u]!)]);
  }
  return out;
}

function check(kind: Kind, n: number, K: number, U: number, opts: { rpe?: number; bias?: boolean; seed?: number; transposed?: boolean } = {}): void {
  const rpe = opts.rpe ?? 1;
  const rows = n * rpe;
  const next = rng(opts.seed ?? 1);
  const rand = (len: number) => Float32Array.from({ length: len }, () => next() * 2 - 1);
  const req: AnySimdKernelRequest =
    kind === 'dense'
      ? { kind, inDim: K, units: U, bias: opts.bias ?? false, rowMajor: true, ...(rpe > 1 ? { rowsPerExample: rpe } : {}) }
      : { kind, inDim: K, units: U, ...(rpe > 1 ? { rowsPerExample: rpe } : {}), ...(opts.transposed ? { transposed: true } : {}) };
  const [a, b] =
    kind === 'dense' ? [rand(rows * K), rand(K * U)] : kind === 'dense_grad_input' ? [rand(rows * U), rand(K * U)] : [rand(rows * K), rand(rows * U)];
  // The transposed dx kernel's scratch: K x U floats of garbage where the bias would be.
  const bias = kind === 'dense' && opts.bias ? rand(U) : opts.transposed ? new Float32Array(K * U).fill(NaN) : undefined;
  const yFloats = kind === 'dense' ? rows * U : kind === 'dense_grad_input' ? rows * K : K * U;
  const y = run(req, n, a, b, bias, yFloats);
  const ref = reference(kind, rows, K, U, a, b, bias);
  expect(ref.length).toBe(yFloats);
  ref.forEach(([value, magnitude], i) => {
    if (Math.abs(y[i]! - value) > 1e-6 * magnitude + 1e-30) throw new Error(`${kind} n=${n} K=${K} U=${U}: y[${i}] = ${y[i]}, expected ${value}`);
  });
}

describe('training SIMD kernels', () => {
  const rowsCases = [1, 2, 3, 4, 5, 7, 8, 16];
  for (const kind of ['dense', 'dense_grad_input', 'dense_grad_kernel'] as const) {
    it(`${kind}: rows around the 4-row block, inDim around the 2/4-row blocks, units around the 8-unit panel`, () => {
      for (const n of rowsCases) for (const K of [1, 2, 3, 5, 16]) for (const U of [4, 8, 12, 64]) check(kind, n, K, U, { bias: true, seed: n * 100 + K * 10 + U });
    });
  }

  it('dense_grad_input with the kernel transposed into scratch first: inDim in whole vectors, rows around the GEMM tile', () => {
    for (const n of rowsCases) for (const K of [4, 8, 12, 36]) for (const U of [4, 8, 12, 64]) check('dense_grad_input', n, K, U, { transposed: true, seed: n * 100 + K * 10 + U });
    check('dense_grad_input', 3, 288, 64, { rpe: 5, transposed: true });
    expect(() => buildSimdModule([{ kind: 'dense_grad_input', inDim: 6, units: 8, transposed: true }])).toThrow(/inDim a multiple of 4/);
  });

  it('dense_grad_kernel sums batches longer than one chunk of rows (chunks of about 256 KiB of x and dy)', () => {
    // 288 x 64 (mnist_cnn's second conv as a GEMM): 186 rows per chunk, 600 rows = 3 whole chunks and a part.
    check('dense_grad_kernel', 3, 288, 64, { rpe: 200 });
    // 5 x 12: 3855 rows per chunk; 4000 rows.
    check('dense_grad_kernel', 40, 5, 12, { rpe: 100 });
    // Exactly two chunks: 2 x 186 rows.
    check('dense_grad_kernel', 2, 288, 64, { rpe: 186 });
  });

  it('rows per example multiply the batch (dense over [N, 3, K])', () => {
    for (const kind of ['dense', 'dense_grad_input', 'dense_grad_kernel'] as const) check(kind, 5, 6, 12, { rpe: 3 });
  });

  it('refuses units that are not whole vectors', () => {
    expect(() => buildSimdModule([{ kind: 'dense_grad_input', inDim: 4, units: 6 }])).toThrow(/multiple of 4/);
    expect(() => buildSimdModule([{ kind: 'dense_grad_kernel', inDim: 4, units: 2 }])).toThrow(/multiple of 4/);
    expect(() => buildSimdModule([{ kind: 'dense', inDim: 4, units: 10, bias: false, rowMajor: true }])).toThrow(/multiple of 4/);
  });

  it('agrees with float64 sums on random shapes (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Kind>('dense', 'dense_grad_input', 'dense_grad_kernel'),
        fc.integer({ min: 1, max: 21 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 1000 }),
        (kind, n, K, vecs, seed) => check(kind, n, K, vecs * 4, { bias: seed % 2 === 0, seed }),
      ),
      { numRuns: 60 },
    );
  });
});
