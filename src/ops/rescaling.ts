/**
 * Rescaling: x * scale + offset, elementwise with two constants, as Keras's
 * `Rescaling` layer does (EfficientNet, MobileNetV3 and ConvNeXt start with
 * one to map pixels [0, 255] to [0, 1] or [-1, 1]).
 *
 *   %rescaling: f32[N,32,32,3] = rescale(%x) {scale=0.00392156862745098, offset=0}
 *
 * Scalar scale and offset only (Keras also accepts per-channel lists).
 * Gradient: dx = dy * scale, a rescale with offset 0. ONNX: Mul then Add.
 */
import { Type } from '@sinclair/typebox';
import { tensor } from '../ir/types.js';
import { kernel, lit, shapeTag, total } from './emit.js';
import { defineFamily, defineLayer, defineOp } from './op-def.js';

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

export const rescalingLayer = defineLayer({
  type: 'rescaling',
  keras: 'Rescaling',
  kerasImport: {
    classes: ['Rescaling'],
    fromConfig: (c) => {
      c.set('scale', c.number('scale'));
      c.set('offset', c.optional('offset', (k) => c.number(k)));
    },
  },
  kerasExport: (a) => ({ className: 'Rescaling', config: { scale: a.scale, offset: a.offset } }),
  examples: [{ attrs: { scale: 0.5, offset: -1 }, inputs: [[4, 4, 3]] }],
  namePrefix: 'rescaling',
  summary: 'x * scale + offset',
  attrs: {
    scale: Type.Number({ description: 'the factor every element is multiplied by' }),
    offset: Type.Number({ default: 0, description: 'added after scaling' }),
  },
  positional: ['scale', 'offset'],
  arity: [1, 1],
  lower: (ctx, [x], a) => ctx.op('rescale', [x!], { scale: a.scale, offset: a.offset }),
});

export const rescalingFamily = defineFamily({ ops: [rescaleOp], layers: [rescalingLayer] });
