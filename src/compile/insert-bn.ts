/**
 * insert-bn: add batch normalization to a trained network without changing
 * what it computes, so that it can be fine-tuned with BN (`modelc insert-bn`).
 *
 * For each chosen Dense/Conv layer L (a site), with calibration inputs x:
 *   1. measure L's output before its activation, h = L(x), per channel c (the
 *      last axis) over the batch and every other axis: mean m_c and the
 *      biased variance v_c (what batchnorm's training mode computes);
 *   2. rewrite the spec: L without its `activation`, then a new batchnorm,
 *      then the activation as its own layer (Keras names: `batch_normalization`,
 *      `activation`, ... each the first free one); references to L (other
 *      layers' `inputs`, the model's `outputs`) now name the last new layer;
 *   3. give the batchnorm moving_mean = m, moving_variance = v, gamma =
 *      sqrt(v + epsilon), beta = m: in inference mode
 *        bn(h) = gamma * (h - m) / sqrt(v + epsilon) + beta = h,
 *      and in training mode on a batch whose statistics are m and v, the same.
 *
 * Sites by default: every Dense, Conv1D, Conv2D, DepthwiseConv2D,
 * SeparableConv2D and Conv2DTranspose layer that is not a model output, is
 * not already followed by a batchnorm, and does not share its weights with a
 * `reuse` of it (each application would need its own statistics). Every
 * original layer keeps its name, hence its weight names; the new layers are
 * written without names when automatic naming gives them the same ones
 * (mnist_cnn: `conv2d(32, 3)`, `batchnorm`, `relu`), else with them.
 *
 * The activations come from the model's own inference module (default
 * passes, SIMD kernels where the engine has them), compiled in-process with
 * the sites' values as its outputs: 1000 MNIST digits through mnist_cnn
 * without its batchnorms take about 2.5 s on 2 cores, 0.4 s of it compiling;
 * the float64 reference interpreter takes about 30 s.
 *
 *   const model = await lowerFileAsync('cnn.nn');
 *   const graph = withWeights(model.graph, 'cnn.safetensors');
 *   const { spec, weights, inserted } = await insertBatchNorm({ spec: model.spec, graph }, x, count);
 */
import { fail, q } from '../diagnostics/diagnostic.js';
import { SourceFile } from '../diagnostics/source.js';
import { lowerLoaded, parseSpecSource } from '../frontend/load.js';
import type { Lowered } from '../frontend/lower.js';
import { isReuse, type LayerSpec, type ModelSpec, type ReuseSpec } from '../frontend/spec.js';
import type { Graph } from '../ir/graph.js';
import { activationSizes, maxBatch } from '../ir/limits.js';
import { exampleShape } from '../ir/types.js';
import { getLayer, getOp } from '../ops/registry.js';
import { attachWeights, type Weight } from '../weights/attach.js';
import { compile } from './index.js';
import { fileStem } from './inputs.js';

/**
 * Whether spec entry `i` can take a batchnorm after it (and fold it back): its
 * output before any activation comes from an op whose record has folding
 * facts (`linear`): Dense and every convolution, separable's pointwise one
 * included.
 */
function linearBeforeActivation(spec: ModelSpec, lowered: Lowered, i: number): boolean {
  const producer = lowered.graph.nodes.find((n) => n.result === preActivation(spec, lowered, i));
  return producer !== undefined && getOp(producer.op)?.linear !== undefined;
}

/** The IR value of spec entry `i`'s output before its fused activation (its output when it has none). */
function preActivation(spec: ModelSpec, lowered: Lowered, i: number): string {
  const layer = lowered.layers[i]!.name;
  const activation = (spec.layers[i] as LayerSpec)['activation'];
  const node = lowered.graph.nodes.find((n) => n.result === layer);
  // A fused activation is the layer's own value; what it reads is the output before it.
  return activation === undefined || node === undefined ? layer : node.operands[0]!;
}

/** A layer chosen for a new batchnorm. */
export interface BatchNormSite {
  /** The layer's spec name (as `modelc check` prints it). */
  readonly layer: string;
  /** Its index in the spec's `layers`. */
  readonly index: number;
  /** The IR value of its output before its activation: what the batchnorm normalizes. */
  readonly value: string;
  /** Channels (the last axis) of that value. */
  readonly channels: number;
  /** The fused activation moved into a layer of its own (none for no activation or `linear`). */
  readonly activation?: string;
}

/** Per-channel statistics of a value over the batch and every axis but the last. */
export interface ChannelStatistics {
  readonly mean: Float64Array;
  /** Biased (divided by the count), as batchnorm's training mode computes it. */
  readonly variance: Float64Array;
  /** Values per channel they were computed from. */
  readonly count: number;
}

/** A batchnorm the rewrite added. */
export interface InsertedBatchNorm {
  /** The new batchnorm layer's name; its weights are `<name>/gamma`, `/beta`, `/moving_mean`, `/moving_variance`. */
  readonly name: string;
  /** The layer it follows. */
  readonly after: string;
  readonly channels: number;
  /** The new activation layer after it, when the layer had a fused activation. */
  readonly activationLayer?: string;
}

export interface InsertBatchNormOptions {
  /** Layer names to insert after (default: every eligible layer, see above). */
  readonly layers?: readonly string[];
  /** The new batchnorms' epsilon (default Keras's 0.001) and momentum (default 0.99). */
  readonly epsilon?: number;
  readonly momentum?: number;
  /** Examples per forward pass while calibrating (default: up to 128). */
  readonly batchSize?: number;
  /** Names the model in messages (default `<name>.json`). */
  readonly path?: string;
}

export interface InsertBatchNormResult {
  /** The new spec (its `train` block as it was). */
  readonly spec: ModelSpec;
  /** The new spec lowered, with every parameter's value. */
  readonly graph: Graph;
  /** Every parameter of the new model by name: the original weights and the new batchnorms'. */
  readonly weights: ReadonlyMap<string, Weight>;
  readonly inserted: readonly InsertedBatchNorm[];
  /** For each original layer index, its index in the new spec (to move comments along). */
  readonly layerIndex: readonly number[];
  /** The measured statistics by site value. */
  readonly statistics: ReadonlyMap<string, ChannelStatistics>;
}

/** A model as insert-bn takes it: its spec and the lowered graph with every parameter's value. */
export interface WeightedModel {
  readonly spec: ModelSpec;
  readonly graph: Graph;
}

const DEFAULT_EPSILON = 0.001;

/** Lowers a spec object as `compile({ spec })` does: printed as JSON, so errors locate in it. */
function lowerObject(spec: ModelSpec, path = `${spec.name}.json`): Lowered {
  return lowerLoaded(parseSpecSource(new SourceFile(path, JSON.stringify(spec, null, 2)), 'json'));
}

/** The canonical layer type of a spec entry (`Conv2D` -> `conv2d`), or `reuse`. */
function typeOf(entry: LayerSpec | ReuseSpec): string {
  return isReuse(entry) ? 'reuse' : (getLayer(entry.type)?.type ?? entry.type);
}

/** Why the layer of spec entry `i` cannot take a batchnorm, or undefined. */
function refusal(spec: ModelSpec, lowered: Lowered, i: number): string | undefined {
  const { name } = lowered.layers[i]!;
  const type = typeOf(spec.layers[i]!);
  if (type === 'reuse' || !linearBeforeActivation(spec, lowered, i)) return `it is a ${type} layer, not dense or a convolution`;
  const reused = lowered.layers.find((l) => l.reuses === name);
  if (reused) return `it shares its weights with ${q(reused.name)} (reuse): each application would need its own statistics`;
  const bn = lowered.graph.nodes.find((n) => n.operands[0] === name && getOp(n.op)?.name === 'batchnorm');
  if (bn) return `it is already followed by the batchnorm ${q(bn.layer)}`;
  return undefined;
}

/**
 * The layers to insert after: `layers` by name, else every eligible one that
 * is not a model output. An unknown name, a layer that is not Dense/Conv, or
 * one that cannot take a batchnorm is an error listing the layers that can;
 * so is a model without any.
 */
export function batchNormSites(spec: ModelSpec, layers?: readonly string[], path?: string): BatchNormSite[] {
  const lowered = lowerObject(spec, path);
  const names = lowered.layers.map((l) => l.name);
  const eligible = names.filter((_, i) => refusal(spec, lowered, i) === undefined);
  const candidates = eligible.length > 0 ? `the layers that can take one: ${eligible.map(q).join(', ')}` : 'no layer of this model can take one';
  let chosen: number[];
  if (layers === undefined) {
    chosen = names.flatMap((name, i) => (eligible.includes(name) && !lowered.graph.outputs.includes(name) ? [i] : []));
    if (chosen.length === 0) {
      const why = eligible.length > 0 ? `only model outputs are eligible (${eligible.map(q).join(', ')}): name them to insert after them anyway` : `it needs a dense or convolution layer not followed by a batchnorm`;
      fail('pass', `no layer of ${q(spec.name)} to insert a batchnorm after: ${why}`, undefined, path);
    }
  } else {
    chosen = [...new Set(layers)].map((name) => {
      const i = names.indexOf(name);
      if (i < 0) return fail('undefinedName', `no layer ${q(name)} in ${q(spec.name)}; ${candidates}`, undefined, path);
      const why = refusal(spec, lowered, i);
      if (why !== undefined) fail('pass', `cannot insert a batchnorm after ${q(name)}: ${why}; ${candidates}`, undefined, path);
      return i;
    });
    chosen.sort((a, b) => a - b);
  }
  return chosen.map((index) => siteOf(spec, lowered, index));
}

function siteOf(spec: ModelSpec, lowered: Lowered, index: number): BatchNormSite {
  const layer = lowered.layers[index]!.name;
  const activation = (spec.layers[index] as LayerSpec)['activation'] as string | undefined;
  const value = preActivation(spec, lowered, index);
  const type = lowered.graph.nodes.find((n) => n.result === value)!.type;
  const channels = type.shape[type.shape.length - 1] as number;
  return { layer, index, value, channels, ...(activation !== undefined && activation !== 'linear' ? { activation } : {}) };
}

/** Running per-channel mean and sum of squared deviations, merged batch by batch (Chan et al.). */
class Moments {
  readonly mean: Float64Array;
  private readonly m2: Float64Array;
  count = 0;

  constructor(channels: number) {
    this.mean = new Float64Array(channels);
    this.m2 = new Float64Array(channels);
  }

  /** Adds `data`: rows of `channels` values, channels last. */
  add(data: Float32Array): void {
    const c = this.mean.length;
    const n = data.length / c;
    const mean = new Float64Array(c);
    const m2 = new Float64Array(c);
    for (let row = 0; row < data.length; row += c) for (let k = 0; k < c; k++) mean[k]! += data[row + k]!;
    for (let k = 0; k < c; k++) mean[k]! /= n;
    for (let row = 0; row < data.length; row += c) {
      for (let k = 0; k < c; k++) {
        const d = data[row + k]! - mean[k]!;
        m2[k]! += d * d;
      }
    }
    const total = this.count + n;
    for (let k = 0; k < c; k++) {
      const delta = mean[k]! - this.mean[k]!;
      this.mean[k]! += (delta * n) / total;
      this.m2[k]! += m2[k]! + (delta * delta * this.count * n) / total;
    }
    this.count = total;
  }

  statistics(): ChannelStatistics {
    return { mean: this.mean, variance: this.m2.map((v) => v / this.count), count: this.count };
  }
}

/** The generated inference module as calibration uses it. */
interface InferenceModel {
  run(feeds: Record<string, Float32Array>, batchSize: number): Record<string, Float32Array>;
}

/** Imports generated JavaScript without touching the disk. */
async function importSource<T>(js: string): Promise<T> {
  return (await import(`data:text/javascript;base64,${Buffer.from(js).toString('base64')}`)) as T;
}

/**
 * The per-channel statistics of `values` (IR values of `graph`) on `count`
 * examples `x` of its one input: the graph cut at those values is compiled
 * (default passes: existing batchnorms fold, layers after the last value go;
 * SIMD kernels) and run `batchSize` examples at a time. Values the module
 * gives as outputs are never fused away, so they are the graph's own.
 */
export async function channelStatistics(
  graph: Graph,
  values: readonly string[],
  x: Float32Array,
  count: number,
  options: { batchSize?: number } = {},
): Promise<Map<string, ChannelStatistics>> {
  if (graph.inputs.length !== 1) fail('data', `calibration runs models with one input; ${q(graph.name)} has ${graph.inputs.length}`);
  const missing = graph.params.find((p) => p.value === undefined);
  if (missing) fail('weights', `parameter ${q(missing.name)} has no value: calibration needs the model's weights`);
  const inSize = exampleShape(graph.inputs[0]!.type).reduce((a, b) => a * b, 1);
  if (!(count >= 1) || x.length < count * inSize) fail('data', `calibration needs at least one example of ${inSize} values; got ${x.length} values for ${count}`);
  const outputs = [...new Set(values)];
  const cut: Graph = { ...graph, outputs };
  const name = fileStem(graph.name);
  const compiled = await compile({ graph: cut }, { name, emit: 'js', simd: true });
  const { Model } = await importSource<{ Model: new () => InferenceModel }>(compiled.files.find((f) => f.path === `${name}.js`)!.contents as string);
  const model = new Model();
  const channels = (v: string) => graph.nodes.find((n) => n.result === v)!.type.shape.at(-1) as number;
  const moments = new Map(outputs.map((v) => [v, new Moments(channels(v))]));
  const batch = Math.max(1, Math.min(options.batchSize ?? 128, count, maxBatch(activationSizes(cut))));
  for (let at = 0; at < count; at += batch) {
    const n = Math.min(batch, count - at);
    const out = model.run({ [graph.inputs[0]!.name]: x.subarray(at * inSize, (at + n) * inSize) }, n);
    for (const [v, m] of moments) m.add(out[v]!);
  }
  return new Map([...moments].map(([v, m]) => [v, m.statistics()]));
}

/** The first free Keras-style names for each prefix, in order, avoiding `taken` (which it extends). */
function freshName(prefix: string, taken: Set<string>): string {
  for (let n = 0; ; n++) {
    const name = n === 0 ? prefix : `${prefix}_${n}`;
    if (!taken.has(name)) {
      taken.add(name);
      return name;
    }
  }
}

interface Rewrite {
  readonly spec: ModelSpec;
  readonly layerIndex: number[];
  readonly inserted: InsertedBatchNorm[];
}

/** The spec with the new layers (named explicitly or not) and references to each site moved to its last new layer. */
function rewriteSpec(spec: ModelSpec, lowered: Lowered, sites: readonly BatchNormSite[], named: boolean, options: InsertBatchNormOptions): Rewrite {
  const taken = new Set([...spec.inputs.map((i) => i.name), ...lowered.layers.map((l) => l.name)]);
  const bnPrefix = getLayer('batchnorm')!.namePrefix;
  const actPrefix = getLayer('activation')!.namePrefix;
  const inserted = sites.map((s): InsertedBatchNorm => {
    const name = freshName(bnPrefix, taken);
    const activationLayer = s.activation === undefined ? undefined : freshName(actPrefix, taken);
    return { name, after: s.layer, channels: s.channels, ...(activationLayer ? { activationLayer } : {}) };
  });
  const movedTo = new Map(inserted.map((b) => [b.after, b.activationLayer ?? b.name]));
  const refer = (ref: string) => movedTo.get(ref) ?? ref;
  const bnAttrs = { ...(options.epsilon !== undefined ? { epsilon: options.epsilon } : {}), ...(options.momentum !== undefined ? { momentum: options.momentum } : {}) };
  const layers: (LayerSpec | ReuseSpec)[] = [];
  const layerIndex: number[] = [];
  spec.layers.forEach((entry, i) => {
    layerIndex.push(layers.length);
    const moved = entry.inputs ? { ...entry, inputs: entry.inputs.map(refer) } : { ...entry };
    const k = sites.findIndex((s) => s.index === i);
    if (k < 0) return void layers.push(moved);
    const { activation: _fused, ...bare } = moved as LayerSpec;
    const bn = inserted[k]!;
    layers.push(bare, { type: 'batchnorm', ...(named ? { name: bn.name } : {}), ...bnAttrs });
    if (bn.activationLayer) layers.push({ type: 'activation', ...(named ? { name: bn.activationLayer } : {}), activation: sites[k]!.activation! });
  });
  const outputs = spec.outputs?.map(refer);
  return { spec: { ...spec, layers, ...(outputs ? { outputs } : {}) }, layerIndex, inserted };
}

/** Whether the rewritten spec names every original layer as before and every new one as planned. */
function namesHold(rewrite: Rewrite, sites: readonly BatchNormSite[], before: Lowered, after: Lowered): boolean {
  const nameAt = (i: number) => after.layers[i]?.name;
  const old = before.layers.every((l, i) => nameAt(rewrite.layerIndex[i]!) === l.name);
  return old && rewrite.inserted.every((b, k) => {
    const at = rewrite.layerIndex[sites[k]!.index]!;
    return nameAt(at + 1) === b.name && (b.activationLayer === undefined || nameAt(at + 2) === b.activationLayer);
  });
}

/**
 * The rewrite of steps 2 and 3 (see the top): `model` with a batchnorm after
 * each site, its statistics from `statistics` (by site value). Pure: nothing
 * is run.
 */
export function withBatchNorm(
  model: WeightedModel,
  sites: readonly BatchNormSite[],
  statistics: ReadonlyMap<string, ChannelStatistics>,
  options: InsertBatchNormOptions = {},
): InsertBatchNormResult {
  const before = lowerObject(model.spec, options.path);
  // Without names the spec reads as Keras writes it; with them when automatic names would move.
  let rewrite = rewriteSpec(model.spec, before, sites, false, options);
  let after = lowerObject(rewrite.spec, options.path);
  if (!namesHold(rewrite, sites, before, after)) {
    rewrite = rewriteSpec(model.spec, before, sites, true, options);
    after = lowerObject(rewrite.spec, options.path);
    if (!namesHold(rewrite, sites, before, after)) throw new Error('insert-bn: the rewritten spec renames a layer');
  }
  const weights = new Map<string, Weight>();
  for (const p of model.graph.params) {
    if (p.value === undefined) fail('weights', `parameter ${q(p.name)} has no value: insert-bn needs the model's weights`);
    weights.set(p.name, { shape: p.type.shape as number[], data: p.value });
  }
  const epsilon = options.epsilon ?? DEFAULT_EPSILON;
  rewrite.inserted.forEach((bn, k) => {
    const site = sites[k]!;
    const stats = statistics.get(site.value);
    if (stats === undefined || stats.mean.length !== site.channels) throw new Error(`insert-bn: no statistics of ${site.channels} channels for ${site.value}`);
    const mean = Float32Array.from(stats.mean);
    const variance = Float32Array.from(stats.variance);
    // gamma from the stored (float32) variance, so that gamma / sqrt(variance + epsilon) is 1 to float32 precision
    const gamma = variance.map((v) => Math.sqrt(v + epsilon));
    const shape = [site.channels];
    weights.set(`${bn.name}/gamma`, { shape, data: gamma });
    weights.set(`${bn.name}/beta`, { shape, data: Float32Array.from(mean) });
    weights.set(`${bn.name}/moving_mean`, { shape, data: mean });
    weights.set(`${bn.name}/moving_variance`, { shape, data: variance });
  });
  const graph = attachWeights(after.graph, weights, undefined, { allowNonfinite: true });
  return { spec: rewrite.spec, graph, weights, inserted: rewrite.inserted, layerIndex: rewrite.layerIndex, statistics };
}

/**
 * All three steps: the sites (`options.layers`, else the eligible ones), their
 * statistics on `count` examples `x` of the model's one input, and the
 * rewritten model with its weights.
 */
export async function insertBatchNorm(model: WeightedModel, x: Float32Array, count: number, options: InsertBatchNormOptions = {}): Promise<InsertBatchNormResult> {
  const sites = batchNormSites(model.spec, options.layers, options.path);
  const statistics = await channelStatistics(model.graph, sites.map((s) => s.value), x, count, options.batchSize === undefined ? {} : { batchSize: options.batchSize });
  return withBatchNorm(model, sites, statistics, options);
}
