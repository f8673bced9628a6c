/**
 * The optimizer of a training step: its state as parameters of the step graph
 * and its updates as nodes (the ops of `ops/optim.ts`), Keras 3 formulas and
 * defaults.
 *
 * State (trainable: false, zeros unless said):
 *   optimizer/learning_rate   f32[1], the spec's learning rate (or the override)
 *   optimizer/iterations      f32[1], steps taken so far
 *   optimizer/<slot>/<param>  the weight's shape; Keras slot names: momentum,
 *                             velocity, velocity_hat (AMSGrad), average_gradient
 *
 * Each weight's new value reads only the old parameters, its gradient and its
 * own slots' new values; nothing reads the new iteration count, so a trainer
 * may write the updates back in any order once the step is computed.
 *
 *   sgd       v' = momentum v - lr g;  w' = w + v'  (nesterov: w + momentum v' - lr g);  no momentum: w - lr g
 *   adam      m' = ema(m, g; beta_1);  v' = ema(v, g²; beta_2);  (amsgrad: v̂' = max(v̂, v'))
 *             w' = w - alpha m' / (sqrt(v') + eps),  alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t)
 *   adamw     adam on w - w weight_decay lr
 *   rmsprop   vel' = ema(vel, g²; rho);  (centered: avg' = ema(avg, g; rho))
 *             inc = lr g / sqrt(vel' (- avg'²) + eps);  w' = w - inc  (momentum: m' = momentum m + inc; w' = w - m')
 */
import type { TSchema } from '@sinclair/typebox';
import { OptimizerSpec, type TrainingSpec } from '../spec/training.js';
import { tensor, type Attrs } from '../ir/types.js';
import type { GraphBuilder } from './builder.js';

/** An optimizer with every Keras default filled in (the fields of the spec's object forms). */
export type ResolvedOptimizer =
  | { readonly type: 'sgd'; readonly learning_rate: number; readonly momentum: number; readonly nesterov: boolean }
  | ({ readonly type: 'adam' } & AdamFields)
  | ({ readonly type: 'adamw'; readonly weight_decay: number } & AdamFields)
  | {
      readonly type: 'rmsprop';
      readonly learning_rate: number;
      readonly rho: number;
      readonly momentum: number;
      readonly epsilon: number;
      readonly centered: boolean;
    };

interface AdamFields {
  readonly learning_rate: number;
  readonly beta_1: number;
  readonly beta_2: number;
  readonly epsilon: number;
  readonly amsgrad: boolean;
}
export type OptimizerName = ResolvedOptimizer['type'];

/** The object forms of the spec's optimizer schema, by type: their `default`s are Keras's. */
const objectForms = new Map<string, Record<string, TSchema>>(
  (OptimizerSpec.anyOf as TSchema[])
    .filter((s) => s['properties'] !== undefined)
    .map((s) => {
      const properties = s['properties'] as Record<string, TSchema>;
      return [properties['type']!['const'] as string, properties];
    }),
);

/** The string or object form of the spec's optimizer, with every default filled in. */
export function resolveOptimizer(spec: TrainingSpec['optimizer']): ResolvedOptimizer {
  const given: Record<string, unknown> = typeof spec === 'string' ? { type: spec } : { ...spec };
  const properties = objectForms.get(given['type'] as string);
  if (!properties) throw new Error(`unknown optimizer ${String(given['type'])}`);
  for (const [key, schema] of Object.entries(properties)) {
    if (given[key] === undefined && schema['default'] !== undefined) given[key] = schema['default'];
  }
  return given as ResolvedOptimizer;
}

/** What one weight's update is built from. */
interface Step {
  readonly b: GraphBuilder;
  readonly param: string;
  readonly grad: string;
  readonly lr: string;
  readonly iterations: string;
  /** Declares the slot `optimizer/<name>/<param>` (zeros). */
  slot(name: string): string;
  /** Appends the new value of `target` (a parameter) and records the update. */
  update(target: string, op: string, operands: readonly string[], attrs?: Attrs): string;
}

export function buildOptimizer(
  b: GraphBuilder,
  opt: ResolvedOptimizer,
  grads: readonly { readonly param: string; readonly grad: string }[],
  learningRate?: number,
): { updates: [param: string, value: string][] } {
  const rate = learningRate ?? opt.learning_rate;
  const lr = scalarParam(b, 'optimizer/learning_rate', rate, { type: 'constant', args: { value: rate } });
  const iterations = scalarParam(b, 'optimizer/iterations', 0, { type: 'zeros', args: {} });
  const updates: [string, string][] = [];
  for (const { param, grad } of grads) {
    const type = b.typeOf(param);
    const size = type.shape.reduce<number>((n, d) => n * (d as number), 1);
    const step: Step = {
      b, param, grad, lr, iterations,
      slot: (name) =>
        b.addParam({ name: `optimizer/${name}/${param}`, type, trainable: false, init: { type: 'zeros', args: {} }, value: new Float32Array(size) }),
      update: (target, op, operands, attrs = {}) => {
        const value = b.naming(`${target}/next`, 'optimizer').op(op, operands, attrs);
        updates.push([target, value]);
        return value;
      },
    };
    stepOf[opt.type](step, opt as never);
  }
  updates.push([iterations, b.naming(`${iterations}/next`, 'optimizer').op('increment', [iterations], {})]);
  return { updates };
}

function scalarParam(b: GraphBuilder, name: string, value: number, init: { type: string; args: Record<string, number> }): string {
  return b.addParam({ name, type: tensor([1]), trainable: false, init, value: Float32Array.of(value) });
}

type Resolved<K extends OptimizerName> = Extract<ResolvedOptimizer, { type: K }>;

const stepOf: { [K in OptimizerName]: (s: Step, opt: Resolved<K>) => void } = {
  sgd: (s, opt) => {
    if (opt.momentum === 0) {
      s.update(s.param, 'sgd_update', [s.param, s.grad, s.lr]);
      return;
    }
    const v = s.slot('momentum');
    const velocity = s.update(v, 'momentum_velocity', [v, s.grad, s.lr], { momentum: opt.momentum });
    if (opt.nesterov) s.update(s.param, 'nesterov_update', [s.param, velocity, s.grad, s.lr], { momentum: opt.momentum });
    else s.update(s.param, 'add', [s.param, velocity]);
  },
  adam: (s, opt) => adamStep(s, opt, s.param),
  adamw: (s, opt) => {
    const decayed = s.b.naming(`${s.param}/decayed`, 'optimizer').op('weight_decay', [s.param, s.lr], { rate: opt.weight_decay });
    adamStep(s, opt, decayed);
  },
  rmsprop: (s, opt) => {
    const vel = s.slot('velocity');
    const velocity = s.update(vel, 'ema', [vel, s.grad], { decay: opt.rho, square: true });
    const operands = [s.grad, velocity];
    if (opt.centered) {
      const avg = s.slot('average_gradient');
      operands.push(s.update(avg, 'ema', [avg, s.grad], { decay: opt.rho, square: false }));
    }
    const increment = s.b
      .naming(`${s.param}/increment`, 'optimizer')
      .op('rmsprop_increment', [...operands, s.lr], { epsilon: opt.epsilon, centered: opt.centered });
    if (opt.momentum > 0) {
      const m = s.slot('momentum');
      s.update(s.param, 'apply_step', [s.param, s.update(m, 'momentum_accumulate', [m, increment], { momentum: opt.momentum })]);
    } else s.update(s.param, 'apply_step', [s.param, increment]);
  },
};

/** The Adam step of `w` (the parameter, or AdamW's decayed value of it). */
function adamStep(s: Step, opt: Resolved<'adam'> | Resolved<'adamw'>, w: string): void {
  const m = s.slot('momentum');
  const v = s.slot('velocity');
  const moment = s.update(m, 'ema', [m, s.grad], { decay: opt.beta_1, square: false });
  let second = s.update(v, 'ema', [v, s.grad], { decay: opt.beta_2, square: true });
  if (opt.amsgrad) {
    const vHat = s.slot('velocity_hat');
    second = s.update(vHat, 'maximum', [vHat, second]);
  }
  const attrs = { beta_1: opt.beta_1, beta_2: opt.beta_2, epsilon: opt.epsilon };
  s.update(s.param, 'adam_update', [w, moment, second, s.lr, s.iterations], attrs);
}
