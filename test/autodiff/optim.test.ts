/**
 * Optimizers: Keras defaults, the state and update list buildOptimizer
 * declares, three steps of each optimizer (run by the reference interpreter)
 * against a plain transcription of Keras 3's update code, and the emitted
 * update kernels against the reference kernels.
 */
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/autodiff/builder.js';
import { buildOptimizer, resolveOptimizer, type ResolvedOptimizer } from '../../src/autodiff/optimizers.js';
import type { TrainingSpec } from '../../src/frontend/spec.js';
import { interpret } from '../../src/interp/interpret.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { tensor, type Attrs } from '../../src/ir/types.js';
import { randomValues } from '../helpers/gradcheck.js';
import { runKernel } from '../helpers/kernel.js';
import { expectClose, reference, t } from '../helpers/tensors.js';

describe('resolveOptimizer', () => {
  it('fills in Keras defaults for the string form', () => {
    expect(resolveOptimizer('sgd')).toEqual({ type: 'sgd', learning_rate: 0.01, momentum: 0, nesterov: false });
    expect(resolveOptimizer('adam')).toEqual({ type: 'adam', learning_rate: 0.001, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false });
    expect(resolveOptimizer('adamw')).toEqual({
      type: 'adamw', learning_rate: 0.001, weight_decay: 0.004, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false,
    });
    expect(resolveOptimizer('rmsprop')).toEqual({ type: 'rmsprop', learning_rate: 0.001, rho: 0.9, momentum: 0, epsilon: 1e-7, centered: false });
  });
  it('keeps what the object form gives', () => {
    const spec = { type: 'sgd', momentum: 0.9 } as TrainingSpec['optimizer'];
    expect(resolveOptimizer(spec)).toEqual({ type: 'sgd', learning_rate: 0.01, momentum: 0.9, nesterov: false });
    const rms = { type: 'rmsprop', learning_rate: 0.1, centered: true } as TrainingSpec['optimizer'];
    expect(resolveOptimizer(rms)).toMatchObject({ learning_rate: 0.1, centered: true, rho: 0.9 });
  });
});

// ---------------------------------------------------------------------------
// Keras 3's update_step, transcribed on plain arrays (one weight).

interface KerasState {
  w: number[];
  iterations: number;
  slots: Record<string, number[]>;
}

function kerasStep(opt: ResolvedOptimizer, s: KerasState, g: number[], lr: number): void {
  const slot = (name: string) => (s.slots[name] ??= g.map(() => 0));
  const each = (f: (i: number) => void) => g.forEach((_, i) => f(i));
  if (opt.type === 'sgd') {
    if (opt.momentum !== 0) {
      const m = slot('momentum');
      each((i) => {
        m[i] = -g[i]! * lr + m[i]! * opt.momentum;
        s.w[i] = opt.nesterov ? s.w[i]! + (-g[i]! * lr + m[i]! * opt.momentum) : s.w[i]! + m[i]!;
      });
    } else each((i) => (s.w[i] = s.w[i]! - g[i]! * lr));
  } else if (opt.type === 'adam' || opt.type === 'adamw') {
    if (opt.type === 'adamw') each((i) => (s.w[i] = s.w[i]! - s.w[i]! * opt.weight_decay * lr));
    const localStep = s.iterations + 1;
    const alpha = (lr * Math.sqrt(1 - Math.pow(opt.beta_2, localStep))) / (1 - Math.pow(opt.beta_1, localStep));
    const m = slot('momentum');
    const v = slot('velocity');
    each((i) => {
      m[i] = m[i]! + (g[i]! - m[i]!) * (1 - opt.beta_1);
      v[i] = v[i]! + (g[i]! * g[i]! - v[i]!) * (1 - opt.beta_2);
      let denom = v[i]!;
      if (opt.amsgrad) {
        const vHat = slot('velocity_hat');
        vHat[i] = Math.max(vHat[i]!, v[i]!);
        denom = vHat[i]!;
      }
      s.w[i] = s.w[i]! - (m[i]! * alpha) / (Math.sqrt(denom) + opt.epsilon);
    });
  } else {
    const vel = slot('velocity');
    each((i) => {
      vel[i] = opt.rho * vel[i]! + (1 - opt.rho) * g[i]! * g[i]!;
      let denominator = vel[i]! + opt.epsilon;
      if (opt.centered) {
        const avg = slot('average_gradient');
        avg[i] = opt.rho * avg[i]! + (1 - opt.rho) * g[i]!;
        denominator = vel[i]! - avg[i]! * avg[i]! + opt.epsilon;
      }
      const increment = (lr * g[i]!) / Math.sqrt(denominator);
      if (opt.momentum > 0) {
        const m = slot('momentum');
        m[i] = opt.momentum * m[i]! + increment;
        s.w[i] = s.w[i]! - m[i]!;
      } else s.w[i] = s.w[i]! - increment;
    });
  }
  s.iterations += 1;
}

// ---------------------------------------------------------------------------

const weightShapes: Record<string, number[]> = { 'dense/kernel': [2, 3], 'dense/bias': [3] };

/** Two weights with gradients held in parameters `<weight>/grad`, and the optimizer over them. */
function optimizerGraph(opt: ResolvedOptimizer, learningRate?: number) {
  const b = new GraphBuilder({ inputs: [], params: [], nodes: [] });
  const grads = Object.entries(weightShapes).map(([name, shape]) => {
    const param = b.addParam({ name, type: tensor(shape), trainable: true, init: { type: 'zeros', args: {} } });
    const grad = b.addParam({ name: `${name}/grad`, type: tensor(shape), trainable: false, init: { type: 'zeros', args: {} } });
    return { param, grad };
  });
  const { updates } = buildOptimizer(b, opt, grads, learningRate);
  return { b, updates, graph: b.finish('optimizer', updates.map(([, v]) => v)) };
}

/** Decreasing gradients, so that AMSGrad's maximum differs from the velocity. */
const gradientAt = (name: string, step: number) => {
  const g = randomValues(weightShapes[name]!, 10 * step + name.length, 1);
  return { shape: g.shape, data: g.data.map((v) => v * [1, 0.3, 0.05][step]!) };
};

const configs: [string, TrainingSpec['optimizer'], number?][] = [
  ['sgd', 'sgd'],
  ['sgd momentum', { type: 'sgd', learning_rate: 0.1, momentum: 0.9 } as TrainingSpec['optimizer']],
  ['sgd nesterov', { type: 'sgd', learning_rate: 0.1, momentum: 0.5, nesterov: true } as TrainingSpec['optimizer']],
  ['adam', 'adam'],
  ['adam amsgrad', { type: 'adam', learning_rate: 0.01, beta_2: 0.5, amsgrad: true } as TrainingSpec['optimizer']],
  ['adamw', { type: 'adamw', learning_rate: 0.01 } as TrainingSpec['optimizer']],
  ['adamw amsgrad, learning rate override', { type: 'adamw', weight_decay: 0.1, beta_2: 0.5, amsgrad: true } as TrainingSpec['optimizer'], 0.05],
  ['rmsprop', 'rmsprop'],
  ['rmsprop centered', { type: 'rmsprop', learning_rate: 0.01, centered: true } as TrainingSpec['optimizer']],
  ['rmsprop momentum', { type: 'rmsprop', learning_rate: 0.01, momentum: 0.5 } as TrainingSpec['optimizer']],
  ['rmsprop centered momentum', { type: 'rmsprop', centered: true, momentum: 0.9, rho: 0.8 } as TrainingSpec['optimizer']],
];

describe('three steps equal Keras 3 update_step', () => {
  it.each(configs)('%s', (_, spec, learningRate) => {
    const opt = resolveOptimizer(spec);
    const { b, graph, updates } = optimizerGraph(opt, learningRate);
    const params: Record<string, Tensor> = {};
    for (const p of b.params) params[p.name] = { shape: p.type.shape as number[], data: Float64Array.from(p.value ?? []) };
    const keras: Record<string, KerasState> = {};
    for (const [name, shape] of Object.entries(weightShapes)) {
      params[name] = randomValues(shape, name.length + 100);
      keras[name] = { w: [...params[name]!.data], iterations: 0, slots: {} };
    }
    for (let step = 0; step < 3; step++) {
      for (const name of Object.keys(weightShapes)) {
        params[`${name}/grad`] = gradientAt(name, step);
        // the learning rate is an f32 parameter
        kerasStep(opt, keras[name]!, [...gradientAt(name, step).data], Math.fround(learningRate ?? opt.learning_rate));
      }
      const values = interpret(graph, {}, { params });
      for (const [param, value] of updates) params[param] = values[value]!;
    }
    for (const [name, state] of Object.entries(keras)) {
      expectClose(params[name]!, state.w, 1e-12);
      for (const [slot, value] of Object.entries(state.slots)) expectClose(params[`optimizer/${slot}/${name}`]!, value, 1e-12);
    }
    expect([...params['optimizer/iterations']!.data]).toEqual([3]);
    expect(params['optimizer/learning_rate']!.data[0]).toBeCloseTo(learningRate ?? opt.learning_rate, 7);
  });
});

describe('buildOptimizer', () => {
  it('declares the learning rate, the iteration count and Keras-named slots (zeros, not trainable)', () => {
    const { b, updates } = optimizerGraph(resolveOptimizer({ type: 'adam', amsgrad: true } as TrainingSpec['optimizer']), 0.5);
    const added = b.params.filter((p) => !(p.name in weightShapes) && !p.name.endsWith('/grad'));
    expect(added.map((p) => p.name)).toEqual([
      'optimizer/learning_rate',
      'optimizer/iterations',
      ...['momentum', 'velocity', 'velocity_hat'].map((s) => `optimizer/${s}/dense/kernel`),
      ...['momentum', 'velocity', 'velocity_hat'].map((s) => `optimizer/${s}/dense/bias`),
    ]);
    expect(added.every((p) => !p.trainable)).toBe(true);
    expect([...added[0]!.value!]).toEqual([0.5]);
    expect(added.slice(1).every((p) => p.value!.every((v) => v === 0))).toBe(true);
    expect(b.typeOf('optimizer/velocity_hat/dense/kernel').shape).toEqual([2, 3]);
    // every weight, every slot and the iteration count, once each
    expect(updates).toHaveLength(2 * 4 + 1);
    expect(new Set(updates.map(([p]) => p))).toEqual(new Set([...Object.keys(weightShapes), ...added.slice(1).map((p) => p.name)]));
  });
  it.each([
    ['sgd', 2 + 1],
    [{ type: 'sgd', momentum: 0.9 }, 4 + 1],
    [{ type: 'rmsprop', centered: true, momentum: 0.5 }, 8 + 1],
    ['adamw', 6 + 1],
  ] as [TrainingSpec['optimizer'], number][])('%j: %i updates', (spec, count) => {
    expect(optimizerGraph(resolveOptimizer(spec)).updates).toHaveLength(count);
  });
  it.each(configs)("no update depends on another weight's or the iteration count's new value: %s", (_, spec) => {
    const { b, updates } = optimizerGraph(resolveOptimizer(spec));
    const byResult = new Map(b.nodes.map((n) => [n.result, n]));
    const ancestors = (v: string, seen = new Set<string>()): Set<string> => {
      for (const o of byResult.get(v)?.operands ?? []) if (!seen.has(o)) ancestors(o, seen.add(o));
      return seen;
    };
    const owner = (param: string) => Object.keys(weightShapes).find((w) => param === w || param.endsWith(`/${w}`)) ?? param;
    for (const [target, value] of updates) {
      const deps = ancestors(value);
      for (const [other, otherValue] of updates) {
        if (owner(other) !== owner(target)) expect(deps.has(otherValue), `${target} reads ${other}'s new value`).toBe(false);
      }
    }
  });
});

describe('emitted update kernels equal the reference kernels', () => {
  const w = () => randomValues([2, 3], 1);
  const g = () => randomValues([2, 3], 2);
  const positive = (seed: number) => ({ ...randomValues([2, 3], seed), data: randomValues([2, 3], seed).data.map((v) => 1 + Math.abs(v)) });
  const lr = t([1], [0.01]);
  const cases: [string, Tensor[], Attrs][] = [
    ['ema', [w(), g()], { decay: 0.9, square: false }],
    ['ema', [positive(3), g()], { decay: 0.999, square: true }],
    ['sgd_update', [w(), g(), lr], {}],
    ['momentum_velocity', [w(), g(), lr], { momentum: 0.9 }],
    ['nesterov_update', [w(), randomValues([2, 3], 4), g(), lr], { momentum: 0.5 }],
    ['adam_update', [w(), g(), positive(5), lr, t([1], [2])], { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7 }],
    ['maximum', [w(), g()], {}],
    ['weight_decay', [w(), lr], { rate: 0.004 }],
    ['rmsprop_increment', [g(), positive(6), lr], { epsilon: 1e-7, centered: false }],
    ['rmsprop_increment', [g(), positive(6), randomValues([2, 3], 7, 0.5), lr], { epsilon: 1e-7, centered: true }],
    ['momentum_accumulate', [w(), g()], { momentum: 0.9 }],
    ['apply_step', [w(), g()], {}],
    ['increment', [t([1], [41])], {}],
  ];
  it.each(cases)('%s', (op, operands, attrs) => {
    const got = runKernel(op, operands, attrs, operands.map(() => false));
    expectClose(got, reference(op, operands, attrs), 1e-6);
  });
  it('by hand: ema, adam_update at its first step, increment', () => {
    expect([...reference('ema', [t([2], [1, 2]), t([2], [3, -1])], { decay: 0.75, square: true }).data]).toEqual([0.75 + 0.25 * 9, 1.5 + 0.25]);
    // t = 1: alpha = lr sqrt(1 - b2) / (1 - b1); with m = (1 - b1) g and v = (1 - b2) g² the step is lr g / |g| (eps 0)
    const step = reference('adam_update', [t([2], [0, 0]), t([2], [0.1 * 4, 0.1 * -2]), t([2], [0.001 * 16, 0.001 * 4]), t([1], [0.5]), t([1], [0])], {
      beta_1: 0.9, beta_2: 0.999, epsilon: 0,
    });
    expectClose(step, [-0.5, 0.5], 1e-12);
    expect([...reference('increment', [t([1], [0])]).data]).toEqual([1]);
  });
});
