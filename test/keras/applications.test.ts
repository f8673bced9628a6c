/**
 * The 13 keras.applications architectures against Keras 3, in CI without
 * Python or weight files. Each fixture (scripts/keras/applications.py) is
 * the config.json Keras writes into the model's `.keras` archive (gzipped),
 * at a small input size, and Keras's logits (`classifier_activation=None`)
 * for two seeded inputs with every variable drawn from the seeded generator
 * (seeded-weights.ts, bit-identical to the Python one). Here the config is
 * imported, the same weights drawn for modelc's parameters, and the
 * generated module (unoptimized and `-O`) run at batch 1: each logit within
 * 1e-4 of Keras's, relative to the logits' scale (unoptimized on input `a`,
 * `-O` on both), and the two inputs' logits far apart (a network whose output ignored its input would pass a 1e-4
 * check with wrong weights).
 *
 * The fixture also holds the logits of the same model built by Keras in
 * float64, and how far Keras's own float32 logits are from them: 1e-6 or
 * less for 12 architectures, but 6.8e-4 for EfficientNetV2B0 at 32x32 (random
 * batch-norm statistics amplify float32 rounding there; at 224x224 it is
 * 2e-5). No float32 implementation can agree with another to 1e-4 where
 * each is that far from the exact values, so the bounds widen to the
 * fixture's conditioning: within max(1e-4, 2 e) of Keras's float32 logits
 * and within max(1e-4, e) of the float64 ones (modelc no farther from exact
 * than Keras itself), e being Keras's float32 error.
 */
import { describe, expect, it } from 'vitest';
import type { Graph } from '../../src/ir/graph.js';
import { ARCHITECTURES, float32, float64, seededGraph, type AppFixture } from './apps.js';
import { expectClose, generatedModel, maxDiff, optimize, RTOL, scaleOf } from './run.js';
import { seededInput } from './seeded-weights.js';

/**
 * Runs the module of `graph` on the inputs (`a`, or `a` and `b`) and compares
 * with Keras; with both, also that the logits depend on the input.
 */
async function checkAgainstKeras(label: string, graph: Graph, fx: AppFixture, tags: readonly ('a' | 'b')[]): Promise<void> {
  const run = await generatedModel(graph, fx.architecture);
  const output = graph.outputs[0]!;
  const [lo, hi] = fx.input_range;
  const got: Record<string, ArrayLike<number>> = {};
  for (const tag of tags) {
    const x = seededInput(tag, [1, ...fx.input_shape], lo, hi);
    got[tag] = run({ [graph.inputs[0]!.name]: x }, 1)[output]!;
    const e = fx.keras_float32_error;
    expectClose(`${fx.architecture} ${label} input ${tag}`, { [output]: got[tag] }, output, float32(fx.outputs[tag]), 1e-6, Math.max(RTOL, 2 * e));
    expectClose(`${fx.architecture} ${label} input ${tag} (Keras in float64)`, { [output]: got[tag] }, output, float64(fx.outputs_float64[tag]), 1e-6, Math.max(RTOL, e));
  }
  if (tags.length < 2) return;
  // the logits depend on the input: a and b differ by over 1% of their scale (100 times the tolerance)
  const spread = maxDiff(got['a']!, got['b']!).diff / scaleOf(got['a']!);
  expect(spread, `${fx.architecture} ${label}: logits of two inputs should differ`).toBeGreaterThan(1e-2);
}

describe('keras.applications architectures against Keras 3', () => {
  for (const name of ARCHITECTURES) {
    it(`${name}: imports, compiles and predicts Keras's logits (unoptimized and -O)`, async () => {
      const t0 = performance.now();
      const { graph, fixture } = seededGraph(name);
      const t1 = performance.now();
      await checkAgainstKeras('unoptimized', graph, fixture, ['a']);
      const t2 = performance.now();
      await checkAgainstKeras('-O', optimize(graph), fixture, ['a', 'b']);
      const t3 = performance.now();
      console.log(`${name}: import ${(t1 - t0).toFixed(0)} ms, unoptimized ${(t2 - t1).toFixed(0)} ms, -O ${(t3 - t2).toFixed(0)} ms`);
    }, 240_000);
  }
});
