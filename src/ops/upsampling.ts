/**
 * Nearest-neighbour upsampling of NHWC images, as Keras's `UpSampling2D`
 * (interpolation 'nearest') does: each input cell becomes a size_h x size_w
 * block of copies. U-Nets and FPN-style decoders use it.
 *
 *   %up_sampling2d: f32[N,16,16,8] = upsample2d(%conv2d) {size=[2,2]}
 *
 * y[n, oy, ox, c] = x[n, floor(oy / size_h), floor(ox / size_w), c]. Its
 * gradient is the sum of dy over each block (`upsample2d_grad`). ONNX: Resize
 * (nearest) on the channels-first value. Keras's 'bilinear' and other
 * interpolations are refused at import.
 */
import { Type } from '@sinclair/typebox';
import type { Tensor } from '../ir/tensor.js';
import { tensor, type TensorType } from '../ir/types.js';
import { intPair, pair, Pair } from './conv/window.js';
import { kernel, shapeTag } from './emit.js';
import { show } from './keras-def.js';
import { defineFamily, defineLayer, defineOp, dim, expectRank, formatShape, ShapeError } from './op-def.js';
import { gradientOnly } from './onnx-def.js';

type Dims4 = readonly [number, number, number, number];

/** For each cell of `big` ([n, h * sh, w * sw, c]), the index of its block's cell in `small` ([n, h, w, c]). */
function blockCells([n, h, w, c]: Dims4, [sh, sw]: readonly number[]): Int32Array {
  const [oh, ow] = [h * sh!, w * sw!];
  const at = new Int32Array(n * oh * ow * c);
  let i = 0;
  for (let e = 0; e < n; e++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let ch = 0; ch < c; ch++) at[i++] = ((e * h + Math.floor(oy / sh!)) * w + Math.floor(ox / sw!)) * c + ch;
  return at;
}

export const upsample2dOp = defineOp({
  name: 'upsample2d',
  summary: 'repeat each cell into a size_h x size_w block (nearest-neighbour upsampling)',
  traits: ['pure', 'shape-only'],
  attrs: { size: Pair },
  operands: () => ['x'],
  infer: ([x], a) => {
    expectRank(x!, 4, 'upsample2d');
    return tensor(['N', dim(x!, 1) * a.size[0]!, dim(x!, 2) * a.size[1]!, dim(x!, 3)]);
  },
  reference: ([x], a) => {
    const [n, h, w, c] = x!.shape as unknown as Dims4;
    const from = blockCells([n, h, w, c], a.size);
    return { shape: [n, h * a.size[0]!, w * a.size[1]!, c], data: Float64Array.from(from, (i) => x!.data[i]!) };
  },
  // Each input row is written once (each cell sw times), then copied to the block's other sh - 1 rows.
  emit: ({ operands: [x], attrs: a }) => {
    const [, h, w, c] = x!.shape as Dims4;
    const [sh, sw] = a.size as [number, number];
    const row = w * sw * c;
    const body = `for (let e = 0; e < n; e++) {
  for (let iy = 0; iy < ${h}; iy++) {
    const at = (e * ${h} + iy) * ${sh * row};
    for (let ix = 0; ix < ${w}; ix++) {
      const from = ((e * ${h} + iy) * ${w} + ix) * ${c};
      for (let k = 0; k < ${sw}; k++) {
        const to = at + (ix * ${sw} + k) * ${c};
        for (let ch = 0; ch < ${c}; ch++) y[to + ch] = x[from + ch]!;
      }
    }
    for (let k = 1; k < ${sh}; k++) y.copyWithin(at + k * ${row}, at, at + ${row});
  }
}`;
    return kernel(`upsample2d_${shapeTag(x!)}_s${sh}x${sw}`, ['x'], `nearest upsampling ${h}x${w} -> ${h * sh}x${w * sw}, ${c} channels`, body);
  },
  grad: (g, { attrs: a }, dy) => [() => g.op('upsample2d_grad', [dy], { size: a.size })],
  identity: ({ attrs: a }) => a.size[0] === 1 && a.size[1] === 1,
  // Resize's defaults (mode nearest, half_pixel coordinates, round_prefer_floor) map output cell o
  // to (o + 0.5) / s - 0.5, which is within 0.5 - 0.5 / s of floor(o / s): that cell, for any integer s.
  onnx: (b, n) => {
    const input = b.nchw(n.operands[0]!);
    const scales = b.constant([1, 1, n.attrs.size[0]!, n.attrs.size[1]!], [4]);
    b.produce(n, 'nchw', (out) => b.emit('Resize', [input, '', scales], [out]));
  },
  examples: [
    { attrs: { size: [2, 2] }, operands: [tensor(['N', 3, 2, 3])] },
    { note: 'height and width factors differ', attrs: { size: [2, 3] }, operands: [tensor(['N', 2, 3, 2])] },
    { note: 'rows only, one channel', attrs: { size: [3, 1] }, operands: [tensor(['N', 2, 2, 1])] },
    { note: 'size 1 x 1: the identity', attrs: { size: [1, 1] }, operands: [tensor(['N', 2, 3, 2])] },
  ],
});

/** The input type of an upsampling by `size` whose result is `dy`, or why `dy` is none. */
function downsampledType(dy: TensorType, size: readonly number[]): TensorType {
  expectRank(dy, 4, 'upsample2d_grad');
  const [h, w] = [dim(dy, 1), dim(dy, 2)];
  if (h % size[0]! !== 0 || w % size[1]! !== 0) {
    throw new ShapeError(`upsample2d_grad: dy ${formatShape(dy.shape)} is not made of ${formatShape(size)} blocks`);
  }
  return tensor(['N', h / size[0]!, w / size[1]!, dim(dy, 3)]);
}

/**
 * dx of upsample2d: each input cell's block of dy, summed.
 *
 *   %up/grad: f32[N,8,8,4] = upsample2d_grad(%grad) {size=[2,2]}
 */
export const upsample2dGradOp = defineOp({
  name: 'upsample2d_grad',
  summary: 'the gradient of upsample2d: dy summed over each size_h x size_w block',
  traits: ['pure'],
  attrs: { size: Pair },
  operands: () => ['dy'],
  infer: ([dy], a) => downsampledType(dy!, a.size),
  reference: ([dy], a) => {
    const [n, oh, ow, c] = dy!.shape as unknown as Dims4;
    const small: Dims4 = [n, oh / a.size[0]!, ow / a.size[1]!, c];
    const dx: Tensor = { shape: [...small], data: new Float64Array(small.reduce((p, d) => p * d, 1)) };
    blockCells(small, a.size).forEach((to, i) => (dx.data[to] += dy!.data[i]!));
    return dx;
  },
  emit: ({ result, attrs: a }) => {
    const [, h, w, c] = result.shape as Dims4;
    const [sh, sw] = a.size as [number, number];
    const body = `for (let e = 0; e < n; e++) {
  for (let iy = 0; iy < ${h}; iy++) {
    for (let ix = 0; ix < ${w}; ix++) {
      const to = ((e * ${h} + iy) * ${w} + ix) * ${c};
      for (let ch = 0; ch < ${c}; ch++) {
        let acc = 0;
        for (let ky = 0; ky < ${sh}; ky++) {
          const from = (((e * ${h} + iy) * ${sh} + ky) * ${w * sw} + ix * ${sw}) * ${c} + ch;
          for (let kx = 0; kx < ${sw}; kx++) acc += dy[from + kx * ${c}]!;
        }
        y[to + ch] = acc;
      }
    }
  }
}`;
    return kernel(`upsample2d_grad_${shapeTag(result)}_s${sh}x${sw}`, ['dy'], `nearest upsampling gradient: dy summed over ${sh}x${sw} blocks`, body);
  },
  onnx: gradientOnly,
  grad: 'none',
  examples: [
    { attrs: { size: [2, 2] }, operands: [tensor(['N', 6, 4, 3])] },
    { note: 'height and width factors differ', attrs: { size: [2, 3] }, operands: [tensor(['N', 4, 9, 2])] },
  ],
});

export const upsampling2dLayer = defineLayer({
  type: 'upsampling2d',
  keras: 'UpSampling2D',
  kerasImport: {
    classes: ['UpSampling2D'],
    fromConfig: (c) => {
      c.set('size', c.optional('size', (k) => c.intPair(k)));
      const interpolation = c.optional('interpolation', (k) => c.get(k));
      if (interpolation !== undefined && interpolation !== 'nearest') {
        c.fail('interpolation', `interpolation ${show(interpolation)} is not supported: modelc repeats each cell (interpolation 'nearest')`);
      }
      c.dataFormat();
    },
  },
  kerasExport: (a) => ({ className: 'UpSampling2D', config: { size: pair(a.size), data_format: 'channels_last', interpolation: a.interpolation } }),
  examples: [
    { attrs: { size: 3 }, inputs: [[2, 3, 2]] },
    { attrs: { size: [2, 3] }, inputs: [[3, 2, 1]] },
  ],
  namePrefix: 'up_sampling2d',
  summary: 'nearest-neighbour upsampling: each cell repeated size_h x size_w times',
  attrs: {
    size: intPair(2),
    interpolation: Type.Literal('nearest', { default: 'nearest', description: "how new cells are filled: 'nearest' repeats each cell (the only one modelc has)" }),
  },
  positional: ['size'],
  arity: [1, 1],
  lower: (ctx, [x], a) => ctx.op('upsample2d', [x!], { size: pair(a.size) }),
});

/** Nearest-neighbour upsampling, its gradient op and its layer. */
export const upsampleFamily = defineFamily({ ops: [upsample2dOp, upsample2dGradOp], layers: [upsampling2dLayer] });
