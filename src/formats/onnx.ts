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
 * Op mapping:
 *   dense            Gemm (rank 2) or MatMul + Add
 *   conv2d           Conv: kernel [kh,kw,in/g,out] -> [out,in/g,kh,kw], `group`, explicit pads
 *   depthwise_conv2d Conv with group = C: kernel [kh,kw,C,M] -> [C*M,1,kh,kw] (output channel c*M+m)
 *   conv2d_transpose ConvTranspose: kernel [kh,kw,F/g,C] -> [C,F/g,kh,kw], pads + output_padding
 *   batchnorm        BatchNormalization with the channel axis moved to 1 (absent gamma/beta: 1/0)
 *   affine           Mul + Add, constants shaped to broadcast along the axis
 *   activations      Relu, Clip, LeakyRelu, Elu, Selu, Sigmoid, Tanh, HardSigmoid, Softplus,
 *                    Softmax, Identity; gelu and swish decomposed (opset 17 has no Gelu)
 *   max/avg_pool2d   MaxPool / AveragePool (count_include_pad=0: padding cells do not count)
 *   global pools     GlobalMaxPool / GlobalAveragePool (+ Flatten without keepdims)
 *   reshape          Reshape to [0, ...shape] (0 keeps the batch)
 *   add, concatenate Add (chained), Concat
 *   dropout          Identity
 * An `epilogue` (a fused activation) becomes the activation's nodes after the op.
 * `same` padding is explicit `pads`, computed as `windowAxis` places it (the
 * odd cell at the end, as TF does), so no auto_pad convention is involved.
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
import type { Epilogue } from '../ops/activation.js';
import { deconvOutputLength, transposePadBefore, windowAxis, type Padding } from '../ops/conv.js';

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

/** AttributeProto.AttributeType values. */
const AttrType = { FLOAT: 1, INT: 2, INTS: 7 } as const;

interface AttributeMsg {
  name: string;
  type: number;
  f?: number;
  i?: number;
  ints?: number[];
}

interface NodeMsg {
  input: string[];
  output: string[];
  name: string;
  opType: string;
  attribute: AttributeMsg[];
  docString: string;
}

interface TensorMsg {
  name: string;
  dims: number[];
  dataType: number;
  rawData: Uint8Array;
}

const int = (name: string, i: number): AttributeMsg => ({ name, type: AttrType.INT, i });
const ints = (name: string, values: readonly number[]): AttributeMsg => ({ name, type: AttrType.INTS, ints: [...values] });
const float = (name: string, f: number): AttributeMsg => ({ name, type: AttrType.FLOAT, f });

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

/** Row-major transpose: axis i of the result is axis perm[i] of the input. */
function permute(data: Float32Array, shape: readonly number[], perm: readonly number[]): Float32Array {
  const rank = shape.length;
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i]!;
  }
  const outShape = perm.map((p) => shape[p]!);
  const strideOf = perm.map((p) => inStrides[p]!);
  const out = new Float32Array(data.length);
  const index = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let at = 0;
    for (let i = 0; i < rank; i++) at += index[i]! * strideOf[i]!;
    out[o] = data[at]!;
    for (let i = rank - 1; i >= 0; i--) {
      if (++index[i]! < outShape[i]!) break;
      index[i] = 0;
    }
  }
  return out;
}

/** Where an NHWC axis is in NCHW. */
const NCHW_AXIS = [0, 2, 3, 1];
const TO_NCHW = [0, 3, 1, 2];
const TO_NHWC = [0, 2, 3, 1];

/** SELU's constants, as Keras (and modelc's reference) write them. */
const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;

type Layout = 'nhwc' | 'nchw';

/** The ONNX names of an IR value in each layout it has been computed in. */
interface Forms {
  nhwc?: string;
  nchw?: string;
  /** The spec layer that computed the value (doc string of layout transposes). */
  readonly layer: string;
  readonly rank: number;
}

/** Attributes of a scalar activation (an activation op's, or an epilogue's). */
interface ActivationAttrs {
  readonly alpha?: number;
  readonly approximate?: boolean;
  readonly axis?: number;
}

interface WindowAttrs {
  readonly strides: readonly number[];
  readonly padding: Padding;
  readonly dilation_rate: readonly number[];
}

class Exporter {
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

  private typeOf(ir: string): TensorType {
    const t = this.graph.inputs.find((i) => i.name === ir)?.type ?? this.params.get(ir)?.type ?? this.graph.nodes.find((n) => n.result === ir)?.type;
    if (!t) throw new Error(`internal: %${ir} has no type`);
    return t;
  }

  private emit(opType: string, input: readonly string[], output: readonly string[], attribute: AttributeMsg[] = []): void {
    let name = `${this.current.base}/${opType}`;
    for (let i = 1; this.takenNodes.has(name); i++) name = `${this.current.base}/${opType}_${i}`;
    this.takenNodes.add(name);
    this.nodes.push({ input: [...input], output: [...output], name, opType, attribute, docString: this.current.layer });
  }

  /** A value computed by one node, named after the current IR node. */
  private temp(opType: string, input: readonly string[], attribute: AttributeMsg[] = [], suffix = opType): string {
    const out = this.fresh(`${this.current.base}/${suffix}`);
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
  private constant(values: readonly number[] | Float32Array, dims: readonly number[] = []): string {
    const data = Float32Array.from(values);
    const key = `const f32 [${dims.join(',')}] ${Array.from(data, (v) => Object.is(v, -0) ? '-0' : String(v)).join(',')}`;
    return this.made.get(key) ?? this.initializer(key, this.fresh(data.length === 1 ? `modelc/const/${data[0]}` : 'modelc/const'), dims, f32Bytes(data));
  }

  private int64s(values: readonly number[]): string {
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
  private param(ir: string, layout = 'ir', transform?: (p: ParamDecl) => { dims: number[]; data: Float32Array }): string {
    const key = `param ${layout} ${ir}`;
    const existing = this.made.get(key);
    if (existing !== undefined) return existing;
    const p = this.paramDecl(ir);
    const { dims, data } = transform ? transform(p) : { dims: p.type.shape as number[], data: p.value! };
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

  /** The value in modelc's layout (a Transpose the first time, if it only exists channels-first). */
  private nhwc(ir: string): string {
    const f = this.formsOf(ir);
    if (f.nhwc === undefined) {
      const saved = this.current;
      this.current = { layer: f.layer, base: this.name(ir) };
      f.nhwc = this.name(ir);
      this.emit('Transpose', [f.nchw!], [f.nhwc], [ints('perm', TO_NHWC)]);
      this.current = saved;
    }
    return f.nhwc;
  }

  /** A rank-4 value channels-first (a Transpose the first time). */
  private nchw(ir: string): string {
    const f = this.formsOf(ir);
    if (f.rank !== 4) throw new Error(`internal: %${ir} is not rank 4`);
    if (f.nchw === undefined) {
      const saved = this.current;
      this.current = { layer: f.layer, base: this.name(ir) };
      f.nchw = this.fresh(`${this.name(ir)}/nchw`);
      this.emit('Transpose', [f.nhwc!], [f.nchw], [ints('perm', TO_NCHW)]);
      this.current = saved;
    }
    return f.nchw;
  }

  private in(ir: string, layout: Layout): string {
    return layout === 'nhwc' ? this.nhwc(ir) : this.nchw(ir);
  }

  /** Channels-first for rank-4 values that all exist channels-first and not all channels-last; else modelc's layout. */
  private layoutFor(irs: readonly string[]): Layout {
    const fs = irs.map((v) => this.formsOf(v));
    return fs.every((f) => f.rank === 4 && f.nchw !== undefined) && fs.some((f) => f.nhwc === undefined) ? 'nchw' : 'nhwc';
  }

  /**
   * Emits node `n`'s main op (`op` writes the given output name), then its
   * epilogue; records the result in `layout`.
   */
  private produce(n: Node, layout: Layout, op: (output: string) => void): void {
    const base = this.name(n.result);
    const final = layout === 'nhwc' ? base : this.fresh(`${base}/nchw`);
    const epilogue = n.attrs['epilogue'] as Epilogue | undefined;
    if (epilogue === undefined) op(final);
    else {
      const raw = this.fresh(`${base}/linear`);
      op(raw);
      const axis = epilogue.op === 'softmax' ? this.axisIn(epilogue.axis, layout, n.type.shape.length) : undefined;
      this.activation(epilogue.op, { ...(epilogue as ActivationAttrs), axis }, raw, final);
    }
    this.forms.set(n.result, { [layout]: final, layer: n.layer, rank: n.type.shape.length });
  }

  private axisIn(axis: number, layout: Layout, rank: number): number {
    return layout === 'nchw' && rank === 4 ? NCHW_AXIS[axis]! : axis;
  }

  // -- ops -------------------------------------------------------------------

  private node(n: Node): void {
    const a = n.attrs;
    const [x] = n.operands;
    switch (n.op) {
      case 'dense':
        return this.dense(n);
      case 'conv2d':
      case 'depthwise_conv2d':
      case 'conv2d_transpose':
        return this.conv(n);
      case 'batchnorm':
        return this.batchnorm(n);
      case 'affine':
        return this.affine(n);
      case 'max_pool2d':
      case 'avg_pool2d':
        return this.pool(n);
      case 'global_max_pool2d':
      case 'global_avg_pool2d': {
        const type = n.op === 'global_max_pool2d' ? 'GlobalMaxPool' : 'GlobalAveragePool';
        const input = this.nchw(x!);
        // [N, C, 1, 1]: channels-first with keepdims, else flattened to [N, C].
        if (a['keepdims']) return this.produce(n, 'nchw', (out) => this.emit(type, [input], [out]));
        return this.produce(n, 'nhwc', (out) => this.emit('Flatten', [this.temp(type, [input])], [out], [int('axis', 1)]));
      }
      case 'reshape': {
        const shape = this.int64s([0, ...(a['shape'] as number[])]);
        return this.produce(n, 'nhwc', (out) => this.emit('Reshape', [this.nhwc(x!), shape], [out]));
      }
      case 'add': {
        const layout = this.layoutFor(n.operands);
        return this.produce(n, layout, (out) => {
          let sum = this.in(n.operands[0]!, layout);
          n.operands.slice(1).forEach((o, i) => {
            const last = i === n.operands.length - 2;
            const inputs = [sum, this.in(o, layout)];
            if (last) this.emit('Add', inputs, [out]);
            else sum = this.temp('Add', inputs);
          });
        });
      }
      case 'concatenate': {
        const layout = this.layoutFor(n.operands);
        const axis = this.axisIn(a['axis'] as number, layout, n.type.shape.length);
        return this.produce(n, layout, (out) =>
          this.emit('Concat', n.operands.map((o) => this.in(o, layout)), [out], [int('axis', axis)]));
      }
      case 'dropout': {
        const layout = this.layoutFor([x!]);
        return this.produce(n, layout, (out) => this.emit('Identity', [this.in(x!, layout)], [out]));
      }
      default: {
        if (!isActivation(n.op)) throw new Error(`ONNX export: no mapping for op '${n.op}' (%${n.result})`);
        const layout = this.layoutFor([x!]);
        const attrs = a as ActivationAttrs;
        const axis = n.op === 'softmax' ? this.axisIn(attrs.axis!, layout, n.type.shape.length) : undefined;
        return this.produce(n, layout, (out) => this.activation(n.op as ActivationOp, { ...attrs, axis }, this.in(x!, layout), out));
      }
    }
  }

  private dense(n: Node): void {
    const [x, kernel, bias] = n.operands;
    const input = this.nhwc(x!);
    const k = this.param(kernel!);
    const b = bias === undefined ? undefined : this.param(bias);
    this.produce(n, 'nhwc', (out) => {
      if (n.type.shape.length === 2) this.emit('Gemm', b === undefined ? [input, k] : [input, k, b], [out]);
      else if (b === undefined) this.emit('MatMul', [input, k], [out]);
      else this.emit('Add', [this.temp('MatMul', [input, k]), b], [out]);
    });
  }

  private conv(n: Node): void {
    const [x, kernel, bias] = n.operands;
    const a = n.attrs as unknown as WindowAttrs & { groups?: number; output_padding?: readonly number[] | null };
    const xt = this.typeOf(x!);
    const [, h, w, c] = xt.shape as [string, number, number, number];
    const [kh, kw, k2, k3] = this.paramDecl(kernel!).type.shape as [number, number, number, number];
    const input = this.nchw(x!);
    const attrs: AttributeMsg[] = [ints('kernel_shape', [kh, kw]), ints('strides', a.strides), ints('dilations', a.dilation_rate)];
    let weights: string;
    let opType = 'Conv';
    if (n.op === 'conv2d') {
      // [kh, kw, in/g, out] -> [out, in/g, kh, kw]
      weights = this.param(kernel!, 'oihw', (p) => ({ dims: [k3, k2, kh, kw], data: permute(p.value!, [kh, kw, k2, k3], [3, 2, 0, 1]) }));
      attrs.push(int('group', a.groups!), ints('pads', forwardPads([h, w], [kh, kw], a)));
    } else if (n.op === 'depthwise_conv2d') {
      // [kh, kw, C, M] -> [C, M, kh, kw] = [C*M, 1, kh, kw]: output channel c*M + m, in group c
      weights = this.param(kernel!, 'oihw', (p) => ({ dims: [k2 * k3, 1, kh, kw], data: permute(p.value!, [kh, kw, k2, k3], [2, 3, 0, 1]) }));
      attrs.push(int('group', c), ints('pads', forwardPads([h, w], [kh, kw], a)));
    } else {
      // conv2d_transpose: [kh, kw, F/g, C] -> [C, F/g, kh, kw]
      opType = 'ConvTranspose';
      weights = this.param(kernel!, 'iohw', (p) => ({ dims: [k3, k2, kh, kw], data: permute(p.value!, [kh, kw, k2, k3], [3, 2, 0, 1]) }));
      const [, oh, ow] = n.type.shape as [string, number, number, number];
      const { pads, outputPadding } = transposePads([h, w], [oh, ow], [kh, kw], a);
      attrs.push(int('group', a.groups!), ints('pads', pads), ints('output_padding', outputPadding));
    }
    const b = bias === undefined ? undefined : this.param(bias);
    this.produce(n, 'nchw', (out) => this.emit(opType, b === undefined ? [input, weights] : [input, weights, b], [out], attrs));
  }

  private pool(n: Node): void {
    const [x] = n.operands;
    const a = n.attrs as unknown as { pool_size: number[]; strides: number[]; padding: Padding };
    const [, h, w] = this.typeOf(x!).shape as [string, number, number, number];
    const pads = forwardPads([h, w], a.pool_size, { strides: a.strides, padding: a.padding, dilation_rate: [1, 1] });
    const attrs = [ints('kernel_shape', a.pool_size), ints('strides', a.strides), ints('pads', pads)];
    const input = this.nchw(x!);
    if (n.op === 'max_pool2d') this.produce(n, 'nchw', (out) => this.emit('MaxPool', [input], [out], attrs));
    else this.produce(n, 'nchw', (out) => this.emit('AveragePool', [input], [out], [...attrs, int('count_include_pad', 0)]));
  }

  private batchnorm(n: Node): void {
    const a = n.attrs as unknown as { axis: number; epsilon: number; center: boolean; scale: boolean };
    const [x, ...stats] = n.operands;
    const rank = n.type.shape.length;
    const channels = n.type.shape[a.axis] as number;
    let at = 0;
    const gamma = a.scale ? this.param(stats[at++]!) : this.constant(new Float32Array(channels).fill(1), [channels]);
    const beta = a.center ? this.param(stats[at++]!) : this.constant(new Float32Array(channels), [channels]);
    const mean = this.param(stats[at++]!);
    const variance = this.param(stats[at++]!);
    const norm = (input: string, out: string) =>
      this.emit('BatchNormalization', [input, gamma, beta, mean, variance], [out], [float('epsilon', a.epsilon)]);
    // BatchNormalization normalizes along axis 1.
    if (a.axis === 1) return this.produce(n, 'nhwc', (out) => norm(this.nhwc(x!), out));
    if (rank === 4 && a.axis === 3) return this.produce(n, 'nchw', (out) => norm(this.nchw(x!), out));
    const perm = [0, a.axis, ...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== 0 && i !== a.axis)];
    const inverse = perm.map((_, i) => perm.indexOf(i));
    this.produce(n, 'nhwc', (out) => {
      const moved = this.temp('Transpose', [this.nhwc(x!)], [ints('perm', perm)]);
      const normed = this.temp('BatchNormalization', [moved, gamma, beta, mean, variance], [float('epsilon', a.epsilon)]);
      this.emit('Transpose', [normed], [out], [ints('perm', inverse)]);
    });
  }

  private affine(n: Node): void {
    const [x, scale, shift] = n.operands;
    const axis = n.attrs['axis'] as number;
    const layout = this.layoutFor([x!]);
    const rank = n.type.shape.length;
    const at = this.axisIn(axis, layout, rank);
    const channels = n.type.shape[axis] as number;
    // [C] followed by a 1 for every axis after the channel axis: broadcasts along it.
    const dims = [channels, ...new Array<number>(rank - 1 - at).fill(1)];
    const tag = `c${dims.length}`;
    const s = this.param(scale!, tag, (p) => ({ dims, data: p.value! }));
    const t = this.param(shift!, tag, (p) => ({ dims, data: p.value! }));
    this.produce(n, layout, (out) => this.emit('Add', [this.temp('Mul', [this.in(x!, layout), s]), t], [out]));
  }

  /** Emits activation `op` from `input` to `output` (softmax's `axis` already in the input's layout). */
  private activation(op: ActivationOp, a: ActivationAttrs, input: string, output: string): void {
    const unary = (type: string, attrs: AttributeMsg[] = []) => this.emit(type, [input], [output], attrs);
    switch (op) {
      case 'relu':
        return unary('Relu');
      case 'relu6':
        return this.emit('Clip', [input, this.constant([0]), this.constant([6])], [output]);
      case 'leaky_relu':
        return unary('LeakyRelu', [float('alpha', a.alpha!)]);
      case 'elu':
        return unary('Elu', [float('alpha', a.alpha!)]);
      case 'selu':
        return unary('Selu', [float('alpha', SELU_ALPHA), float('gamma', SELU_SCALE)]);
      case 'gelu': {
        let inner: string;
        if (a.approximate) {
          // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
          const cube = this.temp('Mul', [this.temp('Mul', [input, input]), input]);
          const poly = this.temp('Add', [input, this.temp('Mul', [cube, this.constant([0.044715])])]);
          inner = this.temp('Tanh', [this.temp('Mul', [poly, this.constant([Math.sqrt(2 / Math.PI)])])]);
        } else {
          // 0.5 x (1 + erf(x / sqrt 2))
          inner = this.temp('Erf', [this.temp('Mul', [input, this.constant([Math.SQRT1_2])])]);
        }
        const half = this.temp('Mul', [input, this.constant([0.5])]);
        return this.emit('Mul', [half, this.temp('Add', [inner, this.constant([1])])], [output]);
      }
      case 'swish':
        return this.emit('Mul', [input, this.temp('Sigmoid', [input])], [output]);
      case 'tanh':
        return unary('Tanh');
      case 'sigmoid':
        return unary('Sigmoid');
      case 'hard_sigmoid':
        return unary('HardSigmoid', [float('alpha', 0.2), float('beta', 0.5)]);
      case 'softplus':
        return unary('Softplus');
      case 'softmax':
        return unary('Softmax', [int('axis', a.axis!)]);
      case 'linear':
        return unary('Identity');
    }
  }
}

const activationOps = [
  'relu', 'relu6', 'leaky_relu', 'elu', 'selu', 'gelu', 'swish', 'tanh', 'sigmoid', 'hard_sigmoid', 'softplus', 'softmax', 'linear',
] as const;
type ActivationOp = (typeof activationOps)[number];

function isActivation(op: string): op is ActivationOp {
  return (activationOps as readonly string[]).includes(op);
}

/**
 * ONNX `pads` [top, left, bottom, right] of a forward window: before as
 * `windowAxis` puts it, after so that ONNX's floor((in + pads - k_eff)/s) + 1
 * is modelc's output length.
 */
function forwardPads(input: readonly number[], k: readonly number[], a: WindowAttrs): number[] {
  const before: number[] = [];
  const after: number[] = [];
  for (let i = 0; i < 2; i++) {
    const s = a.strides[i]!;
    const d = a.dilation_rate[i]!;
    const { out, before: b } = windowAxis(input[i]!, k[i]!, s, a.padding, d);
    before.push(b);
    after.push(Math.max((out - 1) * s + (k[i]! - 1) * d + 1 - input[i]! - b, 0));
  }
  return [...before, ...after];
}

/**
 * ConvTranspose geometry: output cell o = i*s + u*d - before, as modelc places
 * it; the end padding (or, when the output is longer than the full scatter,
 * output_padding) makes ONNX's s*(in-1) + output_padding + k_eff - pads the
 * output length.
 */
function transposePads(
  input: readonly number[],
  output: readonly number[],
  k: readonly number[],
  a: WindowAttrs & { output_padding?: readonly number[] | null },
): { pads: number[]; outputPadding: number[] } {
  const before: number[] = [];
  const after: number[] = [];
  const outputPadding: number[] = [];
  for (let i = 0; i < 2; i++) {
    const s = a.strides[i]!;
    const d = a.dilation_rate[i]!;
    const expected = deconvOutputLength(input[i]!, k[i]!, s, a.padding, a.output_padding ? a.output_padding[i]! : null, d);
    if (expected !== output[i]) throw new Error(`internal: conv2d_transpose output ${output[i]} != ${expected}`);
    const b = transposePadBefore(input[i]!, output[i]!, k[i]!, s, a.padding, d);
    const full = s * (input[i]! - 1) + (k[i]! - 1) * d + 1; // the scatter's extent before cropping
    const total = full - output[i]!;
    before.push(b);
    after.push(Math.max(total - b, 0));
    outputPadding.push(Math.max(b - total, 0));
  }
  return { pads: [...before, ...after], outputPadding };
}
