/**
 * Dropout: in training, zero each element with probability `rate` and scale
 * the rest by 1 / (1 - rate) (inverted dropout); at inference, the identity.
 *
 *   %drop1: f32[N,64] = dropout(%activation) {rate=0.5, seed=null}
 */
import { Type } from '@sinclair/typebox';
import { batched } from '../ir/types.js';
import { alias } from './emit.js';
import { show } from './keras-def.js';
import { defineFamily, defineLayer, defineOp } from './op-def.js';

export const dropoutOp = defineOp({
  name: 'dropout',
  summary: 'inverted dropout in training, identity at inference',
  traits: ['pure', 'elementwise', 'training-dependent'],
  identity: () => true,
  attrs: { rate: Type.Number({ minimum: 0, exclusiveMaximum: 1 }), seed: Type.Union([Type.Integer(), Type.Null()]) },
  operands: () => ['x'],
  examples: [
    { attrs: { rate: 0.5, seed: null }, operands: [batched([5])] },
    { note: 'seeded, rank 4', attrs: { rate: 0.2, seed: 7 }, operands: [batched([2, 2, 3])] },
  ],
  infer: ([x]) => x!,
  reference: ([x]) => x!, // inference: the identity
  emit: () => alias,
  // Training: x * mask, the mask drawn by the trainer each step (0 with
  // probability `rate`, else 1 / (1 - rate)); rate 0 stays the identity.
  training: (t, { operands: [x], attrs: a, type, result }) =>
    a.rate === 0 ? x! : t.op('multiply', [x!, t.dropoutMask(type, a.rate, a.seed)], {}, result),
  // The identity at inference, in whichever layout the input has.
  onnx: (b, n) => {
    const layout = b.layoutFor(n.operands);
    b.produce(n, layout, (out) => b.emit('Identity', [b.in(n.operands[0]!, layout)], [out]));
  },
  // As the identity it is outside training (in training it has become multiply(x, mask) first): dx = dy.
  grad: (_g, _node, dy) => [() => dy],
});

export const dropoutLayer = defineLayer({
  type: 'dropout',
  keras: 'Dropout',
  kerasImport: {
    classes: ['Dropout'],
    fromConfig: (c) => {
      c.set('rate', c.number('rate'));
      // dropout is the identity at inference; only training would drop otherwise than Keras
      const noise = c.optional('noise_shape', (k) => c.get(k));
      if (noise !== undefined) c.warn('noise_shape', `noise_shape ${show(noise)} is not kept: training drops each element independently (inference is unaffected)`);
      c.set('seed', c.optional('seed', (k) => c.int(k, Number.MIN_SAFE_INTEGER)));
    },
  },
  kerasExport: (a) => ({ className: 'Dropout', config: { rate: a.rate, seed: a.seed ?? null, noise_shape: null } }),
  examples: [{ attrs: { rate: 0.25, seed: 7 }, inputs: [[6]] }],
  namePrefix: 'dropout',
  summary: 'dropout',
  attrs: {
    rate: Type.Number({ minimum: 0, exclusiveMaximum: 1, description: 'fraction of elements to drop' }),
    seed: Type.Optional(Type.Integer({ description: 'seed of this layer’s mask stream' })),
  },
  positional: ['rate'],
  arity: [1, 1],
  lower: (ctx, [x], a) => ctx.op('dropout', [x!], { rate: a.rate, seed: a.seed ?? null }),
});

export const dropoutFamily = defineFamily({ ops: [dropoutOp], layers: [dropoutLayer] });
