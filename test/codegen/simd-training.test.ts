/**
 * Training modules compiled with `simd: true` (`modelc compile --simd
 * --target training`): the dense layers' forward, dx and dk run as
 * WebAssembly SIMD kernels over parameters and scratch buffers that live in
 * the WebAssembly memory. Checked here: the module agrees with the plain
 * one step after step, also across batches that grow the memory (which
 * detaches every view: the parameters must be re-bound, not lost); without
 * WebAssembly it is the plain module bit for bit; it is strict-clean and
 * deterministic, and `modelc compile --simd` writes it. (The TF.js
 * differential tests run the seed_mlp cases with --simd too.)
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTrainingProgram } from '../../src/autodiff/training.js';
import { generateTrainingModule } from '../../src/codegen/index.js';
import { run } from '../helpers/cli.js';
import { importModule, strictTypecheck } from '../helpers/generated.js';
import { model } from '../helpers/graphs.js';
import { oneHot, seededData, trainableGraph } from '../helpers/trainer.js';

interface Trainer {
  trainOnBatch(x: Float32Array, y: Float32Array, batchSize: number): number;
  predict(x: Float32Array, batchSize: number): Float32Array;
  evaluate(x: Float32Array, y: Float32Array, batchSize: number): { loss: number };
  getWeights(): Record<string, Float32Array>;
  setWeights(w: Record<string, Float32Array>): void;
  readonly usesSimd?: boolean;
}
type Module = { Trainer: new (options?: { seed?: number }) => Trainer };

async function modules(spec: object | string) {
  const { graph, training } = trainableGraph(spec as never);
  const simd = await generateTrainingModule(buildTrainingProgram(graph, training), { name: graph.name, simd: true });
  const plain = await generateTrainingModule(buildTrainingProgram(graph, training), { name: graph.name });
  return { simd, plain, Simd: (await importModule<Module>(simd.js, `${graph.name}.simd.train`)).Trainer, Plain: (await importModule<Module>(plain.js, `${graph.name}.train`)).Trainer };
}

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, scale = 1e-3;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return d / scale;
}

// dense(12) reads x: its forward and dk take the staged input; dense_1 (8 units) all three kernels;
// rows per example 3 on the middle dense; the 5-unit head stays in TypeScript.
const spec = {
  ...model([3, 7], [
    { type: 'dense', units: 12 },
    { type: 'batchnorm' },
    { type: 'relu' },
    { type: 'dense', units: 8, activation: 'tanh' },
    { type: 'flatten' },
    { type: 'dropout', rate: 0.25 },
    { type: 'dense', units: 5, activation: 'softmax' },
  ]),
  // Not Adam: dense's bias feeds a batchnorm, so its true gradient is 0 and Adam would scale the
  // rounding noise of either module up to steps of the learning rate.
  training: { loss: 'categorical_crossentropy', optimizer: { type: 'sgd', learning_rate: 0.05, momentum: 0.9 }, metrics: ['accuracy'] },
};

describe('training modules with --simd', () => {
  it('run SIMD kernels and train as the plain module does, across batches that grow the memory', async () => {
    const { simd, Simd, Plain } = await modules(spec);
    const kernels = simd.ts.match(/simd\.kernels\.(\w+)\(/g) ?? [];
    expect(kernels.some((k) => k.includes('dense_grad_input'))).toBe(true);
    expect(kernels.some((k) => k.includes('dense_grad_kernel'))).toBe(true);
    const a = new Simd({ seed: 5 });
    const b = new Plain({ seed: 5 });
    expect(a.usesSimd).toBe(true);
    // Batches 2, 9 (grows), 33 (grows again: the memory grows past its first page), then 9 and 2 again.
    for (const [step, batch] of [2, 9, 33, 9, 2, 33].entries()) {
      const x = seededData(batch * 21, 100 + step);
      const y = oneHot(batch, 5, 200 + step);
      const la = a.trainOnBatch(x, y, batch);
      const lb = b.trainOnBatch(x, y, batch);
      expect(Math.abs(la - lb) / Math.abs(lb), `loss of step ${step + 1} (batch ${batch})`).toBeLessThan(1e-5);
    }
    const wa = a.getWeights(), wb = b.getWeights();
    expect(Object.keys(wa)).toEqual(Object.keys(wb));
    for (const name of Object.keys(wb)) expect(maxRel(wa[name]!, wb[name]!), name).toBeLessThan(1e-4);
    const x = seededData(40 * 21, 9);
    expect(maxRel(a.predict(x, 40), b.predict(x, 40))).toBeLessThan(1e-5);
    // setWeights writes into the memory the kernels read.
    a.setWeights(wb);
    expect(maxRel(a.predict(x, 40), b.predict(x, 40))).toBeLessThan(1e-5);
  });

  it('without WebAssembly the same module runs its TypeScript kernels: the plain module, bit for bit', async () => {
    const { Simd, Plain } = await modules(spec);
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'WebAssembly')!;
    let a: Trainer;
    delete (globalThis as { WebAssembly?: unknown }).WebAssembly;
    try {
      a = new Simd({ seed: 5 });
    } finally {
      Object.defineProperty(globalThis, 'WebAssembly', saved);
    }
    const b = new Plain({ seed: 5 });
    expect(a.usesSimd).toBe(false);
    for (const batch of [4, 11]) {
      const x = seededData(batch * 21, batch);
      const y = oneHot(batch, 5, batch);
      expect(a.trainOnBatch(x, y, batch)).toBe(b.trainOnBatch(x, y, batch));
    }
    expect(a.getWeights()).toEqual(b.getWeights());
  });

  it('a model without dense layers of whole f32x4 units is compiled exactly as without --simd', async () => {
    const narrow = { ...model([6], [{ type: 'dense', units: 3 }, { type: 'dense', units: 2, activation: 'sigmoid' }]), training: { loss: 'mse', optimizer: { type: 'sgd' } } };
    const { simd, plain } = await modules(narrow);
    expect(simd.ts).toBe(plain.ts);
  });

  it('is strict-clean and deterministic; modelc compile --simd --target training writes it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelc-simd-train-'));
    const { simd } = await modules(spec);
    const again = await modules(spec);
    expect(again.simd.ts).toBe(simd.ts);
    expect(simd.ts.match(/function base64Bytes\(/g)).toHaveLength(1);
    writeFileSync(join(dir, 'm.train.ts'), simd.ts);
    const r = await run('compile', 'examples/seed_mlp.nn', '--target', 'training', '--simd', '-o', join(dir, 'out'));
    expect(r.code, r.stderr).toBe(0);
    const written = readFileSync(join(dir, 'out', 'seed_mlp.train.ts'), 'utf8');
    expect(written).toMatch(/simd\.kernels\.dense_grad_kernel_64x64\(/);
    writeFileSync(join(dir, 'seed_mlp.train.ts'), written);
    expect(strictTypecheck(dir, ['m.train.ts', 'seed_mlp.train.ts'])).toBe('');
  }, 60_000);
});
