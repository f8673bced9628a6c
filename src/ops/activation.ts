/**
 * Activations: one elementwise op per function (softmax is per-row), the
 * generic `activation` layer, and a shorthand layer per function (`tanh`,
 * `leaky_relu(alpha: 0.1)`), as Keras offers `Activation('tanh')`.
 *
 * Every op here keeps its input type. `linear` is the identity, kept in the IR
 * when a spec asks for it so that `remove-identity` has something to remove.
 */
import { Type, type Static, type TProperties } from '@sinclair/typebox';
import type { Attrs, TensorType } from '../ir/types.js';
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
export const Epilogue = Type.Object(
  {
    op: Type.Union(epilogueNames.map((n) => Type.Literal(n))),
    alpha: Type.Optional(Type.Number()),
    approximate: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type Epilogue = Static<typeof Epilogue>;

/** The optional `epilogue` attribute of ops that can carry one. */
export const epilogueAttr = { epilogue: Type.Optional(Epilogue) };

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
