/**
 * What an op and a layer are.
 *
 * An *op* is a node kind of the IR: its attributes (a TypeBox schema, so the
 * verifier can check them), its traits (data that passes ask about instead of
 * keeping lists of op names), its operand roles, its type rule and its
 * reference kernel (the float64 semantics that the interpreter runs and that
 * passes and codegen are checked against) and its codegen template (`emit`:
 * the TypeScript kernel for one shape signature), and its gradient rule
 * (`grad`: IR that computes the operands' gradients from the result's). Ops
 * that behave differently in training also say what they become there
 * (`training`: batchnorm uses batch statistics, dropout multiplies by a mask).
 * The record also holds the facts other parts of modelc ask instead of
 * keeping op-name lists: ONNX export (`onnx`), batchnorm folding (`linear`),
 * fusable activations (`epilogue`), identity at inference (`identity`), the
 * SIMD kernel (`simd`) and the conformance suite's `examples`.
 *
 * A *layer* is what a spec writes (Keras vocabulary: names, attributes and
 * defaults). A layer lowers to one or more ops, declares its parameters and
 * says how Keras/TF.js layers import as it (`kerasImport`). Both live in the
 * same file per op family (`ops/linear.ts`, `ops/conv.ts`, ...), which lists
 * them in its `defineFamily({ ops, layers })`; `ops/registry.ts` lists the
 * families.
 */
import type { Static, TObject, TProperties } from '@sinclair/typebox';
import type { InitSpec, Node } from '../ir/graph.js';
import type { Tensor } from '../ir/tensor.js';
import { ShapeError, type Attrs, type TensorType } from '../ir/types.js';
import type { Emitted, EmitRequest } from './emit.js';
import type { OnnxBuilder } from './onnx-def.js';
import type { SimdSelection, SimdUse } from './simd-def.js';
import type { KerasImport, NotImportable } from './keras-def.js';
import type { KerasLayerExport } from './keras-export-def.js';

export type Trait =
  /** no side effects, result depends only on operands and attributes */
  | 'pure'
  /** applies one scalar function per element; output type = input type */
  | 'elementwise'
  /** output is linear in its weight operands (kernel, bias): BN can fold into it */
  | 'linear-in-weights'
  /** behaves differently in training (dropout, batchnorm) */
  | 'training-dependent'
  /** only moves data (reshape): no arithmetic */
  | 'shape-only';

// A type rule's complaint: declared in ir/, where the verifier catches it.
export { ShapeError };

export interface OpDef<P extends TProperties = TProperties> {
  readonly name: string;
  readonly summary: string;
  readonly traits: readonly Trait[];
  /** Attribute schema. IR attributes are always complete: no defaults at this level. */
  readonly attrs: P;
  /** Operand roles in order for these attributes; a trailing `?` marks an optional operand. */
  operands(attrs: Static<TObject<P>>): readonly string[];
  /** The result type, or a ShapeError saying why the operands do not fit. */
  infer(operands: readonly TensorType[], attrs: Static<TObject<P>>): TensorType;
  /**
   * The reference kernel: inference semantics in float64, written as plain
   * loops (Keras/TF definitions; batchnorm uses the moving statistics, dropout
   * is the identity). `inputs` are the operand values in operand order, with the
   * batch dimension concrete; the result's shape is `infer`'s with `N` replaced
   * by the batch size. Ops with an `epilogue` attribute apply it here.
   */
  reference(inputs: readonly Tensor[], attrs: Static<TObject<P>>): Tensor;
  /**
   * The codegen template: the inference kernel for these operand types and
   * attributes (sizes inlined, the batch size `n` a parameter), or an alias
   * when the result is the first operand's data unchanged (reshape, dropout).
   * See `emit.ts` for what is in scope in a kernel body.
   */
  emit(request: EmitRequest<Static<TObject<P>>>): Emitted;
  /**
   * The reverse-mode rule (see `autodiff/reverse.ts`), or `'none'` for ops
   * that are never differentiated through: gradient ops themselves, losses'
   * metrics, optimizer updates, batch statistics that only feed moving averages.
   */
  readonly grad: GradRule<Static<TObject<P>>> | 'none';
  /**
   * For `training-dependent` ops: the node's training-mode replacement, built
   * with `t`; returns the value that stands for the node's result.
   */
  training?(t: TrainingBuilder, node: OpNode<Static<TObject<P>>>): string;
  /**
   * ONNX export: the rule that emits the node's ONNX nodes (see `onnx-def.ts`),
   * or why the op has no ONNX form (`gradientOnly` from onnx-def.ts: `{ notExportable: 'a gradient op: ...' }`).
   */
  readonly onnx: OnnxRule<Static<TObject<P>>> | NotExportable;
  /**
   * For ops other than batchnorm that are a per-channel map x * scale + shift
   * along `attrs.axis` at inference (Keras Normalization): the map, from the
   * values of the node's parameter operands (`value(i)` of operand i, undefined
   * for an activation). `fold-bn` folds such a node into a neighbouring linear
   * op as it folds batchnorm.
   */
  channelAffine?(node: OpNode<Static<TObject<P>>>, value: (operand: number) => Float32Array | undefined): { scale: Float64Array; shift: Float64Array };
  /**
   * Folding facts, for ops whose result is linear in a kernel (operand 1) and
   * an optional bias (operand 2): batchnorm folds into them (`fold-bn`).
   */
  readonly linear?: LinearFacts<Static<TObject<P>>>;
  /**
   * The fused activations (`epilogue` attribute) the op applies to its result
   * and that `fuse-activation` moves into it: every activation that can be an
   * epilogue, or only the named ones.
   */
  readonly epilogue?: { readonly fuses: 'all' | readonly string[] };
  /**
   * Whether a node computes the identity at inference (its result is its
   * first operand's data under the same type): `remove-identity` removes such
   * nodes, and `remove-dropout` those of `training-dependent` ops.
   */
  identity?(node: OpNode<Static<TObject<P>>>, operands: readonly TensorType[]): boolean;
  /**
   * The WebAssembly SIMD kernel (`--simd`, see `simd-def.ts`) for a node with
   * this request, or undefined (the TypeScript kernel runs). Inference modules
   * ask with `inference` (dense, conv2d, depthwise_conv2d: weights packed once
   * per Model; an epilogue the kernel cannot fuse is returned as `remaining`);
   * the Trainer asks with `training` (dense with its kernel row-major, as it
   * changes every step, dense_grad_input and dense_grad_kernel, each only for
   * whole f32x4 vectors of units). Codegen checks first that every operand is
   * float32 with static sizes after the first dimension.
   */
  simd?(request: EmitRequest<Static<TObject<P>>>, use: SimdUse): SimdSelection | undefined;
  /**
   * A few attribute sets with operand types that the conformance suite
   * (`test/ops/conformance.test.ts`) runs every check on; the first one is the
   * doc example. Required, so a new op without examples does not compile.
   */
  readonly examples: readonly OpExample<Static<TObject<P>>>[];
}

/** An op applied to operands of these types with these attributes, for tests and docs. */
export interface OpExample<A> {
  readonly attrs: A;
  readonly operands: readonly TensorType[];
  /** What the example exercises (`'same padding, stride 2'`). */
  readonly note?: string;
  /**
   * The values tests draw for each operand, by position, where [-1, 1) does
   * not fit the op's domain (variances, probabilities, class labels);
   * operands left out draw from [-1, 1).
   */
  readonly values?: readonly (ValueRange | undefined)[];
}

/** Uniform values in [min, max); whole numbers (`floor`) with `integer`. */
export interface ValueRange {
  readonly min: number;
  readonly max: number;
  readonly integer?: boolean;
}

/** A layer applied to inputs of these per-example shapes with these spec attributes. */
export interface LayerExample<A> {
  /** As a spec writes them: attributes with defaults may be left out. */
  readonly attrs: Partial<A>;
  /** One per-example shape (no batch dimension) per input. */
  readonly inputs: readonly (readonly number[])[];
}

/** The ONNX export rule of an op: emits the nodes computing `node` (through `b.produce`). */
export type OnnxRule<A> = {
  rule(b: OnnxBuilder, node: OpNode<A>): void;
}['rule'];

/** An op with no ONNX form, and why (a training-only op, ...). */
export interface NotExportable {
  readonly notExportable: string;
}

/** For each kernel element (row-major), the input and the output channel it connects. */
export interface KernelLayout {
  readonly outChannels: number;
  readonly inChannels: number;
  channels(i: number): { in: number; out: number };
}

/** What `fold-bn` needs to know about an op that is linear in its weights. */
export interface LinearFacts<A> {
  /** The channel layout of the kernel (operand 1), from its shape (Keras layouts). */
  layout(kernelShape: readonly number[], attrs: A): KernelLayout;
  /**
   * Whether a batchnorm right before the op folds into it exactly:
   * `exact`; `zero-shift` when only a zero shift folds (the op reads padding
   * that would not receive the shift; `reason` says so); or `never`.
   */
  foldBefore(operands: readonly TensorType[], attrs: A): FoldBefore;
}

export type FoldBefore =
  | { readonly kind: 'exact' }
  | { readonly kind: 'zero-shift'; readonly reason: string }
  | { readonly kind: 'never'; readonly reason: string };

/** A node seen by its op's rules: attributes typed by the op. */
export interface OpNode<A> extends Omit<Node, 'attrs'> {
  readonly attrs: A;
}

/** What a gradient rule builds IR with. */
export interface GradBuilder {
  /** Appends `op(operands) {attrs}` (type inferred) and returns its value, named after `name` if given. */
  op(op: string, operands: readonly string[], attrs: Attrs, name?: string): string;
  typeOf(value: string): TensorType;
}

/**
 * A gradient rule: from the node and `dy` (the loss's gradient with respect
 * to the node's result, of the result's type), one entry per operand, in
 * operand order: a function that emits the operand's gradient (of the
 * operand's type) and returns its value, or `undefined` when the operand gets
 * no gradient (treated as a constant). The driver calls only the entries it
 * needs, so a rule never pays for gradients nobody wants.
 *
 *   grad: (g, { operands: [x, w] }, dy) => [() => g.op('dense_grad_input', [dy, w], {}), ...]
 */
export type GradRule<A> = {
  // Method syntax: checked bivariantly, so an op's precise rule fits the registry's OpDef list.
  rule(g: GradBuilder, node: OpNode<A>, dy: string): readonly ((() => string) | undefined)[];
}['rule'];

/** What a `training` rule builds the training-mode forward with. */
export interface TrainingBuilder extends GradBuilder {
  /**
   * A new input of the step graph that the trainer fills before each step with
   * an inverted-dropout mask: each element 0 with probability `rate`, else
   * 1 / (1 - rate). `seed` is the layer's own seed, if it has one.
   */
  dropoutMask(type: TensorType, rate: number, seed: number | null): string;
  /** After each step, `param` takes `value` (moving statistics). */
  update(param: string, value: string): void;
}

export interface LowerContext {
  /** The name of the layer application being lowered; its result value gets this name. */
  readonly name: string;
  typeOf(value: string): TensorType;
  /**
   * The parameter `<layer>/<role>`: declared on the first application of the layer,
   * checked and shared on later ones (`reuse`).
   */
  param(role: string, shape: readonly number[], init: InitSpec, trainable?: boolean): string;
  /**
   * Appends a node. Without `suffix` the result is the application's own value
   * (`%dense`); with one it is an intermediate (`%dense/linear`).
   */
  op(op: string, operands: readonly string[], attrs: Attrs, suffix?: string): string;
}

export interface LayerDef<P extends TProperties = TProperties> {
  /** The spec's `type`. */
  readonly type: string;
  /**
   * Other names a spec may type it by. Not the Keras names: those derive
   * from `kerasImport.classes` (`max_pooling2d`, `MaxPooling2D`; layer-names.ts).
   */
  readonly aliases?: readonly string[];
  /** The Keras class this layer follows (summaries, schema descriptions). */
  readonly keras: string;
  /**
   * Keras/TF.js import: the Keras classes that become this layer and the rule
   * reading their config (`keras-def.ts`), or why no class does.
   */
  readonly kerasImport?: KerasImport | NotImportable;
  /**
   * The order of the variables Keras saves for this layer (`.keras` archives
   * name them only by index, `layers/dense/vars/0, 1, ...`), as modelc
   * parameter roles, given the roles the layer declared (in declaration
   * order); `null` for a variable Keras saves that modelc has no parameter
   * for (skipped whatever its dtype, e.g. Normalization's integer `count`).
   * Without it: the trainable parameters, then the others, each in
   * declaration order, as Keras saves `trainable_variables +
   * non_trainable_variables`; right when `lower` declares the parameters in
   * the order Keras's `build` creates them.
   */
  readonly kerasVariables?: (roles: readonly string[]) => readonly (string | null)[];
  /**
   * Keras export (`modelc export --format keras`): the Keras 3 class and
   * config these attributes (defaults filled in) become (`keras-export-def.ts`);
   * absent when Keras has no such layer. Throws `NoKerasForm` for an option
   * Keras cannot express.
   */
  kerasExport?(attrs: Static<TObject<P>>): KerasLayerExport;
  /** A few attribute sets with input shapes; the Keras import round trip runs on them. */
  readonly examples?: readonly LayerExample<Static<TObject<P>>>[];
  /** Prefix of automatic names, as Keras makes them (`batch_normalization`, `batch_normalization_1`). */
  readonly namePrefix: string;
  readonly summary: string;
  /** Attributes with Keras defaults (`default` in each schema); required ones have none. */
  readonly attrs: P;
  /** Attributes that the DSL may give positionally, in order: `dense(64)`. */
  readonly positional?: readonly string[];
  /** How many inputs the layer takes: [min, max]. */
  readonly arity: readonly [number, number];
  /** Emits the layer's ops for one application; returns the output value. Throws ShapeError. */
  lower(ctx: LowerContext, inputs: readonly string[], attrs: Static<TObject<P>>): string;
}

/** Identity helpers that keep each definition's attribute types precise. */
export function defineOp<const N extends string, P extends TProperties>(def: OpDef<P> & { readonly name: N }): NamedOpDef<N, P> {
  return def;
}

/**
 * One family file's ops and layers, as the registry lists them: adding a
 * family is one line there, adding an op to a family one entry here.
 */
export interface OpFamily<O extends readonly { readonly name: string }[] = readonly OpDef[]> {
  readonly ops: O;
  readonly layers: readonly LayerDef[];
}

export function defineFamily<const O extends readonly { readonly name: string }[]>(family: {
  readonly ops: O;
  readonly layers?: readonly object[];
}): OpFamily<O> {
  return { ops: family.ops, layers: (family.layers ?? []) as readonly LayerDef[] };
}

/** An op record whose name is known to the type system: the registry derives `OpName` and `OpAttrs` from these. */
export type NamedOpDef<N extends string, P extends TProperties = TProperties> = OpDef<P> & { readonly name: N };
export function defineLayer<P extends TProperties>(def: LayerDef<P>): LayerDef<P> {
  return def;
}

/**
 * Operand values by role, for kernels whose operand list depends on the
 * attributes: `byRole(['x', 'gamma', 'beta?'], [x, g])` is `{x, gamma: g}`.
 */
export function byRole<T>(roles: readonly string[], values: readonly T[]): Record<string, T | undefined> {
  return Object.fromEntries(roles.map((role, i) => [role.replace(/\?$/, ''), values[i]]));
}

/** Shape helpers shared by op families. */
export function expectRank(t: TensorType, rank: number, what: string): void {
  if (t.shape.length !== rank) {
    throw new ShapeError(
      `${what} expects a rank-${rank} input (${describeRank(rank)}), got shape ${formatShape(t.shape)}`,
    );
  }
}

function describeRank(rank: number): string {
  return rank === 4 ? 'batch, height, width, channels' : rank === 2 ? 'batch, features' : `${rank} dims`;
}

/** A per-example shape as written in specs (`[28, 28, 1]`), or a full one with `N`. */
export function formatShape(shape: readonly (number | string)[]): string {
  return `[${shape.join(', ')}]`;
}

/** The static size of a dimension; the batch dimension never reaches here. */
export function dim(t: TensorType, axis: number): number {
  const d = t.shape[axis < 0 ? t.shape.length + axis : axis];
  if (typeof d !== 'number') throw new ShapeError(`dimension ${axis} is not static`);
  return d;
}
