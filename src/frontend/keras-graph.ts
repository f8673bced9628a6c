/**
 * A functional Keras model's graph, flattened: every application of every
 * layer (a layer applied twice has two), in an order where each comes after
 * what it reads, with its inputs resolved to spec names.
 *
 * Models nested in the model (a `Sequential` or `Functional` among its
 * layers, as ConvNeXt's stem and downsampling blocks are) are inlined: their
 * layers become layers of the one spec, named as Keras names them, or
 * `<nested model>_<layer>` when that name is taken, and `kerasPath` gives
 * each inlined layer's chain of Keras names from the outer model down (Keras
 * 3 stores its weights under the nested model's path). A nested model's
 * input layers stand for the tensors it is called on; a reference to the
 * nested model's output stands for its output layer's. References resolve
 * through these aliases.
 *
 * Algorithm: (1) walk the layers, nested models recursively, giving every
 * application its spec name and every nested input and output an alias;
 * (2) resolve each application's tensor references through the aliases;
 * (3) order the applications topologically, Keras's layer order where free.
 */
import { q, suggest } from '../diagnostics/diagnostic.js';
import { isObj, show } from '../ops/keras-def.js';
import { readCall, refList, type Call, type TensorRef } from './keras-nodes.js';
import type { SpecPath } from './locations.js';
import type { Failer, KerasLayer, Obj } from './tfjs-config.js';

/** One application of a layer: node `node` of `layer`, called as `call`. */
export interface App {
  readonly layer: KerasLayer;
  readonly node: number;
  readonly name: string;
  readonly path: SpecPath;
  readonly call: Call;
  /** The Keras names from the outermost model down to this layer (one name unless inlined). */
  readonly kerasPath: readonly string[];
  /** The spec names of its tensor operands, in order (set by `resolve`). */
  inputs: string[];
}

export interface GraphHost extends Failer {
  /** A layer object of the config (class, config, name). */
  layerOf(v: unknown, path: SpecPath, functional: boolean): KerasLayer;
}

const MODEL_CLASSES = new Set(['Sequential', 'Functional', 'Model']);

/** A reference in a scope (the outer model is scope ''; a nested model's scope is its path of names). */
interface Scoped {
  readonly scope: string;
  readonly ref: TensorRef;
}

const keyOf = (scope: string, layer: string, node: number, tensor: number) => `${scope}\u0000${layer}\u0000${node}\u0000${tensor}`;

export class KerasGraph {
  readonly apps: App[] = [];
  /** Model inputs: the outer model's input layers. */
  readonly inputLayers: KerasLayer[] = [];
  private readonly names = new Map<string, string>();
  private readonly aliases = new Map<string, Scoped>();
  private readonly scopeLayers = new Map<string, Map<string, KerasLayer>>();
  private readonly nodeCounts = new Map<string, number>();
  private readonly taken = new Set<string>();

  constructor(private readonly host: GraphHost) {}

  /** Step 1 for the outer functional model; returns its output references. */
  walkModel(config: Obj, cfgPath: SpecPath): TensorRef[] {
    const layers = this.layersOf(config, cfgPath, true);
    layers.forEach((l) => this.taken.add(l.name));
    this.scopeLayers.set('', new Map(layers.map((l) => [l.name, l])));
    const inputs = refList(this.host, config['input_layers'], [...cfgPath, 'input_layers']);
    const inputNames = new Set<string>();
    for (const r of inputs) {
      const l = this.scopeLayers.get('')!.get(r.layer);
      if (!l || l.className !== 'InputLayer') this.host.fail(r.path, `model input ${q(r.layer)} is not an InputLayer of the model`);
      if (r.node !== 0) this.host.fail(r.path, `model input ${q(r.layer)} refers to node ${r.node} of an InputLayer`);
      if (inputNames.has(r.layer)) this.host.fail(r.path, `${q(r.layer)} is a model input twice`);
      inputNames.add(r.layer);
      this.inputLayers.push(l);
      this.names.set(keyOf('', l.name, 0, 0), l.name);
    }
    for (const l of layers) {
      if (l.className === 'InputLayer' && !inputNames.has(l.name)) this.host.fail(l.path, `input layer ${q(l.name)} is not among the model's "input_layers"`);
    }
    this.walkLayers(layers, '', []);
    return refList(this.host, config['output_layers'], [...cfgPath, 'output_layers']);
  }

  private layersOf(config: Obj, cfgPath: SpecPath, functional: boolean): KerasLayer[] {
    const list = config['layers'];
    if (!Array.isArray(list) || list.length === 0) return this.host.fail([...cfgPath, 'layers'], 'a model needs a non-empty "layers" list');
    const layers = list.map((v, j) => this.host.layerOf(v, [...cfgPath, 'layers', j], functional));
    const byName = new Map<string, KerasLayer>();
    for (const l of layers) {
      if (byName.has(l.name)) this.host.fail(l.path, `two layers are named ${q(l.name)}`);
      byName.set(l.name, l);
    }
    return layers;
  }

  private walkLayers(layers: readonly KerasLayer[], scope: string, outer: readonly string[]): void {
    this.scopeLayers.set(scope, new Map(layers.map((l) => [l.name, l])));
    for (const l of layers) {
      if (l.className === 'InputLayer') continue;
      const nodes = l.raw['inbound_nodes'];
      if (!Array.isArray(nodes) || nodes.length === 0) this.host.fail(l.path, `layer ${q(l.name)} (${l.className}) has no "inbound_nodes": it is not applied to anything`);
      this.nodeCounts.set(`${scope}\u0000${l.name}`, nodes.length);
      nodes.forEach((n, k) => {
        const call = readCall(this.host, n, [...l.path, 'inbound_nodes', k], `layer ${q(l.name)}`);
        if (MODEL_CLASSES.has(l.className)) this.nested(l, k, call, scope, outer);
        else this.addApp(l, k, call, scope, outer);
      });
    }
  }

  private addApp(l: KerasLayer, k: number, call: Call, scope: string, outer: readonly string[]): void {
    const name = this.nameFor(l, k, outer);
    this.taken.add(name);
    this.names.set(keyOf(scope, l.name, k, 0), name);
    this.apps.push({ layer: l, node: k, name, path: call.path, call, kerasPath: [...outer, l.name], inputs: [] });
  }

  /**
   * Node 0 of an outer layer is the layer's name (reserved up front); node k
   * the first free `<name>_<i>` from i = k; an inlined layer keeps its name
   * unless taken, else `<nested model>_<name>`.
   */
  private nameFor(l: KerasLayer, k: number, outer: readonly string[]): string {
    if (outer.length === 0 && k === 0) return l.name;
    const base = outer.length > 0 && this.taken.has(l.name) ? `${outer.join('_')}_${l.name}` : l.name;
    let name = base;
    for (let i = Math.max(k, 1); this.taken.has(name); i++) name = `${base}_${i}`;
    return name;
  }

  /** Inlines nested model `l`, called as `call` from `scope`. */
  private nested(l: KerasLayer, k: number, call: Call, scope: string, outer: readonly string[]): void {
    if (k > 0) this.host.fail(call.path, `nested model ${q(l.name)} is applied more than once; modelc inlines a nested model once`);
    const inner = scope === '' ? l.name : `${scope}/${l.name}`;
    const path = [...outer, l.name];
    const config = isObj(l.config) ? l.config : this.host.fail(l.path, `nested model ${q(l.name)} needs a "config" object`);
    const args = call.operands.map((o) => ('tensor' in o ? o.tensor : this.host.fail(o.path, `nested model ${q(l.name)} is called on a constant`)));
    if (l.className === 'Sequential') return this.nestedSequential(l, config, args, scope, inner, path);
    const layers = this.layersOf(config, [...l.path, 'config'], true);
    const inputs = refList(this.host, config['input_layers'], [...l.path, 'config', 'input_layers']);
    if (inputs.length !== args.length) this.host.fail(call.path, `nested model ${q(l.name)} takes ${inputs.length} input(s), called on ${args.length}`);
    inputs.forEach((r, i) => this.aliases.set(keyOf(inner, r.layer, 0, 0), { scope, ref: args[i]! }));
    refList(this.host, config['output_layers'], [...l.path, 'config', 'output_layers']).forEach((r, t) => this.aliases.set(keyOf(scope, l.name, k, t), { scope: inner, ref: r }));
    this.walkLayers(layers, inner, path);
  }

  /** A nested Sequential: each layer called on the one before, the first on the call's tensor. */
  private nestedSequential(l: KerasLayer, config: Obj, args: readonly TensorRef[], scope: string, inner: string, path: readonly string[]): void {
    if (args.length !== 1) this.host.fail(l.path, `nested Sequential ${q(l.name)} is called on ${args.length} tensors`);
    const layers = this.layersOf(config, [...l.path, 'config'], false);
    // its InputLayer, or a stand-in name no layer has, stands for the tensor it is called on
    const input = layers[0]!.className === 'InputLayer' ? layers.shift()!.name : '\u0000input';
    this.aliases.set(keyOf(inner, input, 0, 0), { scope, ref: args[0]! });
    this.scopeLayers.set(inner, new Map(layers.map((x) => [x.name, x])));
    let previous = input;
    for (const x of layers) {
      if (MODEL_CLASSES.has(x.className) || x.className === 'InputLayer') this.host.fail(x.path, `nested Sequential ${q(l.name)}: a ${x.className} inside it is not supported`);
      this.addApp(x, 0, { operands: [{ tensor: { layer: previous, node: 0, tensor: 0, path: x.path } }], kwargs: [], path: x.path }, inner, path);
      previous = x.name;
    }
    this.aliases.set(keyOf(scope, l.name, 0, 0), { scope: inner, ref: { layer: previous, node: 0, tensor: 0, path: l.path } });
  }

  /** Step 2: the spec name a reference in `scope` stands for. */
  resolve(scope: string, ref: TensorRef, what: string): string {
    let at: Scoped = { scope, ref };
    for (let hops = 0; hops < 1000; hops++) {
      const key = keyOf(at.scope, at.ref.layer, at.ref.node, at.ref.tensor);
      const name = this.names.get(key);
      if (name !== undefined) return name;
      const next = this.aliases.get(key);
      if (next === undefined) return this.unresolved(at, what);
      at = next;
    }
    return this.host.fail(ref.path, `${what}: the reference ${show([ref.layer, ref.node, ref.tensor])} does not lead to a layer`);
  }

  private unresolved({ scope, ref }: Scoped, what: string): never {
    const layers = this.scopeLayers.get(scope) ?? new Map<string, KerasLayer>();
    const l = layers.get(ref.layer);
    if (!l) return this.host.fail(ref.path, `${what} refers to ${q(ref.layer)}, which is not a layer of the model${suggest(ref.layer, layers.keys())}`);
    if (ref.tensor !== 0) return this.host.fail(ref.path, `${q(ref.layer)} has one output, but tensor ${ref.tensor} of it is used`);
    const count = this.nodeCounts.get(`${scope}\u0000${ref.layer}`) ?? 1;
    return this.host.fail(ref.path, `${what} refers to node ${ref.node} of ${q(ref.layer)}, which has ${count} node(s)`);
  }

  /** Steps 2 and 3: every application's inputs resolved, in a topological order. */
  ordered(tensorsOf: (app: App) => readonly TensorRef[]): App[] {
    const scopeOf = (a: App) => a.kerasPath.slice(0, -1).join('/');
    for (const a of this.apps) a.inputs = tensorsOf(a).map((r) => this.resolve(scopeOf(a), r, `layer ${q(a.layer.name)}`));
    const done = new Set(this.inputLayers.map((l) => l.name));
    const pending = [...this.apps];
    const order: App[] = [];
    while (pending.length > 0) {
      const i = pending.findIndex((a) => a.inputs.every((d) => done.has(d)));
      if (i < 0) return this.host.fail(pending[0]!.path, `layers depend on each other in a cycle: ${pending.map((a) => q(a.name)).join(', ')}`);
      const [a] = pending.splice(i, 1);
      order.push(a!);
      done.add(a!.name);
    }
    return order;
  }
}
