/**
 * ONNX export: an IR graph with parameter values -> a standard ONNX model
 * (IR version 8, default-domain opset 17) that onnxruntime runs.
 *
 * Layout. modelc is channels-last (NHWC); ONNX Conv, ConvTranspose and the
 * pools are channels-first (NCHW). The model keeps modelc's interface: inputs
 * and outputs are NHWC with the same shapes (the batch dimension is the
 * symbolic `N`), and Transpose nodes go around the channels-first ops. Each
 * IR value may exist in either layout (or both); an op asks for the layout it
 * needs and a Transpose is emitted the first time a value is wanted in a
 * layout it does not have yet, so a chain conv -> relu -> conv converts once
 * in and once out. Layout-free ops (activations, batchnorm, affine, add,
 * concatenate) run in whichever layout their operands already have. An NHWC
 * value carries the IR value's name; its NCHW twin is `<name>/nchw`.
 *
 * Op mapping: each op's record says how it exports (`OpDef.onnx` in
 * `ops/`: the nodes it emits through the `OnnxBuilder` this file implements,
 * or why it has no ONNX form); this file holds no op names. An `epilogue` (a
 * fused activation) becomes the activation's nodes after the op's own.
 *
 * Weights are float32 initializers (raw_data, little-endian), named after the
 * IR parameters; each ONNX node's doc_string is the spec layer it implements.
 * Names are IR names, changed only where ONNX needs it: well-formed UTF-8
 * (lone surrogates become U+FFFD), no NUL (the runtime's C API takes names as
 * C strings), not empty (the empty name means an absent optional input), and
 * unique.
 *
 * Encoding goes through protobufjs with `grammar/onnx.proto`, the subset of
 * the ONNX schema that modelc writes.
 */
import protobuf from 'protobufjs';
import { fileURLToPath } from 'node:url';
import { fail } from '../diagnostics/diagnostic.js';
import type { Graph, Node, ParamDecl } from '../ir/graph.js';
import type { TensorType } from '../ir/types.js';
import { activationToOnnx, type Epilogue } from '../ops/activation.js';
import { onnxInts, type OnnxAttr, type OnnxBuilder, type OnnxLayout, type OnnxNode } from '../ops/onnx-def.js';
import { getOp } from '../ops/registry.js';

export interface OnnxExportOptions {
  /** ModelProto.producer_version (modelc's version). */
  readonly producerVersion?: string;
}

export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;

/** Where the schema lives: `grammar/onnx.proto` of the package (same relative path from src/ and dist/). */
export const onnxProtoPath = fileURLToPath(new URL('../../grammar/onnx.proto', import.meta.url));

let modelType: protobuf.Type | undefined;

/** The protobufjs type of `onnx.ModelProto` (loaded once); `decode` reads files back. */
export function onnxModelType(): protobuf.Type {
  modelType ??= protobuf.loadSync(onnxProtoPath).lookupType('onnx.ModelProto');
  return modelType;
}

/** The graph as ONNX model bytes. Every parameter the graph uses needs its value. */
export function exportOnnx(graph: Graph, options: OnnxExportOptions = {}): Uint8Array {
  const model = {
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'modelc',
    ...(options.producerVersion === undefined ? {} : { producerVersion: options.producerVersion }),
    docString: `${wellFormed(graph.name)}, exported by modelc`,
    graph: new Exporter(graph).build(),
  };
  const type = onnxModelType();
  return type.encode(type.fromObject(model)).finish();
}

// ---------------------------------------------------------------------------
// Messages, as protobufjs plain objects (camelCase field names).

const FLOAT = 1;
const INT64 = 7;

interface NodeMsg {
  input: string[];
  output: string[];
  name: string;
  opType: string;
  attribute: OnnxAttr[];
  docString: string;
}

interface TensorMsg {
  name: string;
  dims: number[];
  dataType: number;
  rawData: Uint8Array;
}

function valueInfo(name: string, t: TensorType) {
  const dim = t.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d }));
  return { name, type: { tensorType: { elemType: FLOAT, shape: { dim } } } };
}

function f32Bytes(values: ArrayLike<number>): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  return bytes;
}

function i64Bytes(values: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 8);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
  return bytes;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** A string protobuf can carry as UTF-8: lone surrogates replaced. */
function wellFormed(s: string): string {
  return s.replace(LONE_SURROGATE, '\uFFFD');
}

/** An IR name as an ONNX name (before making it unique). */
function onnxName(s: string): string {
  const name = wellFormed(s).replace(/\0/g, '\uFFFD');
  return name === '' ? '_' : name;
}

/** Where an NHWC axis is in NCHW. */
const NCHW_AXIS = [0, 2, 3, 1];
const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];

/** The ONNX names of an IR value in each layout it has been computed in. */
interface Forms {
  nhwc?: string;
  nchw?: string;
  /** The spec layer that computed the value (doc string of layout transposes). */
  readonly layer: string;
  readonly rank: number;
}

/**
 * One graph's export: the `OnnxBuilder` the op rules build with, and what no
 * rule sees (unique names, each value's layouts, the outputs, the final prune).
 */
class Exporter implements OnnxBuilder {
  private readonly nodes: NodeMsg[] = [];
  private readonly initializers: TensorMsg[] = [];
  /** Every ONNX value name taken, and every node name. */
  private readonly taken = new Set<string>();
  private readonly takenNodes = new Set<string>();
  /** IR value -> its ONNX base name (unique). */
  private readonly names = new Map<string, string>();
  private readonly forms = new Map<string, Forms>();
  private readonly params: Map<string, ParamDecl>;
  /** Initializers already made, by what they hold: a parameter in a layout, or a constant. */
  private readonly made = new Map<string, string>();
  /** The IR node being exported (doc strings and node names). */
  private current: { readonly layer: string; readonly base: string } = { layer: '', base: 'model' };

  constructor(private readonly graph: Graph) {
    this.params = new Map(graph.params.map((p) => [p.name, p]));
    // IR names first, so intermediates never take them.
    for (const v of [...graph.inputs.map((i) => i.name), ...graph.params.map((p) => p.name), ...graph.nodes.map((n) => n.result)]) {
      if (!this.names.has(v)) this.names.set(v, this.fresh(onnxName(v)));
    }
  }

  build() {
    for (const i of this.graph.inputs) this.forms.set(i.name, { nhwc: this.name(i.name), layer: i.name, rank: i.type.shape.length });
    for (const n of this.graph.nodes) {
      this.current = { layer: n.layer, base: this.name(n.result) };
      this.node(n);
    }
    const outputs: ReturnType<typeof valueInfo>[] = [];
    const used = new Set<string>(this.graph.inputs.map((i) => this.name(i.name)));
    for (const o of this.graph.outputs) {
      const producer = this.graph.nodes.find((n) => n.result === o);
      this.current = { layer: producer?.layer ?? o, base: this.name(o) };
      let name = this.nhwc(o);
      // A graph output that is also an input (or listed twice) gets its own name.
      if (used.has(name) || this.initializers.some((t) => t.name === name)) {
        const copy = this.fresh(`${name}/output`);
        this.emit('Identity', [name], [copy]);
        name = copy;
      }
      used.add(name);
      outputs.push(valueInfo(name, this.typeOf(o)));
    }
    const live = this.prune(new Set(outputs.map((o) => o.name)));
    return {
      name: wellFormed(this.graph.name),
      node: live,
      initializer: this.initializers.filter((t) => live.some((n) => n.input.includes(t.name))),
      input: this.graph.inputs.map((i) => valueInfo(this.name(i.name), i.type)),
      output: outputs,
    };
  }

  /** The nodes that contribute to the outputs (drops layout transposes nobody used). */
  private prune(outputs: Set<string>): NodeMsg[] {
    const needed = new Set(outputs);
    const keep: NodeMsg[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i]!;
      if (!n.output.some((o) => needed.has(o))) continue;
      keep.push(n);
      for (const x of n.input) needed.add(x);
    }
    return keep.reverse();
  }

  /** Exports one IR node by its op's rule (`OpDef.onnx`). */
  private node(n: Node): void {
    const op = getOp(n.op);
    if (!op) throw new Error(`internal: %${n.result} = ${n.op}(...) is not an op of the registry`);
    if (typeof op.onnx === 'function') return op.onnx(this, n);
    throw new Error(`ONNX export: %${n.result} = ${n.op}(...) has no ONNX form: ${op.onnx.notExportable}`);
  }

  // -- names, values, initializers --------------------------------------------

  private fresh(base: string): string {
    let name = base;
    for (let i = 1; this.taken.has(name); i++) name = `${base}_${i}`;
    this.taken.add(name);
    return name;
  }

  private name(ir: string): string {
    const n = this.names.get(ir);
    if (n === undefined) throw new Error(`internal: %${ir} is not a value of graph ${this.graph.name}`);
    return n;
  }

  typeOf(ir: string): TensorType {
    const t = this.graph.inputs.find((i) => i.name === ir)?.type ?? this.params.get(ir)?.type ?? this.graph.nodes.find((n) => n.result === ir)?.type;
    if (!t) throw new Error(`internal: %${ir} has no type`);
    return t;
  }

  emit(opType: string, input: readonly string[], output: readonly string[], attribute: OnnxAttr[] = []): void {
    let name = `${this.current.base}/${opType}`;
    for (let i = 1; this.takenNodes.has(name); i++) name = `${this.current.base}/${opType}_${i}`;
    this.takenNodes.add(name);
    this.nodes.push({ input: [...input], output: [...output], name, opType, attribute, docString: this.current.layer });
  }

  /** A value computed by one node, named after the current IR node. */
  temp(opType: string, input: readonly string[], attribute: OnnxAttr[] = []): string {
    const out = this.fresh(`${this.current.base}/${opType}`);
    this.emit(opType, input, [out], attribute);
    return out;
  }

  /** Adds an initializer made from `key` (see `made`). */
  private initializer(key: string, name: string, dims: readonly number[], rawData: Uint8Array, dataType = FLOAT): string {
    this.initializers.push({ name, dims: [...dims], dataType, rawData });
    this.made.set(key, name);
    return name;
  }

  /** A float constant (a scalar without `dims`), shared by every use of the same value and shape. */
  constant(values: readonly number[] | Float32Array, dims: readonly number[] = []): string {
    const data = Float32Array.from(values);
    const key = `const f32 [${dims.join(',')}] ${Array.from(data, (v) => Object.is(v, -0) ? '-0' : String(v)).join(',')}`;
    return this.made.get(key) ?? this.initializer(key, this.fresh(data.length === 1 ? `modelc/const/${data[0]}` : 'modelc/const'), dims, f32Bytes(data));
  }

  int64s(values: readonly number[]): string {
    const key = `const i64 ${values.join(',')}`;
    return this.made.get(key) ?? this.initializer(key, this.fresh(`modelc/shape/${values.join('x')}`), [values.length], i64Bytes(values), INT64);
  }

  private paramDecl(ir: string): ParamDecl {
    const p = this.params.get(ir);
    if (!p) throw new Error(`internal: %${ir} is not a parameter of graph ${this.graph.name}`);
    if (p.value === undefined) {
      fail('weights', `parameter '${ir}' has no value: load weights (--weights) or sample the initializers (--seed) before exporting`);
    }
    return p;
  }

  /**
   * A parameter as an initializer, in its IR layout or transformed (`layout`
   * names the transform; `transform` makes its dims and data). The first
   * initializer made from a parameter takes the parameter's name.
   */
  param(ir: string, layout = 'ir', transform?: (shape: readonly number[], value: Float32Array) => { dims: number[]; data: Float32Array }): string {
    const key = `param ${layout} ${ir}`;
    const existing = this.made.get(key);
    if (existing !== undefined) return existing;
    const p = this.paramDecl(ir);
    const shape = p.type.shape as number[];
    const { dims, data } = transform ? transform(shape, p.value!) : { dims: shape, data: p.value! };
    const own = this.name(ir);
    const name = this.initializers.some((t) => t.name === own) ? this.fresh(`${own}/${layout}`) : own;
    return this.initializer(key, name, dims, f32Bytes(data));
  }

  // -- layouts ---------------------------------------------------------------

  private formsOf(ir: string): Forms {
    const f = this.forms.get(ir);
    if (f) return f;
    if (this.params.has(ir)) {
      // A parameter used as data (not a weight operand): its value, as declared.
      const made: Forms = { nhwc: this.param(ir), layer: ir, rank: this.typeOf(ir).shape.length };
      this.forms.set(ir, made);
      return made;
    }
    throw new Error(`internal: %${ir} is used before it is computed`);
  }

  nhwc(ir: string): string {
    const f = this.formsOf(ir);
    if (f.nhwc === undefined) {
      const saved = this.current;
      this.current = { layer: f.layer, base: this.name(ir) };
      f.nhwc = this.name(ir);
      this.emit('Transpose', [f.nchw!], [f.nhwc], [onnxInts('perm', TO_NHWC)]);
      this.current = saved;
    }
    return f.nhwc;
  }

  nchw(ir: string): string {
    const f = this.formsOf(ir);
    if (f.rank !== 4) throw new Error(`internal: %${ir} is not rank 4`);
    if (f.nchw === undefined) {
      const saved = this.current;
      this.current = { layer: f.layer, base: this.name(ir) };
      f.nchw = this.fresh(`${this.name(ir)}/nchw`);
      this.emit('Transpose', [f.nhwc!], [f.nchw], [onnxInts('perm', TO_NCHW)]);
      this.current = saved;
    }
    return f.nchw;
  }

  in(ir: string, layout: OnnxLayout): string {
    return layout === 'nhwc' ? this.nhwc(ir) : this.nchw(ir);
  }

  layoutFor(irs: readonly string[]): OnnxLayout {
    const fs = irs.map((v) => this.formsOf(v));
    return fs.every((f) => f.rank === 4 && f.nchw !== undefined) && fs.some((f) => f.nhwc === undefined) ? 'nchw' : 'nhwc';
  }

  axisIn(axis: number, layout: OnnxLayout, rank: number): number {
    return layout === 'nchw' && rank === 4 ? NCHW_AXIS[axis]! : axis;
  }

  /**
   * Emits node `n`'s main op (`op` writes the given output name), then its
   * epilogue (an activation attribute named `axis` follows the layout);
   * records the result in `layout`.
   */
  produce(n: OnnxNode, layout: OnnxLayout, op: (output: string) => void): void {
    const base = this.name(n.result);
    const final = layout === 'nhwc' ? base : this.fresh(`${base}/nchw`);
    const epilogue = (n.attrs as { epilogue?: Epilogue }).epilogue;
    if (epilogue === undefined) op(final);
    else {
      const raw = this.fresh(`${base}/linear`);
      op(raw);
      const { op: activation, ...attrs } = epilogue as Epilogue & { axis?: number };
      const inLayout = attrs.axis === undefined ? attrs : { ...attrs, axis: this.axisIn(attrs.axis, layout, n.type.shape.length) };
      activationToOnnx(this, activation, inLayout, raw, final);
    }
    this.forms.set(n.result, { [layout]: final, layer: n.layer, rank: n.type.shape.length });
  }
}
