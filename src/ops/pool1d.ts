/**
 * 1-D pooling over [N, steps, channels] (Keras MaxPooling1D, AveragePooling1D,
 * GlobalMaxPooling1D, GlobalAveragePooling1D) as layers over the 2-D pool ops:
 * [N, L, C] has the bytes of [N, 1, L, C], so each layer reshapes to that
 * view, pools with a 1 x pool_size window (or globally) and reshapes back.
 *
 *   %max_pooling1d/rows: f32[N,1,8,3] = reshape(%x) {shape=[1,8,3]}
 *   %max_pooling1d/pool: f32[N,1,4,3] = max_pool2d(%max_pooling1d/rows) {pool_size=[1,2], strides=[1,2], padding="valid"}
 *   %max_pooling1d: f32[N,4,3] = reshape(%max_pooling1d/pool) {shape=[4,3]}
 *
 * No ops of their own: pools have no weights, reshapes are free (aliases in
 * generated code), and the 2-D ops bring their kernels, gradients and ONNX
 * forms. (conv1d, which has a kernel in Keras's layout, is its own op:
 * `conv1d.ts`.)
 */
import { Type } from '@sinclair/typebox';
import { Padding } from './conv/window.js';
import { kerasInt1 } from './conv1d.js';
import type { LowerContext } from './op-def.js';
import { defineFamily, defineLayer, dim, expectRank, ShapeError } from './op-def.js';

/** x [N, L, C] as [N, 1, L, C]; returns the view and (L, C). */
function rows(ctx: LowerContext, x: string, layer: string): { view: string; steps: number; channels: number } {
  const t = ctx.typeOf(x);
  expectRank(t, 3, layer);
  const [steps, channels] = [dim(t, 1), dim(t, 2)];
  return { view: ctx.op('reshape', [x], { shape: [1, steps, channels] }, 'rows'), steps, channels };
}

function poolLayer(type: string, op: string, keras: string, kerasAlias: string, namePrefix: string) {
  return defineLayer({
    type,
    aliases: [namePrefix],
    keras,
    kerasImport: {
      classes: [keras, kerasAlias],
      fromConfig: (c) => {
        const pool = kerasInt1(c, 'pool_size') ?? 2;
        c.set('pool_size', pool);
        const strides = kerasInt1(c, 'strides');
        if (strides !== undefined && strides !== pool) c.set('strides', strides);
        c.set('padding', c.padding());
        c.dataFormat();
      },
    },
    kerasExport: (a) => ({
      className: keras,
      config: { pool_size: [a.pool_size], strides: [a.strides ?? a.pool_size], padding: a.padding, data_format: 'channels_last' },
    }),
    examples: [
      { attrs: { pool_size: 3, strides: 2, padding: 'same' }, inputs: [[7, 2]] },
      { attrs: { pool_size: 4, strides: 1 }, inputs: [[5, 3]] },
    ],
    namePrefix,
    summary: `1-D ${op === 'max_pool2d' ? 'max' : 'average'} pooling`,
    attrs: {
      pool_size: Type.Integer({ minimum: 1, default: 2 }),
      strides: Type.Optional(Type.Integer({ minimum: 1, description: 'default: pool_size' })),
      padding: Padding,
    },
    positional: ['pool_size'],
    arity: [1, 1],
    lower: (ctx, [x], a) => {
      const { view, steps, channels } = rows(ctx, x!, type);
      if (a.padding === 'valid' && steps < a.pool_size) throw new ShapeError(`an input of ${steps} steps is shorter than pool_size ${a.pool_size}`);
      const attrs = { pool_size: [1, a.pool_size], strides: [1, a.strides ?? a.pool_size], padding: a.padding };
      const pooled = ctx.op(op, [view], attrs, 'pool');
      return ctx.op('reshape', [pooled], { shape: [dim(ctx.typeOf(pooled), 2), channels] });
    },
  });
}

function globalPoolLayer(type: string, op: string, keras: string, kerasAlias: string, namePrefix: string) {
  return defineLayer({
    type,
    aliases: [namePrefix],
    keras,
    kerasImport: {
      classes: [keras, kerasAlias],
      fromConfig: (c) => {
        c.dataFormat();
        c.set('keepdims', c.optional('keepdims', (k) => c.bool(k)));
      },
    },
    kerasExport: (a) => ({ className: keras, config: { data_format: 'channels_last', keepdims: a.keepdims } }),
    examples: [{ attrs: { keepdims: true }, inputs: [[5, 3]] }, { attrs: {}, inputs: [[4, 2]] }],
    namePrefix,
    summary: `global ${op.startsWith('global_max') ? 'max' : 'average'} pooling over the steps`,
    attrs: { keepdims: Type.Boolean({ default: false, description: 'keep the steps axis: [1, channels]' }) },
    arity: [1, 1],
    lower: (ctx, [x], a) => {
      const { view, channels } = rows(ctx, x!, type);
      if (!a.keepdims) return ctx.op(op, [view], { keepdims: false });
      return ctx.op('reshape', [ctx.op(op, [view], { keepdims: false }, 'pool')], { shape: [1, channels] });
    },
  });
}

/** Layers only: the 1-D pools lower to the pool family's 2-D ops. */
export const pool1dFamily = defineFamily({
  ops: [],
  layers: [
    poolLayer('max_pool1d', 'max_pool2d', 'MaxPooling1D', 'MaxPool1D', 'max_pooling1d'),
    poolLayer('avg_pool1d', 'avg_pool2d', 'AveragePooling1D', 'AvgPool1D', 'average_pooling1d'),
    globalPoolLayer('global_max_pool1d', 'global_max_pool2d', 'GlobalMaxPooling1D', 'GlobalMaxPool1D', 'global_max_pooling1d'),
    globalPoolLayer('global_avg_pool1d', 'global_avg_pool2d', 'GlobalAveragePooling1D', 'GlobalAvgPool1D', 'global_average_pooling1d'),
  ],
});
