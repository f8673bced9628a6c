/**
 * Rescaling: x * scale + offset, elementwise with two constants, as Keras's
 * `Rescaling` layer does (EfficientNet, MobileNetV3 and ConvNeXt start with
 * one to map pixels [0, 255] to [0, 1] or [-1, 1]).
 *
 *   %rescaling: f32[N,32,32,3] = rescale(%x) {scale=0.00392156862745098, offset=0}
 *
 * Keras also takes lists: one scale and one offset per channel, broadcast
 * along the last axis (channels last). Those lower to `rescale_channels`, a
 * per-channel affine map that `fold-bn` folds into a neighbouring linear op.
 * Gradient: dx = dy * scale, a rescale with offset 0. ONNX: Mul then Add.
 */
import { Type } from '@sinclair/typebox';
import { tensor } from '../ir/types.js';
import { show, type KerasConfig } from './keras-def.js';
import { kernel, lit, shapeTag, total } from './emit.js';
import { defineFamily, defineLayer, defineOp, dim, formatShape, ShapeError } from './op-def.js';

export const rescaleOp = defineOp({
  name: 'rescale',
  summary: 'x * scale + offset, elementwise',
  traits: ['pure', 'elementwise'],
  attrs: { scale: Type.Number(), offset: Type.Number() },
  operands: () => ['x'],
  infer: ([x]) => x!,
  reference: ([x], a) => ({ shape: [...x!.shape], data: x!.data.map((v) => v * a.scale + a.offset) }),
  emit: ({ result, attrs: a }) =>
    kernel(`rescale_${shapeTag(result)}`, ['x'], `x * ${lit(a.scale)} + ${lit(a.offset)}`,
      `for (let i = 0; i < ${total(result)}; i++) y[i] = x[i]! * ${lit(a.scale)} + ${lit(a.offset)};`),
  grad: (g, { attrs: a }, dy) => [() => g.op('rescale', [dy], { scale: a.scale, offset: 0 })],
  identity: ({ attrs: a }) => a.scale === 1 && a.offset === 0,
  onnx: (b, n) => {
    const [x] = n.operands;
    const layout = b.layoutFor([x!]);
    b.produce(n, layout, (out) => b.emit('Add', [b.temp('Mul', [b.in(x!, layout), b.constant([n.attrs.scale])]), b.constant([n.attrs.offset])], [out]));
  },
  examples: [
    { attrs: { scale: 1 / 255, offset: 0 }, operands: [tensor(['N', 4, 4, 3])], note: 'pixels to [0, 1]' },
    { attrs: { scale: 2, offset: -1 }, operands: [tensor(['N', 6])] },
    { attrs: { scale: 1, offset: 0 }, operands: [tensor(['N', 3])], note: 'the identity' },
  ],
});

/** Per-channel values: a list of length C or 1 (one value for every channel). */
const at = (v: readonly number[], c: number) => (v.length === 1 ? v[0]! : v[c]!);

/**
 * x * scale[c] + offset[c], c the index along the last axis; each list holds
 * one value per channel, or one value for all.
 *
 *   %rescaling: f32[N,8,8,3] = rescale_channels(%x) {scale=[0.5,2,-1], offset=[0]}
 */
export const rescaleChannelsOp = defineOp({
  name: 'rescale_channels',
  summary: 'x * scale[c] + offset[c] along the last axis',
  traits: ['pure'],
  attrs: { scale: Type.Array(Type.Number(), { minItems: 1 }), offset: Type.Array(Type.Number(), { minItems: 1 }) },
  operands: () => ['x'],
  infer: ([x], a) => {
    const channels = dim(x!, x!.shape.length - 1);
    for (const [key, v] of [['scale', a.scale], ['offset', a.offset]] as const) {
      if (v.length !== 1 && v.length !== channels) {
        throw new ShapeError(`rescale_channels ${key} has ${v.length} values; ${formatShape(x!.shape)} has ${channels} channels (give ${channels} or 1)`);
      }
    }
    return x!;
  },
  reference: ([x], a) => {
    const channels = x!.shape[x!.shape.length - 1]!;
    return { shape: [...x!.shape], data: x!.data.map((v, i) => v * at(a.scale, i % channels) + at(a.offset, i % channels)) };
  },
  emit: ({ result, attrs: a }) => {
    const channels = result.shape[result.shape.length - 1] as number;
    const value = (v: readonly number[], name: string) => (v.length === 1 ? lit(v[0]!) : `${name}[i % ${channels}]!`);
    const tables = [
      ...(a.scale.length > 1 ? [`const scale = [${a.scale.map(lit).join(', ')}];`] : []),
      ...(a.offset.length > 1 ? [`const offset = [${a.offset.map(lit).join(', ')}];`] : []),
    ];
    return kernel(`rescale_channels_${shapeTag(result)}`, ['x'], `x * scale + offset per channel along the last axis`,
      [...tables, `for (let i = 0; i < ${total(result)}; i++) y[i] = x[i]! * ${value(a.scale, 'scale')} + ${value(a.offset, 'offset')};`].join('\n'));
  },
  grad: (g, { attrs: a }, dy) => [() => g.op('rescale_channels', [dy], { scale: a.scale, offset: [0] })],
  channelAffine: ({ type, attrs: a }) => {
    const channels = type.shape[type.shape.length - 1] as number;
    return {
      scale: Float64Array.from({ length: channels }, (_, c) => at(a.scale, c)),
      shift: Float64Array.from({ length: channels }, (_, c) => at(a.offset, c)),
    };
  },
  onnx: (b, n) => {
    const [x] = n.operands;
    const layout = b.layoutFor([x!]);
    const rank = n.type.shape.length;
    const axis = b.axisIn(rank - 1, layout, rank);
    // [C, 1, ...] broadcasts along the channel axis wherever the layout puts it.
    const constant = (v: readonly number[]) => b.constant(v, v.length === 1 ? [1] : [v.length, ...new Array<number>(rank - 1 - axis).fill(1)]);
    b.produce(n, layout, (out) => b.emit('Add', [b.temp('Mul', [b.in(x!, layout), constant(n.attrs.scale)]), constant(n.attrs.offset)], [out]));
  },
  examples: [
    { attrs: { scale: [0.5, 2, -1], offset: [0] }, operands: [tensor(['N', 4, 4, 3])], note: 'per-channel scale' },
    { attrs: { scale: [2], offset: [-1, 0, 1, 2] }, operands: [tensor(['N', 4])], note: 'per-channel offset' },
  ],
});

/** A Rescaling attribute: a number, or one number per channel. */
const factor = (description: string, fallback?: number) =>
  Type.Union([Type.Number(), Type.Array(Type.Number(), { minItems: 1 })], { description, ...(fallback === undefined ? {} : { default: fallback }) });

export const rescalingLayer = defineLayer({
  type: 'rescaling',
  keras: 'Rescaling',
  kerasImport: {
    classes: ['Rescaling'],
    fromConfig: (c) => {
      c.set('scale', numbers(c, 'scale'));
      c.set('offset', c.optional('offset', (k) => numbers(c, k)));
    },
  },
  kerasExport: (a) => ({ className: 'Rescaling', config: { scale: a.scale, offset: a.offset } }),
  examples: [
    { attrs: { scale: 0.5, offset: -1 }, inputs: [[4, 4, 3]] },
    { attrs: { scale: [0.5, 2, -1] }, inputs: [[4, 4, 3]] },
  ],
  namePrefix: 'rescaling',
  summary: 'x * scale + offset (per channel along the last axis when lists)',
  attrs: {
    scale: factor('the factor every element is multiplied by, or one per channel (last axis)'),
    offset: factor('added after scaling, or one per channel (last axis)', 0),
  },
  positional: ['scale', 'offset'],
  arity: [1, 1],
  lower: (ctx, [x], a) =>
    typeof a.scale === 'number' && typeof a.offset === 'number'
      ? ctx.op('rescale', [x!], { scale: a.scale, offset: a.offset })
      : ctx.op('rescale_channels', [x!], { scale: [a.scale].flat(), offset: [a.offset].flat() }),
});

/** Keras's scale / offset: a number or a (nested) list of numbers, flattened. */
function numbers(c: KerasConfig, key: string): number | number[] {
  const v = c.get(key);
  const flat = Array.isArray(v) ? v.flat(Infinity) : v;
  if (typeof flat === 'number' || (Array.isArray(flat) && flat.length > 0 && flat.every((d) => typeof d === 'number'))) return flat as number | number[];
  return c.fail(key, `${key} must be a number or a list of numbers, got ${show(v)}`);
}

export const rescalingFamily = defineFamily({ ops: [rescaleOp, rescaleChannelsOp], layers: [rescalingLayer] });
