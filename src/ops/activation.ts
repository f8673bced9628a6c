/**
 * Activations: one elementwise op per function (softmax is per-row), the
 * generic `activation` layer, and a shorthand layer per function (`tanh`,
 * `leaky_relu(alpha: 0.1)`), as Keras offers `Activation('tanh')`.
 *
 * Every op here keeps its input type. `linear` is the identity, kept in the IR
 * when a spec asks for it so that `remove-identity` has something to remove.
 *
 * The scalar functions (`activationFn`) serve both the activation ops'
 * reference kernels and the `epilogue` of the ops that carry one
 * (`applyEpilogue`), so a fused activation means exactly the separate op.
 */
import { Type, type Static, type TProperties } from '@sinclair/typebox';
import { aroundAxis, mapTensor, type Tensor } from '../ir/tensor.js';
import type { Attrs, TensorType } from '../ir/types.js';
import { alias, kernel, lit, numberTag, perExample, shapeTag, times, type RuntimeHelper } from './emit.js';
import { defineLayer, defineOp, ShapeError, type LayerDef, type LowerContext, type OpDef } from './op-def.js';

interface ActivationFn {
  readonly summary: string;
  /** Attributes with Keras defaults (the IR stores them resolved). */
  readonly attrs: TProperties;
}

const noAttrs: TProperties = {};

/** The activation functions, with Keras names and defaults. */
export const activationFns = {
  relu: { summary: 'max(x, 0)', attrs: noAttrs },
  relu6: { summary: 'min(max(x, 0), 6)', attrs: noAttrs },
  leaky_relu: {
    summary: 'x if x > 0 else alpha * x',
    attrs: { alpha: Type.Number({ default: 0.3, description: 'slope for x < 0 (Keras LeakyReLU default 0.3)' }) },
  },
  elu: {
    summary: 'x if x > 0 else alpha * (exp(x) - 1)',
    attrs: { alpha: Type.Number({ default: 1.0, description: 'scale for x < 0' }) },
  },
  selu: { summary: 'scale * elu(x, alpha) with the self-normalizing constants', attrs: noAttrs },
  gelu: {
    summary: 'x * Phi(x) (exact erf form, or the tanh approximation)',
    attrs: { approximate: Type.Boolean({ default: false, description: 'use the tanh approximation' }) },
  },
  swish: { summary: 'x * sigmoid(x)', attrs: noAttrs },
  tanh: { summary: 'hyperbolic tangent', attrs: noAttrs },
  sigmoid: { summary: '1 / (1 + exp(-x))', attrs: noAttrs },
  hard_sigmoid: { summary: 'clip(0.2 * x + 0.5, 0, 1) (Keras 2 and TF.js)', attrs: noAttrs },
  softplus: { summary: 'log(1 + exp(x))', attrs: noAttrs },
  softmax: {
    summary: 'exp(x) / sum(exp(x)) along an axis',
    attrs: { axis: Type.Integer({ default: -1, description: 'the axis to normalize over' }) },
  },
  linear: { summary: 'the identity', attrs: noAttrs },
} as const satisfies Record<string, ActivationFn>;

export type ActivationName = keyof typeof activationFns;
export const activationNames = Object.keys(activationFns) as ActivationName[];

export const ActivationName = Type.Union(
  activationNames.map((n) => Type.Literal(n)),
  { description: 'an activation function' },
);

/** Softmax's axis in the IR is positive and counts the batch dimension. */
function normalizeAxis(axis: number, rank: number): number {
  const a = axis < 0 ? rank + axis : axis;
  if (a <= 0 || a >= rank) {
    throw new ShapeError(`axis ${axis} is out of range for a rank-${rank} tensor (axis 0 is the batch)`);
  }
  return a;
}

/** Activations that can run as the epilogue of a linear op: the elementwise ones. */
export const epilogueNames = activationNames.filter((n) => n !== 'softmax' && n !== 'linear');

/**
 * An activation fused into the op that produces its input (`fuse-activation`):
 * `{op: "relu"}`, `{op: "leaky_relu", alpha: 0.3}`. Its attributes are those of
 * the activation op, resolved.
 */
export const Epilogue = Type.Union(
  [
    ...epilogueNames.map((n) =>
      Type.Object({ op: Type.Literal(n), ...(activationFns[n].attrs as TProperties) }, { additionalProperties: false }),
    ),
    // softmax over the last axis: a per-row epilogue (the row is complete when the op writes it).
    Type.Object({ op: Type.Literal('softmax'), axis: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }),
  ],
);
export type Epilogue = Static<typeof Epilogue>;

/** The optional `epilogue` attribute of ops that can carry one. */
export const epilogueAttr = { epilogue: Type.Optional(Epilogue) };

// ---------------------------------------------------------------------------
// Reference semantics (float64), as Keras and TF.js define each function.

/** SELU's constants (Klambauer et al. 2017), as Keras writes them. */
const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;

/** The attributes a scalar activation reads (an activation op's, or an epilogue's). */
export interface ScalarActivationAttrs {
  readonly alpha?: number | undefined;
  readonly approximate?: boolean | undefined;
}

/** sigmoid without overflow: exp is only taken of a non-positive number. */
function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** log(1 + exp(x)) = max(x, 0) + log(1 + exp(-|x|)): no overflow, no lost digits for x << 0. */
function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/**
 * erfc to about 1e-15 (absolute; relative for x >= 3):
 *  - |x| < 3: 1 - erf(x), with erf(x) = 2/sqrt(pi) exp(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))
 *    (Abramowitz-Stegun 7.1.6: all terms have the sign of x, so nothing cancels; <= 50 terms);
 *  - x >= 3: exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...)))))
 *    (A-S 7.1.14, partial numerators k/2), evaluated bottom-up from depth 60;
 *  - x <= -3: 2 - erfc(-x).
 */
export function erfc(x: number): number {
  if (x <= -3) return 2 - erfc(-x);
  if (x < 3) return 1 - erf(x);
  let f = x;
  for (let k = 60; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** The error function; see `erfc` for the method. */
export function erf(x: number): number {
  if (Math.abs(x) >= 3) return x > 0 ? 1 - erfc(x) : erfc(-x) - 1;
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; Math.abs(term) > Math.abs(sum) * 1e-17; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}

function requireAlpha(name: string, attrs: ScalarActivationAttrs): number {
  if (attrs.alpha === undefined) throw new Error(`${name} needs its alpha attribute`);
  return attrs.alpha;
}

/** The scalar function of an elementwise activation (softmax is not one). */
export function activationFn(name: Exclude<ActivationName, 'softmax'>, attrs: ScalarActivationAttrs = {}): (x: number) => number {
  switch (name) {
    case 'relu':
      return (x) => Math.max(x, 0);
    case 'relu6':
      return (x) => Math.min(Math.max(x, 0), 6);
    case 'leaky_relu': {
      const alpha = requireAlpha(name, attrs);
      return (x) => (x >= 0 ? x : alpha * x);
    }
    case 'elu': {
      const alpha = requireAlpha(name, attrs);
      return (x) => (x > 0 ? x : alpha * Math.expm1(x));
    }
    case 'selu':
      return (x) => SELU_SCALE * (x > 0 ? x : SELU_ALPHA * Math.expm1(x));
    case 'gelu':
      if (attrs.approximate === undefined) throw new Error('gelu needs its approximate attribute');
      // Exact: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) = 0.5 x erfc(-x / sqrt 2), accurate for x << 0 too.
      if (!attrs.approximate) return (x) => 0.5 * x * erfc(-x / Math.SQRT2);
      return (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
    case 'swish':
      return (x) => x * sigmoid(x);
    case 'tanh':
      return Math.tanh;
    case 'sigmoid':
      return sigmoid;
    case 'hard_sigmoid':
      return (x) => Math.min(Math.max(0.2 * x + 0.5, 0), 1);
    case 'softplus':
      return softplus;
    case 'linear':
      return (x) => x;
  }
}

/** Softmax over the fibres along `axis` (positive, counting the batch), subtracting each fibre's max first. */
export function softmax(x: Tensor, axis: number): Tensor {
  const { outer, n, inner } = aroundAxis(x.shape, axis);
  const y = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    for (let r = 0; r < inner; r++) {
      const at = (i: number) => (o * n + i) * inner + r;
      let max = -Infinity;
      for (let i = 0; i < n; i++) max = Math.max(max, x.data[at(i)]!);
      let sum = 0;
      for (let i = 0; i < n; i++) {
        y[at(i)] = Math.exp(x.data[at(i)]! - max);
        sum += y[at(i)]!;
      }
      for (let i = 0; i < n; i++) y[at(i)]! /= sum;
    }
  }
  return { shape: [...x.shape], data: y };
}

/** An op's result with its fused activation applied (unchanged without one). */
export function applyEpilogue(t: Tensor, epilogue: Epilogue | undefined): Tensor {
  if (epilogue === undefined) return t;
  if (epilogue.op === 'softmax') return softmax(t, epilogue.axis);
  return mapTensor(t, activationFn(epilogue.op, epilogue as ScalarActivationAttrs));
}

// ---------------------------------------------------------------------------
// Codegen: each scalar function as a module-level helper of generated code,
// written as the reference above (same formulas, same overflow guards).

const sigmoidHelper: RuntimeHelper = {
  name: 'sigmoid',
  source: `/** 1 / (1 + exp(-x)), taking exp of a non-positive number only. */
function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}`,
};

const erfcHelper: RuntimeHelper = {
  name: 'erfc',
  source: `/** erfc to about 1e-15: a series for |x| < 3, a continued fraction beyond (Abramowitz-Stegun 7.1.6, 7.1.14). */
function erfc(x: number): number {
  if (x <= -3) return 2 - erfc(-x);
  if (x < 3) {
    const x2 = x * x;
    let term = x;
    let sum = x;
    for (let n = 1; Math.abs(term) > Math.abs(sum) * 1e-17; n++) {
      term *= (2 * x2) / (2 * n + 1);
      sum += term;
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
  }
  let f = x;
  for (let k = 60; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}`,
};

/** A helper `name(x)` whose body is `return <expr>;`. */
function scalarHelper(name: string, doc: string, expr: string, uses: RuntimeHelper[] = []): RuntimeHelper {
  return { name, source: `/** ${doc} */\nfunction ${name}(x: number): number {\n  return ${expr};\n}`, uses };
}

/**
 * The generated helper computing an elementwise activation, named after the
 * function and its attributes (`relu`, `leaky_relu_0p3`), so equal names
 * mean equal code.
 */
export function activationHelper(name: Exclude<ActivationName, 'softmax' | 'linear'>, attrs: ScalarActivationAttrs = {}): RuntimeHelper {
  switch (name) {
    case 'relu':
      return scalarHelper('relu', 'max(x, 0)', 'Math.max(x, 0)');
    case 'relu6':
      return scalarHelper('relu6', 'min(max(x, 0), 6)', 'Math.min(Math.max(x, 0), 6)');
    case 'leaky_relu': {
      const alpha = requireAlpha(name, attrs);
      return scalarHelper(`leaky_relu_${numberTag(alpha)}`, `leaky_relu, alpha = ${lit(alpha)}`, `x >= 0 ? x : ${lit(alpha)} * x`);
    }
    case 'elu': {
      const alpha = requireAlpha(name, attrs);
      return scalarHelper(`elu_${numberTag(alpha)}`, `elu, alpha = ${lit(alpha)}`, `x > 0 ? x : ${lit(alpha)} * Math.expm1(x)`);
    }
    case 'selu':
      return scalarHelper('selu', 'scale * elu(x, alpha) with the self-normalizing constants', `${SELU_SCALE} * (x > 0 ? x : ${SELU_ALPHA} * Math.expm1(x))`);
    case 'gelu':
      if (attrs.approximate === undefined) throw new Error('gelu needs its approximate attribute');
      return attrs.approximate
        ? scalarHelper('gelu_tanh', 'gelu, tanh approximation', '0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))')
        : scalarHelper('gelu', 'x * Phi(x) = 0.5 x erfc(-x / sqrt 2)', '0.5 * x * erfc(-x / Math.SQRT2)', [erfcHelper]);
    case 'swish':
      return scalarHelper('swish', 'x * sigmoid(x)', 'x * sigmoid(x)', [sigmoidHelper]);
    case 'tanh':
      return scalarHelper('tanh', 'hyperbolic tangent', 'Math.tanh(x)');
    case 'sigmoid':
      return sigmoidHelper;
    case 'hard_sigmoid':
      return scalarHelper('hard_sigmoid', 'clip(0.2 x + 0.5, 0, 1)', 'Math.min(Math.max(0.2 * x + 0.5, 0), 1)');
    case 'softplus':
      return scalarHelper('softplus', 'log(1 + exp(x)) without overflow', 'Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)))');
  }
}

/**
 * Softmax over `len` contiguous values starting at each of `rows` offsets
 * `r * len` of `y`, in place (subtracting the row's max first).
 */
export function softmaxRowsCode(rows: string, len: number): string {
  return `for (let r = 0; r < ${rows}; r++) {
  const at = r * ${len};
  let max = -Infinity;
  for (let i = 0; i < ${len}; i++) max = Math.max(max, y[at + i]!);
  let sum = 0;
  for (let i = 0; i < ${len}; i++) {
    const e = Math.exp(y[at + i]! - max);
    y[at + i] = e;
    sum += e;
  }
  for (let i = 0; i < ${len}; i++) y[at + i] = y[at + i]! / sum;
}`;
}

/**
 * How a kernel applies its fused activation: `scalar(v)` wraps the value it
 * stores (identity without one, and for softmax); `rows(count, len)` is code
 * run once the whole result is written (softmax over the last axis, else '').
 */
export interface EpilogueCode {
  scalar(v: string): string;
  rows(count: string, len: number): string;
  readonly helpers: readonly RuntimeHelper[];
  /** For kernel names and comments: `relu`, `softmax`, or ''. */
  readonly tag: string;
}

export function epilogueCode(epilogue: Epilogue | undefined): EpilogueCode {
  if (epilogue === undefined) return { scalar: (v) => v, rows: () => '', helpers: [], tag: '' };
  if (epilogue.op === 'softmax') return { scalar: (v) => v, rows: softmaxRowsCode, helpers: [], tag: 'softmax' };
  const helper = activationHelper(epilogue.op, epilogue as ScalarActivationAttrs);
  return { scalar: (v) => `${helper.name}(${v})`, rows: () => '', helpers: [helper], tag: helper.name };
}

/** Softmax along `axis` of a batch of `shape`: per (outer, inner) fibre of `len` values spaced `inner` apart. */
function softmaxKernel(t: TensorType, axis: number) {
  const shape = t.shape.slice(1) as number[];
  const { outer, n: len, inner } = aroundAxis([1, ...shape], axis);
  const body = inner === 1
    ? `for (let i = 0; i < ${times('n', outer * len)}; i++) y[i] = x[i]!;\n${softmaxRowsCode(times('n', outer), len)}`
    : `for (let o = 0; o < ${times('n', outer)}; o++) {
  for (let r = 0; r < ${inner}; r++) {
    const at = o * ${len * inner} + r;
    let max = -Infinity;
    for (let i = 0; i < ${len}; i++) max = Math.max(max, x[at + i * ${inner}]!);
    let sum = 0;
    for (let i = 0; i < ${len}; i++) {
      const e = Math.exp(x[at + i * ${inner}]! - max);
      y[at + i * ${inner}] = e;
      sum += e;
    }
    for (let i = 0; i < ${len}; i++) y[at + i * ${inner}] = y[at + i * ${inner}]! / sum;
  }
}`;
  return kernel(`softmax_${shapeTag(t)}_axis${axis}`, ['x'], `softmax over axis ${axis} of ${shapeTag(t)}`, body);
}

export const activationOps: OpDef[] = activationNames.map((name) => {
  const fn: ActivationFn = activationFns[name];
  return defineOp({
    name,
    summary: fn.summary,
    traits: name === 'softmax' ? ['pure'] : ['pure', 'elementwise'],
    // In the IR, softmax's axis is resolved: positive, counting the batch dimension.
    attrs: name === 'softmax' ? { axis: Type.Integer({ minimum: 1 }) } : fn.attrs,
    operands: () => ['x'],
    infer: ([x], attrs) => {
      if (name === 'softmax') normalizeAxis(attrs['axis'] as number, x!.shape.length);
      return x!;
    },
    reference: ([x], attrs) =>
      name === 'softmax' ? softmax(x!, attrs['axis'] as number) : mapTensor(x!, activationFn(name, attrs as ScalarActivationAttrs)),
    emit: ({ result, attrs }) => {
      if (name === 'linear') return alias;
      if (name === 'softmax') return softmaxKernel(result, attrs['axis'] as number);
      const helper = activationHelper(name, attrs as ScalarActivationAttrs);
      const size = perExample(result);
      return kernel(`${helper.name}_${size}`, ['x'], `${helper.name} of ${size} values per example`,
        `for (let i = 0; i < ${times('n', size)}; i++) y[i] = ${helper.name}(x[i]!);`, [helper]);
    },
  });
});

/** Resolve an activation's attributes to what the IR stores (defaults filled, axes normalized). */
export function activationAttrs(name: ActivationName, given: Attrs, input: TensorType): Attrs {
  const out: Record<string, Attrs[string]> = {};
  for (const [key, schema] of Object.entries(activationFns[name].attrs as TProperties)) {
    out[key] = (given[key] ?? schema.default) as Attrs[string];
  }
  if (name === 'softmax') out['axis'] = normalizeAxis(out['axis'] as number, input.shape.length);
  return out;
}

/** Apply an activation to `x` as the final op of a layer (the layer's own value). */
export function applyActivation(ctx: LowerContext, x: string, name: ActivationName, given: Attrs = {}): string {
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
  activation: ActivationName | undefined,
): string {
  if (activation === undefined) return ctx.op(op, operands, attrs);
  return applyActivation(ctx, ctx.op(op, operands, attrs, 'linear'), activation);
}

export const activationLayer = defineLayer({
  type: 'activation',
  keras: 'Activation',
  namePrefix: 'activation',
  summary: 'applies an activation function',
  attrs: { activation: ActivationName },
  positional: ['activation'],
  arity: [1, 1],
  lower: (ctx, [x], a) => applyActivation(ctx, x!, a.activation as ActivationName),
});

/** `tanh`, `relu`, `leaky_relu(alpha: 0.1)`, ...: shorthands for `activation`. */
export const activationShorthandLayers: LayerDef[] = activationNames.map((name) =>
  defineLayer({
    type: name,
    keras: 'Activation',
    namePrefix: 'activation',
    summary: `activation: ${activationFns[name].summary}`,
    attrs: activationFns[name].attrs as TProperties,
    arity: [1, 1],
    lower: (ctx, [x], a) => applyActivation(ctx, x!, name, a as Attrs),
  }),
);

/** Gradient ops of the activations (`activation_grad`, `softmax_grad`). */
export const activationGradOps: OpDef[] = [];
