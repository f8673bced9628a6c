/**
 * Optimizer updates (Keras 3 formulas): elementwise ops over weight-shaped
 * operands, each with one result, the new value of a weight or of one of its
 * optimizer slots. The learning rate and the iteration count are f32[1]
 * operands (parameters of the step graph), so a trainer can change them
 * between steps without recompiling.
 *
 *   %optimizer/momentum/dense/kernel/next: f32[784,64] = ema(%optimizer/momentum/dense/kernel, %dense/kernel/grad) {decay=0.9, square=false}
 *   %dense/kernel/next: f32[784,64] = adam_update(%dense/kernel, %optimizer/momentum/dense/kernel/next, ..., %optimizer/learning_rate, %optimizer/iterations) {...}
 *
 * How the optimizers compose them is in `autodiff/optimizers.ts`. Every op
 * here computes in float64 and stores float32; none is differentiated.
 */
import { Type, type Static, type TObject, type TProperties } from '@sinclair/typebox';
import { formatType, sameType, tensor, type TensorType } from '../ir/types.js';
import { kernel, lit, shapeTag, total } from './emit.js';
import { defineFamily, defineOp, ShapeError, type NamedOpDef, type OpExample, type Trait } from './op-def.js';

/** Operand roles that are f32[1] scalars; every other operand has the result's shape. */
const scalarRoles = new Set(['lr', 'iterations']);

interface UpdateSpec<N extends string, P extends TProperties> {
  readonly name: N;
  readonly summary: string;
  readonly attrs: P;
  /** No scalar operands: one function per element, every operand of the result's type. */
  readonly elementwise?: boolean;
  /** Roles in operand order: the weight-shaped ones, then the scalars (`lr`, `iterations`). */
  operands(a: Static<TObject<P>>): readonly string[];
  /** A few attribute sets with operand types (`OpDef.examples`). */
  readonly examples: readonly OpExample<Static<TObject<P>>>[];
  /** The new value of one element from each operand's value there (scalars: their one value). */
  value(x: Readonly<Record<string, number>>, a: Static<TObject<P>>): number;
  /**
   * The same as code: `value` reads `role[i]!` and `role[0]!` (scalars), and
   * may use constants that `pre` computes once per call.
   */
  code(a: Static<TObject<P>>): { readonly pre?: string; readonly value: string };
}

function checkOperands(name: string, roles: readonly string[], types: readonly TensorType[]): TensorType {
  if (types.length !== roles.length) throw new ShapeError(`${name} takes ${roles.length} operands (${roles.join(', ')}), got ${types.length}`);
  const first = types[0]!;
  roles.forEach((role, i) => {
    const t = types[i]!;
    if (scalarRoles.has(role)) {
      if (t.shape.length !== 1 || t.shape[0] !== 1) throw new ShapeError(`${name}: ${role} must be f32[1], got ${formatType(t)}`);
    } else if (!sameType(t, first)) {
      throw new ShapeError(`${name}: ${role} must have the type of ${roles[0]} (${formatType(first)}), got ${formatType(t)}`);
    }
  });
  return first;
}

function updateOp<const N extends string, P extends TProperties>(spec: UpdateSpec<N, P>): NamedOpDef<N> {
  const traits: Trait[] = spec.elementwise ? ['pure', 'elementwise'] : ['pure'];
  return defineOp({
    name: spec.name,
    summary: spec.summary,
    traits,
    attrs: spec.attrs,
    operands: spec.operands,
    examples: spec.examples,
    infer: (types, a) => checkOperands(spec.name, spec.operands(a), types),
    reference: (inputs, a) => {
      const roles = spec.operands(a);
      const data = new Float64Array(inputs[0]!.data.length);
      const x: Record<string, number> = {};
      for (let i = 0; i < data.length; i++) {
        roles.forEach((role, k) => (x[role] = inputs[k]!.data[scalarRoles.has(role) ? 0 : i]!));
        data[i] = spec.value(x, a);
      }
      return { shape: [...inputs[0]!.shape], data };
    },
    emit: ({ operands, result, attrs: a }) => {
      const { pre, value } = spec.code(a);
      const loop = `for (let i = 0; i < ${total(result)}; i++) y[i] = ${value};`;
      return kernel(`${spec.name}_${shapeTag(operands[0]!) || 'scalar'}`, spec.operands(a), spec.summary, pre ? `${pre}\n${loop}` : loop);
    },
    onnx: { notExportable: 'an optimizer update: only the training step computes it' },
    grad: 'none',
  }) as unknown as NamedOpDef<N>;
}

/**
 * decay * state + (1 - decay) * x (or x²): Adam's moments, RMSprop's
 * velocity and average gradient, batchnorm's moving statistics.
 */
export const emaOp = updateOp({
  name: 'ema',
  elementwise: true,
  summary: 'exponential moving average: decay * state + (1 - decay) * x (or x²)',
  attrs: { decay: Type.Number(), square: Type.Boolean() },
  operands: () => ['state', 'x'],
  examples: [
    { attrs: { decay: 0.9, square: false }, operands: [tensor([2, 3]), tensor([2, 3])] },
    { note: 'of squares', attrs: { decay: 0.99, square: true }, operands: [tensor([4]), tensor([4])] },
  ],
  value: (x, a) => a.decay * x['state']! + (1 - a.decay) * (a.square ? x['x']! ** 2 : x['x']!),
  code: (a) => ({ value: `${lit(a.decay)} * state[i]! + ${lit(1 - a.decay)} * ${a.square ? 'x[i]! ** 2' : 'x[i]!'}` }),
});

/** Plain SGD: w - lr g. */
export const sgdUpdateOp = updateOp({
  name: 'sgd_update',
  summary: 'gradient descent step: w - lr * g',
  attrs: {},
  operands: () => ['w', 'g', 'lr'],
  examples: [{ attrs: {}, operands: [tensor([2, 3]), tensor([2, 3]), tensor([1])], values: [undefined, undefined, { min: 0.001, max: 0.1 }] }],
  value: (x) => x['w']! - x['lr']! * x['g']!,
  code: () => ({ pre: 'const rate = lr[0]!;', value: 'w[i]! - rate * g[i]!' }),
});

/** SGD with momentum, the velocity: momentum v - lr g (then w + v, or Nesterov's step). */
export const momentumVelocityOp = updateOp({
  name: 'momentum_velocity',
  summary: 'SGD momentum velocity: momentum * v - lr * g',
  attrs: { momentum: Type.Number() },
  operands: () => ['v', 'g', 'lr'],
  examples: [{ attrs: { momentum: 0.9 }, operands: [tensor([3, 2]), tensor([3, 2]), tensor([1])], values: [undefined, undefined, { min: 0.001, max: 0.1 }] }],
  value: (x, a) => a.momentum * x['v']! - x['lr']! * x['g']!,
  code: (a) => ({ pre: 'const rate = lr[0]!;', value: `${lit(a.momentum)} * v[i]! - rate * g[i]!` }),
});

/** Nesterov momentum, from the new velocity: w + momentum v - lr g. */
export const nesterovUpdateOp = updateOp({
  name: 'nesterov_update',
  summary: 'SGD Nesterov step: w + momentum * v - lr * g (v the new velocity)',
  attrs: { momentum: Type.Number() },
  operands: () => ['w', 'v', 'g', 'lr'],
  examples: [{ attrs: { momentum: 0.9 }, operands: [tensor([5]), tensor([5]), tensor([5]), tensor([1])], values: [undefined, undefined, undefined, { min: 0.001, max: 0.1 }] }],
  value: (x, a) => x['w']! + a.momentum * x['v']! - x['lr']! * x['g']!,
  code: (a) => ({ pre: 'const rate = lr[0]!;', value: `w[i]! + ${lit(a.momentum)} * v[i]! - rate * g[i]!` }),
});

/**
 * Adam's step from the new moments, at step t = iterations + 1 (`iterations`
 * counts the steps before this one):
 * w - alpha m / (sqrt(v) + epsilon), alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t).
 */
export const adamUpdateOp = updateOp({
  name: 'adam_update',
  summary: 'Adam step: w - alpha * m / (sqrt(v) + epsilon), alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)',
  attrs: { beta_1: Type.Number(), beta_2: Type.Number(), epsilon: Type.Number() },
  operands: () => ['w', 'm', 'v', 'lr', 'iterations'],
  examples: [
    {
      attrs: { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 },
      operands: [tensor([2, 3]), tensor([2, 3]), tensor([2, 3]), tensor([1]), tensor([1])],
      values: [undefined, undefined, { min: 0.01, max: 1 }, { min: 0.001, max: 0.1 }, { min: 0, max: 10, integer: true }],
    },
  ],
  value: (x, a) => {
    const t = x['iterations']! + 1;
    const alpha = (x['lr']! * Math.sqrt(1 - a.beta_2 ** t)) / (1 - a.beta_1 ** t);
    return x['w']! - (alpha * x['m']!) / (Math.sqrt(x['v']!) + a.epsilon);
  },
  code: (a) => ({
    pre: `const t = iterations[0]! + 1;\nconst alpha = (lr[0]! * Math.sqrt(1 - (${lit(a.beta_2)}) ** t)) / (1 - (${lit(a.beta_1)}) ** t);`,
    value: `w[i]! - (alpha * m[i]!) / (Math.sqrt(v[i]!) + ${lit(a.epsilon)})`,
  }),
});

/** Elementwise max: AMSGrad's running maximum of the second moment. */
export const maximumOp = updateOp({
  name: 'maximum',
  elementwise: true,
  summary: 'elementwise maximum of two same-shaped values',
  attrs: {},
  operands: () => ['a', 'b'],
  examples: [{ attrs: {}, operands: [tensor([2, 3]), tensor([2, 3])] }],
  value: (x) => Math.max(x['a']!, x['b']!),
  code: () => ({ value: 'Math.max(a[i]!, b[i]!)' }),
});

/** AdamW's decoupled weight decay, before the Adam step: w - w * rate * lr. */
export const weightDecayOp = updateOp({
  name: 'weight_decay',
  summary: 'decoupled weight decay: w - w * rate * lr',
  attrs: { rate: Type.Number() },
  operands: () => ['w', 'lr'],
  examples: [{ attrs: { rate: 0.004 }, operands: [tensor([3, 3]), tensor([1])], values: [undefined, { min: 0.001, max: 0.1 }] }],
  value: (x, a) => x['w']! - x['w']! * a.rate * x['lr']!,
  code: (a) => ({ pre: `const decay = ${lit(a.rate)} * lr[0]!;`, value: 'w[i]! - w[i]! * decay' }),
});

/**
 * RMSprop's increment from the new velocity (and, centered, the new average
 * gradient): lr g / sqrt(velocity (- average²) + epsilon).
 */
export const rmspropIncrementOp = updateOp({
  name: 'rmsprop_increment',
  summary: 'RMSprop increment: lr * g / sqrt(velocity - average² (centered) + epsilon)',
  attrs: { epsilon: Type.Number(), centered: Type.Boolean() },
  operands: (a) => (a.centered ? ['g', 'velocity', 'average', 'lr'] : ['g', 'velocity', 'lr']),
  examples: [
    { attrs: { epsilon: 1e-7, centered: false }, operands: [tensor([2, 3]), tensor([2, 3]), tensor([1])], values: [undefined, { min: 0.1, max: 1 }, { min: 0.001, max: 0.1 }] },
    {
      // velocity >= 1 > average², as the moving averages of g² and g keep it
      note: 'centered',
      attrs: { epsilon: 1e-7, centered: true },
      operands: [tensor([4]), tensor([4]), tensor([4]), tensor([1])],
      values: [undefined, { min: 1, max: 2 }, undefined, { min: 0.001, max: 0.1 }],
    },
  ],
  value: (x, a) => {
    const denominator = a.centered ? x['velocity']! - x['average']! ** 2 : x['velocity']!;
    return (x['lr']! * x['g']!) / Math.sqrt(denominator + a.epsilon);
  },
  code: (a) => ({
    pre: 'const rate = lr[0]!;',
    value: `(rate * g[i]!) / Math.sqrt(velocity[i]!${a.centered ? ' - average[i]! ** 2' : ''} + ${lit(a.epsilon)})`,
  }),
});

/** RMSprop's momentum: momentum m + increment. */
export const momentumAccumulateOp = updateOp({
  name: 'momentum_accumulate',
  elementwise: true,
  summary: 'momentum accumulation: momentum * m + x',
  attrs: { momentum: Type.Number() },
  operands: () => ['m', 'x'],
  examples: [{ attrs: { momentum: 0.9 }, operands: [tensor([4]), tensor([4])] }],
  value: (x, a) => a.momentum * x['m']! + x['x']!,
  code: (a) => ({ value: `${lit(a.momentum)} * m[i]! + x[i]!` }),
});

/** A computed step taken: w - step (RMSprop's increment or momentum). */
export const applyStepOp = updateOp({
  name: 'apply_step',
  elementwise: true,
  summary: 'a computed step taken: w - step',
  attrs: {},
  operands: () => ['w', 'step'],
  examples: [{ attrs: {}, operands: [tensor([2, 2]), tensor([2, 2])] }],
  value: (x) => x['w']! - x['step']!,
  code: () => ({ value: 'w[i]! - step[i]!' }),
});

/** The iteration count's next value: t + 1. */
export const incrementOp = updateOp({
  name: 'increment',
  elementwise: true,
  summary: 'the next iteration count: t + 1',
  attrs: {},
  operands: () => ['t'],
  examples: [{ attrs: {}, operands: [tensor([1])], values: [{ min: 0, max: 100, integer: true }] }],
  value: (x) => x['t']! + 1,
  code: () => ({ value: 't[i]! + 1' }),
});

export const optimizerOps = [
  emaOp,
  sgdUpdateOp,
  momentumVelocityOp,
  nesterovUpdateOp,
  adamUpdateOp,
  maximumOp,
  weightDecayOp,
  rmspropIncrementOp,
  momentumAccumulateOp,
  applyStepOp,
  incrementOp,
] as const;

export const optimFamily = defineFamily({ ops: optimizerOps });
