/**
 * A Keras model config (the topology of a TF.js model.json, a `.keras`
 * archive's config.json, a legacy `.h5` file's `model_config`) -> a modelc
 * spec, in both of Keras's config dialects.
 *
 * Each Keras layer becomes one spec layer with the same name (so the weights
 * keep their names); a functional layer applied more than once (several
 * inbound nodes) becomes the layer plus `{"reuse": layer}` entries, which
 * share its weights. The graph, nested models inlined, is `keras-graph.ts`;
 * the calls in both dialects are `keras-nodes.ts`; Keras 3 operator layers
 * (`x + 3`) are `keras-operators.ts`.
 *
 * What a Keras class becomes is not written here: each layer record says
 * which classes import as it and how their config reads
 * (`LayerDef.kerasImport`, `ops/keras-def.ts`); this file looks the class up
 * among the records, runs the rule over a `Config` (`tfjs-config.ts`: typed
 * getters, initializers, activation names, unread options refused) and
 * leaves out values equal to modelc's defaults. Anything without a faithful
 * modelc form (a layer class, `channels_first`, a regularizer, a mask) is an
 * `import` diagnostic naming the layer and its class, located in the config;
 * what differs only where predictions cannot tell (an initializer modelc
 * cannot express, Dropout's `noise_shape`) is a warning.
 */
import { fail, q, type Diagnostic, type DiagnosticCode } from '../diagnostics/diagnostic.js';
import type { SourceFile } from '../diagnostics/source.js';
import { isImportable, isObj, show, type KerasImport } from '../ops/keras-def.js';
import type { LayerDef } from '../ops/op-def.js';
import { getLayer, layers as layerDefs } from '../ops/registry.js';
import { KerasGraph, type App, type GraphHost } from './keras-graph.js';
import { checkKwargs, tensorsOf } from './keras-nodes.js';
import { isOperatorCall, operatorEntry, type OperatorEntry } from './keras-operators.js';
import { SpecLocations, type SpecPath } from './locations.js';
import type { InputSpec, LayerSpec, ModelSpec, ReuseSpec } from './spec.js';
import { Config, type KerasDialect, type KerasLayer, type Obj } from './tfjs-config.js';

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

/** A spec layer before names and inputs: its type and attributes, with where each attribute came from. */
interface Converted {
  readonly entry: { type: string; [attribute: string]: unknown };
  readonly sources: ReadonlyMap<string, SpecPath>;
}

export class Importer implements GraphHost {
  /** Spec paths -> spans in the config. */
  readonly locations: SpecLocations;
  /** Warnings: the import went on, but something differs from the Keras model (an initializer, training behaviour). */
  readonly warnings: Diagnostic[] = [];
  /** For each layer inlined from a nested model, the Keras names from the outer model down to it. */
  kerasPaths: ReadonlyMap<string, readonly string[]> = new Map();
  /** Which Keras wrote the config; set by `model`. */
  dialect: KerasDialect = 'keras2';

  constructor(
    readonly file: SourceFile,
    readonly raw: SpecLocations,
  ) {
    this.locations = new SpecLocations(file);
  }

  fail(path: SpecPath, message: string, code: DiagnosticCode = 'import'): never {
    return fail(code, message, this.raw.value(path));
  }

  warn(path: SpecPath, message: string): void {
    this.warnings.push({ code: 'import', message, span: this.raw.value(path), severity: 'warning' });
  }

  /** Locates spec path `to` at model.json path `from` (value and key spans). */
  locate(to: SpecPath, from: SpecPath): void {
    const v = this.raw.value(from);
    const k = this.raw.key(from);
    this.locations.set(to, v.start, v.end, k.start, k.end);
  }

  /** A Sequential or functional model config at `path`; `kerasVersion` (when known) fixes the dialect. */
  model(topo: Obj, path: SpecPath, kerasVersion?: string): ModelSpec {
    this.dialect = dialectOf(topo, kerasVersion);
    const cls = topo['class_name'];
    return cls === 'Sequential' ? this.sequential(topo, path) :
      cls === 'Model' || cls === 'Functional' ? this.functional(topo, path) :
      this.fail([...path, 'class_name'], `the model class must be Sequential, Model or Functional, got ${show(cls)}`);
  }

  layerOf(v: unknown, path: SpecPath, functional: boolean): KerasLayer {
    if (!isObj(v)) return this.fail(path, `a Keras layer must be an object with "class_name" and "config", got ${show(v)}`);
    const cls = v['class_name'];
    const config = v['config'];
    if (typeof cls !== 'string') return this.fail(path, 'a Keras layer needs a string "class_name"');
    if (!isObj(config)) return this.fail(path, `layer of class ${q(cls)} needs a "config" object`);
    const name = functional && typeof v['name'] === 'string' ? v['name'] : config['name'];
    if (typeof name !== 'string' || name === '') return this.fail(path, `a layer of class ${q(cls)} has no name`);
    return { name, className: kerasClasses.get(cls)?.canonical ?? cls, config, raw: v, path };
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
    const paths = new Map<string, readonly string[]>();
    keras = keras.flatMap((l) => this.inlineSequential(l, [], paths));
    this.kerasPaths = paths;
    if (keras.length === 0) return this.fail(layersPath, 'the model has no layers besides its input');
    const layers: LayerSpec[] = keras.map((l, i) => {
      if (l.className === 'InputLayer') this.fail(l.path, `input layer ${q(l.name)} in the middle of a Sequential model`);
      return this.entry(l, i);
    });
    return { name: this.modelName(config, cfgPath), inputs, layers };
  }

  /**
   * A Sequential nested in a Sequential is its layers (without its
   * InputLayer), each with its Keras path in `kerasPaths`; anything else is itself.
   */
  private inlineSequential(l: KerasLayer, outer: readonly string[], paths: Map<string, readonly string[]>): KerasLayer[] {
    if (outer.length > 0) paths.set(l.name, [...outer, l.name]);
    if (l.className !== 'Sequential') return [l];
    const list = l.config['layers'];
    if (!Array.isArray(list)) return this.fail([...l.path, 'config'], `nested Sequential ${q(l.name)} needs a "layers" list`);
    const inner = list.map((v, j) => this.layerOf(v, [...l.path, 'config', 'layers', j], false)).filter((x) => x.className !== 'InputLayer');
    return inner.flatMap((x) => this.inlineSequential(x, [...outer, l.name], paths));
  }

  functional(topo: Obj, path: SpecPath): ModelSpec {
    this.locate([], path);
    const cfgPath = [...path, 'config'];
    const config = isObj(topo['config']) ? topo['config'] : this.fail(cfgPath, 'a functional model needs a "config" object');
    const graph = new KerasGraph(this);
    const outputRefs = graph.walkModel(config, cfgPath);
    const inputs: InputSpec[] = [];
    for (const l of graph.inputLayers) {
      this.inputLayer(l);
      this.declareInput(l, inputs, l.name);
    }
    const operators = new Map<App, OperatorEntry>();
    for (const a of graph.apps) if (isOperatorCall(a.layer, a.call)) operators.set(a, operatorEntry(this, a.layer, a.call, layerForClass));
    const tensors = (a: App) => operators.get(a)?.inputs ?? tensorsOf(this, a.call, `layer ${q(a.layer.name)}`);
    const order = graph.ordered(tensors);
    const layers = order.map((a, i) => {
      const previous = i > 0 ? order[i - 1]!.name : inputs.length === 1 ? inputs[0]!.name : undefined;
      const implicit = a.inputs.length === 1 && a.inputs[0] === previous;
      if (!implicit) tensors(a).forEach((r, m) => this.locate(['layers', i, 'inputs', m], r.path));
      return { ...this.application(a, i, graph, operators.get(a)), ...(implicit ? {} : { inputs: a.inputs }) };
    });
    if (outputRefs.length === 0) this.fail([...cfgPath, 'output_layers'], 'the model has no "output_layers"');
    const outputs = outputRefs.map((r, j) => {
      this.locate(['outputs', j], r.path);
      return graph.resolve('', r, 'a model output');
    });
    this.kerasPaths = new Map(graph.apps.filter((a) => a.kerasPath.length > 1).map((a) => [a.name, a.kerasPath]));
    const last = layers[layers.length - 1];
    const spec: ModelSpec = { name: this.modelName(config, cfgPath), inputs, layers };
    if (!(outputs.length === 1 && last !== undefined && outputs[0] === last.name)) spec.outputs = outputs;
    return spec;
  }

  /** The spec entry of one application: its layer (node 0), a reuse of it (node k), or an operator's layer. */
  private application(a: App, i: number, graph: KerasGraph, op: OperatorEntry | undefined): LayerSpec | ReuseSpec {
    const owner = `layer ${q(a.layer.name)}`;
    checkKwargs(this, a.call, owner, op?.consumed);
    if (op) return this.operatorSpec(a, i, op);
    if (a.node === 0) return this.entry(a.layer, i, a.name);
    this.locate(['layers', i], a.path);
    this.locate(['layers', i, 'reuse'], a.path);
    const first = graph.apps.find((b) => b.layer === a.layer && b.node === 0);
    return { reuse: first?.name ?? a.layer.name, name: a.name };
  }

  /** An operator layer's entry, located at its class and its constant. */
  private operatorSpec(a: App, i: number, op: OperatorEntry): LayerSpec {
    const entry = withoutDefaults(op.entry.type, { ...op.entry });
    this.locate(['layers', i], [...a.layer.path, 'class_name']);
    this.locate(['layers', i, 'type'], [...a.layer.path, 'class_name']);
    this.locate(['layers', i, 'name'], [...a.layer.path, 'config', 'name']);
    for (const [attr, from] of op.sources) if (attr in entry) this.locate(['layers', i, attr], from);
    return { ...(entry as LayerSpec), name: a.name };
  }

  private inputLayer(l: KerasLayer): void {
    const c = new Config(this, l);
    for (const k of ['batch_input_shape', 'batch_shape', 'input_shape']) c.get(k);
    if (c.get('sparse') === true) c.fail('sparse', 'sparse inputs are not supported');
    if (c.get('ragged') === true) c.fail('ragged', 'ragged inputs are not supported');
    if (c.get('optional') === true) c.fail('optional', 'optional inputs (Keras 3, may be None) are not supported');
    c.finish();
  }

  /** The spec entry of a Keras layer's first application, located at the layer. */
  private entry(l: KerasLayer, i: number, name = l.name): LayerSpec {
    const { entry, sources } = convertLayer(new Config(this, l, this.dialect));
    this.locate(['layers', i], [...l.path, 'class_name']);
    this.locate(['layers', i, 'type'], [...l.path, 'class_name']);
    this.locate(['layers', i, 'name'], [...l.path, 'config', 'name']);
    for (const [attr, from] of sources) this.locate(['layers', i, attr], from);
    return { ...entry, name };
  }
}


/** One Keras layer -> a spec layer entry: its record's rule, then modelc's defaults left out. */
function convertLayer(c: Config): Converted {
  const cls = c.layer.className;
  const found = kerasClasses.get(cls);
  if (!found) {
    if (cls === 'Sequential' || cls === 'Model' || cls === 'Functional') return c.fail(undefined, 'a nested model is only supported inside a functional model');
    const known = importableClasses.filter((n) => n !== 'InputLayer').join(', ');
    return c.fail(undefined, `layer class ${q(cls)} is not supported (modelc imports ${known})`, 'unknownLayer');
  }
  const type = found.rule.fromConfig(c) ?? found.def.type;
  c.finish();
  const entry = withoutDefaults(type, { ...c.attrs });
  for (const k of Object.keys(c.attrs)) if (!(k in entry)) c.drop(k);
  return { entry: { type, ...c.attrs }, sources: c.sources };
}

/** Attributes equal to the layer's defaults left out (Keras's defaults are modelc's, but for the initializers TF.js defaults to). */
function withoutDefaults(type: string, attrs: Record<string, unknown>): { type: string; [attribute: string]: unknown } {
  const def = getLayer(type)!;
  for (const [k, schema] of Object.entries(def.attrs)) {
    if (schema.default !== undefined && JSON.stringify(attrs[k]) === JSON.stringify(schema.default)) delete attrs[k];
  }
  return { ...attrs, type };
}

/** The spec layer type a Keras layer class imports as (operator layers find theirs so). */
function layerForClass(kerasClass: string): string | undefined {
  return kerasClasses.get(kerasClass)?.def.type;
}

/**
 * Keras 3 (`.keras`, Keras 3's `to_json`) or Keras 2 (TF.js, tf.keras,
 * legacy .h5). A known `keras_version` decides; else Keras 3's own forms
 * do: inbound nodes as `{"args", "kwargs"}`, dtype policies, an InputLayer's
 * `batch_shape`.
 */
function dialectOf(topo: Obj, kerasVersion?: string): KerasDialect {
  const version = kerasVersion ?? (typeof topo['keras_version'] === 'string' ? topo['keras_version'] : undefined);
  if (version !== undefined && /^\d+\./.test(version)) return Number.parseInt(version, 10) >= 3 ? 'keras3' : 'keras2';
  const config = topo['config'];
  const layers = isObj(config) && Array.isArray(config['layers']) ? config['layers'] : Array.isArray(config) ? config : [];
  const keras3 = layers.some((l) => {
    if (!isObj(l)) return false;
    const c = isObj(l['config']) ? l['config'] : {};
    const nodes = l['inbound_nodes'];
    return (Array.isArray(nodes) && nodes.some(isObj)) || (isObj(c['dtype']) && /DTypePolicy$/.test(String(c['dtype']['class_name']))) || (l['class_name'] === 'InputLayer' && 'batch_shape' in c);
  });
  return keras3 ? 'keras3' : 'keras2';
}
