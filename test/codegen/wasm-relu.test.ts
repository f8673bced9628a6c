/**
 * The Trainer's relu and relu6 SIMD kernels (src/codegen/wasm/relu.ts), the
 * gradient's asked for through activation_grad's `simd` rule, against the
 * TypeScript kernels the Trainer runs without SIMD, bit for bit: signed zeros, NaN, infinities, the bends at 0 and 6;
 * sizes per example that leave single vectors and single floats after the
 * 16-float blocks. Operands sit between NaN guards; y starts as NaN.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildSimdModule } from '../../src/codegen/wasm/module.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { tensor } from '../../src/ir/types.js';
import { getOp } from '../../src/ops/registry.js';
import { runKernel as runTypeScript } from '../helpers/kernel.js';
import { runSimdKernel } from '../helpers/simd-kernel.js';
import { rng } from '../helpers/tensors.js';

type Fn = 'relu' | 'relu6';

/** Values around the bends, with signed zeros, NaN and infinities now and then. */
function values(len: number, next: () => number): Float32Array {
  const special = [NaN, -Infinity, Infinity, -0, 0, 6, -6, 5.999999523162842, 6.000000476837158];
  return Float32Array.from({ length: len }, () => (next() < 0.2 ? special[Math.floor(next() * special.length)]! : next() * 16 - 8));
}

const tensorOf = (data: Float32Array, shape: number[]): Tensor => ({ shape, data: Float64Array.from(data) });

const tally = { cases: 0, relu6: 0, tail: 0, vectorsOnly: 0, blocks: 0, oneExample: 0 };

function check(fn: Fn, size: number, n: number, seed: number): void {
  const t = tensor(['N', size]);
  const gradAttrs = { fn: { op: fn }, from: 'output' };
  const gradSel = getOp('activation_grad')!.simd!({ operands: [t, t], result: t, attrs: gradAttrs as never }, 'training');
  expect(gradSel, `${fn}: activation_grad's rule selects the SIMD kernel`).toEqual({ request: { kind: 'relu_grad', fn, size } });
  const next = rng(seed);
  const x = values(n * size, next);
  const y = runSimdKernel({ kind: 'relu', fn, size }, n, [x], n * size);
  expect(y, `${fn} of ${size} floats x ${n}`).toEqual(Float32Array.from(runTypeScript(fn, [tensorOf(x, [n, size])]).data));
  const dy = values(n * size, next);
  const dx = runSimdKernel(gradSel!.request, n, [dy, y], n * size);
  expect(dx, `${fn} gradient of ${size} floats x ${n}`).toEqual(Float32Array.from(runTypeScript('activation_grad', [tensorOf(dy, [n, size]), tensorOf(y, [n, size])], gradAttrs).data));
  tally.cases++;
  if (fn === 'relu6') tally.relu6++;
  if (size % 4 !== 0) tally.tail++;
  else if (size % 16 !== 0) tally.vectorsOnly++;
  if (n * size >= 16) tally.blocks++;
  if (n === 1) tally.oneExample++;
}

describe('relu SIMD kernels', () => {
  it("mnist_cnn's relus (26x26x32 and 24x24x64 per example), and sizes that leave vectors and floats", () => {
    for (const fn of ['relu', 'relu6'] as const) {
      check(fn, 21632, 2, 1);
      check(fn, 36864, 1, 2);
      for (const [size, n] of [[1, 1], [3, 5], [4, 3], [7, 4], [20, 3], [37, 2], [64, 1]] as const) check(fn, size, n, size * 10 + n);
    }
  });

  it('match the TypeScript kernels on random sizes and batches (property)', () => {
    const start = { ...tally };
    fc.assert(
      fc.property(fc.constantFrom<Fn>('relu', 'relu6'), fc.integer({ min: 1, max: 80 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 1000 }), (fn, size, n, seed) => check(fn, size, n, seed)),
      { numRuns: 120 },
    );
    const seen = Object.fromEntries(Object.entries(tally).map(([k, v]) => [k, v - start[k as keyof typeof tally]]));
    expect(seen['cases']).toBeGreaterThanOrEqual(100);
    for (const k of ['relu6', 'tail', 'vectorsOnly', 'blocks', 'oneExample']) expect(seen[k], k).toBeGreaterThanOrEqual(10);
  });

  it('are chosen only for the Trainer, and only for activations with a kernel', () => {
    const t = tensor(['N', 8]);
    const grad = getOp('activation_grad')!;
    expect(grad.simd!({ operands: [t, t], result: t, attrs: { fn: { op: 'tanh' }, from: 'output' } as never }, 'training')).toBeUndefined();
    expect(grad.simd!({ operands: [t, t], result: t, attrs: { fn: { op: 'relu' }, from: 'output' } as never }, 'inference')).toBeUndefined();
    expect(() => buildSimdModule([{ kind: 'relu', fn: 'relu', size: 0 }])).toThrow(/positive integers/);
  });
});
