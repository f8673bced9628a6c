/**
 * Lowering: a validated spec -> an IR graph, with shape inference.
 *
 * 1. Name every layer entry: explicit names, then Keras-style automatic ones
 *    (`dense`, `dense_1`, ...) that avoid every explicit name.
 * 2. Resolve each entry's inputs: its `inputs`, else the previous entry (the
 *    first entry takes the model's only input).
 * 3. Order the entries topologically (spec order where free), reporting
 *    undefined names and cycles.
 * 4. Lower each entry through its layer definition: parameters become typed
 *    graph values `<layer>/<role>`, shared by every application of the layer.
 * Every failure is a diagnostic located at the spec entry it concerns.
 */
import { Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { fail, ModelcError, q, suggest } from '../diagnostics/diagnostic.js';
import type { Graph, InitSpec, InputDecl, Node, ParamDecl } from '../ir/graph.js';
import { formatCount, MAX_MODEL_ELEMENTS, tensorSizeProblem } from '../ir/limits.js';
import { batched, formatType, sameType, tensor, type Attrs, type TensorType } from '../ir/types.js';
import { ShapeError, type LayerDef, type LowerContext } from '../ops/op-def.js';
import { getLayer, getOp } from '../ops/registry.js';
import type { SpecLocations, SpecPath } from './locations.js';
import { isReuse, type LayerSpec, type ModelSpec, type ReuseSpec } from './spec.js';

/** One row of the model summary: a layer entry and what it declared. */
export interface LayerInfo {
  readonly name: string;
  /** The spec type (`dense`), or `reuse` for a further application of a layer. */
  readonly type: string;
  readonly keras: string;
  /** For reuse entries: the layer applied again. */
  readonly reuses?: string;
  readonly output: TensorType;
  readonly params: number;
  readonly trainableParams: number;
}

export interface Lowered {
  readonly graph: Graph;
  readonly layers: readonly LayerInfo[];
}

interface Entry {
  readonly index: number;
  readonly spec: LayerSpec | ReuseSpec;
  readonly name: string;
  readonly inputs: readonly string[];
  /** Where each input came from (explicit reference or implicit previous layer). */
  readonly inputPaths: readonly SpecPath[];
}

export function lowerSpec(spec: ModelSpec, loc: SpecLocations): Lowered {
  const inputs = declareInputs(spec, loc);
  const entries = nameEntries(spec, loc, inputs);
  const order = topologicalOrder(entries, loc);
  const lowering = new Lowering(inputs, entries, loc);
  const infos = new Map<number, LayerInfo>();
  for (const e of order) infos.set(e.index, lowering.lower(e));
  const byName = new Map(entries.map((e) => [e.name, e]));
  const outputs = (spec.outputs ?? [entries[entries.length - 1]!.name]).map((name, j) => {
    if (byName.has(name) || inputs.some((i) => i.name === name)) return name;
    return fail('undefinedName', `output ${q(name)} is not a layer or input${suggest(name, byName.keys())}`, loc.value(['outputs', j]));
  });
  const graph: Graph = { name: spec.name, inputs, params: lowering.params, nodes: lowering.nodes, outputs };
  return { graph, layers: entries.map((e) => infos.get(e.index)!) };
}

function declareInputs(spec: ModelSpec, loc: SpecLocations): InputDecl[] {
  const seen = new Set<string>();
  return spec.inputs.map((input, i) => {
    if (seen.has(input.name)) fail('duplicateName', `duplicate input name ${q(input.name)}`, loc.value(['inputs', i, 'name']));
    seen.add(input.name);
    const tooBig = tensorSizeProblem(input.shape, `input ${q(input.name)} would need a tensor`, true);
    if (tooBig) fail('limit', tooBig, loc.value(['inputs', i, 'shape']));
    return { name: input.name, type: batched(input.shape) };
  });
}

function nameEntries(spec: ModelSpec, loc: SpecLocations, inputs: readonly InputDecl[]): Entry[] {
  const taken = new Set(inputs.map((i) => i.name));
  spec.layers.forEach((l, i) => {
    if (l.name === undefined) return;
    if (taken.has(l.name)) fail('duplicateName', `duplicate name ${q(l.name)}`, loc.value(['layers', i, 'name']));
    taken.add(l.name);
  });
  const counters = new Map<string, number>();
  const autoName = (prefix: string): string => {
    for (let n = counters.get(prefix) ?? 0; ; n++) {
      const name = n === 0 ? prefix : `${prefix}_${n}`;
      if (!taken.has(name)) {
        counters.set(prefix, n + 1);
        taken.add(name);
        return name;
      }
    }
  };
  const entries: Entry[] = [];
  spec.layers.forEach((l, index) => {
    const name = l.name ?? autoName(isReuse(l) ? l.reuse : getLayer(l.type)!.namePrefix);
    let refs: string[];
    let inputPaths: SpecPath[];
    if (l.inputs) {
      refs = l.inputs;
      inputPaths = l.inputs.map((_, j) => ['layers', index, 'inputs', j]);
    } else if (index > 0) {
      refs = [entries[index - 1]!.name];
      inputPaths = [['layers', index]];
    } else if (inputs.length === 1) {
      refs = [inputs[0]!.name];
      inputPaths = [['layers', index]];
    } else {
      return fail('arity', `the model has ${inputs.length} inputs, so its first layer must name its "inputs"`, loc.value(['layers', 0]));
    }
    entries.push({ index, spec: l, name, inputs: refs, inputPaths });
  });
  return entries;
}

/** Depth-first topological sort in spec order; reports undefined references and cycles. */
function topologicalOrder(entries: readonly Entry[], loc: SpecLocations): Entry[] {
  const byName = new Map(entries.map((e) => [e.name, e]));
  const state = new Map<Entry, 'visiting' | 'done'>();
  const order: Entry[] = [];
  const stack: Entry[] = [];
  const visit = (e: Entry): void => {
    if (state.get(e) === 'done') return;
    stack.push(e);
    state.set(e, 'visiting');
    e.inputs.forEach((ref, j) => {
      const dep = byName.get(ref);
      if (!dep) return; // a model input, or undefined (reported by the caller's loop below)
      if (state.get(dep) === 'visiting') {
        const cycle = [...stack.slice(stack.indexOf(dep)).map((s) => s.name), dep.name];
        fail('cycle', `layers form a cycle: ${cycle.join(' -> ')}`, loc.value(e.inputPaths[j]!));
      }
      visit(dep);
    });
    stack.pop();
    state.set(e, 'done');
    order.push(e);
  };
  for (const e of entries) visit(e);
  return order;
}

/**
 * `activation(relu)`: a bare word in a DSL call is an input reference; when it
 * is a value an attribute of the layer accepts, say how to write that instead.
 */
function attributeHint(def: LayerDef, ref: string): string | undefined {
  const attr = Object.entries(def.attrs).find(([, schema]) => schema['type'] !== 'boolean' && Value.Check(schema, ref));
  return attr ? `; to set ${q(attr[0])}, write ${attr[0]}: ${ref}` : undefined;
}

class Lowering {
  readonly params: ParamDecl[] = [];
  readonly nodes: Node[] = [];
  private readonly types = new Map<string, TensorType>();
  private readonly paramsByName = new Map<string, ParamDecl>();
  private readonly entriesByName: Map<string, Entry>;
  /** Elements of the parameters and of one example's activations so far (inputs included), against MAX_MODEL_ELEMENTS. */
  private elements = { params: 0, activations: 0 };

  constructor(
    private readonly inputs: readonly InputDecl[],
    entries: readonly Entry[],
    private readonly loc: SpecLocations,
  ) {
    for (const i of inputs) {
      this.types.set(i.name, i.type);
      this.elements.activations += elementsOf(i.type);
    }
    this.entriesByName = new Map(entries.map((e) => [e.name, e]));
  }

  lower(e: Entry): LayerInfo {
    const target = this.reuseTarget(e);
    const def = getLayer(target.spec.type)!;
    e.inputs.forEach((ref, j) => {
      if (!this.types.has(ref)) {
        const hint = attributeHint(def, ref) ?? suggest(ref, [...this.entriesByName.keys(), ...this.inputs.map((i) => i.name)]);
        fail('undefinedName', `${q(ref)} is not a layer or input${hint}`, this.loc.value(e.inputPaths[j]!));
      }
    });
    const [min, max] = def.arity;
    if (e.inputs.length < min || e.inputs.length > max) {
      const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
      fail('arity', `${e.name} (${target.spec.type}) takes ${want} input${want === '1' ? '' : 's'}, got ${e.inputs.length}`, this.loc.value(e.inputs.length > 0 && e.spec.inputs ? ['layers', e.index, 'inputs'] : ['layers', e.index]));
    }
    const before = this.params.length;
    const attrs = Value.Default(Type.Object(def.attrs), structuredClone(target.spec)) as Record<string, unknown>;
    let output: string;
    try {
      output = def.lower(this.context(e, target.name), e.inputs, attrs as never);
    } catch (err) {
      if (err instanceof ShapeError) fail('shape', `layer ${q(e.name)}: ${err.message}`, this.loc.value(['layers', e.index]));
      throw err;
    }
    const declared = this.params.slice(before);
    const count = (ps: readonly ParamDecl[]) => ps.reduce((n, p) => n + p.type.shape.reduce<number>((a, d) => a * (d as number), 1), 0);
    return {
      name: e.name,
      type: isReuse(e.spec) ? 'reuse' : e.spec.type,
      keras: def.keras,
      ...(isReuse(e.spec) ? { reuses: target.name } : {}),
      output: this.types.get(output)!,
      params: count(declared),
      trainableParams: count(declared.filter((p) => p.trainable)),
    };
  }

  /** The layer entry whose definition and weights an entry applies (itself, unless it is a reuse). */
  private reuseTarget(e: Entry): { spec: LayerSpec; name: string } {
    let cur = e;
    const seen = new Set<Entry>();
    while (isReuse(cur.spec)) {
      seen.add(cur);
      const next = this.entriesByName.get(cur.spec.reuse);
      if (!next) {
        fail('undefinedName', `reuse of ${q(cur.spec.reuse)}: no layer has that name${suggest(cur.spec.reuse, this.entriesByName.keys())}`, this.loc.value(['layers', cur.index, 'reuse']));
      }
      if (seen.has(next)) fail('cycle', `reuse entries refer to each other: ${q(e.name)}`, this.loc.value(['layers', e.index, 'reuse']));
      cur = next;
    }
    return { spec: cur.spec, name: cur.name };
  }

  /**
   * Size limits (ir/limits.ts), checked as each tensor is declared, before
   * anything is allocated: the tensor itself, then the model's running total.
   */
  private checkSize(e: Entry, shape: readonly number[], what: string, kind: 'params' | 'activations'): void {
    const at = this.loc.value(['layers', e.index]);
    const tooBig = tensorSizeProblem(shape, `layer ${q(e.name)} would need ${what}`, kind === 'activations');
    if (tooBig) fail('limit', tooBig, at);
    this.elements[kind] += shape.reduce((a, b) => a * b, 1);
    const { params, activations } = this.elements;
    if (params + activations > MAX_MODEL_ELEMENTS) {
      fail(
        'limit',
        `at layer ${q(e.name)} the model needs ${formatCount(params + activations)} elements (${formatCount(params)} of parameters, ` +
          `${formatCount(activations)} of activations per example); a model holds at most 2^32 (4,294,967,296; 16 GiB as float32)`,
        at,
      );
    }
  }

  private context(e: Entry, layerName: string): LowerContext {
    const define = (name: string, type: TensorType): string => {
      if (this.types.has(name)) fail('duplicateName', `the value name ${q(name)} of ${q(e.name)} is already taken`, this.loc.value(['layers', e.index]));
      this.types.set(name, type);
      return name;
    };
    return {
      name: e.name,
      typeOf: (v) => this.types.get(v)!,
      param: (role: string, shape: readonly number[], init: InitSpec, trainable = true) => {
        const name = `${layerName}/${role}`;
        const existing = this.paramsByName.get(name);
        if (existing) {
          if (!sameType(existing.type, tensor(shape))) {
            throw new ShapeError(`${layerName} is applied to inputs that need ${role} ${formatType(tensor(shape))}, but its ${role} is ${formatType(existing.type)}`);
          }
          return name;
        }
        this.checkSize(e, shape, `${article(role)} ${role}`, 'params');
        const decl: ParamDecl = { name: define(name, tensor(shape)), type: tensor(shape), trainable, init };
        this.params.push(decl);
        this.paramsByName.set(name, decl);
        return name;
      },
      op: (opName: string, operands: readonly string[], attrs: Attrs, suffix?: string) => {
        const op = getOp(opName);
        if (!op) throw new ModelcError({ code: 'verify', message: `internal: layer lowered to unknown op ${q(opName)}` });
        const type = op.infer(operands.map((o) => this.types.get(o)!), attrs as never);
        this.checkSize(e, exampleDims(type), suffix === undefined ? 'an output' : `an output ${q(suffix)}`, 'activations');
        const result = define(suffix === undefined ? e.name : `${e.name}/${suffix}`, type);
        this.nodes.push({ op: opName, result, type, operands: [...operands], attrs, layer: e.name });
        return result;
      },
    };
  }
}

/** The static dimensions of a type: an activation's per-example shape, a parameter's shape. */
function exampleDims(t: TensorType): number[] {
  return t.shape.filter((d): d is number => d !== 'N');
}

function elementsOf(t: TensorType): number {
  return exampleDims(t).reduce((a, b) => a * b, 1);
}

/** "a kernel", "an offset". */
function article(word: string): string {
  return /^[aeiou]/i.test(word) ? 'an' : 'a';
}
