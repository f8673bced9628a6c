/**
 * Running a weighted graph the ways the Keras fixture tests compare with
 * Keras: the reference interpreter, and the generated inference module
 * (unoptimized and after the default `-O` pipeline). Outputs are compared by
 * output name, within 1e-4 of the scale of Keras's output (its largest
 * magnitude), the tolerance.
 */
import { expect } from 'vitest';
import { generateInferenceModule } from '../../src/codegen/index.js';
import type { Graph } from '../../src/ir/graph.js';
import { fromF32 } from '../../src/ir/tensor.js';
import { interpret } from '../../src/interp/interpret.js';
import { createPassManager, defaultPipeline } from '../../src/passes/pipeline.js';
import { importModule } from '../helpers/generated.js';

export const RTOL = 1e-4;

export type Feeds = Readonly<Record<string, Float32Array>>;
export type Outputs = Readonly<Record<string, ArrayLike<number>>>;

/** The graph after `-O`. */
export const optimize = (graph: Graph): Graph => createPassManager().run(graph, defaultPipeline);

/** The per-example shape of each graph input, with the batch size in front. */
function batched(graph: Graph, name: string, batch: number): number[] {
  const input = graph.inputs.find((i) => i.name === name);
  if (!input) throw new Error(`the graph has no input '${name}' (it has ${graph.inputs.map((i) => i.name).join(', ')})`);
  return [batch, ...input.type.shape.slice(1).map((d) => d as number)];
}

export function interpreted(graph: Graph, feeds: Feeds, batch: number): Outputs {
  const tensors = Object.fromEntries(Object.entries(feeds).map(([name, data]) => [name, fromF32(batched(graph, name, batch), data)]));
  const out = interpret(graph, tensors);
  return Object.fromEntries(graph.outputs.map((o) => [o, out[o]!.data]));
}

/** A generated module's Model, ready to run (weights in a side file for big graphs, as users would ship them). */
export async function generatedModel(graph: Graph, name: string): Promise<(feeds: Feeds, batch: number) => Outputs> {
  const external = graph.params.length > 0;
  const gen = await generateInferenceModule(graph, { name, weightsMode: external ? 'external' : 'embed' });
  const mod = await importModule(gen.js, name);
  const model = new mod.Model(gen.weights);
  return (feeds, batch) => model.run({ ...feeds }, batch);
}

/** The largest magnitude of the values. */
export function scaleOf(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s = Math.max(s, Math.abs(values[i]!));
  return s;
}

/** The largest |a - b| (NaN counts as infinite) and where. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; at: number } {
  let diff = 0;
  let at = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= diff)) {
      diff = Number.isNaN(d) ? Infinity : d;
      at = i;
    }
  }
  return { diff, at };
}

/** Asserts `got[name]` is within `rtol` (RTOL unless told) of Keras's values, relative to their scale (at least `floor`). */
export function expectClose(label: string, got: Outputs, name: string, want: ArrayLike<number>, floor = 1e-6, rtol = RTOL): number {
  const values = got[name];
  if (!values) throw new Error(`${label}: no output '${name}' (the module has ${Object.keys(got).join(', ')})`);
  expect(values.length, `${label} '${name}': size`).toBe(want.length);
  const { diff, at } = maxDiff(values, want);
  const scale = Math.max(scaleOf(want), floor);
  const relative = diff / scale;
  expect(relative, `${label} '${name}': max |diff| ${diff.toExponential(3)} at [${at}] (got ${values[at]}, Keras ${want[at]}) is ${relative.toExponential(2)} of the output scale ${scale.toExponential(3)}`).toBeLessThanOrEqual(rtol);
  return relative;
}
