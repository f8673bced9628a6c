/**
 * Zero padding and cropping of NHWC images along height and width, as Keras's
 * ZeroPadding2D and Cropping2D (ResNet, MobileNet and DenseNet pad before a
 * strided convolution or pool; NASNet crops the extra row back off).
 *
 *   %zero_padding2d: f32[N,34,34,3] = zero_pad2d(%x) {padding=[1,1,1,1]}
 *   %cropping2d: f32[N,30,28,3] = crop2d(%x) {cropping=[1,1,2,2]}
 *
 * The IR holds the four sides as [top, bottom, left, right]; the layers take
 * Keras's three forms (an int, [height, width], [[top, bottom], [left, right]]).
 * Each op is the other's gradient: dx of a pad is dy cropped by the same
 * sides, dx of a crop is dy padded with zeros. ONNX: Pad (constant 0) and Slice.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { Tensor } from '../ir/tensor.js';
import { tensor, type TensorType } from '../ir/types.js';
import { kernel, shapeTag } from './emit.js';
import { show, type KerasConfig } from './keras-def.js';
import type { OnnxBuilder, OnnxLayout } from './onnx-def.js';
import { defineFamily, defineLayer, defineOp, dim, expectRank, formatShape, ShapeError } from './op-def.js';

/** [top, bottom, left, right]: IR attributes are always the four sides. */
const Sides = Type.Array(Type.Integer({ minimum: 0 }), { minItems: 4, maxItems: 4 });
type Sides = readonly [number, number, number, number];
const four = (s: readonly number[]): Sides => [s[0]!, s[1]!, s[2]!, s[3]!];

/** A layer's sides in Keras's three forms. */
function kerasSides(defaultValue: number, what: string) {
  const size = Type.Integer({ minimum: 0 });
  const pair = Type.Array(size, { minItems: 2, maxItems: 2 });
  return Type.Union([size, pair, Type.Array(pair, { minItems: 2, maxItems: 2 })], {
    default: defaultValue,
    description: `rows and columns ${what}: an integer (every side), [height, width] (both sides of each axis) or [[top, bottom], [left, right]]`,
  });
}
type KerasSides = Static<ReturnType<typeof kerasSides>>;

/** Keras's form as the four sides: 1 -> [1, 1, 1, 1], [1, 2] -> [1, 1, 2, 2], [[0, 1], [2, 3]] -> [0, 1, 2, 3]. */
function sides(v: KerasSides): Sides {
  if (typeof v === 'number') return [v, v, v, v];
  const [h, w] = v as readonly (number | readonly number[])[];
  if (typeof h === 'number' && typeof w === 'number') return [h, h, w, w];
  const [t, b] = h as readonly number[];
  const [l, r] = w as readonly number[];
  return [t!, b!, l!, r!];
}

/** Sides as Keras 3 saves them: [[top, bottom], [left, right]]. */
function kerasSidePairs(v: KerasSides): [[number, number], [number, number]] {
  const [t, b, l, r] = sides(v);
  return [[t, b], [l, r]];
}

/** The shortest Keras form of four sides, as the import writes it (so a default drops out). */
function kerasForm([t, b, l, r]: Sides): KerasSides {
  if (t === b && l === r) return t === l ? t : [t, l];
  return [[t, b], [l, r]];
}

/** Reads `key` in any of Keras's forms (Keras saves [[top, bottom], [left, right]]). */
function importSides(c: KerasConfig, key: string): void {
  c.dataFormat();
  const v = c.get(key);
  if (v === undefined || v === null) return;
  const size = (d: unknown) => Number.isInteger(d) && (d as number) >= 0;
  const pairOf = (p: unknown) => Array.isArray(p) && p.length === 2 && p.every(size);
  if (!(size(v) || pairOf(v) || (Array.isArray(v) && v.length === 2 && v.every(pairOf)))) {
    c.fail(key, `${key} must be an integer >= 0, [height, width] or [[top, bottom], [left, right]], got ${show(v)}`);
  }
  c.set(key, kerasForm(sides(v as KerasSides)));
}

type Dims4 = readonly [number, number, number, number];

/** Copies `x` into a zero-filled [batch, oh, ow, c] tensor at row `top`, column `left` (negative: x is cropped). */
function placed(x: Tensor, oh: number, ow: number, top: number, left: number): Tensor {
  const [batch, h, w, c] = x.shape as unknown as Dims4;
  const y = new Float64Array(batch * oh * ow * c);
  for (let n = 0; n < batch; n++)
    for (let iy = Math.max(0, -top); iy < Math.min(h, oh - top); iy++)
      for (let ix = Math.max(0, -left); ix < Math.min(w, ow - left); ix++)
        for (let ci = 0; ci < c; ci++) y[((n * oh + iy + top) * ow + ix + left) * c + ci] = x.data[((n * h + iy) * w + ix) * c + ci]!;
  return { shape: [batch, oh, ow, c], data: y };
}

/**
 * The ONNX axes of height and width for a value in `layout`: Pad and Slice run
 * in either layout, so a pad between two convolutions needs no transposes.
 */
const spatialAxes = (b: OnnxBuilder, layout: OnnxLayout) => [b.axisIn(1, layout, 4), b.axisIn(2, layout, 4)] as const;

const tag = (s: readonly number[]) => s.join('x');

/** `base + offset` as code, without `+ 0`. */
const plus = (base: string, offset: number) => (offset === 0 ? base : `${base} + ${offset}`);

/** A kernel line zeroing y from `base + from` to `base + to`, or none when that is empty. */
const zeros = (base: string, from: number, to: number) => (from === to ? '' : `  y.fill(0, ${plus(base, from)}, ${plus(base, to)});`);

export const zeroPad2dOp = defineOp({
  name: 'zero_pad2d',
  summary: 'pads height and width with zeros: [top, bottom, left, right] rows and columns',
  traits: ['pure', 'shape-only'],
  attrs: { padding: Sides },
  operands: () => ['x'],
  identity: ({ attrs: a }) => a.padding.every((p) => p === 0),
  infer: ([x], a) => {
    expectRank(x!, 4, 'zero_pad2d');
    const [t, b, l, r] = four(a.padding);
    return tensor(['N', dim(x!, 1) + t + b, dim(x!, 2) + l + r, dim(x!, 3)]);
  },
  reference: ([x], a) => {
    const [t, b, l, r] = four(a.padding);
    return placed(x!, x!.shape[1]! + t + b, x!.shape[2]! + l + r, t, l);
  },
  // Per example: the top rows, each row's left columns, the row, its right columns, the bottom rows.
  emit: ({ operands: [x], result, attrs: a }) => {
    const [, h, w, c] = x!.shape as Dims4;
    const [, oh, ow] = result.shape as Dims4;
    const [t, , l] = four(a.padding);
    const row = ow * c;
    const body = [
      'for (let e = 0; e < n; e++) {',
      `  const yAt = e * ${oh * row};`,
      zeros('yAt', 0, t * row),
      `  for (let iy = 0; iy < ${h}; iy++) {`,
      `    const o = yAt + ${t === 0 ? 'iy' : `(iy + ${t})`} * ${row}, s = (e * ${h} + iy) * ${w * c};`,
      zeros('o', 0, l * c),
      `    for (let i = 0; i < ${w * c}; i++) y[${plus('o', l * c)} + i] = x[s + i]!;`,
      zeros('o', (l + w) * c, row),
      '  }',
      zeros('yAt', (t + h) * row, oh * row),
      '}',
    ].filter((line) => line !== '').join('\n');
    return kernel(`zero_pad2d_${shapeTag(x!)}_${tag(a.padding)}`, ['x'], `zero padding [top, bottom, left, right] = [${a.padding.join(', ')}], ${h}x${w} -> ${oh}x${ow}, ${c} channels`, body);
  },
  // dx is dy without the padded rows and columns.
  grad: (g, { attrs: a }, dy) => [() => g.op('crop2d', [dy], { cropping: [...a.padding] })],
  // Pad takes [x1_begin, x2_begin, ..., x1_end, x2_end, ...]; mode constant with no value pads with 0.
  onnx: (b, n) => {
    const [x] = n.operands;
    const layout = b.layoutFor([x!]);
    const [hAxis, wAxis] = spatialAxes(b, layout);
    const [t, bottom, l, r] = four(n.attrs.padding);
    const pads = [0, 0, 0, 0, 0, 0, 0, 0];
    [pads[hAxis], pads[wAxis], pads[4 + hAxis], pads[4 + wAxis]] = [t, l, bottom, r];
    b.produce(n, layout, (out) => b.emit('Pad', [b.in(x!, layout), b.int64s(pads)], [out]));
  },
  examples: [
    { note: 'symmetric', attrs: { padding: [1, 1, 1, 1] }, operands: [tensor(['N', 3, 3, 2])] },
    { note: 'asymmetric', attrs: { padding: [1, 2, 3, 1] }, operands: [tensor(['N', 2, 3, 1])] },
    { note: 'zero-size sides (bottom and left)', attrs: { padding: [2, 0, 0, 1] }, operands: [tensor(['N', 3, 2, 3])] },
    { note: 'no padding: the identity', attrs: { padding: [0, 0, 0, 0] }, operands: [tensor(['N', 2, 2, 2])] },
  ],
});

export const crop2dOp = defineOp({
  name: 'crop2d',
  summary: 'removes [top, bottom, left, right] rows and columns from height and width',
  traits: ['pure', 'shape-only'],
  attrs: { cropping: Sides },
  operands: () => ['x'],
  identity: ({ attrs: a }) => a.cropping.every((p) => p === 0),
  infer: ([x], a) => croppedType(x!, four(a.cropping)),
  reference: ([x], a) => {
    const [t, b, l, r] = four(a.cropping);
    return placed(x!, x!.shape[1]! - t - b, x!.shape[2]! - l - r, -t, -l);
  },
  emit: ({ operands: [x], result, attrs: a }) => {
    const [, h, w, c] = x!.shape as Dims4;
    const [, oh, ow] = result.shape as Dims4;
    const [t, , l] = four(a.cropping);
    const body = `for (let e = 0; e < n; e++) {
  for (let oy = 0; oy < ${oh}; oy++) {
    const o = (e * ${oh} + oy) * ${ow * c}, s = ${plus(`(e * ${h} + ${plus('oy', t)}) * ${w * c}`, l * c)};
    for (let i = 0; i < ${ow * c}; i++) y[o + i] = x[s + i]!;
  }
}`;
    return kernel(`crop2d_${shapeTag(x!)}_${tag(a.cropping)}`, ['x'], `cropping [top, bottom, left, right] = [${a.cropping.join(', ')}], ${h}x${w} -> ${oh}x${ow}, ${c} channels`, body);
  },
  // dx is dy with the cropped rows and columns back, as zeros.
  grad: (g, { attrs: a }, dy) => [() => g.op('zero_pad2d', [dy], { padding: [...a.cropping] })],
  onnx: (b, n) => {
    const [x] = n.operands;
    const layout = b.layoutFor([x!]);
    const [, h, w] = b.typeOf(x!).shape as Dims4;
    const [t, bottom, l, r] = four(n.attrs.cropping);
    const inputs = [b.in(x!, layout), b.int64s([t, l]), b.int64s([h - bottom, w - r]), b.int64s(spatialAxes(b, layout))];
    b.produce(n, layout, (out) => b.emit('Slice', inputs, [out]));
  },
  examples: [
    { note: 'symmetric', attrs: { cropping: [1, 1, 1, 1] }, operands: [tensor(['N', 4, 4, 2])] },
    { note: 'asymmetric', attrs: { cropping: [1, 2, 0, 1] }, operands: [tensor(['N', 5, 4, 3])] },
    { note: 'zero-size sides, one row left', attrs: { cropping: [2, 1, 0, 0] }, operands: [tensor(['N', 4, 3, 1])] },
    { note: 'no cropping: the identity', attrs: { cropping: [0, 0, 0, 0] }, operands: [tensor(['N', 2, 3, 2])] },
  ],
});

/** The result of cropping `x`, or why nothing would be left (Keras refuses a crop that leaves no rows or columns). */
function croppedType(x: TensorType, [t, b, l, r]: Sides): TensorType {
  expectRank(x, 4, 'crop2d');
  const [h, w] = [dim(x, 1), dim(x, 2)];
  const fail = (axis: string, size: number, a: number, z: number) =>
    new ShapeError(`cropping ${a} + ${z} ${axis} from an input ${formatShape(x.shape.slice(1))} leaves none: cropping must be smaller than the ${axis === 'rows' ? 'height' : 'width'} (${size})`);
  if (t + b >= h) throw fail('rows', h, t, b);
  if (l + r >= w) throw fail('columns', w, l, r);
  return tensor(['N', h - t - b, w - l - r, dim(x, 3)]);
}

export const zeroPadding2dLayer = defineLayer({
  type: 'zero_padding2d',
  keras: 'ZeroPadding2D',
  kerasImport: { classes: ['ZeroPadding2D'], fromConfig: (c) => importSides(c, 'padding') },
  kerasExport: (a) => ({ className: 'ZeroPadding2D', config: { padding: kerasSidePairs(a.padding), data_format: 'channels_last' } }),
  examples: [
    { attrs: { padding: 2 }, inputs: [[3, 3, 2]] },
    { attrs: { padding: [1, 2] }, inputs: [[2, 3, 1]] },
    { attrs: { padding: [[0, 1], [2, 0]] }, inputs: [[3, 2, 2]] },
  ],
  namePrefix: 'zero_padding2d',
  summary: 'pads height and width with zeros',
  attrs: { padding: kerasSides(1, 'of zeros to add') },
  positional: ['padding'],
  arity: [1, 1],
  lower: (ctx, [x], a) => ctx.op('zero_pad2d', [x!], { padding: [...sides(a.padding)] }),
});

export const cropping2dLayer = defineLayer({
  type: 'cropping2d',
  keras: 'Cropping2D',
  kerasImport: { classes: ['Cropping2D'], fromConfig: (c) => importSides(c, 'cropping') },
  kerasExport: (a) => ({ className: 'Cropping2D', config: { cropping: kerasSidePairs(a.cropping), data_format: 'channels_last' } }),
  examples: [
    { attrs: { cropping: 1 }, inputs: [[4, 4, 2]] },
    { attrs: { cropping: [2, 1] }, inputs: [[5, 3, 1]] },
    { attrs: { cropping: [[0, 1], [1, 0]] }, inputs: [[3, 4, 2]] },
  ],
  namePrefix: 'cropping2d',
  summary: 'removes rows and columns at the edges of height and width',
  attrs: { cropping: kerasSides(0, 'to remove') },
  positional: ['cropping'],
  arity: [1, 1],
  lower: (ctx, [x], a) => ctx.op('crop2d', [x!], { cropping: [...sides(a.cropping)] }),
});

export const paddingFamily = defineFamily({ ops: [zeroPad2dOp, crop2dOp], layers: [zeroPadding2dLayer, cropping2dLayer] });
