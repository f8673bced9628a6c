/**
 * The Trainer's batchnorm SIMD kernels (src/codegen/wasm/batchnorm.ts)
 * against the ops' float64 reference kernels, on batches of many rows (the
 * sums run in chunks of 64 rows), channel counts that leave a tail block
 * (20: one block of 16 and one of 4) or fill whole blocks (64), with and
 * without gamma and beta, and inputs whose mean is far from zero (the
 * two-pass variance keeps its precision). Operands sit between NaN guards.
 */
import { describe, expect, it } from 'vitest';
import { buildSimdModule } from '../../src/codegen/wasm/module.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { getOp } from '../../src/ops/registry.js';
import type { AnySimdKernelRequest } from '../../src/ops/simd-def.js';
import { rng } from '../helpers/tensors.js';
import { wasm } from '../helpers/wasm.js';

const GUARD = 8;

function runKernel(req: AnySimdKernelRequest, n: number, operands: readonly (Float32Array | undefined)[], yFloats: number): Float32Array {
  const mod = buildSimdModule([req]);
  const parts = [...operands, new Float32Array(yFloats).fill(NaN)];
  const floats = parts.reduce((s, p) => s + Math.ceil((p?.length ?? 0) / 4) * 4 + GUARD, GUARD);
  const memory = new wasm.Memory({ initial: Math.ceil((floats * 4 + 64) / 65536) });
  const all = new Float32Array(memory.buffer).fill(NaN);
  const at: number[] = [];
  let p = GUARD;
  for (const part of parts) {
    at.push(part === undefined ? 0 : p);
    if (part) all.set(part, p);
    p += Math.ceil((part?.length ?? 0) / 4) * 4 + GUARD;
  }
  const { exports } = new wasm.Instance(new wasm.Module(mod.bytes), { env: { memory } });
  (exports[mod.layouts[0]!.name] as (...args: number[]) => void)(n, ...at.map((f) => f * 4));
  const y = at[3]!;
  const guards = [...all.slice(y - GUARD, y), ...all.slice(y + yFloats, y + yFloats + GUARD)];
  expect(guards.every(Number.isNaN), 'writes stay inside y').toBe(true);
  operands.forEach((o, i) => o && expect(all.slice(at[i]!, at[i]! + o.length)).toEqual(o));
  return all.slice(y, y + yFloats);
}

const attrs = (scale: boolean, center: boolean) => ({ axis: 2, epsilon: 0.001, center, scale, renorm: false, renorm_clipping: { rmax: null, rmin: 0, dmax: null } });

function tensorOf(data: Float32Array, shape: number[]): Tensor {
  return { shape, data: Float64Array.from(data) };
}

/** max |got - want| / max(1, max |want|) */
function rel(got: Float32Array, want: Float64Array): number {
  let scale = 1,
    worst = 0;
  want.forEach((w, i) => {
    scale = Math.max(scale, Math.abs(w));
    worst = Math.max(worst, Math.abs(got[i]! - w));
  });
  return Number.isNaN(worst) ? Infinity : worst / scale;
}

function check(n: number, rpe: number, C: number, opts: { scale: boolean; center: boolean; offset: number; seed: number }): void {
  const next = rng(opts.seed);
  const rows = n * rpe;
  const rand = (len: number, offset = 0) => Float32Array.from({ length: len }, () => offset + next() * 2 - 1);
  const x = rand(rows * C, opts.offset);
  const dy = rand(rows * C);
  const gamma = Float32Array.from({ length: C }, () => 0.5 + next());
  const beta = rand(C);
  const a = attrs(opts.scale, opts.center);
  const shape = [n, rpe, C];
  const fields = { channels: C, epsilon: a.epsilon, rowsPerExample: rpe };

  const fwdOperands = [x, ...(opts.scale ? [gamma] : []), ...(opts.center ? [beta] : [])];
  const y = runKernel({ kind: 'batchnorm_train', ...fields, gamma: opts.scale, beta: opts.center }, n, [...fwdOperands, undefined, undefined].slice(0, 3), rows * C);
  const yRef = getOp('batchnorm_train')!.reference(
    fwdOperands.map((o) => tensorOf(o, o === x ? shape : [C])),
    a as never,
  );
  expect(rel(y, yRef.data), `batchnorm_train C=${C} rows=${rows}`).toBeLessThan(1e-5);

  const giOperands = [dy, x, ...(opts.scale ? [gamma] : [])];
  const dx = runKernel({ kind: 'batchnorm_train_grad_input', ...fields, gamma: opts.scale }, n, [...giOperands, undefined].slice(0, 3), rows * C);
  const dxRef = getOp('batchnorm_train_grad_input')!.reference(
    giOperands.map((o) => tensorOf(o, o === gamma ? [C] : shape)),
    a as never,
  );
  expect(rel(dx, dxRef.data), `batchnorm_train_grad_input C=${C} rows=${rows}`).toBeLessThan(1e-5);

  const dg = runKernel({ kind: 'batchnorm_train_grad_gamma', ...fields }, n, [dy, x, undefined], C);
  const dgRef = getOp('batchnorm_train_grad_gamma')!.reference([tensorOf(dy, shape), tensorOf(x, shape)], a as never);
  // dgamma sums `rows` terms of size ~1 and random sign: errors relative to sqrt(rows), the size of such sums.
  let worst = 0;
  dg.forEach((g, i) => (worst = Math.max(worst, Math.abs(g - dgRef.data[i]!) / Math.sqrt(rows))));
  expect(worst, `batchnorm_train_grad_gamma C=${C} rows=${rows}`).toBeLessThan(1e-5);
}

describe('training batchnorm SIMD kernels', () => {
  it('match the float64 reference over many rows (chunked sums), a tail block of channels, with and without gamma and beta', () => {
    check(3, 100, 20, { scale: true, center: true, offset: 0, seed: 1 });
    check(5, 61, 64, { scale: false, center: true, offset: 0, seed: 2 });
    check(2, 33, 4, { scale: true, center: false, offset: 0, seed: 3 });
    check(7, 1, 8, { scale: false, center: false, offset: 0, seed: 4 });
  });

  it('keep their precision when the mean is far from zero (two-pass variance)', () => {
    check(4, 150, 16, { scale: true, center: true, offset: 50, seed: 5 });
  });

  it("mnist_cnn's second batchnorm's rows (24 x 24 per example) over 64 channels", () => {
    check(2, 576, 64, { scale: true, center: true, offset: 0.3, seed: 6 });
  });

  it('refuse channels that are not whole vectors', () => {
    expect(() => buildSimdModule([{ kind: 'batchnorm_train', channels: 6, epsilon: 1e-3, gamma: true, beta: true }])).toThrow(/multiple of 4/);
  });
});
