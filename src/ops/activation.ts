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
 *
 * Gradients: `activation_grad(dy, v) {fn, from}` computes dy * f'(v), v the
 * activation's output where f' is a function of it (relu, tanh, sigmoid, ...),
 * else its input (gelu, swish, softplus); `softmax_grad(dy, y) {axis}`.
 */
import { Type, type Static, type TProperties } from '@sinclair/typebox';
import { aroundAxis, mapTensor, type Tensor } from '../ir/tensor.js';
import { formatType, sameType, type Attrs, type TensorType } from '../ir/types.js';
import { alias, kernel, lit, numberTag, perExample, shapeTag, times, total, type RuntimeHelper } from './emit.js';
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

/**
 * tanh as a rational function: odd [13/6] minimax on [-c, c], c = 7.90531110763549805,
 * and ±1 beyond (Eigen's fast float tanh). Absolute error below 3e-7 everywhere (2.6e-8
 * inside [-c, c]; at c, 1 - tanh(c) = 2.6e-7), checked on a dense grid in
 * test/codegen/helpers.test.ts. About 2.5 ns against 10-20 ns for Math.tanh
 * (bench/micro/activations.js). NaN stays NaN (the clamp's comparisons are false).
 */
const tanhHelper: RuntimeHelper = {
  name: 'tanh',
  source: `/** tanh to within 3e-7 (absolute): a rational minimax fit on [-7.905, 7.905], ±1 beyond. */
function tanh(x: number): number {
  const v = x < -7.90531110763549805 ? -7.90531110763549805 : x > 7.90531110763549805 ? 7.90531110763549805 : x;
  const v2 = v * v;
  const p = v * (4.89352455891786e-3 + v2 * (6.37261928875436e-4 + v2 * (1.48572235717979e-5 + v2 * (5.12229709037114e-8 + v2 * (-8.60467152213735e-11 + v2 * (2.00018790482477e-13 + v2 * -2.76076847742355e-16))))));
  const q = 4.89352518554385e-3 + v2 * (2.2684346324390e-3 + v2 * (1.18534705686654e-4 + v2 * 1.19825839466702e-6));
  return p / q;
}`,
};

/**
 * sigmoid(x) = (1 + tanh(x / 2)) / 2 through the rational tanh for |x| <= 4,
 * where its relative error, in sigmoid and in 1 - sigmoid alike, stays below
 * 6e-7 (so log(p) and log(1 - p) of a loss keep their accuracy); beyond, the
 * exact form with exp of a non-positive number. About 3 ns against 8 ns.
 */
const sigmoidHelper: RuntimeHelper = {
  name: 'sigmoid',
  source: `/** 1 / (1 + exp(-x)): (1 + tanh(x / 2)) / 2 for |x| <= 4 (relative error < 6e-7), else exp of a non-positive number. */
function sigmoid(x: number): number {
  if (x >= -4 && x <= 4) return 0.5 + 0.5 * tanh(0.5 * x);
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}`,
  uses: [tanhHelper],
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

/**
 * max(x, 0) without a data-dependent branch: (x + |x|) / 2 is exact (2x, or
 * +0), and V8 compiles Math.max and `x > 0 ? x : 0` to branches that
 * mispredict on activations of random sign: 5-6 ns per element against 1 ns
 * (bench/micro/activations.js). Only -Infinity gives NaN there; the rare,
 * predictable second branch returns its 0 (and NaN stays NaN).
 */
const reluHelper: RuntimeHelper = {
  name: 'relu',
  source: `/** max(x, 0), branch-free: (x + |x|) / 2 is exact; only x = -Infinity needs the (rarely taken) fix-up. */
function relu(x: number): number {
  const r = 0.5 * (x + Math.abs(x));
  return r === r ? r : x === x ? 0 : x;
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
      return reluHelper;
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
      return tanhHelper;
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
    // dx = dy * f'(.), read from the result where f' can be (so the producer keeps one reader and
    // fuse-activation still applies); softmax: dx = y * (dy - sum(dy * y)); linear: dx = dy.
    grad: (g, { operands: [x], result, attrs }, dy) => {
      if (name === 'linear') return [() => dy];
      if (name === 'softmax') return [() => g.op('softmax_grad', [dy, result], { axis: attrs['axis'] as number })];
      const from = derivativeSource(name, attrs as ScalarActivationAttrs);
      const fn = { op: name, ...attrs } as Attrs;
      return [() => g.op('activation_grad', [dy, from === 'output' ? result : x!], { fn, from })];
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

// ---------------------------------------------------------------------------
// Gradients. f' of each elementwise activation, from its output y where f' is
// a function of y (its result is then the only value the backward pass reads
// besides dy), else from its input x. The reference and the generated helper
// are written side by side with the same formula. At kinks the convention is
// TF.js's: relu'(0) = 0, leaky_relu'(0) = alpha, elu'(0) = 1, selu'(0) =
// scale * alpha; from the output, relu6 and hard_sigmoid take the one-sided
// value 0 at their upper and lower bends (TF.js: the inner slope).

type ScalarName = Exclude<ActivationName, 'softmax' | 'linear'>;
type Source = 'output' | 'input';

interface Derivative {
  readonly from: Source;
  /** f' as a function of y (from the output) or x (from the input). */
  readonly ref: (v: number) => number;
  /** The generated `name(v)` computing the same. */
  readonly helper: RuntimeHelper;
}

/** A derivative: its source, reference, and a helper `<name>(y or x)` with a body of statements. */
function derivative(from: Source, name: string, doc: string, ref: (v: number) => number, body: string, uses: RuntimeHelper[] = []): Derivative {
  const v = from === 'output' ? 'y' : 'x';
  return { from, ref, helper: { name, source: `/** ${doc} */\nfunction ${name}(${v}: number): number {\n  ${body}\n}`, uses } };
}

const GELU_C = Math.sqrt(2 / Math.PI);
const SQRT_2PI = Math.sqrt(2 * Math.PI);
const SELU_SCALE_ALPHA = SELU_SCALE * SELU_ALPHA;

/** f' of an elementwise activation (`relu_grad(y)`, `gelu_grad(x)`), named after the function and its attributes. */
export function activationDerivative(name: ScalarName, attrs: ScalarActivationAttrs = {}): Derivative {
  switch (name) {
    case 'relu':
      // `+(y > 0)` compiles without a branch (a ternary mispredicts on data of random sign).
      return derivative('output', 'relu_grad', "relu' from y: 1 where y > 0 (relu'(0) = 0), branch-free", (y) => (y > 0 ? 1 : 0), 'return +(y > 0);');
    case 'relu6':
      return derivative('output', 'relu6_grad', "relu6' from y: 1 where 0 < y < 6", (y) => (y > 0 && y < 6 ? 1 : 0), 'return y > 0 && y < 6 ? 1 : 0;');
    case 'leaky_relu': {
      // With alpha >= 0, y > 0 exactly where x > 0.
      const alpha = requireAlpha(name, attrs);
      const tag = `leaky_relu_${numberTag(alpha)}_grad`;
      return alpha >= 0
        ? derivative('output', tag, `leaky_relu' from y, alpha = ${lit(alpha)}`, (y) => (y > 0 ? 1 : alpha), `return y > 0 ? 1 : ${lit(alpha)};`)
        : derivative('input', tag, `leaky_relu' from x, alpha = ${lit(alpha)}`, (x) => (x > 0 ? 1 : alpha), `return x > 0 ? 1 : ${lit(alpha)};`);
    }
    case 'elu': {
      // For x <= 0, alpha * exp(x) = y + alpha; with alpha > 0, y >= 0 exactly where x >= 0.
      const alpha = requireAlpha(name, attrs);
      const tag = `elu_${numberTag(alpha)}_grad`;
      return alpha > 0
        ? derivative('output', tag, `elu' from y, alpha = ${lit(alpha)}`, (y) => (y >= 0 ? 1 : y + alpha), `return y >= 0 ? 1 : y + ${lit(alpha)};`)
        : derivative('input', tag, `elu' from x, alpha = ${lit(alpha)}`, (x) => (x >= 0 ? 1 : alpha * Math.exp(x)), `return x >= 0 ? 1 : ${lit(alpha)} * Math.exp(x);`);
    }
    case 'selu':
      return derivative('output', 'selu_grad', "selu' from y: scale, or y + scale * alpha where y <= 0",
        (y) => (y > 0 ? SELU_SCALE : y + SELU_SCALE_ALPHA), `return y > 0 ? ${SELU_SCALE} : y + ${SELU_SCALE_ALPHA};`);
    case 'gelu':
      if (attrs.approximate === undefined) throw new Error('gelu needs its approximate attribute');
      if (!attrs.approximate) {
        // d/dx x Phi(x) = Phi(x) + x phi(x)
        return derivative('input', 'gelu_grad', "gelu' from x: Phi(x) + x phi(x)",
          (x) => 0.5 * erfc(-x / Math.SQRT2) + (x * Math.exp(-0.5 * x * x)) / SQRT_2PI,
          `return 0.5 * erfc(-x / Math.SQRT2) + (x * Math.exp(-0.5 * x * x)) / ${SQRT_2PI};`, [erfcHelper]);
      }
      // f = 0.5 x (1 + t), t = tanh(c (x + 0.044715 x^3)): f' = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 * 0.044715 x^2)
      return derivative('input', 'gelu_tanh_grad', "gelu' (tanh approximation) from x",
        (x) => {
          const t = Math.tanh(GELU_C * (x + 0.044715 * x ** 3));
          return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 0.134145 * x * x);
        },
        `const t = Math.tanh(${GELU_C} * (x + 0.044715 * x ** 3));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * ${GELU_C} * (1 + 0.134145 * x * x);`);
    case 'swish':
      // (x s)' = s + x s (1 - s), s = sigmoid(x)
      return derivative('input', 'swish_grad', "swish' from x: s (1 + x (1 - s)), s = sigmoid(x)",
        (x) => {
          const s = sigmoid(x);
          return s * (1 + x * (1 - s));
        },
        'const s = sigmoid(x);\n  return s * (1 + x * (1 - s));', [sigmoidHelper]);
    case 'tanh':
      return derivative('output', 'tanh_grad', "tanh' from y: 1 - y^2", (y) => 1 - y * y, 'return 1 - y * y;');
    case 'sigmoid':
      return derivative('output', 'sigmoid_grad', "sigmoid' from y: y (1 - y)", (y) => y * (1 - y), 'return y * (1 - y);');
    case 'hard_sigmoid':
      return derivative('output', 'hard_sigmoid_grad', "hard_sigmoid' from y: 0.2 where 0 < y < 1",
        (y) => (y > 0 && y < 1 ? 0.2 : 0), 'return y > 0 && y < 1 ? 0.2 : 0;');
    case 'softplus':
      return derivative('input', 'softplus_grad', "softplus' from x: sigmoid(x)", sigmoid, 'return sigmoid(x);', [sigmoidHelper]);
  }
}

/** Whether an activation's gradient reads its output or its input. */
export function derivativeSource(name: ScalarName, attrs: ScalarActivationAttrs): Source {
  return activationDerivative(name, attrs).from;
}

/** The `fn` attribute of `activation_grad`: an elementwise activation and its attributes, as an epilogue names one. */
const ScalarFn = Type.Union(
  epilogueNames.map((n) =>
    Type.Object({ op: Type.Literal(n), ...(activationFns[n].attrs as TProperties) }, { additionalProperties: false }),
  ),
);
type ScalarFn = { op: ScalarName } & ScalarActivationAttrs;

function sameOperands(op: string, [a, b]: readonly TensorType[]): TensorType {
  if (!sameType(a!, b!)) throw new ShapeError(`${op} needs operands of one shape, got ${formatType(a!)} and ${formatType(b!)}`);
  return a!;
}

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
  grad: 'none',
});

/** dx = y * (dy - sum(dy * y)) over each fibre along `axis`, y = softmax(x). */
function softmaxGradReference(dy: Tensor, y: Tensor, axis: number): Tensor {
  const { outer, n, inner } = aroundAxis(y.shape, axis);
  const dx = new Float64Array(y.data.length);
  for (let o = 0; o < outer; o++) {
    for (let r = 0; r < inner; r++) {
      const at = (i: number) => (o * n + i) * inner + r;
      let dot = 0;
      for (let i = 0; i < n; i++) dot += dy.data[at(i)]! * y.data[at(i)]!;
      for (let i = 0; i < n; i++) dx[at(i)] = y.data[at(i)]! * (dy.data[at(i)]! - dot);
    }
  }
  return { shape: [...y.shape], data: dx };
}

/**
 * The gradient of softmax along `axis` from its output y: dx = y * (dy - sum(dy * y)).
 *
 *   %softmax/grad: f32[N,10] = softmax_grad(%grad, %softmax) {axis=1}
 */
export const softmaxGradOp = defineOp({
  name: 'softmax_grad',
  summary: 'the gradient of softmax from its output: y * (dy - sum(dy * y)) along an axis',
  traits: ['pure'],
  attrs: { axis: Type.Integer({ minimum: 1 }) },
  operands: () => ['dy', 'y'],
  infer: (xs, a) => {
    normalizeAxis(a.axis, xs[0]!.shape.length);
    return sameOperands('softmax_grad', xs);
  },
  reference: ([dy, y], a) => softmaxGradReference(dy!, y!, a.axis),
  emit: ({ result, attrs: a }) => {
    const { outer, n: len, inner } = aroundAxis([1, ...(result.shape.slice(1) as number[])], a.axis);
    const at = (i: string) => (inner === 1 ? `at + ${i}` : `at + ${i} * ${inner}`);
    const body = `for (let o = 0; o < ${times('n', outer)}; o++) {
  for (let r = 0; r < ${inner}; r++) {
    const at = o * ${len * inner} + r;
    let dot = 0;
    for (let i = 0; i < ${len}; i++) dot += dy[${at('i')}]! * s[${at('i')}]!;
    for (let i = 0; i < ${len}; i++) y[${at('i')}] = s[${at('i')}]! * (dy[${at('i')}]! - dot);
  }
}`;
    return kernel(`softmax_grad_${shapeTag(result)}_axis${a.axis}`, ['dy', 's'], `softmax gradient over axis ${a.axis} of ${shapeTag(result)}`, body);
  },
  grad: 'none',
});

/** Gradient ops of the activations (`activation_grad`, `softmax_grad`). */
export const activationGradOps: OpDef[] = [activationGradOp, softmaxGradOp] as OpDef[];
