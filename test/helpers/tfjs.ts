/**
 * The differential-test harness against TF.js (`@tensorflow/tfjs`, CPU backend).
 *
 * A case is a modelc spec and the same model in TF.js: a `tf.layers` model whose
 * layers carry the spec's layer names, or, for what `tf.layers` cannot express,
 * a function of tf ops. The harness gives the TF.js model seeded random weights
 * (batchnorm with random gamma/beta/moving mean and a moving variance in
 * [0.5, 2], so it is never the identity), copies them into modelc by name
 * (`<layer>/<param>`, Keras names and layouts, as `attachWeights` expects),
 * runs TF.js on a seeded batch of 3 and hands back everything the checks need:
 * the weighted graph, its `-O` version, the feeds and TF.js's outputs (in the
 * graph's output order).
 *
 *   const p = prepare(diffCase);
 *   expectMatches('interpreter', interpretOutputs(p.graph, p), p);
 *
 * Tolerance: max |got - want| <= 1e-4 * max(1, max |want|), per output.
 */
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { generateInferenceModule } from '../../src/codegen/index.js';
import { lowerFile } from '../../src/frontend/load.js';
import type { Graph } from '../../src/ir/graph.js';
import { fromF32, size } from '../../src/ir/tensor.js';
import { interpret } from '../../src/interp/interpret.js';
import { paramShape } from '../../src/ops/init.js';
import { createPassManager, defaultPipeline } from '../../src/passes/pipeline.js';
import { attachWeights, type Weight } from '../../src/weights/attach.js';
import { lowerJson, type JsonSpec } from './graphs.js';
import { importModule } from './generated.js';
import { rng } from './tensors.js';

export { tf };

/** The batch size every case runs with. */
export const BATCH = 3;

/** Relative tolerance, against the scale of TF.js's output. */
export const RTOL = 1e-4;

/** TF.js computed directly with tf ops, from the modelc graph's weights (for what tf.layers lacks). */
export type OpsReference = (inputs: readonly tf.Tensor[], weights: ReadonlyMap<string, Weight>) => tf.Tensor[];

export interface DiffCase {
  readonly name: string;
  /** A modelc JSON spec, or the path of a spec file (relative to the repository root). */
  readonly spec: JsonSpec | string;
  /**
   * The TF.js side: a `tf.layers` model (layers named as in the spec, outputs in
   * the spec's output order), or an ops reference. Built afresh by each prepare.
   */
  readonly tfjs: { readonly model: () => tf.LayersModel } | { readonly ops: OpsReference };
  /** Inputs are uniform in [-inputScale, inputScale] (default 1). */
  readonly inputScale?: number;
  /** Ops that `-O` must have removed (checks the optimized comparison is not vacuous). */
  readonly foldsAway?: readonly string[];
}

export interface Prepared {
  readonly name: string;
  /** The unoptimized graph, with the weights attached. */
  readonly graph: Graph;
  /** The graph after the default `-O` pipeline. */
  readonly optimized: Graph;
  /** One batch per graph input, by input name (f32, row-major, batch first). */
  readonly feeds: Readonly<Record<string, Float32Array>>;
  /** TF.js's outputs, in the order of `graph.outputs`. */
  readonly expected: readonly { readonly shape: readonly number[]; readonly data: Float32Array }[];
}

const root = fileURLToPath(new URL('../../', import.meta.url));

/** A string's 32-bit FNV-1a hash: the seed of a case. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

const uniform = (next: () => number, lo: number, hi: number) => lo + (hi - lo) * next();

/** The Keras name of a parameter: the part of `<layer>/<param>` after the last slash. */
const paramOf = (name: string) => name.slice(name.lastIndexOf('/') + 1);

/**
 * Random values for a parameter, by its Keras name: kernels scaled by their
 * fan-in (so activations stay of order 1 through deep models), biases and
 * batchnorm shifts small, gamma of either sign and away from 0, moving
 * variance in [0.5, 2].
 */
export function randomWeight(name: string, shape: readonly number[], next: () => number): Float32Array {
  const n = size(shape);
  const param = paramOf(name);
  const fill = (f: () => number) => Float32Array.from({ length: n }, f);
  switch (param) {
    case 'kernel':
    case 'depthwise_kernel':
    case 'pointwise_kernel': {
      // Keras layouts put the output (or, for depthwise, the multiplier) channels last;
      // the fan-in is everything else.
      const fanIn = Math.max(1, n / shape[shape.length - 1]!);
      const bound = Math.sqrt(3 / fanIn);
      return fill(() => uniform(next, -bound, bound));
    }
    case 'bias':
    case 'beta':
    case 'moving_mean':
      return fill(() => uniform(next, -0.5, 0.5));
    case 'gamma':
      return fill(() => (next() < 0.5 ? -1 : 1) * uniform(next, 0.5, 1.5));
    case 'moving_variance':
      return fill(() => uniform(next, 0.5, 2));
    default:
      throw new Error(`no random values for parameter '${name}'`);
  }
}

/** The graph of a case's spec (a file through the real loader, an object through the JSON front end). */
function lowerCase(c: DiffCase): Graph {
  return typeof c.spec === 'string' ? lowerFile(root + c.spec).graph : lowerJson(c.spec).graph;
}

/**
 * Sets random weights on every layer of a TF.js model and returns them under
 * modelc's names: `<layer name>/<Keras param name>`. (`LayerVariable.name` may
 * carry a uniquifying suffix such as `dense/kernel_1`; the param name is taken
 * from `originalName` instead.) A shared layer appears once.
 */
export function randomizeModel(model: tf.LayersModel, next: () => number): Map<string, Weight> {
  const weights = new Map<string, Weight>();
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    const values = layer.weights.map((w) => {
      const name = `${layer.name}/${paramOf(w.originalName)}`;
      const shape = w.shape.map((d) => {
        if (d === null) throw new Error(`weight ${name} has an unknown dimension`);
        return d;
      });
      const data = randomWeight(name, shape, next);
      if (weights.has(name)) throw new Error(`two TF.js weights map to '${name}'`);
      weights.set(name, { shape, data });
      return tf.tensor(data, shape);
    });
    layer.setWeights(values);
    tf.dispose(values);
  }
  return weights;
}

/** Runs the TF.js side of a case and returns the weights and outputs. */
function runTfjs(c: DiffCase, graph: Graph, inputs: readonly tf.Tensor[], next: () => number) {
  if ('model' in c.tfjs) {
    const model = c.tfjs.model();
    try {
      expect(model.inputNames, `${c.name}: TF.js inputs`).toEqual(graph.inputs.map((i) => i.name));
      expect(model.outputs.length, `${c.name}: TF.js outputs`).toBe(graph.outputs.length);
      const weights = randomizeModel(model, next);
      const out = model.predict([...inputs]);
      return { weights, outputs: Array.isArray(out) ? out : [out] };
    } finally {
      model.dispose();
    }
  }
  const weights = new Map<string, Weight>();
  for (const p of graph.params) {
    const shape = paramShape(p);
    weights.set(p.name, { shape, data: randomWeight(p.name, shape, next) });
  }
  return { weights, outputs: c.tfjs.ops(inputs, weights) };
}

/**
 * Everything a case's checks need; the TF.js work happens once per case, on
 * the first call (the interpreter and generated-code tests share it).
 */
export function prepare(c: DiffCase): Prepared {
  const cached = preparedCache.get(c);
  if (cached) return cached;
  const next = rng(hash(c.name));
  const unweighted = lowerCase(c);
  const scale = c.inputScale ?? 1;
  const feeds: Record<string, Float32Array> = {};
  const inputs = unweighted.inputs.map((i) => {
    const shape = [BATCH, ...i.type.shape.slice(1).map((d) => d as number)];
    const data = Float32Array.from({ length: size(shape) }, () => uniform(next, -scale, scale));
    feeds[i.name] = data;
    return tf.tensor(data, shape);
  });
  const { weights, outputs } = runTfjs(c, unweighted, inputs, next);
  const expected = outputs.map((t) => ({ shape: [...t.shape], data: Float32Array.from(t.dataSync()) }));
  tf.dispose([...inputs, ...outputs]);
  const graph = attachWeights(unweighted, weights, `${c.name} (TF.js weights)`);
  const optimized = createPassManager().run(graph, defaultPipeline);
  for (const op of c.foldsAway ?? []) {
    expect(optimized.nodes.map((n) => n.op), `${c.name}: -O should remove every ${op}`).not.toContain(op);
  }
  const prepared: Prepared = { name: c.name, graph, optimized, feeds, expected };
  preparedCache.set(c, prepared);
  return prepared;
}

const preparedCache = new WeakMap<DiffCase, Prepared>();

/** An output to compare: its shape, when known, and its values. */
export interface Output {
  readonly shape?: readonly number[];
  readonly data: ArrayLike<number>;
}

/** The reference interpreter's outputs (float64), in the graph's output order. */
export function interpretOutputs(graph: Graph, p: Prepared): Output[] {
  const feeds = Object.fromEntries(
    graph.inputs.map((i) => [i.name, fromF32([BATCH, ...i.type.shape.slice(1).map((d) => d as number)], p.feeds[i.name]!)]),
  );
  const out = interpret(graph, feeds);
  return graph.outputs.map((o) => out[o]!);
}

/** The outputs of the inference module generated from `graph` (f32), in the graph's output order. */
export async function generatedOutputs(graph: Graph, p: Prepared, options: { simd?: boolean } = {}): Promise<Output[]> {
  const { js } = await generateInferenceModule(graph, { name: p.name, ...options });
  const mod = await importModule(js, p.name);
  const model = new mod.Model();
  // A module with SIMD kernels must run them here (Node has WebAssembly SIMD), not fall back.
  if (options.simd && js.includes('class SimdRuntime')) expect((model as unknown as { usesSimd: boolean }).usesSimd).toBe(true);
  const out = model.run({ ...p.feeds }, BATCH);
  return graph.outputs.map((o) => {
    const data = out[o];
    if (!data) throw new Error(`the generated module has no output '${o}' (it has: ${Object.keys(out).join(', ')})`);
    return { data };
  });
}

/**
 * Asserts that `actual` matches TF.js output by output: same shape (when
 * known) and size, and max |diff| <= RTOL * max(1, max |TF.js|). The message
 * names the worst element.
 */
export function expectMatches(label: string, actual: readonly Output[], p: Prepared): void {
  expect(actual.length, `${p.name} ${label}: number of outputs`).toBe(p.expected.length);
  p.expected.forEach((want, k) => {
    const got = actual[k]!;
    const what = `${p.name} ${label}, output ${k}`;
    if (got.shape) expect([...got.shape], `${what}: shape`).toEqual(want.shape);
    expect(got.data.length, `${what}: size`).toBe(want.data.length);
    let scale = 1;
    for (const v of want.data) scale = Math.max(scale, Math.abs(v));
    const tol = RTOL * scale;
    let worst = 0;
    let at = 0;
    for (let i = 0; i < want.data.length; i++) {
      const d = Math.abs(got.data[i]! - want.data[i]!);
      // NaN counts as the worst difference
      if (!(d <= worst)) {
        worst = Number.isNaN(d) ? Infinity : d;
        at = i;
      }
    }
    const detail = `${what}: worst |diff| ${worst.toExponential(3)} at [${at}] (got ${got.data[at]}, TF.js ${want.data[at]}), tolerance ${tol.toExponential(3)}`;
    expect(worst, detail).toBeLessThanOrEqual(tol);
  });
}

// ---------------------------------------------------------------------------
// Building TF.js models

/** A symbolic input named as the spec's input. */
export const input = (name: string, shape: readonly number[]): tf.SymbolicTensor => tf.input({ name, shape: [...shape] });

/** Applies a layer to symbolic tensors (one input, or a list for merge layers). */
export function call(layer: tf.layers.Layer, ...inputs: tf.SymbolicTensor[]): tf.SymbolicTensor {
  return layer.apply(inputs.length === 1 ? inputs[0]! : inputs) as tf.SymbolicTensor;
}

/** A one-input chain of layers as a functional model with a named input. */
export function chain(inputName: string, inputShape: readonly number[], layers: readonly tf.layers.Layer[]): tf.LayersModel {
  const x = input(inputName, inputShape);
  return tf.model({ inputs: x, outputs: layers.reduce((h, l) => call(l, h), x) });
}
