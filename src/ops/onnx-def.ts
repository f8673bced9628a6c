/**
 * What an op record says about ONNX export, and what it builds ONNX nodes
 * with. `formats/onnx.ts` implements these interfaces (layouts, names,
 * initializers, protobuf); each op's record holds its own mapping
 * (`OpDef.onnx`), so the exporter keeps no table of op names.
 */
import type { TensorType } from '../ir/types.js';

/** AttributeProto.AttributeType values used by the exporter. */
export const OnnxAttrType = { FLOAT: 1, INT: 2, INTS: 7 } as const;

/** An ONNX node attribute (AttributeProto). */
export interface OnnxAttr {
  name: string;
  type: number;
  f?: number;
  i?: number;
  ints?: number[];
}

export const onnxInt = (name: string, i: number): OnnxAttr => ({ name, type: OnnxAttrType.INT, i });
export const onnxInts = (name: string, values: readonly number[]): OnnxAttr => ({ name, type: OnnxAttrType.INTS, ints: [...values] });
export const onnxFloat = (name: string, f: number): OnnxAttr => ({ name, type: OnnxAttrType.FLOAT, f });

/**
 * The smallest ONNX-building surface: enough for an elementwise function from
 * one value to another (an activation, as an op or as a fused epilogue).
 */
export interface OnnxEmitter {
  /** Appends a node `opType(inputs) -> outputs`. */
  emit(opType: string, inputs: readonly string[], outputs: readonly string[], attrs?: OnnxAttr[]): void;
  /** Appends a node with one fresh output (named after the current IR node) and returns it. */
  temp(opType: string, inputs: readonly string[], attrs?: OnnxAttr[]): string;
  /** A float32 constant initializer (a scalar without `dims`), shared by equal uses. */
  constant(values: readonly number[] | Float32Array, dims?: readonly number[]): string;
}

/** The ONNX fact of every gradient op: training graphs compute it, exported models never do. */
export const gradientOnly = { notExportable: 'a gradient op: only training graphs compute it' } as const;

/** Where a rank-4 value lives in the exported model: modelc's channels-last or ONNX's channels-first. */
export type OnnxLayout = 'nhwc' | 'nchw';

/**
 * The IR node an ONNX rule exports, as `produce` needs it: its result, spec
 * layer and type, and its attributes (`produce` reads a fused `epilogue`).
 */
export interface OnnxNode {
  readonly result: string;
  readonly layer: string;
  readonly type: TensorType;
  readonly attrs: object;
}

/**
 * What an op's ONNX rule builds with (implemented by `formats/onnx.ts`).
 * Values are IR value names in, ONNX value names out; layout transposes are
 * inserted only where a value is needed in a layout it does not have yet, so
 * the order in which a rule asks for values is the order of the nodes.
 */
export interface OnnxBuilder extends OnnxEmitter {
  /** The ONNX value of `ir` channels-last (a Transpose the first time, if it only exists channels-first). */
  nhwc(ir: string): string;
  /** A rank-4 value channels-first (a Transpose the first time). */
  nchw(ir: string): string;
  /** The value in `layout`. */
  in(ir: string, layout: OnnxLayout): string;
  /**
   * Channels-first when every one of `irs` is rank 4 and already exists
   * channels-first, and not all exist channels-last; else channels-last. For
   * ops that run in either layout (elementwise, per-axis): no transposes where
   * the operands agree.
   */
  layoutFor(irs: readonly string[]): OnnxLayout;
  /** An IR axis (channels-last) in `layout`, for a value of `rank`. */
  axisIn(axis: number, layout: OnnxLayout, rank: number): number;
  /**
   * Emits the node's main computation (`op` writes the given output name),
   * then its fused activation if it has one, and records the result in `layout`.
   */
  produce(node: OnnxNode, layout: OnnxLayout, op: (output: string) => void): void;
  /**
   * A parameter as an initializer, as declared or transformed (`layoutTag`
   * names the transform; `transform` makes its dims and data from the
   * parameter's IR shape and value). Fails with a diagnostic when the
   * parameter has no value.
   */
  param(ir: string, layoutTag?: string, transform?: (shape: readonly number[], value: Float32Array) => { dims: number[]; data: Float32Array }): string;
  /** An int64 vector initializer (shapes for Reshape). */
  int64s(values: readonly number[]): string;
  /** The IR type of a value (input, parameter or node result). */
  typeOf(ir: string): TensorType;
}
