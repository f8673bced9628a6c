/**
 * The kernel records the module generators return beside the text
 * (`GeneratedModule.kernels`): one per kernel function of the module, with
 * its op, the layers it implements and the plan its op's emit chose, and,
 * with --simd, the WebAssembly kernel that replaces it. Checked against the
 * module text (every record is a function the module defines, and the SIMD
 * calls are exactly the records' SIMD kernels) and against the cost rule.
 */
import { describe, expect, it } from 'vitest';
import { buildTrainingProgram } from '../../src/autodiff/training.js';
import { generateInferenceModule, generateTrainingModule, type GeneratedModule } from '../../src/codegen/index.js';
import { lowerFile } from '../../src/frontend/load.js';
import { materialize } from '../../src/ops/init.js';
import { createPassManager, defaultPipeline } from '../../src/passes/pipeline.js';
import { model } from '../helpers/graphs.js';
import { trainableGraph } from '../helpers/trainer.js';

const mnist = () => createPassManager().run(materialize(lowerFile('examples/mnist_cnn.nn').graph, 3), defaultPipeline);

/** Every record names a kernel function of the module, and the module has no kernel without a record. */
function expectRecordsMatchText(mod: GeneratedModule): void {
  for (const k of mod.kernels) expect(mod.ts, k.name).toMatch(new RegExp(`\\nfunction ${k.name}\\(`));
  expect(mod.ts.match(/^ \* Implements: /gm)).toHaveLength(mod.kernels.length);
  expect(new Set(mod.kernels.map((k) => k.name)).size).toBe(mod.kernels.length);
}

/** The SIMD kernels the module calls, by export name. */
function simdCalls(mod: GeneratedModule): string[] {
  return [...new Set([...mod.ts.matchAll(/simd\.kernels\.(\w+)\(/g)].map((m) => m[1]!))].sort();
}

describe('kernel records of inference modules', () => {
  it('mnist_cnn: the plan of every kernel, the conv paths chosen by the cost rule', async () => {
    const mod = await generateInferenceModule(mnist());
    expectRecordsMatchText(mod);
    expect(mod.kernels.map((k) => [k.op, k.plan.path])).toEqual([
      ['conv2d', 'im2col-gemm'], // 1 input channel: Winograd's products would be outer products
      ['conv2d', 'winograd'],
      ['max_pool2d', 'direct'],
      ['dense', 'gemm'],
      ['dense', 'gemm'],
    ]);
    expect(mod.kernels[0]!.layers).toEqual(['conv2d + batch_normalization (folded) + activation (relu, fused)']);
    expect(mod.kernels[0]!.plan.reason).toBe('sums of 9 terms into 32 columns per group');
    expect(mod.kernels.some((k) => k.simd)).toBe(false);
  });

  it('--simd: the layers that run a SIMD kernel record it, and only those', async () => {
    const mod = await generateInferenceModule(mnist(), { simd: true });
    expectRecordsMatchText(mod);
    const withSimd = mod.kernels.filter((k) => k.simd);
    expect(withSimd.map((k) => k.simd!.name).sort()).toEqual(simdCalls(mod));
    expect(withSimd.map((k) => k.op)).toEqual(['conv2d', 'conv2d', 'dense']);
    for (const k of withSimd) {
      expect(k.simd!.name).toBe(k.name); // named after the TypeScript kernel it replaces
      expect(k.simd!.plan.path).toBe('simd');
    }
    expect(withSimd[0]!.simd!.plan.reason).toBe('f32x4 implicit GEMM, 2 output pixels x 16 filters per register tile, relu in registers');
    // The TypeScript fallback keeps its own plan.
    expect(withSimd[1]!.plan.path).toBe('winograd');
  });
});

describe('kernel records of training modules', () => {
  const spec = {
    ...model([6, 6, 2], [
      { type: 'conv2d', filters: 8, kernel_size: 3, name: 'conv' },
      { type: 'flatten' },
      { type: 'dense', units: 8, name: 'hidden' },
      { type: 'dense', units: 3, activation: 'softmax', name: 'head' },
    ]),
    training: { loss: 'categorical_crossentropy', optimizer: { type: 'sgd', learning_rate: 0.05 } },
  };

  it("the conv gradients record their paths; with --simd the Trainer records its GEMM kernels and the convolutions' window copies", async () => {
    const { graph, training } = trainableGraph(spec as never);
    const program = () => buildTrainingProgram(graph, training);
    const plain = await generateTrainingModule(program(), { name: graph.name });
    const simd = await generateTrainingModule(program(), { name: graph.name, simd: true });
    expectRecordsMatchText(plain);
    expectRecordsMatchText(simd);
    const byOp = (mod: GeneratedModule, op: string) => mod.kernels.filter((k) => k.op === op);
    // 3x3 over 2 channels into 8 filters: 18-term sums into 8 columns; dx has 2 input channels.
    expect(byOp(plain, 'conv2d_grad_kernel').map((k) => k.plan.path)).toEqual(['im2col-gemm']);
    expect(byOp(plain, 'conv2d_grad_input').map((k) => k.plan)).toEqual([]); // the first layer's dx is never needed
    expect(plain.kernels.some((k) => k.simd)).toBe(false);
    const withSimd = simd.kernels.filter((k) => k.simd);
    // Every export the module calls is recorded: the GEMMs and the window copies beside them.
    expect(withSimd.flatMap((k) => [k.simd!.name, ...(k.simd!.columns ? [k.simd!.columns] : [])]).sort()).toEqual(simdCalls(simd));
    expect(withSimd.map((k) => [k.op, k.layers, k.simd!.columns ?? null])).toEqual([
      ['conv2d', ['conv'], 'conv2d_6x6x2_k3x3_f8_im2col'],
      ['dense', ['hidden'], null],
      ['dense_grad_input', ['gradient of hidden'], null],
      ['dense_grad_kernel', ['gradient of hidden'], null],
      ['channel_sum', ['gradient of hidden'], null], // the bias gradient: 8 channels, whole vectors
      ['conv2d_grad_kernel', ['gradient of conv'], 'conv2d_grad_kernel_6x6x2_k3x3_f8_im2col'],
      ['channel_sum', ['gradient of conv'], null],
    ]);
    const convPlan = withSimd.find((k) => k.op === 'conv2d')!.simd!.plan;
    expect(convPlan.reason).toMatch(/^the windows of x as 18-float rows.*, then f32x4 GEMM/);
  });
});
