/**
 * SimdRuntime's threads (`startThreads`, codegen/wasm/threads.ts): with 2 and
 * 3 threads, on batch sizes the thread count does not divide, every kernel
 * that splits by examples gives the same floats as one thread, bit for bit;
 * a kernel that sums over examples (dk = xᵀ · dy) gives the one-thread sums
 * within float rounding and the same floats on every run with the same
 * count; every output is written (the result starts as NaN); a kernel that
 * does not split runs unchanged; the source type-checks strictly; and the
 * runtime reports how many jobs went through the threads, so these tests
 * see threads, not a silent one-thread fallback.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ts } from 'ts-morph';
import { afterAll, describe, expect, it } from 'vitest';
import { base64BytesSource } from '../../src/codegen/runtime.js';
import { buildSimdModule, simdRuntimeSource } from '../../src/codegen/wasm/module.js';
import { kernelSplit, type KernelSplit } from '../../src/codegen/wasm/threads.js';
import type { AnySimdKernelRequest } from '../../src/ops/simd-def.js';
import { importModule, strictTypecheck } from '../helpers/generated.js';
import { rng } from '../helpers/tensors.js';

/** Each case: a request and the floats per example of (a, b, bias, y) as the Trainer passes them; y's result floats for a reduce. */
interface Case {
  readonly req: AnySimdKernelRequest & { name: string };
  readonly floats: readonly [number, number, number, number];
  /** Floats of each operand buffer for n examples. */
  readonly sizes: (n: number) => readonly [number, number, number, number];
}
const window = { input: [6, 5, 3] as const, output: [4, 3] as const, kernel: [3, 3] as const, strides: [1, 1] as const, dilation: [1, 1] as const, before: [0, 0] as const };
const cases: Case[] = [
  { req: { name: 'dense', kind: 'dense', inDim: 12, units: 8, rowsPerExample: 3, bias: true, rowMajor: true }, floats: [36, 0, 0, 24], sizes: (n) => [36 * n, 96, 8, 24 * n] },
  { req: { name: 'dx', kind: 'dense_grad_input', inDim: 12, units: 8, rowsPerExample: 3, transposed: true }, floats: [24, 0, -96, 36], sizes: (n) => [24 * n, 96, 96 * 3, 36 * n] },
  { req: { name: 'dk', kind: 'dense_grad_kernel', inDim: 12, units: 8, rowsPerExample: 3 }, floats: [36, 24, 0, 96], sizes: (n) => [36 * n, 24 * n, 0, 96] },
  { req: { name: 'cols', kind: 'im2col', window }, floats: [90, 0, 0, 324], sizes: (n) => [90 * n, 0, 0, 324 * n] },
  { req: { name: 'bn', kind: 'batchnorm_train', channels: 8, rowsPerExample: 2, epsilon: 1e-3, gamma: true, beta: true }, floats: [16, 0, 0, 16], sizes: (n) => [16 * n, 8, 8, 16 * n] },
];
const mod = buildSimdModule(cases.map((c) => c.req));
const splits = new Map<string, KernelSplit>(cases.map((c) => [c.req.name, kernelSplit(c.req, c.floats, c.floats[3])]));

const source = `${base64BytesSource}

${simdRuntimeSource(mod, splits)}

/** Kernel \`name\` on n examples of the given operands with \`threads\` threads (every call split); y as it came out, the threads that ran, the jobs. */
export async function run(name: keyof SimdKernels, n: number, threads: number, operands: readonly Float32Array[], yFloats: number): Promise<{ y: Float32Array; threads: number; jobs: number }> {
  const rt = SimdRuntime.create();
  if (rt === undefined) throw new Error("no SIMD");
  const at = operands.map((o) => (o.length === 0 ? 0 : rt.alloc(o.length)));
  const y = rt.alloc(yFloats);
  const ran = await rt.startThreads(threads);
  rt.splitWork = 0;
  operands.forEach((o, k) => { if (o.length > 0) rt.view(at[k]!, o.length).set(o); });
  rt.view(y, yFloats).fill(NaN);
  rt.kernels[name](n, at[0]!, at[1]!, at[2]!, y);
  const out = rt.view(y, yFloats).slice();
  rt.stopThreads();
  return { y: out, threads: ran, jobs: rt.jobs };
}
`;
const js = ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText;
type Driver = { run(name: string, n: number, threads: number, operands: readonly Float32Array[], yFloats: number): Promise<{ y: Float32Array; threads: number; jobs: number }> };
const driver = importModule<Driver>(js, 'simd-threads');

function operands(c: Case, n: number, seed: number): Float32Array[] {
  const next = rng(seed);
  const [a, b, bias] = c.sizes(n);
  return [a, b, bias].map((len) => Float32Array.from({ length: len }, () => next() * 2 - 1));
}

let threaded = 0;
afterAll(() => {
  // Every split case at every batch size and thread count ran through the workers.
  expect(threaded).toBe(4 * 3 * 2);
});

describe('SimdRuntime threads', () => {
  it('type-checks strictly without DOM types', () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelc-threads-'));
    writeFileSync(join(dir, 'simd.ts'), source);
    expect(strictTypecheck(dir, ['simd.ts'])).toBe('');
  }, 60_000);

  for (const c of cases.filter((c) => c.req.kind !== 'batchnorm_train')) {
    it(`${c.req.kind}: the same floats on 2 and 3 threads as on 1, batches of 1, 5 and 7`, async () => {
      const { run } = await driver;
      for (const n of [1, 5, 7]) {
        const xs = operands(c, n, n * 31 + c.req.name.length);
        const yFloats = c.sizes(n)[3];
        const one = await run(c.req.name, n, 1, xs, yFloats);
        expect(one.jobs).toBe(0);
        expect(one.y.every((v) => !Number.isNaN(v))).toBe(true);
        for (const threads of [2, 3]) {
          const many = await run(c.req.name, n, threads, xs, yFloats);
          expect(many.threads).toBe(threads);
          // A reduce is two jobs (the partials, their sum); the others one.
          expect(many.jobs).toBe(c.req.kind === 'dense_grad_kernel' ? 2 : 1);
          threaded++;
          expect(many.y.every((v) => !Number.isNaN(v))).toBe(true);
          if (c.req.kind === 'dense_grad_kernel') {
            for (let i = 0; i < yFloats; i++) expect(Math.abs(many.y[i]! - one.y[i]!)).toBeLessThan(1e-5 * (1 + Math.abs(one.y[i]!)));
            expect(Buffer.from((await run(c.req.name, n, threads, xs, yFloats)).y.buffer)).toEqual(Buffer.from(many.y.buffer));
          } else {
            expect(Buffer.from(many.y.buffer)).toEqual(Buffer.from(one.y.buffer));
          }
        }
      }
    }, 60_000);
  }

  it('a kernel that reads across examples (training batchnorm) runs on one thread, unchanged', async () => {
    const { run } = await driver;
    const c = cases.find((k) => k.req.kind === 'batchnorm_train')!;
    const xs = operands(c, 6, 5);
    const one = await run(c.req.name, 6, 1, xs, 96);
    const two = await run(c.req.name, 6, 2, xs, 96);
    expect(two.threads).toBe(2);
    expect(two.jobs).toBe(0);
    expect(Buffer.from(two.y.buffer)).toEqual(Buffer.from(one.y.buffer));
    expect(one.y.every((v) => Number.isFinite(v))).toBe(true);
  }, 60_000);
});
