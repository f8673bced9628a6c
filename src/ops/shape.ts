/**
 * Shape ops: `reshape` (Keras Reshape and Flatten lower to it). The batch
 * dimension is kept; `shape` is the per-example target shape, fully resolved.
 *
 *   %flatten: f32[N,9216] = reshape(%max_pooling2d) {shape=[9216]}
 */
import { Type } from '@sinclair/typebox';
import { batched, exampleShape, numel, sameType } from '../ir/types.js';
import { alias } from './emit.js';
import { show } from './keras-def.js';
import { defineFamily, defineLayer, defineOp, formatShape, ShapeError } from './op-def.js';

export const reshapeOp = defineOp({
  name: 'reshape',
  summary: 'reinterpret each example with a new shape (row-major order kept)',
  traits: ['pure', 'shape-only'],
  // A reshape to the shape it already has moves nothing.
  identity: (node, [x]) => sameType(x!, node.type),
  attrs: { shape: Type.Array(Type.Integer({ minimum: 1 })) },
  operands: () => ['x'],
  examples: [
    { note: 'flatten', attrs: { shape: [6] }, operands: [batched([2, 3])] },
    { attrs: { shape: [3, 2] }, operands: [batched([6])] },
    { attrs: { shape: [4, 3] }, operands: [batched([2, 2, 3])] },
    { note: 'the identity', attrs: { shape: [2, 3] }, operands: [batched([2, 3])] },
  ],
  infer: ([x], a) => {
    const from = exampleShape(x!);
    if (numel(from) !== numel(a.shape)) {
      throw new ShapeError(
        `cannot reshape ${formatShape(from)} (${numel(from)} elements) to ${formatShape(a.shape)} (${numel(a.shape)} elements)`,
      );
    }
    return batched(a.shape);
  },
  // Row-major data is unchanged; only the shape after the batch dimension changes.
  reference: ([x], a) => ({ shape: [x!.shape[0]!, ...a.shape], data: x!.data.slice() }),
  emit: () => alias,
  // Reshape to [0, ...shape]: 0 keeps the batch dimension.
  onnx: (b, n) => {
    const shape = b.int64s([0, ...n.attrs.shape]);
    b.produce(n, 'nhwc', (out) => b.emit('Reshape', [b.nhwc(n.operands[0]!), shape], [out]));
  },
  // The same data: dx is dy reshaped back to x's per-example shape.
  grad: (g, { operands: [x] }, dy) => [() => g.op('reshape', [dy], { shape: exampleShape(g.typeOf(x!)) })],
});

/** Resolve one `-1` in a Keras target shape against the element count. */
export function resolveTargetShape(from: readonly number[], target: readonly number[]): number[] {
  const total = numel(from);
  const unknown = target.filter((d) => d === -1).length;
  if (unknown > 1) throw new ShapeError(`target_shape ${formatShape(target)} may contain at most one -1`);
  if (unknown === 1) {
    const known = numel(target.filter((d) => d !== -1));
    if (known === 0 || total % known !== 0) {
      throw new ShapeError(`cannot reshape ${formatShape(from)} (${total} elements) to ${formatShape(target)}`);
    }
    return target.map((d) => (d === -1 ? total / known : d));
  }
  if (numel(target) !== total) {
    throw new ShapeError(
      `cannot reshape ${formatShape(from)} (${total} elements) to ${formatShape(target)} (${numel(target)} elements)`,
    );
  }
  return [...target];
}

export const flattenLayer = defineLayer({
  type: 'flatten',
  keras: 'Flatten',
  kerasImport: { classes: ['Flatten'], fromConfig: (c) => c.dataFormat() },
  kerasExport: () => ({ className: 'Flatten', config: { data_format: 'channels_last' } }),
  examples: [{ attrs: {}, inputs: [[2, 3, 2]] }],
  namePrefix: 'flatten',
  summary: 'flattens each example to one dimension',
  attrs: {},
  arity: [1, 1],
  lower: (ctx, [x]) => ctx.op('reshape', [x!], { shape: [numel(exampleShape(ctx.typeOf(x!)))] }),
});

export const reshapeLayer = defineLayer({
  type: 'reshape',
  keras: 'Reshape',
  kerasImport: {
    classes: ['Reshape'],
    fromConfig: (c) => {
      const shape = c.get('target_shape');
      if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isInteger(d) && (d as number) >= -1 && d !== 0)) {
        c.fail('target_shape', `target_shape must be a list of positive integers (one may be -1), got ${show(shape)}`);
      }
      c.set('target_shape', shape);
    },
  },
  kerasExport: (a) => ({ className: 'Reshape', config: { target_shape: a.target_shape } }),
  examples: [{ attrs: { target_shape: [-1, 2] }, inputs: [[3, 4]] }],
  namePrefix: 'reshape',
  summary: 'reshapes each example',
  attrs: {
    target_shape: Type.Array(Type.Integer({ minimum: -1 }), {
      minItems: 1,
      description: 'per-example shape; one entry may be -1',
    }),
  },
  positional: ['target_shape'],
  arity: [1, 1],
  lower: (ctx, [x], a) => {
    if (a.target_shape.includes(0)) throw new ShapeError(`target_shape ${formatShape(a.target_shape)} contains 0`);
    const shape = resolveTargetShape(exampleShape(ctx.typeOf(x!)), a.target_shape);
    return ctx.op('reshape', [x!], { shape });
  },
});

export const shapeFamily = defineFamily({ ops: [reshapeOp], layers: [flattenLayer, reshapeLayer] });
