/**
 * The 13 keras.applications architectures against Keras 3, in CI without
 * Python or weight files. Each fixture (scripts/keras/applications.py) is
 * the config.json Keras writes into the model's `.keras` archive (gzipped),
 * at a small input size, and Keras's logits (`classifier_activation=None`)
 * for two seeded inputs with every variable drawn from the seeded generator
 * (seeded-weights.ts, bit-identical to the Python one). Here the config is
 * imported, the same weights drawn for modelc's parameters, and the
 * generated module (unoptimized and `-O`) run at batch 1: each logit within
 * 1e-4 of Keras's, relative to the logits' scale, and the two inputs' logits
 * far apart (a network whose output ignored its input would pass a 1e-4
 * check with wrong weights).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { SourceFile } from '../../src/diagnostics/source.js';
import { lowerLoaded, parseSpecSource } from '../../src/frontend/load.js';
import type { Graph } from '../../src/ir/graph.js';
import { paramShape } from '../../src/ops/init.js';
import { attachWeights, type Weight } from '../../src/weights/attach.js';
import { expectClose, generatedModel, maxDiff, optimize, scaleOf } from './run.js';
import { seededInput, seededWeight } from './seeded-weights.js';

interface AppFixture {
  readonly architecture: string;
  readonly input_shape: readonly number[];
  readonly input_range: readonly [number, number];
  /** Keras's variables under modelc's parameter names. */
  readonly variables: readonly string[];
  /** Logits for the inputs `a` and `b`: little-endian float32, base64. */
  readonly outputs: { readonly a: string; readonly b: string };
}

export const ARCHITECTURES = [
  'MobileNet', 'MobileNetV2', 'MobileNetV3Small', 'ResNet50', 'ResNet50V2', 'DenseNet121', 'EfficientNetB0',
  'EfficientNetV2B0', 'Xception', 'InceptionV3', 'NASNetMobile', 'VGG16', 'ConvNeXtTiny',
] as const;

const dir = fileURLToPath(new URL('../fixtures/keras/apps/', import.meta.url));

function float32(b64: string): Float32Array {
  const bytes = Buffer.from(b64, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** The architecture's graph with every parameter drawn from the seeded generator. */
export function seededGraph(name: string): { graph: Graph; fixture: AppFixture } {
  const fixture = JSON.parse(readFileSync(`${dir}${name}.json`, 'utf8')) as AppFixture;
  const text = gunzipSync(readFileSync(`${dir}${name}.config.json.gz`)).toString('utf8');
  const { graph: bare } = lowerLoaded(parseSpecSource(new SourceFile(`${name}/config.json`, text)));
  const names = bare.params.map((p) => p.name);
  const missing = fixture.variables.filter((v) => !names.includes(v));
  const extra = names.filter((n) => !fixture.variables.includes(n));
  expect({ missing: missing.slice(0, 5), extra: extra.slice(0, 5) }, `${name}: Keras's variables vs modelc's parameters`).toEqual({ missing: [], extra: [] });
  const weights = new Map<string, Weight>();
  for (const p of bare.params) {
    const shape = paramShape(p);
    weights.set(p.name, { shape, data: seededWeight(p.name, shape) });
  }
  return { graph: attachWeights(bare, weights, `${name} (seeded weights)`), fixture };
}

/** Runs the module of `graph` on both inputs and compares with Keras. */
async function checkAgainstKeras(label: string, graph: Graph, fx: AppFixture): Promise<void> {
  const run = await generatedModel(graph, fx.architecture);
  const output = graph.outputs[0]!;
  const [lo, hi] = fx.input_range;
  const got: Record<string, ArrayLike<number>> = {};
  for (const tag of ['a', 'b'] as const) {
    const x = seededInput(tag, [1, ...fx.input_shape], lo, hi);
    got[tag] = run({ [graph.inputs[0]!.name]: x }, 1)[output]!;
    expectClose(`${fx.architecture} ${label} input ${tag}`, { [output]: got[tag] }, output, float32(fx.outputs[tag]));
  }
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
      await checkAgainstKeras('unoptimized', graph, fixture);
      const t2 = performance.now();
      await checkAgainstKeras('-O', optimize(graph), fixture);
      const t3 = performance.now();
      console.log(`${name}: import ${(t1 - t0).toFixed(0)} ms, unoptimized ${(t2 - t1).toFixed(0)} ms, -O ${(t3 - t2).toFixed(0)} ms`);
    }, 120_000);
  }
});
