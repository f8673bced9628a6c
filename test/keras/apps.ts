/**
 * The keras.applications fixtures (test/fixtures/keras/apps): each
 * architecture's committed config imported and lowered, with every parameter
 * drawn from the seeded generator Keras's weights were drawn from. Shared by
 * applications.test.ts and anyone profiling the compile of these graphs.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { expect } from 'vitest';
import { SourceFile } from '../../src/diagnostics/source.js';
import { lowerLoaded, parseSpecSource } from '../../src/frontend/load.js';
import type { Graph } from '../../src/ir/graph.js';
import { paramShape } from '../../src/ops/init.js';
import { attachWeights, type Weight } from '../../src/weights/attach.js';
import { seededWeight } from './seeded-weights.js';

export interface AppFixture {
  readonly architecture: string;
  readonly input_shape: readonly number[];
  readonly input_range: readonly [number, number];
  /** Keras's variables under modelc's parameter names. */
  readonly variables: readonly string[];
  /** Logits for the inputs `a` and `b`: little-endian float32, base64. */
  readonly outputs: { readonly a: string; readonly b: string };
  /** The same model and weights built by Keras in float64: logits as little-endian float64, base64. */
  readonly outputs_float64: { readonly a: string; readonly b: string };
  /** Max |Keras float32 - Keras float64| over the float64 logits' scale: how well conditioned the fixture is. */
  readonly keras_float32_error: number;
}

export const ARCHITECTURES = [
  'MobileNet', 'MobileNetV2', 'MobileNetV3Small', 'ResNet50', 'ResNet50V2', 'DenseNet121', 'EfficientNetB0',
  'EfficientNetV2B0', 'Xception', 'InceptionV3', 'NASNetMobile', 'VGG16', 'ConvNeXtTiny',
] as const;

const dir = fileURLToPath(new URL('../fixtures/keras/apps/', import.meta.url));

export function float32(b64: string): Float32Array {
  const bytes = Buffer.from(b64, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

export function float64(b64: string): Float64Array {
  const bytes = Buffer.from(b64, 'base64');
  return new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
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
