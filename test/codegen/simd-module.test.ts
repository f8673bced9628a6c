/**
 * Inference modules compiled with `simd: true` (`modelc compile --simd`):
 * which layers get WebAssembly SIMD kernels, that the module runs them and
 * agrees with the reference interpreter and the plain module, that it falls
 * back to its TypeScript kernels where WebAssembly is missing (same results
 * as the plain module, bit for bit), and that it stays strict-clean and
 * deterministic. (The TF.js differential tests run every case with --simd too.)
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateInferenceModule } from '../../src/codegen/index.js';
import { lowerFile } from '../../src/frontend/load.js';
import type { Graph } from '../../src/ir/graph.js';
import { interpret } from '../../src/interp/interpret.js';
import { materialize } from '../../src/ops/init.js';
import { randomFeeds } from '../../src/passes/equivalence.js';
import { createPassManager, defaultPipeline } from '../../src/passes/pipeline.js';
import { importModule, strictTypecheck, type InferenceModule } from '../helpers/generated.js';

type SimdModel = InstanceType<InferenceModule['Model']> & { readonly usesSimd: boolean };

function optimized(path: string): Graph {
  return createPassManager().run(materialize(lowerFile(path).graph, 3), defaultPipeline);
}

function inputsOf(graph: Graph, batch: number) {
  const feeds = randomFeeds(graph, batch, 11);
  const x = Float32Array.from(Object.values(feeds)[0]!.data);
  const want = interpret(graph, { [graph.inputs[0]!.name]: { shape: Object.values(feeds)[0]!.shape, data: Float64Array.from(x) } })[graph.outputs[0]!]!.data;
  return { x, want };
}

function maxRel(got: Float32Array, want: ArrayLike<number>): number {
  let d = 0;
  let scale = 0;
  for (let i = 0; i < got.length; i++) {
    d = Math.max(d, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return d / Math.max(scale, 1e-30);
}

describe('inference modules with --simd', () => {
  // seed_mlp: its hidden dense layers (batchnorm folded) with tanh applied in registers.
  for (const [path, kernels] of [['examples/mnist_cnn.nn', 3], ['examples/res_block.nn', 2], ['examples/seed_mlp.nn', 2]] as const) {
    it(`${path}: ${kernels} SIMD kernels run and match the interpreter and the plain module`, async () => {
      const graph = optimized(path);
      const simd = await generateInferenceModule(graph, { simd: true });
      const plain = await generateInferenceModule(graph);
      expect(simd.ts.match(/simd\.kernels\.\w+\(/g)).toHaveLength(kernels);
      const batch = 3;
      const { x, want } = inputsOf(graph, batch);
      const model = new (await importModule(simd.js)).Model() as SimdModel;
      expect(model.usesSimd).toBe(true);
      const got = model.predict(x, batch);
      expect(maxRel(got, want)).toBeLessThan(1e-5);
      expect(maxRel(got, new (await importModule(plain.js)).Model().predict(x, batch))).toBeLessThan(1e-5);
      // A larger batch grows the WebAssembly memory: earlier views are replaced, results stay right.
      const big = inputsOf(graph, 9);
      expect(maxRel(model.predict(big.x, 9), big.want)).toBeLessThan(1e-5);
      expect(maxRel(model.predict(x, batch), want)).toBeLessThan(1e-5);
    });
  }

  it('without WebAssembly the same module runs its TypeScript kernels: the plain module\'s results, bit for bit', async () => {
    const graph = optimized('examples/mnist_cnn.nn');
    const simd = await generateInferenceModule(graph, { simd: true });
    const plain = await generateInferenceModule(graph);
    const { x } = inputsOf(graph, 2);
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'WebAssembly')!;
    let model: SimdModel;
    const mod = await importModule(simd.js);
    delete (globalThis as { WebAssembly?: unknown }).WebAssembly;
    try {
      model = new mod.Model() as SimdModel;
    } finally {
      Object.defineProperty(globalThis, 'WebAssembly', saved);
    }
    expect(model.usesSimd).toBe(false);
    expect(model.predict(x, 2)).toEqual(new (await importModule(plain.js)).Model().predict(x, 2));
  });

  it('a model without dense/conv layers the kernels take is compiled exactly as without --simd', async () => {
    // seed_mlp with softplus for tanh: its dense layers end in softplus and softmax epilogues, which the SIMD kernels do not apply.
    const dir = mkdtempSync(join(tmpdir(), 'modelc-simd-softplus-'));
    const path = join(dir, 'seed_mlp_softplus.nn');
    writeFileSync(path, readFileSync('examples/seed_mlp.nn', 'utf8').replaceAll('tanh', 'softplus'));
    const graph = optimized(path);
    expect((await generateInferenceModule(graph, { simd: true })).ts).toBe((await generateInferenceModule(graph)).ts);
  });

  it('is strict-clean, names no global WebAssembly type, and is deterministic', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelc-simd-tsc-'));
    const files: string[] = [];
    for (const path of ['examples/mnist_cnn.nn', 'examples/res_block.nn']) {
      const graph = optimized(path);
      const a = await generateInferenceModule(graph, { simd: true });
      const b = await generateInferenceModule(graph, { simd: true });
      expect(a.ts).toBe(b.ts);
      // One base64 decoder serves the embedded weights and the WebAssembly bytes.
      expect(a.ts.match(/function base64Bytes\(/g)).toHaveLength(1);
      const file = `${graph.name}.ts`;
      writeFileSync(join(dir, file), a.ts);
      files.push(file);
    }
    expect(strictTypecheck(dir, files)).toBe('');
  });
});
