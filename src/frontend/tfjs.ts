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
 * the layer plus `{"reuse": layer}` entries, which share its weights.
 *
 * What a Keras class becomes is not written here: each layer record says
 * which classes import as it and how their config reads
 * (`LayerDef.kerasImport`, `ops/keras-def.ts`); this file looks the class up
 * among the records, runs the rule over a `Config` (`tfjs-config.ts`: typed
 * getters, initializers, activation names, unread options refused) and
 * leaves out values equal to modelc's defaults. Anything without a faithful
 * modelc form (a layer class, `channels_first`, a regularizer, a mask, a
 * quantized weight) is an `import` diagnostic naming the layer and its
 * class, located in model.json: an import never changes what the model
 * computes, or how it would train, without saying so.
 *
 * Weights (`weightsManifest` and its shards) are read by `tfjs-weights.ts`.
 */
import { fail, q, suggest, type DiagnosticCode } from '../diagnostics/diagnostic.js';
import type { SourceFile } from '../diagnostics/source.js';
import { isImportable, isObj, show, type KerasImport } from '../ops/keras-def.js';
import type { LayerDef } from '../ops/op-def.js';
import { getLayer, layers as layerDefs } from '../ops/registry.js';
import type { Weight } from '../weights/attach.js';
import { parseJsonSpec } from './json.js';
import { SpecLocations, type SpecPath } from './locations.js';
import type { InputSpec, LayerSpec, ModelSpec, ReuseSpec } from './spec.js';
import { Config, type KerasLayer, type Obj } from './tfjs-config.js';
import { readWeights } from './tfjs-weights.js';

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

/** What a Keras class (or alias) imports as: the layer record claiming it, and the class's canonical name. */
interface KerasClass {
  readonly def: LayerDef;
  readonly rule: KerasImport;
  readonly canonical: string;
}

/** Every Keras class the layer records claim; a class claimed twice is a registry bug. */
const kerasClasses: ReadonlyMap<string, KerasClass> = (() => {
  const table = new Map<string, KerasClass>();
  for (const def of layerDefs) {
    const rule = def.kerasImport;
    if (!isImportable(rule)) continue;
    for (const cls of rule.classes) {
      const other = table.get(cls);
      if (other) throw new Error(`Keras class ${cls} is claimed by layers ${other.def.type} and ${def.type}`);
      table.set(cls, { def, rule, canonical: rule.classes[0]! });
    }
  }
  return table;
})();

/** The Keras layer classes modelc imports (canonical names; their aliases import too). */
export const importableClasses: readonly string[] = ['InputLayer', ...new Set([...kerasClasses.values()].map((c) => c.canonical))];

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
  const converted = imp.model(topo, topoPath);
  const layerNames = new Set(converted.layers.flatMap((l) => ('type' in l && l.name !== undefined ? [l.name] : [])));
  const weights = readWeights(imp, root['weightsManifest'], layerNames);
  return { spec: converted, locations: imp.locations, ...(weights ? { weights } : {}) };
}

/**
 * Reads a Keras model config: the JSON root is `{"class_name": "Functional" |
 * "Sequential" | "Model", "config": {...}}`, as a `.keras` archive's
 * config.json, a legacy `.h5` file's `model_config` attribute or
 * `model.to_json()` hold it. The same reading as a TF.js model.json's
 * `modelTopology`; weights are the caller's (they live beside the config).
 */
export function importKerasConfig(file: SourceFile): { spec: ModelSpec; locations: SpecLocations } {
  const { spec: root, locations: raw } = parseJsonSpec(file);
  const imp = new Importer(file, raw);
  if (!isObj(root)) return imp.fail([], 'a Keras model config must be a JSON object with "class_name" and "config"');
  return { spec: imp.model(root, []), locations: imp.locations };
}

// ---------------------------------------------------------------------------
// Topology

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

  /** A Sequential or functional model config at `path`. */
  model(topo: Obj, path: SpecPath): ModelSpec {
    const cls = topo['class_name'];
    return cls === 'Sequential' ? this.sequential(topo, path) :
      cls === 'Model' || cls === 'Functional' ? this.functional(topo, path) :
      this.fail([...path, 'class_name'], `the model class must be Sequential, Model or Functional, got ${show(cls)}`);
  }

  private layerOf(v: unknown, path: SpecPath, functional: boolean): KerasLayer {
    if (!isObj(v)) return this.fail(path, `a Keras layer must be an object with "class_name" and "config", got ${show(v)}`);
    const cls = v['class_name'];
    const config = v['config'];
    if (typeof cls !== 'string') return this.fail(path, 'a Keras layer needs a string "class_name"');
    if (!isObj(config)) return this.fail(path, `layer of class ${q(cls)} needs a "config" object`);
    const name = functional && typeof v['name'] === 'string' ? v['name'] : config['name'];
    if (typeof name !== 'string' || name === '') return this.fail(path, `a layer of class ${q(cls)} has no name`);
    return { name, className: kerasClasses.get(cls)?.canonical ?? cls, config, path };
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


/** One Keras layer -> a spec layer entry: its record's rule, then modelc's defaults left out. */
function convertLayer(c: Config): Converted {
  const cls = c.layer.className;
  const found = kerasClasses.get(cls);
  if (!found) {
    if (cls === 'Sequential' || cls === 'Model' || cls === 'Functional') return c.fail(undefined, 'nested models are not supported');
    const known = importableClasses.filter((n) => n !== 'InputLayer').join(', ');
    return c.fail(undefined, `layer class ${q(cls)} is not supported (modelc imports ${known})`, 'unknownLayer');
  }
  const type = found.rule.fromConfig(c) ?? found.def.type;
  c.finish();
  // Keras's defaults are modelc's, but for the initializers TF.js defaults to.
  const def = getLayer(type)!;
  for (const [k, schema] of Object.entries(def.attrs)) {
    if (schema.default !== undefined && JSON.stringify(c.attrs[k]) === JSON.stringify(schema.default)) c.drop(k);
  }
  return { entry: { type, ...c.attrs }, sources: c.sources };
}
