/**
 * Activations, built from the records in `activations/` (one per function):
 * an op per function (elementwise; softmax per row along an axis; `linear`
 * the identity, kept in the IR when a spec asks for it so that
 * `remove-identity` has something to remove), the generic `activation` layer
 * and a shorthand layer per function (`tanh`, `leaky_relu(alpha: 0.1)`), as
 * Keras offers `Activation('tanh')`, the gradient ops, and the interop both
 * ways (Keras/TF.js activation strings in, ONNX nodes out).
 *
 * Gradients: `activation_grad(dy, v) {fn, from}` computes dy * f'(v), v the
 * activation's output where f' is a function of it (relu, tanh, sigmoid, ...),
 * else its input (gelu, swish, softplus); `softmax_grad(dy, y) {axis}`.
 */
import { Type, type TProperties } from '@sinclair/typebox';
import { mapTensor } from '../ir/tensor.js';
import { tensor, type Attrs, type TensorType } from '../ir/types.js';
import type { LossName } from '../spec/training.js';
import type { ActivationDef, ElementwiseActivation, IdentityActivation, RowsActivation } from './activations/define.js';
import { normalizeAxis } from './activations/define.js';
import { activationDerivative, complete, derivativeSource, epilogueNames, type ScalarActivationAttrs } from './activations/epilogue.js';
import {
  activationDefs,
  activationNames,
  elementwise,
  getActivation,
  type ActivationName as Name,
  type ElementwiseName,
} from './activations/records.js';
import { sameOperands, softmaxGradOp } from './activations/softmax.js';
import { alias, kernel, perExample, shapeTag, times, total, type EmitRequest } from './emit.js';
import type { KerasImport } from './keras-def.js';
import { kerasActivation, noKerasForm, type KerasLayerExport } from './keras-export-def.js';
import { defineFamily, defineLayer, defineOp, ShapeError, type LayerDef, type LowerContext, type OpDef, type OpExample, type OnnxRule } from './op-def.js';
import { gradientOnly, type OnnxEmitter } from './onnx-def.js';
import { selection, type SimdRectifier, type SimdSelection, type SimdUse } from './simd-def.js';

export type { ActivationDef } from './activations/define.js';
export {
  activationDerivative,
  activationFn,
  activationHelper,
  applyEpilogue,
  derivativeSource,
  Epilogue,
  epilogueAttr,
  epilogueCode,
  epilogueKind,
  epilogueNames,
  isEpilogueActivation,
  type EpilogueCode,
  type ScalarActivationAttrs,
} from './activations/epilogue.js';
export { erf, erfc } from './activations/math.js';
export { activationNames, getActivation } from './activations/records.js';
export { softmax, softmaxGradOp, softmaxRowsCode } from './activations/softmax.js';

export type ActivationName = Name;
export const ActivationName = Type.Union(
  activationNames.map((n) => Type.Literal(n)),
  { description: 'an activation function' },
);

// ---------------------------------------------------------------------------
// The activation ops.

/** The operand types an op example runs on: a row of features; a `rows` activation also an image (rank 4). */
function exampleTypes(def: ActivationDef): TensorType[] {
  return def.form === 'rows' ? [tensor(['N', 8]), tensor(['N', 2, 3, 4])] : [tensor(['N', 8])];
}

/** Example inputs reach past every bend and into saturation (relu6 at 6, hard_sigmoid at ±2.5, tanh). */
const EXAMPLE_RANGE = { min: -8, max: 8 };

/** The record's attribute sets on each example type, resolved as the IR stores them (duplicates dropped). */
function opExamples<A>(def: ActivationDef): OpExample<A>[] {
  const out: OpExample<A>[] = [];
  const seen = new Set<string>();
  for (const given of def.examples) {
    for (const type of exampleTypes(def)) {
      const attrs = activationAttrs(def.name as Name, given as Attrs, type);
      const key = JSON.stringify([type.shape, attrs]);
      if (seen.has(key)) continue;
      seen.add(key);
      const note = Object.entries(given).map(([k, v]) => `${k} ${String(v)}`).join(', ');
      out.push({ attrs: attrs as A, operands: [type], values: [EXAMPLE_RANGE], note: note === '' ? 'default attributes' : note });
    }
  }
  return out;
}

/** The ONNX rule of an activation op: the record's nodes in whichever layout its input already has. */
function onnxRule(def: ActivationDef): OnnxRule<Attrs> {
  return (b, node) => {
    const x = node.operands[0]!;
    const layout = b.layoutFor([x]);
    const attrs = def.form === 'rows'
      ? { ...node.attrs, axis: b.axisIn(node.attrs['axis'] as number, layout, node.type.shape.length) }
      : node.attrs;
    b.produce(node, layout, (out) => def.onnx(b, b.in(x, layout), out, attrs));
  };
}

/** What every activation op shares: one operand, its record's summary and ONNX rule. */
function common(def: ActivationDef) {
  return { name: def.name, summary: def.summary, operands: () => ['x'], onnx: onnxRule(def) };
}

/** The Trainer's SIMD kernel of an activation with one (the record's `simd`), over whole examples; `kind` the function or its gradient. */
function reluSimd(fn: SimdRectifier | undefined, kind: 'relu' | 'relu_grad', t: TensorType, use: SimdUse): SimdSelection | undefined {
  return use === 'training' && fn !== undefined ? selection({ kind, fn, size: perExample(t) }) : undefined;
}

function elementwiseOp(def: ElementwiseActivation): OpDef {
  const fn = def.simd;
  return defineOp({
    ...common(def),
    examples: opExamples(def),
    traits: ['pure', 'elementwise'],
    attrs: def.attrs,
    infer: ([x]) => x!,
    reference: ([x], attrs) => mapTensor(x!, def.reference(complete(def, attrs))),
    emit: ({ result, attrs }) => {
      const helper = def.helper(complete(def, attrs));
      const size = perExample(result);
      return kernel(`${helper.name}_${size}`, ['x'], `${helper.name} of ${size} values per example`,
        `for (let i = 0; i < ${times('n', size)}; i++) y[i] = ${helper.name}(x[i]!);`, [helper]);
    },
    // dx = dy * f'(.), read from the result where f' can be (so the producer keeps one reader and
    // fuse-activation still applies).
    grad: (g, { operands: [x], result, attrs }, dy) => {
      const { from } = def.derivative(complete(def, attrs));
      const fn = { op: def.name, ...attrs } as Attrs;
      return [() => g.op('activation_grad', [dy, from === 'output' ? result : x!], { fn, from })];
    },
    ...(fn === undefined ? {} : { simd: ({ result }: EmitRequest<Attrs>, use: SimdUse) => reluSimd(fn, 'relu', result, use) }),
  });
}

function rowsOp(def: RowsActivation): OpDef {
  return defineOp({
    ...common(def),
    examples: opExamples<{ axis: number }>(def),
    traits: ['pure'],
    // In the IR the axis is resolved: positive, counting the batch dimension.
    attrs: { axis: Type.Integer({ minimum: 1 }) },
    infer: ([x], { axis }) => {
      normalizeAxis(axis, x!.shape.length);
      return x!;
    },
    reference: ([x], { axis }) => def.reference(x!, axis),
    emit: ({ result, attrs: { axis } }) => def.kernel(result, axis),
    grad: (g, { result, attrs: { axis } }, dy) => [() => def.grad(g, dy, result, axis)],
  });
}

function identityOp(def: IdentityActivation): OpDef {
  return defineOp({
    ...common(def),
    examples: opExamples(def),
    traits: ['pure', 'elementwise'],
    attrs: def.attrs,
    infer: ([x]) => x!,
    reference: ([x]) => mapTensor(x!, (v) => v),
    emit: () => alias,
    grad: (_g, _node, dy) => [() => dy],
    identity: () => true,
  });
}

function activationOp(def: ActivationDef): OpDef {
  switch (def.form) {
    case 'elementwise':
      return elementwiseOp(def);
    case 'rows':
      return rowsOp(def);
    case 'identity':
      return identityOp(def);
  }
}

type Defs = typeof activationDefs;

/** The activation ops in record order, each typed by its record's name and attributes. */
export type ActivationOps = {
  readonly [I in keyof Defs]: Defs[I] extends ActivationDef<infer N, infer P> ? OpDef<P> & { readonly name: N } : never;
};

export const activationOps = activationDefs.map((d) => activationOp(d as ActivationDef)) as unknown as ActivationOps;

// ---------------------------------------------------------------------------
// Layers.

/** Resolve an activation's attributes to what the IR stores (defaults filled, axes normalized). */
export function activationAttrs(name: Name, given: Attrs, input: TensorType): Attrs {
  const def = getActivation(name)!;
  const out: Record<string, Attrs[string]> = {};
  for (const [key, schema] of Object.entries(def.attrs as TProperties)) {
    out[key] = (given[key] ?? schema.default) as Attrs[string];
  }
  if (def.form === 'rows') out['axis'] = normalizeAxis(out['axis'] as number, input.shape.length);
  return out;
}

/** Apply an activation to `x` as the final op of a layer (the layer's own value). */
export function applyActivation(ctx: LowerContext, x: string, name: Name, given: Attrs = {}): string {
  return ctx.op(name, [x], activationAttrs(name, given, ctx.typeOf(x)));
}

/**
 * Lower `op` as a layer's main op, followed by its `activation` attribute if
 * any: `dense(64, activation: relu)` is `%dense/linear = dense(...)` then
 * `%dense = relu(%dense/linear)`.
 */
export function withActivation(
  ctx: LowerContext,
  op: string,
  operands: readonly string[],
  attrs: Attrs,
  activation: Name | undefined,
): string {
  if (activation === undefined) return ctx.op(op, operands, attrs);
  return applyActivation(ctx, ctx.op(op, operands, attrs, 'linear'), activation);
}

export const activationLayer = defineLayer({
  type: 'activation',
  keras: 'Activation',
  kerasImport: {
    classes: ['Activation'],
    fromConfig: (c) => {
      const fn = c.activationFn('activation');
      if (fn === undefined) return c.fail('activation', 'has no activation');
      if (Object.keys(fn.attrs).length === 0) return c.set('activation', fn.name);
      // a string that fixes attributes (TF.js `gelu_new`) is that function's own layer with them
      for (const [k, v] of Object.entries(fn.attrs)) c.set(k, v, 'activation');
      return fn.name;
    },
  },
  kerasExport: (a) => ({ className: 'Activation', config: { activation: kerasActivation(a.activation) } }),
  examples: [
    { attrs: { activation: 'tanh' }, inputs: [[5]] },
    { attrs: { activation: 'softmax' }, inputs: [[2, 3]] },
  ],
  namePrefix: 'activation',
  summary: 'applies an activation function',
  attrs: { activation: ActivationName },
  positional: ['activation'],
  arity: [1, 1],
  lower: (ctx, [x], a) => applyActivation(ctx, x!, a.activation as Name),
});

/**
 * The Keras layer classes of single activations, with the shorthand layer each
 * imports as. Keras's ReLU also covers relu6 (`max_value: 6`) and leaky_relu
 * (`negative_slope`); the other functions have no class of their own.
 */
const kerasLayerClasses: Partial<Record<Name, KerasImport>> = {
  relu: {
    classes: ['ReLU'],
    fromConfig: (c) => {
      const max = c.optional('max_value', (k) => c.number(k));
      const slope = c.optional('negative_slope', (k) => c.number(k)) ?? 0;
      const threshold = c.optional('threshold', (k) => c.number(k)) ?? 0;
      if (threshold === 0 && max === undefined) {
        if (slope === 0) return;
        c.set('alpha', slope, 'negative_slope');
        return 'leaky_relu';
      }
      if (threshold === 0 && slope === 0 && max === 6) return 'relu6';
      // Any other combination: the general form, with the options as Keras names them.
      c.set('max_value', max);
      c.set('negative_slope', slope);
      c.set('threshold', threshold);
      return 'relu_general';
    },
  },
  leaky_relu: {
    classes: ['LeakyReLU'],
    fromConfig: (c) => {
      // Keras 2 `alpha` (default 0.3, modelc's too); Keras 3 `negative_slope`
      c.set('alpha', c.optional('alpha', (k) => c.number(k)));
      if (c.has('negative_slope')) c.set('alpha', c.number('negative_slope'), 'negative_slope');
    },
  },
  elu: { classes: ['ELU'], fromConfig: (c) => c.set('alpha', c.optional('alpha', (k) => c.number(k))) },
  softmax: { classes: ['Softmax'], fromConfig: (c) => c.set('axis', c.optional('axis', (k) => c.axis(k))) },
};

/**
 * The Keras class a shorthand layer exports as: the class that imports as it
 * (relu6 is a ReLU with max_value 6), else `Activation` with the function's
 * string, which holds no attributes: then they must be the defaults.
 */
function kerasShorthand(def: ActivationDef, a: Attrs): KerasLayerExport {
  switch (def.name) {
    case 'relu': return { className: 'ReLU', config: {} };
    case 'relu6': return { className: 'ReLU', config: { max_value: 6 } };
    case 'relu_general': return { className: 'ReLU', config: { max_value: a['max_value'], negative_slope: a['negative_slope'], threshold: a['threshold'] } };
    case 'leaky_relu': return { className: 'LeakyReLU', config: { negative_slope: a['alpha'] } };
    case 'elu': return { className: 'ELU', config: { alpha: a['alpha'] } };
    case 'softmax': return { className: 'Softmax', config: { axis: a['axis'] } };
    // Keras 3's string is relu6(x + 3) / 6: the slope 1/6
    case 'hard_sigmoid':
      if (typeof a['alpha'] === 'number' && Math.abs(a['alpha'] - 1 / 6) < 1e-9) return { className: 'Activation', config: { activation: 'hard_sigmoid' } };
      return noKerasForm(`slope ${String(a['alpha'] ?? 0.2)}: Keras 3's Activation('hard_sigmoid') has slope 1/6`);
  }
  for (const [k, schema] of Object.entries(def.attrs as TProperties)) {
    if (a[k] !== undefined && a[k] !== schema.default) noKerasForm(`${k} ${JSON.stringify(a[k])}: Keras 3's Activation('${def.name}') takes no ${k}`);
  }
  return { className: 'Activation', config: { activation: kerasActivation(def.name) } };
}

/** Attribute sets of the shorthand layers that a Keras class imports as (`examples`). */
const kerasLayerExamples: Partial<Record<Name, readonly Attrs[]>> = {
  relu: [{}],
  leaky_relu: [{ alpha: 0.1 }],
  elu: [{ alpha: 0.5 }],
  softmax: [{ axis: 1 }],
};

/** `tanh`, `relu`, `leaky_relu(alpha: 0.1)`, ...: shorthands for `activation`. */
export const activationShorthandLayers: LayerDef[] = activationDefs.map((d) => {
  const def = d as ActivationDef;
  return defineLayer({
    type: def.name,
    keras: 'Activation',
    kerasImport: kerasLayerClasses[def.name as Name] ?? {
      notImportable:
        def.name === 'relu6' || def.name === 'relu_general'
          ? `no Keras class of its own: a ReLU with ${def.name === 'relu6' ? 'max_value 6' : 'other options'} imports as ${def.name} (the relu layer's rule)`
          : `no Keras class of its own: Activation('${def.name}') imports as an activation layer`,
    },
    kerasExport: (a) => kerasShorthand(def, a as Attrs),
    examples: (kerasLayerExamples[def.name as Name] ?? []).map((attrs) => ({ attrs, inputs: [[2, 3]] })),
    namePrefix: 'activation',
    summary: `activation: ${def.summary}`,
    attrs: def.attrs,
    arity: [1, 1],
    lower: (ctx, [x], a) => applyActivation(ctx, x!, def.name as Name, a as Attrs),
  });
});

// ---------------------------------------------------------------------------
// The gradient op of the elementwise activations (softmax's is in activations/softmax.ts).

/** The `fn` attribute of `activation_grad`: an elementwise activation and its attributes, as an epilogue names one. */
const ScalarFn = Type.Union(
  epilogueNames.map((n) =>
    Type.Object({ op: Type.Literal(n), ...(elementwise(n).attrs as TProperties) }, { additionalProperties: false }),
  ),
);
type ScalarFn = { op: ElementwiseName } & ScalarActivationAttrs;

/**
 * dx = dy * f'(v) for an elementwise activation f, v its output or its input
 * (`from`, which must be the source `activationDerivative` uses).
 *
 *   %tanh/grad: f32[N,64] = activation_grad(%grad, %tanh) {fn={op="tanh"}, from="output"}
 */
export const activationGradOp = defineOp({
  name: 'activation_grad',
  summary: "the gradient of an elementwise activation: dy * f'(y or x)",
  traits: ['pure'],
  attrs: { fn: ScalarFn, from: Type.Union([Type.Literal('output'), Type.Literal('input')]) },
  operands: () => ['dy', 'v'],
  infer: (xs, a) => {
    const fn = a.fn as ScalarFn;
    const from = derivativeSource(fn.op, fn);
    if (from !== a.from) throw new ShapeError(`activation_grad of ${fn.op} reads its ${from}, not its ${a.from}`);
    return sameOperands('activation_grad', xs);
  },
  reference: ([dy, v], a) => {
    const d = activationDerivative((a.fn as ScalarFn).op, a.fn as ScalarFn).ref;
    return { shape: [...dy!.shape], data: dy!.data.map((g, i) => g * d(v!.data[i]!)) };
  },
  emit: ({ result, attrs: a }) => {
    const { helper } = activationDerivative((a.fn as ScalarFn).op, a.fn as ScalarFn);
    return kernel(`activation_grad_${helper.name}_${shapeTag(result)}`, ['dy', 'v'], `dy * ${helper.name}(${a.from})`,
      `for (let i = 0; i < ${total(result)}; i++) y[i] = dy[i]! * ${helper.name}(v[i]!);`, [helper]);
  },
  // The record's SIMD kernel of dy * f'(y) in the Trainer (relu, relu6: from the output).
  simd: ({ result, attrs: a }, use) => (a.from === 'output' ? reluSimd(elementwise((a.fn as ScalarFn).op).simd, 'relu_grad', result, use) : undefined),
  grad: 'none',
  onnx: gradientOnly,
  // Each elementwise record's first example, read from the value its derivative reads.
  examples: epilogueNames.map((n) => {
    const fn = activationAttrs(n, elementwise(n).examples[0] as Attrs, tensor(['N', 8]));
    const from = derivativeSource(n, fn as ScalarActivationAttrs);
    return { attrs: { fn: { op: n, ...fn } as ScalarFn, from }, operands: [tensor(['N', 8]), tensor(['N', 8])], note: `${n} from its ${from}` };
  }),
});

/** Gradient ops of the activations (`activation_grad`, `softmax_grad`). */
export const activationGradOps = [activationGradOp, softmaxGradOp] as const;

// ---------------------------------------------------------------------------
// Interop: Keras/TF.js activation strings in, ONNX nodes out, fused losses.

/** Which Keras wrote a config: `keras2` (tf.keras 2, TF.js, legacy .h5 before Keras 3) or `keras3`. */
export type KerasDialect = 'keras2' | 'keras3';

const kerasNames = new Map<string, { name: Name; attrs: Attrs }>();
/** Keras 3's strings whose meaning differs from Keras 2's (the records' `keras3`). */
const keras3Names = new Map<string, { name: Name; attrs: Attrs }>();
for (const d of activationDefs) {
  const def = d as ActivationDef;
  for (const [names, table] of [[def.keras ?? [def.name], kerasNames], [def.keras3 ?? [], keras3Names]] as const) {
    for (const k of names) {
      if (typeof k === 'string') table.set(k, { name: def.name as Name, attrs: {} });
      else table.set(k.name, { name: def.name as Name, attrs: k.attrs as Attrs });
    }
  }
}

/**
 * The activation a Keras/TF.js `activation` string means, with the
 * attributes the string fixes (TF.js `gelu_new`: `gelu` with `approximate:
 * true`; the others `{}`, the defaults): `hardSigmoid` and `silu` read too.
 * In a Keras 3 config some strings mean other attributes (`hard_sigmoid`:
 * slope 1/6; `leaky_relu`: slope 0.2), as the records' `keras3` say.
 */
export function activationFromKeras(kerasName: string, dialect: KerasDialect = 'keras2'): { name: Name; attrs: Attrs } | undefined {
  return (dialect === 'keras3' ? keras3Names.get(kerasName) : undefined) ?? kerasNames.get(kerasName);
}

/** Whether Keras 3 gives the string another meaning than Keras 2 and TF.js do. */
export function isKeras3Meaning(kerasName: string): boolean {
  return keras3Names.has(kerasName);
}

/**
 * Emits the ONNX nodes of activation `name` from `input` to `output`, for an
 * activation op or a fused epilogue (a `rows` activation's `axis` already in
 * the exported value's layout).
 */
export function activationToOnnx(e: OnnxEmitter, name: Name, attrs: Attrs, input: string, output: string): void {
  const def = getActivation(name)!;
  def.onnx(e, input, output, complete(def, attrs));
}

/**
 * Whether `loss` reads the input of the prediction's final activation with
 * `from_logits` (the record's `logitsLosses`; a `rows` activation only over
 * the last axis, where the loss normalizes).
 */
export function lossReadsLogits(prediction: { readonly op: string; readonly attrs: Attrs; readonly type: TensorType }, loss: LossName): boolean {
  const def = getActivation(prediction.op);
  if (def?.logitsLosses?.includes(loss) !== true) return false;
  return def.form !== 'rows' || prediction.attrs['axis'] === prediction.type.shape.length - 1;
}

/** Every activation op and its gradient ops; the activation layer and its shorthands. */
export const activationFamily = defineFamily({
  ops: [...activationOps, ...activationGradOps],
  layers: [activationLayer, ...activationShorthandLayers],
});
