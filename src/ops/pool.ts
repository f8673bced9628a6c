/**
 * Pooling over NHWC tensors: max_pool2d, avg_pool2d and their global forms.
 *
 *   %max_pooling2d: f32[N,12,12,64] = max_pool2d(%relu_1) {pool_size=[2,2], strides=[2,2], padding="valid"}
 *
 * `strides` defaults to `pool_size` (Keras). Average pooling with `same`
 * padding averages over the valid cells only (Keras/TF semantics).
 */
import { Type } from '@sinclair/typebox';
import { tensor } from '../ir/types.js';
import { convOutputLength, intPair, pair, Padding } from './conv.js';
import { defineLayer, defineOp, dim, expectRank, formatShape, ShapeError, type OpDef } from './op-def.js';

const Pair = Type.Array(Type.Integer({ minimum: 1 }), { minItems: 2, maxItems: 2 });

function poolOp(name: string, summary: string): OpDef {
  return defineOp({
    name,
    summary,
    traits: ['pure'],
    attrs: { pool_size: Pair, strides: Pair, padding: Padding },
    operands: () => ['x'],
    infer: ([x], a) => {
      expectRank(x!, 4, name);
      const out = [0, 1].map((i) =>
        convOutputLength(dim(x!, i + 1), a.pool_size[i]!, a.strides[i]!, a.padding as Padding),
      );
      if (out[0]! < 1 || out[1]! < 1) {
        throw new ShapeError(
          `input ${formatShape(x!.shape.slice(1))} is smaller than pool_size ${formatShape(a.pool_size)}`,
        );
      }
      return tensor(['N', out[0]!, out[1]!, dim(x!, 3)]);
    },
  });
}

function globalPoolOp(name: string, summary: string): OpDef {
  return defineOp({
    name,
    summary,
    traits: ['pure'],
    attrs: { keepdims: Type.Boolean() },
    operands: () => ['x'],
    infer: ([x], a) => {
      expectRank(x!, 4, name);
      return tensor(a.keepdims ? ['N', 1, 1, dim(x!, 3)] : ['N', dim(x!, 3)]);
    },
  });
}

export const poolOps: OpDef[] = [
  poolOp('max_pool2d', 'maximum over each window'),
  poolOp('avg_pool2d', 'mean over each window (valid cells only)'),
  globalPoolOp('global_max_pool2d', 'maximum over height and width'),
  globalPoolOp('global_avg_pool2d', 'mean over height and width'),
];

function poolLayer(type: string, op: string, keras: string, namePrefix: string) {
  return defineLayer({
    type,
    keras,
    namePrefix,
    summary: `${op === 'max_pool2d' ? 'max' : 'average'} pooling`,
    attrs: {
      pool_size: intPair(2),
      strides: Type.Optional(intPair()),
      padding: Padding,
    },
    positional: ['pool_size'],
    arity: [1, 1],
    lower: (ctx, [x], a) => {
      const poolSize = pair(a.pool_size);
      const strides = a.strides === undefined ? poolSize : pair(a.strides);
      return ctx.op(op, [x!], { pool_size: poolSize, strides, padding: a.padding });
    },
  });
}

function globalPoolLayer(type: string, op: string, keras: string, namePrefix: string) {
  return defineLayer({
    type,
    keras,
    namePrefix,
    summary: `global ${op.startsWith('global_max') ? 'max' : 'average'} pooling`,
    attrs: { keepdims: Type.Boolean({ default: false }) },
    arity: [1, 1],
    lower: (ctx, [x], a) => ctx.op(op, [x!], { keepdims: a.keepdims }),
  });
}

export const poolLayers = [
  poolLayer('max_pool2d', 'max_pool2d', 'MaxPooling2D', 'max_pooling2d'),
  poolLayer('avg_pool2d', 'avg_pool2d', 'AveragePooling2D', 'average_pooling2d'),
  globalPoolLayer('global_max_pool2d', 'global_max_pool2d', 'GlobalMaxPooling2D', 'global_max_pooling2d'),
  globalPoolLayer('global_avg_pool2d', 'global_avg_pool2d', 'GlobalAveragePooling2D', 'global_average_pooling2d'),
];
