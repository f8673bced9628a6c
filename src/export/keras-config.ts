/**
 * A modelc spec as a Keras 3 functional model: `config.json` of a `.keras`
 * archive and the variables of each layer, in the places Keras 3 loads them.
 *
 * 1. Each spec entry is one application (a Keras node) of a Keras layer: its
 *    own, or for a `reuse` entry the layer it applies again (a shared layer
 *    with several inbound nodes). Its class and config come from the layer
 *    record's `kerasExport`; the entry's inputs become `__keras_tensor__`
 *    arguments naming the producing layer and node.
 * 2. The layers are listed in the order Keras's `Functional` rebuilds
 *    `model.layers` (`kerasLayerOrder`), because Keras 3 finds a layer's
 *    variables in model.weights.h5 by that order, not by its name:
 *    `layers/<class in snake_case>` with `_1`, `_2`, ... for later layers of
 *    the same class. Entries that no output depends on are left out (Keras
 *    would not load their weights).
 * 3. A layer's variables are its modelc parameters, trainable ones first
 *    (Keras's order), unless the record says otherwise (renorm statistics).
 *
 * The model is always `Functional`: a chain is a functional model too, and
 * one form keeps one path through Keras's loader.
 */
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { fail, q } from '../diagnostics/diagnostic.js';
import type { Span } from '../diagnostics/source.js';
import type { SpecLocations } from '../frontend/locations.js';
import type { LayerInfo } from '../frontend/lower.js';
import { isReuse, type LayerSpec, type ModelSpec } from '../frontend/spec.js';
import { valueTypes, type Graph } from '../ir/graph.js';
import type { TensorType } from '../ir/types.js';
import { NoKerasForm, type KerasLayerExport, type KerasVariable } from '../ops/keras-export-def.js';
import { getLayer } from '../ops/registry.js';
import { kerasCompileConfig, type KerasOptimizerState } from './keras-compile.js';
import { kerasLayerOrder, type KerasNode } from './keras-order.js';

/** What the export reads: the spec, its lowered layer table (entry names) and the graph with parameter values. */
export interface KerasModelSource {
  readonly spec: ModelSpec;
  readonly layers: readonly LayerInfo[];
  readonly graph: Graph;
  /** Spans of the spec's entries, for diagnostics. */
  readonly locations?: SpecLocations;
}

/** One layer's group in model.weights.h5: `layers/<path>/vars/0, 1, ...` with attribute name. */
export interface KerasLayerWeights {
  readonly path: string;
  readonly name: string;
  readonly variables: readonly KerasVariable[];
  /** How many of the variables (the first ones) are trainable. */
  readonly trainable: number;
}

export interface KerasModel {
  readonly config: Record<string, unknown>;
  readonly weights: readonly KerasLayerWeights[];
  /** The optimizer's name when the spec has a training block (its group in the weights file). */
  readonly optimizer?: KerasOptimizerState;
}

/** A Keras layer: the record's export and the nodes (applications) in spec order. */
interface KerasLayer {
  readonly name: string;
  readonly entry: number;
  readonly export: KerasLayerExport;
  readonly nodes: string[];
}

const DTYPE_POLICY = { module: 'keras', class_name: 'DTypePolicy', config: { name: 'float32' }, registered_name: null };

/** The Keras 3 model: config.json's object and every layer's variables. */
export function kerasModel(source: KerasModelSource): KerasModel {
  const { spec, graph } = source;
  const g = new KerasGraph(source);
  const outputs = spec.outputs ?? [source.layers[source.layers.length - 1]!.name];
  const order = g.order(outputs);
  const ends = (values: readonly string[]) => (values.length === 1 ? g.ref(values[0]!) : values.map((v) => g.ref(v)));
  const training = spec.training ? kerasCompileConfig(spec.training) : undefined;
  const config = {
    module: 'keras.src.models.functional',
    class_name: 'Functional',
    config: {
      name: spec.name,
      trainable: true,
      layers: order.map((name) => g.layerConfig(name)),
      input_layers: ends(spec.inputs.map((i) => i.name)),
      output_layers: ends(outputs),
    },
    registered_name: 'Functional',
    build_config: { input_shape: null },
    ...(training ? { compile_config: training.config } : {}),
  };
  const weights = weightGroups(order, g.layers, graph);
  return { config, weights, ...(training ? { optimizer: training.optimizer } : {}) };
}

/** The spec's entries as Keras nodes of Keras layers, and their configs. */
class KerasGraph {
  /** Every node by the value it defines; model inputs are their own nodes. */
  readonly nodes = new Map<string, KerasNode>();
  readonly layers = new Map<string, KerasLayer>();
  private readonly types: Map<string, TensorType>;

  constructor(private readonly source: KerasModelSource) {
    const { spec } = source;
    const names = source.layers.map((l) => l.name);
    this.types = valueTypes(source.graph);
    for (const i of spec.inputs) this.nodes.set(i.name, { layer: i.name, inputs: [] });
    spec.layers.forEach((entry, i) => {
      const inputs = entry.inputs ?? [i > 0 ? names[i - 1]! : spec.inputs[0]!.name];
      const target = reuseTarget(spec, names, i);
      const layer = names[target]!;
      this.nodes.set(names[i]!, { layer, inputs });
      if (!this.layers.has(layer)) this.layers.set(layer, { name: layer, entry: target, export: exportOf(source, target), nodes: [] });
      this.layers.get(layer)!.nodes.push(names[i]!);
    });
  }

  /** Keras's model.layers order; drops the nodes no output depends on, which Keras does not rebuild (node indices count the rest). */
  order(outputs: readonly string[]): readonly string[] {
    const { layers, reached } = kerasLayerOrder(this.nodes, this.source.spec.inputs.map((i) => i.name), outputs);
    for (const l of this.layers.values()) l.nodes.splice(0, l.nodes.length, ...l.nodes.filter((n) => reached.has(n)));
    return layers;
  }

  /** `[layer, node index, tensor index]`: where Keras finds a value. */
  ref(value: string): [string, number, number] {
    const { layer } = this.nodes.get(value)!;
    return [layer, this.layers.get(layer)?.nodes.indexOf(value) ?? 0, 0];
  }

  layerConfig(name: string): Record<string, unknown> {
    const layer = this.layers.get(name);
    if (!layer) return inputLayerConfig(name, this.types.get(name)!);
    // merge layers take their inputs as one list argument
    const multi = getLayer((this.source.spec.layers[layer.entry] as LayerSpec).type)!.arity[1] > 1;
    const tensor = (value: string) => ({
      class_name: '__keras_tensor__',
      config: { shape: kerasShape(this.types.get(value)!), dtype: 'float32', keras_history: this.ref(value) },
    });
    const call = (node: string) => {
      const args = this.nodes.get(node)!.inputs.map(tensor);
      return { args: multi ? [args] : args, kwargs: {} };
    };
    const shapes = this.nodes.get(layer.nodes[0]!)!.inputs.map((v) => kerasShape(this.types.get(v)!));
    return {
      module: layer.export.module ?? 'keras.layers',
      class_name: layer.export.className,
      config: { name, trainable: true, dtype: DTYPE_POLICY, ...layer.export.config },
      registered_name: layer.export.registeredName ?? null,
      build_config: { input_shape: multi ? shapes : shapes[0] },
      name,
      inbound_nodes: layer.nodes.map(call),
    };
  }
}

/** The entry whose layer entry `i` applies: itself, or the end of its chain of `reuse` references. */
function reuseTarget(spec: ModelSpec, names: readonly string[], i: number): number {
  let at = i;
  for (let entry = spec.layers[at]!; isReuse(entry); entry = spec.layers[at]!) at = names.indexOf(entry.reuse);
  return at;
}

/** The record's Keras form of entry `i`, with its attributes' defaults filled in as lowering does. */
function exportOf(source: KerasModelSource, i: number): KerasLayerExport {
  const entry = source.spec.layers[i] as LayerSpec;
  const def = getLayer(entry.type)!;
  const name = source.layers[i]!.name;
  const span: Span | undefined = source.locations?.value(['layers', i]);
  if (!def.kerasExport) fail('export', `layer ${q(name)}: ${entry.type} has no Keras layer to export as`, span);
  const attrs = Value.Default(Type.Object(def.attrs), structuredClone(entry)) as Record<string, unknown>;
  try {
    return def.kerasExport(attrs as never);
  } catch (err) {
    if (err instanceof NoKerasForm) fail('export', `layer ${q(name)} (${entry.type}) cannot be a Keras layer: ${err.message}`, span);
    throw err;
  }
}

/** A modelc type as a Keras shape: the batch dimension is null. */
function kerasShape(t: TensorType): (number | null)[] {
  return t.shape.map((d) => (typeof d === 'number' ? d : null));
}

function inputLayerConfig(name: string, type: TensorType): Record<string, unknown> {
  return {
    module: 'keras.layers',
    class_name: 'InputLayer',
    config: { batch_shape: kerasShape(type), dtype: 'float32', sparse: false, ragged: false, name, optional: false },
    registered_name: null,
    name,
    inbound_nodes: [],
  };
}

/**
 * Each layer's group in the weights file, named as Keras 3's loader looks for
 * it (saving_lib `_load_container_state`): the class in snake_case, numbered
 * from the second layer of a class on, in model.layers order.
 */
function weightGroups(order: readonly string[], layers: ReadonlyMap<string, KerasLayer>, graph: Graph): KerasLayerWeights[] {
  const used = new Map<string, number>();
  return order.map((name) => {
    const base = snakeCase(layers.get(name)?.export.className ?? 'InputLayer');
    const n = used.get(base);
    used.set(base, n === undefined ? 0 : n + 1);
    const path = n === undefined ? base : `${base}_${n + 1}`;
    const layer = layers.get(name);
    const trainable = graph.params.filter((p) => p.trainable && p.name.startsWith(`${name}/`)).length;
    return { path, name, variables: layer ? variablesOf(name, layer.export, graph) : [], trainable };
  });
}

/** Keras's `naming.to_snake_case`: `BatchNormalization` -> `batch_normalization`, `ReLU` -> `re_lu`. */
export function snakeCase(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

function variablesOf(layer: string, exp: KerasLayerExport, graph: Graph): KerasVariable[] {
  const own = graph.params.filter((p) => p.name.startsWith(`${layer}/`));
  const params = new Map<string, KerasVariable>();
  for (const p of own) {
    if (!p.value) fail('weights', `parameter ${q(p.name)} has no value: load weights (--weights) or sample the initializers (--seed) before exporting`);
    params.set(p.name.slice(layer.length + 1), { shape: p.type.shape as number[], data: p.value });
  }
  if (exp.variables) return exp.variables(params);
  const ordered = [...own.filter((p) => p.trainable), ...own.filter((p) => !p.trainable)];
  return ordered.map((p) => params.get(p.name.slice(layer.length + 1))!);
}
