/**
 * TF.js LayersModel import: a `model.json` (what `model.save()` writes, or
 * `tensorflowjs_converter` from a Keras model) -> a modelc spec and its
 * weights.
 *
 * The topology is the Keras config of a Sequential or functional model:
 * `{class_name: 'Sequential' | 'Model' | 'Functional', config: {name, layers,
 * ...}}` (or the converter's `{model_config: ...}` around it). Each Keras layer
 * becomes one spec layer with the same name (so the weights keep their names);
 * a functional layer applied more than once (several `inbound_nodes`) becomes
 * the layer plus `{"reuse": layer}` entries, which share its weights. Keras
 * attribute names are modelc's; values equal to modelc's defaults are left
 * out, `[3, 3]` pairs become `3`, initializers become modelc names
 * (`VarianceScaling(scale 1, fan_avg, uniform)` is `glorot_uniform`).
 * Anything without a faithful modelc form (a layer class, `channels_first`, a
 * regularizer, a mask, a quantized weight) is an `import` diagnostic naming
 * the layer and its class, located in model.json: an import never changes
 * what the model computes, or how it would train, without saying so.
 *
 * Weights: `weightsManifest` groups, each a list of weights (name, shape,
 * dtype) stored back to back, little-endian, in the concatenation of its
 * shard files (`paths`, relative to model.json). Names `<layer>/<param>` map
 * onto modelc's parameters; only float32 is read.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fail, q, suggest, type DiagnosticCode } from '../diagnostics/diagnostic.js';
import type { SourceFile } from '../diagnostics/source.js';
import { initializerNames, type Initializer } from '../ops/init.js';
import { activationNames } from '../ops/activation.js';
import { getLayer } from '../ops/registry.js';
import type { Weight } from '../weights/attach.js';
import { parseJsonSpec } from './json.js';
import { SpecLocations, type SpecPath } from './locations.js';
import type { InputSpec, LayerSpec, ModelSpec, ReuseSpec } from './spec.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A TF.js model.json: a JSON object with `modelTopology` (cheap test first, then a parse). */
export function isTfjsModelJson(text: string): boolean {
  if (!/"modelTopology"\s*:/.test(text)) return false;
  try {
    const v: unknown = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    return isObj(v) && Object.hasOwn(v, 'modelTopology');
  } catch {
    return false;
  }
}

export interface TfjsImport {
  readonly spec: ModelSpec;
  /** Spec paths located in model.json (each layer entry at its Keras layer). */
  readonly locations: SpecLocations;
  /** The weights under modelc's names; absent when model.json has no `weightsManifest`. */
  readonly weights?: Map<string, Weight>;
}

/** The Keras layer classes modelc imports (aliases included). */
export const importableClasses = [
  'InputLayer', 'Dense', 'Conv2D', 'Conv2DTranspose', 'DepthwiseConv2D', 'BatchNormalization', 'Activation', 'ReLU',
  'LeakyReLU', 'ELU', 'Softmax', 'Dropout', 'MaxPooling2D', 'AveragePooling2D', 'GlobalAveragePooling2D',
  'GlobalMaxPooling2D', 'Flatten', 'Reshape', 'Add', 'Concatenate',
];

const classAliases: Record<string, string> = {
  Convolution2D: 'Conv2D',
  Convolution2DTranspose: 'Conv2DTranspose',
  MaxPool2D: 'MaxPooling2D',
  AvgPool2D: 'AveragePooling2D',
  GlobalAvgPool2D: 'GlobalAveragePooling2D',
  GlobalMaxPool2D: 'GlobalMaxPooling2D',
};

/** Reads model.json and its weight shards. Every problem is a diagnostic located in model.json. */
export function importTfjs(file: SourceFile): TfjsImport {
  const { spec: root, locations: raw } = parseJsonSpec(file);
  const imp = new Importer(file, raw);
  if (!isObj(root)) return imp.fail([], 'a TF.js model.json must be a JSON object');
  if (root['format'] === 'graph-model') {
    imp.fail(['format'], "this is a TF.js graph model (format 'graph-model'); only layers models (tf.LayersModel, Keras) can be imported");
  }
  let topoPath: SpecPath = ['modelTopology'];
  let topo = root['modelTopology'];
  // tensorflowjs_converter (Keras HDF5): {keras_version, backend, model_config, training_config}
  if (isObj(topo) && isObj(topo['model_config'])) {
    topoPath = ['modelTopology', 'model_config'];
    topo = topo['model_config'];
  }
  if (!isObj(topo)) return imp.fail(topoPath, '"modelTopology" must be an object: the Keras config of the model');
  if (Object.hasOwn(topo, 'node')) imp.fail(topoPath, 'this is a TF.js graph model (a GraphDef topology); only layers models can be imported');
  const cls = topo['class_name'];
  const converted =
    cls === 'Sequential' ? imp.sequential(topo, topoPath) :
    cls === 'Model' || cls === 'Functional' ? imp.functional(topo, topoPath) :
    imp.fail([...topoPath, 'class_name'], `the model class must be Sequential, Model or Functional, got ${show(cls)}`);
  const layerNames = new Set(converted.layers.flatMap((l) => ('type' in l && l.name !== undefined ? [l.name] : [])));
  const weights = readWeights(imp, root['weightsManifest'], layerNames);
  return { spec: converted, locations: imp.locations, ...(weights ? { weights } : {}) };
}

// ---------------------------------------------------------------------------
// Topology

/** A Keras layer of the config. */
interface KerasLayer {
  readonly name: string;
  readonly className: string;
  readonly config: Obj;
  /** The path of the layer object in model.json. */
  readonly path: SpecPath;
}

/** A spec layer before names and inputs: its type and attributes, with where each attribute came from. */
interface Converted {
  readonly entry: { type: string; [attribute: string]: unknown };
  readonly sources: ReadonlyMap<string, SpecPath>;
}

class Importer {
  /** Spec paths -> spans in model.json. */
  readonly locations: SpecLocations;

  constructor(
    readonly file: SourceFile,
    readonly raw: SpecLocations,
  ) {
    this.locations = new SpecLocations(file);
  }

  fail(path: SpecPath, message: string, code: DiagnosticCode = 'import'): never {
    return fail(code, message, this.raw.value(path));
  }

  /** Locates spec path `to` at model.json path `from` (value and key spans). */
  locate(to: SpecPath, from: SpecPath): void {
    const v = this.raw.value(from);
    const k = this.raw.key(from);
    this.locations.set(to, v.start, v.end, k.start, k.end);
  }

  private layerOf(v: unknown, path: SpecPath, functional: boolean): KerasLayer {
    if (!isObj(v)) return this.fail(path, `a Keras layer must be an object with "class_name" and "config", got ${show(v)}`);
    const cls = v['class_name'];
    const config = v['config'];
    if (typeof cls !== 'string') return this.fail(path, 'a Keras layer needs a string "class_name"');
    if (!isObj(config)) return this.fail(path, `layer of class ${q(cls)} needs a "config" object`);
    const name = functional && typeof v['name'] === 'string' ? v['name'] : config['name'];
    if (typeof name !== 'string' || name === '') return this.fail(path, `a layer of class ${q(cls)} has no name`);
    return { name, className: classAliases[cls] ?? cls, config, path };
  }

  private modelName(config: Obj, path: SpecPath): string {
    this.locate(['name'], [...path, 'name']);
    const raw = typeof config['name'] === 'string' ? config['name'] : 'model';
    const name = raw.replace(/[^A-Za-z0-9_]+/g, '_');
    return /^[A-Za-z_]/.test(name) ? name : `_${name}`;
  }

  /** The per-example shape from an InputLayer or a first layer's `batch_input_shape`. */
  private inputShape(l: KerasLayer): { shape: number[]; path: SpecPath } | undefined {
    for (const key of ['batch_input_shape', 'batch_shape', 'input_shape']) {
      const v = l.config[key];
      if (v === undefined || v === null) continue;
      const path = [...l.path, 'config', key];
      const dims = Array.isArray(v) ? (key === 'input_shape' ? v : v.slice(1)) : undefined;
      if (!dims || dims.length === 0 || !dims.every((d) => Number.isInteger(d) && (d as number) >= 1)) {
        this.fail(path, `layer ${q(l.name)} (${l.className}): the input shape ${show(v)} must give every dimension but the batch (modelc needs static shapes)`);
      }
      return { shape: dims as number[], path };
    }
    return undefined;
  }

  private declareInput(l: KerasLayer, inputs: InputSpec[], name: string): void {
    const shape = this.inputShape(l);
    if (!shape) this.fail(l.path, `layer ${q(l.name)} (${l.className}) has no "batch_input_shape": the model's input shape is unknown`);
    const k = inputs.length;
    this.locate(['inputs', k], l.path);
    this.locate(['inputs', k, 'name'], [...l.path, 'config', 'name']);
    this.locate(['inputs', k, 'shape'], shape.path);
    inputs.push({ name, shape: shape.shape });
  }

  sequential(topo: Obj, path: SpecPath): ModelSpec {
    this.locate([], path);
    // Keras before 2.2.3 wrote a Sequential's config as the list of layers.
    const config: Obj = Array.isArray(topo['config']) ? { layers: topo['config'] } : isObj(topo['config']) ? topo['config'] : this.fail([...path, 'config'], 'a Sequential model needs a "config" object');
    const cfgPath = Array.isArray(topo['config']) ? [...path] : [...path, 'config'];
    const layersPath = Array.isArray(topo['config']) ? [...path, 'config'] : [...path, 'config', 'layers'];
    const list = config['layers'];
    if (!Array.isArray(list) || list.length === 0) return this.fail(layersPath, 'a Sequential model needs a non-empty "layers" list');
    let keras = list.map((v, j) => this.layerOf(v, [...layersPath, j], false));
    const inputs: InputSpec[] = [];
    const first = keras[0]!;
    if (first.className === 'InputLayer') {
      this.inputLayer(first);
      this.declareInput(first, inputs, first.name);
      keras = keras.slice(1);
    } else {
      // TF.js names a Sequential's input `<first layer>_input`.
      this.declareInput(first, inputs, `${first.name}_input`);
    }
    if (keras.length === 0) return this.fail(layersPath, 'the model has no layers besides its input');
    const layers: LayerSpec[] = keras.map((l, i) => {
      if (l.className === 'InputLayer') this.fail(l.path, `input layer ${q(l.name)} in the middle of a Sequential model`);
      return this.entry(l, i);
    });
    return { name: this.modelName(config, cfgPath), inputs, layers };
  }

  functional(topo: Obj, path: SpecPath): ModelSpec {
    this.locate([], path);
    const cfgPath = [...path, 'config'];
    const config = isObj(topo['config']) ? topo['config'] : this.fail(cfgPath, 'a functional model needs a "config" object');
    const list = config['layers'];
    if (!Array.isArray(list) || list.length === 0) return this.fail([...cfgPath, 'layers'], 'a functional model needs a non-empty "layers" list');
    const keras = list.map((v, j) => this.layerOf(v, [...cfgPath, 'layers', j], true));
    const byName = new Map<string, KerasLayer>();
    for (const l of keras) {
      if (byName.has(l.name)) this.fail(l.path, `two layers are named ${q(l.name)}`);
      byName.set(l.name, l);
    }

    // Model inputs, in `input_layers` order.
    const inputs: InputSpec[] = [];
    const inputNames = new Set<string>();
    this.refList(config['input_layers'], [...cfgPath, 'input_layers']).forEach(({ layer, node, path: p }) => {
      const l = byName.get(layer);
      if (!l || l.className !== 'InputLayer') return this.fail(p, `model input ${q(layer)} is not an InputLayer of the model`);
      if (node !== 0) this.fail(p, `model input ${q(layer)} refers to node ${node} of an InputLayer`);
      if (inputNames.has(layer)) this.fail(p, `${q(layer)} is a model input twice`);
      inputNames.add(layer);
      this.inputLayer(l);
      this.declareInput(l, inputs, l.name);
    });

    // Applications: node k of layer l, named l (k = 0) or l_k (the first free name).
    interface App {
      readonly layer: KerasLayer;
      readonly order: number;
      readonly node: number;
      readonly name: string;
      readonly path: SpecPath;
      readonly refs: readonly { layer: string; node: number; path: SpecPath }[];
    }
    const taken = new Set(keras.map((l) => l.name));
    const apps: App[] = [];
    const appName = new Map<string, string>();
    const key = (layer: string, node: number) => `${node}:${layer}`;
    keras.forEach((l, order) => {
      if (l.className === 'InputLayer') {
        if (!inputNames.has(l.name)) this.fail(l.path, `input layer ${q(l.name)} is not among the model's "input_layers"`);
        appName.set(key(l.name, 0), l.name);
        return;
      }
      const nodesPath = [...l.path, 'inbound_nodes'];
      const nodes = (list[order] as Obj)['inbound_nodes'];
      if (!Array.isArray(nodes) || nodes.length === 0) return this.fail(l.path, `layer ${q(l.name)} (${l.className}) has no "inbound_nodes": it is not applied to anything`);
      nodes.forEach((n, k) => {
        const p = [...nodesPath, k];
        if (isObj(n)) this.fail(p, `layer ${q(l.name)}: inbound nodes in the Keras 3 format ({"args": ...}) are not supported; save the model with TF.js or Keras 2`);
        let name = l.name;
        if (k > 0) for (let i = k; taken.has(name); i++) name = `${l.name}_${i}`;
        taken.add(name);
        appName.set(key(l.name, k), name);
        apps.push({ layer: l, order, node: k, name, path: p, refs: this.refList(n, p, `layer ${q(l.name)}`) });
      });
    });
    const resolve = (r: { layer: string; node: number; path: SpecPath }, what: string): string => {
      const l = byName.get(r.layer);
      if (!l) return this.fail(r.path, `${what} refers to ${q(r.layer)}, which is not a layer of the model${suggest(r.layer, byName.keys())}`);
      const name = appName.get(key(r.layer, r.node));
      if (name === undefined) return this.fail(r.path, `${what} refers to node ${r.node} of ${q(r.layer)}, which has ${Math.max(1, ...apps.filter((a) => a.layer === l).map((a) => a.node + 1))} node(s)`);
      return name;
    };

    // Spec entries in a topological order, Keras layer order where free.
    const deps = new Map(apps.map((a) => [a, a.refs.map((r) => resolve(r, `layer ${q(a.layer.name)}`))]));
    const done = new Set<string>(inputNames);
    const pending = [...apps];
    const ordered: App[] = [];
    while (pending.length > 0) {
      const i = pending.findIndex((a) => deps.get(a)!.every((d) => done.has(d)));
      if (i < 0) return this.fail(pending[0]!.path, `layers depend on each other in a cycle: ${pending.map((a) => q(a.name)).join(', ')}`);
      const [a] = pending.splice(i, 1);
      ordered.push(a!);
      done.add(a!.name);
    }
    const layers = ordered.map((a, i): LayerSpec | ReuseSpec => {
      const refs = deps.get(a)!;
      const previous = i > 0 ? ordered[i - 1]!.name : inputs.length === 1 ? inputs[0]!.name : undefined;
      const implicit = refs.length === 1 && refs[0] === previous;
      if (!implicit) a.refs.forEach((r, m) => this.locate(['layers', i, 'inputs', m], r.path));
      const inputsKey = implicit ? {} : { inputs: refs };
      if (a.node === 0) return { ...this.entry(a.layer, i), ...inputsKey };
      this.locate(['layers', i], a.path);
      this.locate(['layers', i, 'reuse'], a.path);
      return { reuse: a.layer.name, name: a.name, ...inputsKey };
    });

    const outputRefs = this.refList(config['output_layers'], [...cfgPath, 'output_layers']);
    if (outputRefs.length === 0) this.fail([...cfgPath, 'output_layers'], 'the model has no "output_layers"');
    const outputs = outputRefs.map((r, j) => {
      this.locate(['outputs', j], r.path);
      return resolve(r, 'a model output');
    });
    const last = layers[layers.length - 1];
    const spec: ModelSpec = { name: this.modelName(config, cfgPath), inputs, layers };
    if (!(outputs.length === 1 && last !== undefined && outputs[0] === last.name)) spec.outputs = outputs;
    return spec;
  }

  /** `[[layer, node, tensor, kwargs?], ...]` (inbound nodes, input and output layers). */
  private refList(v: unknown, path: SpecPath, owner?: string): { layer: string; node: number; path: SpecPath }[] {
    // one reference may stand alone: `"output_layers": ["dense", 0, 0]`
    if (Array.isArray(v) && typeof v[0] === 'string') return this.refList([v], path, owner);
    if (!Array.isArray(v)) return this.fail(path, `${owner ? `${owner}: ` : ''}expected a list of [layer name, node index, tensor index] references, got ${show(v)}`);
    return v.map((r, m) => {
      const p = [...path, m];
      if (!Array.isArray(r) || typeof r[0] !== 'string' || !Number.isInteger(r[1]) || !Number.isInteger(r[2] ?? 0)) {
        return this.fail(p, `expected a [layer name, node index, tensor index] reference, got ${show(r)}`);
      }
      if ((r[2] ?? 0) !== 0) this.fail(p, `${q(r[0])} has one output, but tensor ${r[2]} of it is used`);
      const kwargs = r[3];
      if (kwargs !== undefined && kwargs !== null && !(isObj(kwargs) && Object.keys(kwargs).length === 0)) {
        this.fail(p, `${owner ? `${owner}: ` : ''}call arguments ${show(kwargs)} (masks, training flags) are not supported`);
      }
      return { layer: r[0] as string, node: r[1] as number, path: p };
    });
  }

  private inputLayer(l: KerasLayer): void {
    const c = new Config(this, l);
    for (const k of ['batch_input_shape', 'batch_shape', 'input_shape']) c.get(k);
    if (c.get('sparse') === true) c.fail('sparse', 'sparse inputs are not supported');
    if (c.get('ragged') === true) c.fail('ragged', 'ragged inputs are not supported');
    c.finish();
  }

  /** The spec entry of a Keras layer's first application, located at the layer. */
  private entry(l: KerasLayer, i: number): LayerSpec {
    const { entry, sources } = convertLayer(new Config(this, l));
    this.locate(['layers', i], [...l.path, 'class_name']);
    this.locate(['layers', i, 'type'], [...l.path, 'class_name']);
    this.locate(['layers', i, 'name'], [...l.path, 'config', 'name']);
    for (const [attr, from] of sources) this.locate(['layers', i, attr], from);
    return { ...entry, name: l.name };
  }
}

/** Reads one layer's config: typed getters, and a check that nothing was left unread. */
class Config {
  /** Read elsewhere: the name, and the input shape that a Sequential model's first layer carries. */
  private readonly used = new Set(['name', 'batch_input_shape', 'batch_shape', 'input_shape']);
  readonly sources = new Map<string, SpecPath>();

  constructor(
    private readonly imp: Importer,
    readonly layer: KerasLayer,
  ) {}

  get where(): string {
    return `layer ${q(this.layer.name)} (${this.layer.className})`;
  }

  path(key: string): SpecPath {
    return [...this.layer.path, 'config', key];
  }

  get(key: string): unknown {
    this.used.add(key);
    return this.layer.config[key];
  }

  fail(key: string | undefined, message: string, code: DiagnosticCode = 'import'): never {
    return this.imp.fail(key === undefined ? [...this.layer.path, 'class_name'] : this.path(key), `${this.where}: ${message}`, code);
  }

  private expect(key: string, ok: boolean, what: string): void {
    if (!ok) this.fail(key, `${q(key)} must be ${what}, got ${show(this.layer.config[key])}`);
  }

  /** A value that may be absent or null. */
  optional<T>(key: string, read: (key: string) => T): T | undefined {
    const v = this.layer.config[key];
    if (v === undefined || v === null) {
      this.used.add(key);
      return undefined;
    }
    return read(key);
  }

  int(key: string, minimum = 1): number {
    const v = this.get(key);
    this.expect(key, Number.isInteger(v) && (v as number) >= minimum, `an integer >= ${minimum}`);
    return v as number;
  }

  number(key: string): number {
    const v = this.get(key);
    this.expect(key, typeof v === 'number' && Number.isFinite(v), 'a number');
    return v as number;
  }

  bool(key: string): boolean {
    const v = this.get(key);
    this.expect(key, typeof v === 'boolean', 'true or false');
    return v as boolean;
  }

  /** An int or a [h, w] pair; a pair of equal values reads as one int. */
  intPair(key: string, minimum = 1): number | [number, number] {
    const v = this.get(key);
    const isInt = (d: unknown) => Number.isInteger(d) && (d as number) >= minimum;
    if (isInt(v)) return v as number;
    this.expect(key, Array.isArray(v) && v.length === 2 && v.every(isInt), `an integer or a pair of integers >= ${minimum}`);
    const [a, b] = v as [number, number];
    return a === b ? a : [a, b];
  }

  /** An axis: an int, or a list of one int (Keras BatchNormalization). */
  axis(key: string): number {
    const v = this.get(key);
    const one = Array.isArray(v) && v.length === 1 ? v[0] : v;
    this.expect(key, Number.isInteger(one), 'an integer axis');
    return one as number;
  }

  padding(key = 'padding'): 'valid' | 'same' {
    const v = this.optional(key, (k) => this.get(k));
    if (v === undefined || v === 'valid' || v === 'same') return (v ?? 'valid') as 'valid' | 'same';
    return this.fail(key, `padding ${show(v)} is not supported (modelc has 'valid' and 'same')`);
  }

  dataFormat(): void {
    const v = this.optional('data_format', (k) => this.get(k));
    if (v === undefined || v === 'channels_last') return;
    if (v === 'channels_first') this.fail('data_format', "data_format 'channels_first' is not supported: modelc is channels-last (NHWC)");
    this.fail('data_format', `data_format ${show(v)} is not supported`);
  }

  /**
   * An activation name in modelc's vocabulary (TF.js `hardSigmoid` and Keras
   * `hard_sigmoid` both read); TF.js's `gelu_new` (the tanh approximation)
   * only as an Activation layer (`fused` false), where it becomes `gelu(approximate: true)`.
   */
  activation(key = 'activation', fused = true): string | undefined {
    const v = this.optional(key, (k) => this.get(k));
    if (v === undefined) return undefined;
    if (typeof v !== 'string') return this.fail(key, `activation ${show(v)} is not supported (expected an activation name)`);
    const name = activationAliases[v] ?? v;
    if (name === 'gelu_new') return fused ? this.fail(key, "activation 'gelu_new' inside a layer is not supported (as an Activation layer it is)") : name;
    const names = activationNames.filter((n) => n !== 'leaky_relu'); // Keras's leaky_relu slope differs from modelc's default
    if (!(names as string[]).includes(name)) return this.fail(key, `activation ${q(v)} is not supported (modelc has ${names.join(', ')})`);
    return name;
  }

  initializer(key: string): Initializer | undefined {
    return this.optional(key, (k) => initializerOf(this.get(k), (msg) => this.fail(k, `${q(k)}: ${msg}`)));
  }

  /** Records that attribute `attr` of the entry comes from `key`. */
  from(attr: string, key = attr): string {
    this.sources.set(attr, this.path(key));
    return attr;
  }

  /**
   * Keys nobody read: null is harmless (no regularizer, no constraint), and
   * `trainable: true`, `dtype: float32`; anything else is an option modelc
   * cannot represent.
   */
  finish(): void {
    for (const [key, v] of Object.entries(this.layer.config)) {
      if (this.used.has(key) || v === null) continue;
      if (key === 'trainable' && v === true) continue;
      if (key === 'dtype' && (v === 'float32' || (isObj(v) && isObj(v['config']) && v['config']['name'] === 'float32'))) continue;
      if (key === 'trainable') this.fail(key, 'trainable: false (a frozen layer) is not supported');
      if (/_(regularizer|constraint)$/.test(key)) this.fail(key, `${key} is not supported (modelc has no ${key.replace(/^.*_/, '')}s)`);
      this.fail(key, `option ${q(key)} = ${show(v)} is not supported`);
    }
  }
}

const activationAliases: Record<string, string> = { hardSigmoid: 'hard_sigmoid', silu: 'swish' };

/** Keras/TF.js initializer configs -> modelc initializers. */
function initializerOf(v: unknown, bad: (message: string) => never): Initializer {
  const snake = (s: string) => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
  const named = (s: string): Initializer => {
    const n = snake(s);
    return (initializerNames as readonly string[]).includes(n) ? (n as Initializer) : bad(`initializer ${q(s)} is not supported`);
  };
  if (typeof v === 'string') return named(v);
  if (!isObj(v) || typeof v['class_name'] !== 'string') return bad(`expected an initializer {"class_name", "config"}, got ${show(v)}`);
  const cls = v['class_name'];
  const config = isObj(v['config']) ? v['config'] : {};
  const num = (k: string): number | undefined => {
    const x = config[k];
    if (x === undefined || x === null) return undefined;
    if (typeof x !== 'number' || !Number.isFinite(x)) return bad(`${cls} ${k} must be a number, got ${show(x)}`);
    return x;
  };
  const args: Record<string, number> = {};
  const seed = num('seed');
  if (seed !== undefined) {
    if (!Number.isInteger(seed)) bad(`${cls} seed must be an integer, got ${seed}`);
    args['seed'] = seed;
  }
  const withArgs = (type: string, keys: readonly string[]): Initializer => {
    for (const k of keys) {
      const x = num(k);
      if (x !== undefined) args[k] = x;
    }
    return (Object.keys(args).length === 0 ? type : { type, ...args }) as Initializer;
  };
  switch (cls) {
    case 'Zeros':
    case 'Ones':
      return snake(cls) as Initializer;
    case 'Constant':
      return { type: 'constant', value: num('value') ?? 0 } as Initializer;
    case 'RandomUniform':
      return withArgs('random_uniform', ['minval', 'maxval']);
    case 'RandomNormal':
      return withArgs('random_normal', ['mean', 'stddev']);
    case 'TruncatedNormal':
      return withArgs('truncated_normal', ['mean', 'stddev']);
    case 'GlorotUniform':
    case 'GlorotNormal':
    case 'HeUniform':
    case 'HeNormal':
    case 'LecunUniform':
    case 'LecunNormal':
      return withArgs(snake(cls), []);
    case 'VarianceScaling': {
      const scale = num('scale') ?? 1;
      const mode = config['mode'] ?? 'fan_in';
      const dist = config['distribution'] ?? 'truncated_normal';
      const family = scale === 1 && mode === 'fan_avg' ? 'glorot' : scale === 2 && mode === 'fan_in' ? 'he' : scale === 1 && mode === 'fan_in' ? 'lecun' : undefined;
      const kind = dist === 'uniform' ? 'uniform' : dist === 'normal' || dist === 'truncated_normal' ? 'normal' : undefined;
      if (!family || !kind) return bad(`VarianceScaling(scale=${scale}, mode=${show(mode)}, distribution=${show(dist)}) has no modelc name (glorot, he and lecun have one)`);
      return withArgs(`${family}_${kind}`, []);
    }
    default:
      return bad(`initializer ${q(cls)} is not supported`);
  }
}

/** One Keras layer -> a spec layer entry (type and attributes). */
function convertLayer(c: Config): Converted {
  const l = c.layer;
  const e: { type: string; [attribute: string]: unknown } = { type: '' };
  const set = (attr: string, value: unknown, key = attr) => {
    if (value !== undefined) e[c.from(attr, key)] = value;
  };
  const weighted = (kernelKey: string) => {
    const act = c.activation();
    if (act !== undefined && act !== 'linear') set('activation', act);
    set('use_bias', c.optional('use_bias', (k) => c.bool(k)));
    set(kernelKey, c.initializer(kernelKey));
    set('bias_initializer', c.initializer('bias_initializer'));
  };
  const window = () => {
    set('strides', c.optional('strides', (k) => c.intPair(k)));
    set('padding', c.padding());
    c.dataFormat();
    set('dilation_rate', c.optional('dilation_rate', (k) => c.intPair(k)));
  };
  switch (l.className) {
    case 'Dense':
      e.type = 'dense';
      set('units', c.int('units'));
      weighted('kernel_initializer');
      break;
    case 'Conv2D':
      e.type = 'conv2d';
      set('filters', c.int('filters'));
      set('kernel_size', c.intPair('kernel_size'));
      window();
      set('groups', c.optional('groups', (k) => c.int(k)));
      weighted('kernel_initializer');
      break;
    case 'Conv2DTranspose':
      e.type = 'conv2d_transpose';
      set('filters', c.int('filters'));
      set('kernel_size', c.intPair('kernel_size'));
      window();
      set('output_padding', c.optional('output_padding', (k) => c.intPair(k, 0)));
      set('groups', c.optional('groups', (k) => c.int(k)));
      weighted('kernel_initializer');
      break;
    case 'DepthwiseConv2D':
      e.type = 'depthwise_conv2d';
      set('kernel_size', c.intPair('kernel_size'));
      window();
      set('depth_multiplier', c.optional('depth_multiplier', (k) => c.int(k)));
      // Keras 2's DepthwiseConv2D config inherits Conv2D's `groups` (always 1)
      if ((c.optional('groups', (k) => c.int(k)) ?? 1) !== 1) c.fail('groups', 'groups is not supported for a depthwise convolution');
      weighted('depthwise_initializer');
      break;
    case 'BatchNormalization': {
      e.type = 'batchnorm';
      set('axis', c.optional('axis', (k) => c.axis(k)));
      for (const k of ['momentum', 'epsilon', 'renorm_momentum']) set(k, c.optional(k, (key) => c.number(key)));
      for (const k of ['center', 'scale', 'renorm']) set(k, c.optional(k, (key) => c.bool(key)));
      const clip = c.optional('renorm_clipping', (k) => c.get(k));
      if (clip !== undefined) {
        if (!isObj(clip)) c.fail('renorm_clipping', `renorm_clipping must be an object, got ${show(clip)}`);
        set('renorm_clipping', Object.fromEntries(Object.entries(clip).filter(([, v]) => v !== null)));
      }
      for (const k of ['beta_initializer', 'gamma_initializer', 'moving_mean_initializer', 'moving_variance_initializer']) set(k, c.initializer(k));
      c.get('fused'); // an implementation choice, same result
      if (c.get('synchronized') === true) c.fail('synchronized', 'synchronized batch normalization is not supported');
      break;
    }
    case 'Activation': {
      const act = c.activation('activation', false);
      if (act === undefined) c.fail('activation', 'has no activation');
      if (act === 'gelu_new') {
        e.type = 'gelu';
        e['approximate'] = true;
        c.from('approximate', 'activation');
      } else {
        e.type = 'activation';
        set('activation', act);
      }
      break;
    }
    case 'ReLU': {
      const max = c.optional('max_value', (k) => c.number(k));
      const slope = c.optional('negative_slope', (k) => c.number(k)) ?? 0;
      const threshold = c.optional('threshold', (k) => c.number(k)) ?? 0;
      if (threshold !== 0) c.fail('threshold', `threshold ${threshold} is not supported (only 0)`);
      if (max === undefined && slope !== 0) {
        e.type = 'leaky_relu';
        set('alpha', slope, 'negative_slope');
      } else if (slope !== 0) c.fail('negative_slope', 'negative_slope with max_value is not supported');
      else if (max === undefined) e.type = 'relu';
      else if (max === 6) e.type = 'relu6';
      else c.fail('max_value', `max_value ${max} is not supported (modelc has relu and relu6)`);
      break;
    }
    case 'LeakyReLU':
      e.type = 'leaky_relu';
      // Keras 2 `alpha` (default 0.3, modelc's too); Keras 3 `negative_slope`
      set('alpha', c.optional('alpha', (k) => c.number(k)));
      if (c.layer.config['negative_slope'] !== undefined) set('alpha', c.optional('negative_slope', (k) => c.number(k)), 'negative_slope');
      break;
    case 'ELU':
      e.type = 'elu';
      set('alpha', c.optional('alpha', (k) => c.number(k)));
      break;
    case 'Softmax':
      e.type = 'softmax';
      set('axis', c.optional('axis', (k) => c.axis(k)));
      break;
    case 'Dropout':
      e.type = 'dropout';
      set('rate', c.number('rate'));
      if (c.optional('noise_shape', (k) => c.get(k)) !== undefined) c.fail('noise_shape', 'noise_shape is not supported');
      set('seed', c.optional('seed', (k) => c.int(k, Number.MIN_SAFE_INTEGER)));
      break;
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      e.type = l.className === 'MaxPooling2D' ? 'max_pool2d' : 'avg_pool2d';
      const pool = c.optional('pool_size', (k) => c.intPair(k)) ?? 2;
      set('pool_size', pool);
      const strides = c.optional('strides', (k) => c.intPair(k));
      if (strides !== undefined && JSON.stringify(strides) !== JSON.stringify(pool)) set('strides', strides);
      set('padding', c.padding());
      c.dataFormat();
      break;
    }
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D':
      e.type = l.className === 'GlobalMaxPooling2D' ? 'global_max_pool2d' : 'global_avg_pool2d';
      c.dataFormat();
      set('keepdims', c.optional('keepdims', (k) => c.bool(k)));
      break;
    case 'Flatten':
      e.type = 'flatten';
      c.dataFormat();
      break;
    case 'Reshape': {
      e.type = 'reshape';
      const shape = c.get('target_shape');
      if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isInteger(d) && (d as number) >= -1 && d !== 0)) {
        c.fail('target_shape', `target_shape must be a list of positive integers (one may be -1), got ${show(shape)}`);
      }
      set('target_shape', shape);
      break;
    }
    case 'Add':
      e.type = 'add';
      break;
    case 'Concatenate':
      e.type = 'concatenate';
      set('axis', c.optional('axis', (k) => c.axis(k)));
      break;
    case 'Sequential':
    case 'Model':
    case 'Functional':
      return c.fail(undefined, 'nested models are not supported');
    default:
      return c.fail(undefined, `layer class ${q(l.className)} is not supported (modelc imports ${importableClasses.filter((n) => n !== 'InputLayer').join(', ')})`, 'unknownLayer');
  }
  c.finish();
  // Leave out what equals modelc's default (Keras's, in all but the initializers TF.js defaults to).
  const def = getLayer(e.type)!;
  for (const [k, schema] of Object.entries(def.attrs)) {
    if (schema.default !== undefined && JSON.stringify(e[k]) === JSON.stringify(schema.default)) {
      delete e[k];
      c.sources.delete(k);
    }
  }
  return { entry: e, sources: c.sources };
}

// ---------------------------------------------------------------------------
// Weights

interface ManifestWeight {
  readonly name: string;
  readonly shape: number[];
  readonly bytes: number;
  readonly skip: boolean;
}

/** The manifest's weights, read from the shards and named `<layer>/<param>`. */
function readWeights(imp: Importer, manifest: unknown, layerNames: ReadonlySet<string>): Map<string, Weight> | undefined {
  if (manifest === undefined || manifest === null) return undefined;
  const mPath: SpecPath = ['weightsManifest'];
  if (!Array.isArray(manifest)) return imp.fail(mPath, `"weightsManifest" must be a list of {"paths", "weights"} groups, got ${show(manifest)}`);
  const dir = dirname(imp.file.path);
  const out = new Map<string, Weight>();
  const origin = new Map<string, string>();
  manifest.forEach((group, g) => {
    const gPath = [...mPath, g];
    if (!isObj(group) || !Array.isArray(group['paths']) || !Array.isArray(group['weights'])) {
      return imp.fail(gPath, 'a weights manifest group must be an object with "paths" and "weights" lists');
    }
    const specs = group['weights'].map((w, j) => manifestWeight(imp, w, [...gPath, 'weights', j]));
    const total = specs.reduce((n, w) => n + w.bytes, 0);
    const starts: number[] = [];
    specs.reduce((n, w) => (starts.push(n), n + w.bytes), 0);
    const holding = (offset: number) => {
      const j = starts.findIndex((s, k) => s + specs[k]!.bytes > offset);
      return j < 0 ? undefined : specs[j]!.name;
    };

    // The group's bytes: its shards, concatenated.
    const shards: Uint8Array[] = [];
    let size = 0;
    group['paths'].forEach((p, s) => {
      if (typeof p !== 'string' || p === '') return imp.fail([...gPath, 'paths', s], `a shard path must be a file name, got ${show(p)}`);
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) imp.fail([...gPath, 'paths', s], `shard ${q(p)} is a URL; download it next to model.json and use a relative path`);
      const file = join(dir, p);
      try {
        const bytes = readFileSync(file);
        shards.push(bytes);
        size += bytes.length;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const why = code === 'ENOENT' ? 'no such file or directory' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
        const w = holding(size);
        fail('io', `cannot read weight shard ${q(p)} of ${imp.file.path}${w ? ` (needed for weight ${q(w)})` : ''}: ${why}`, undefined, file);
      }
    });
    const lastShard = String(group['paths'][group['paths'].length - 1] ?? '');
    const data = shards.length === 1 ? shards[0]! : concat(shards, size);
    if (size < total) {
      const w = holding(size)!;
      fail('weights', `weight ${q(w)} does not fit in the shards of weights group ${g + 1} (${group['paths'].join(', ')}): its weights need ${total} bytes, the shards hold ${size}; is ${q(lastShard)} truncated?`, undefined, join(dir, lastShard));
    }
    if (size > total) {
      fail('weights', `the shards of weights group ${g + 1} (${group['paths'].join(', ')}) hold ${size} bytes, but its weights need ${total}: the manifest does not describe these files`, undefined, join(dir, lastShard));
    }
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    specs.forEach((w, j) => {
      if (w.skip) return;
      const values = new Float32Array(w.bytes / 4);
      for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(starts[j]! + 4 * i, true);
      const name = modelcName(w.name, layerNames);
      if (name === undefined) {
        imp.fail([...gPath, 'weights', j, 'name'], `weight ${q(w.name)} belongs to no layer of the model`, 'weights');
      }
      if (out.has(name)) {
        imp.fail([...gPath, 'weights', j, 'name'], `weights ${q(origin.get(name)!)} and ${q(w.name)} are both ${q(name)}`, 'weights');
      }
      out.set(name, { shape: w.shape, data: values });
      origin.set(name, w.name);
    });
  });
  return out;
}

function manifestWeight(imp: Importer, w: unknown, path: SpecPath): ManifestWeight {
  if (!isObj(w) || typeof w['name'] !== 'string') return imp.fail(path, `a manifest weight must be an object with a "name", got ${show(w)}`);
  const name = w['name'];
  const shape = w['shape'];
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
    return imp.fail([...path, 'shape'], `weight ${q(name)}: "shape" must be a list of sizes, got ${show(shape)}`);
  }
  if (w['quantization'] !== undefined && w['quantization'] !== null) {
    imp.fail([...path, 'quantization'], `weight ${q(name)} is quantized; only float32 weights can be imported (convert the model without quantization)`);
  }
  if (w['dtype'] !== 'float32') imp.fail([...path, 'dtype'], `weight ${q(name)} has dtype ${show(w['dtype'])}; only float32 weights can be imported`);
  const n = (shape as number[]).reduce((a, b) => a * b, 1);
  return { name, shape: shape as number[], bytes: 4 * n, skip: w['group'] === 'optimizer' };
}

/**
 * `<layer>/<param>` from a manifest name: `dense_Dense1/kernel` (TF.js),
 * `dense/kernel:0`, `model/dense/kernel` (a prefix), `lstm/cell/kernel` (TF
 * 2.2's cell names): the param is the last part, the layer the longest prefix
 * that is a layer, else the first part, else the part before the param.
 */
function modelcName(name: string, layers: ReadonlySet<string>): string | undefined {
  const parts = name.replace(/:\d+$/, '').split('/');
  const param = parts[parts.length - 1]!;
  const candidates = [parts.slice(0, -1).join('/'), parts[0]!, parts[parts.length - 2] ?? ''];
  const layer = candidates.find((c) => layers.has(c));
  return layer === undefined ? undefined : `${layer}/${param}`;
}

function concat(parts: readonly Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function show(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 60 ? text.slice(0, 57) + '...' : text;
}
