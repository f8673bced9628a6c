/**
 * Pooling over NHWC tensors: max_pool2d, avg_pool2d and their global forms.
 *
 *   %max_pooling2d: f32[N,12,12,64] = max_pool2d(%relu_1) {pool_size=[2,2], strides=[2,2], padding="valid"}
 *
 * `strides` defaults to `pool_size` (Keras). With `same` padding (placed as
 * TF places it, the odd cell at the end) the padding cells take no part:
 * max pooling ignores them and average pooling divides by the number of valid
 * cells in each window (Keras/TF semantics).
 */
import { Type } from '@sinclair/typebox';
import type { Tensor } from '../ir/tensor.js';
import { tensor } from '../ir/types.js';
import { convOutputLength, intPair, pair, Padding, windowAxis } from './conv.js';
import { kernel, shapeTag } from './emit.js';
import { defineLayer, defineOp, dim, expectRank, formatShape, ShapeError, type OpDef } from './op-def.js';

const Pair = Type.Array(Type.Integer({ minimum: 1 }), { minItems: 2, maxItems: 2 });

type Dims4 = readonly [number, number, number, number];
type Reduction = 'max' | 'avg';

/** The max or the mean of the input cells of each window (padding cells skipped). */
function poolReference(x: Tensor, a: { pool_size: number[]; strides: number[]; padding: string }, kind: Reduction): Tensor {
  const [batch, h, w, c] = x.shape as Dims4;
  const [ph, pw] = a.pool_size as [number, number];
  const [sy, sx] = a.strides as [number, number];
  const rows = windowAxis(h, ph, sy, a.padding as Padding);
  const cols = windowAxis(w, pw, sx, a.padding as Padding);
  const y = new Float64Array(batch * rows.out * cols.out * c);
  let at = 0;
  for (let n = 0; n < batch; n++)
    for (let oy = 0; oy < rows.out; oy++)
      for (let ox = 0; ox < cols.out; ox++)
        for (let ci = 0; ci < c; ci++) {
          let max = -Infinity;
          let sum = 0;
          let count = 0; // every window holds at least one input cell
          for (let iy = oy * sy - rows.before; iy < oy * sy - rows.before + ph; iy++) {
            if (iy < 0 || iy >= h) continue;
            for (let ix = ox * sx - cols.before; ix < ox * sx - cols.before + pw; ix++) {
              if (ix < 0 || ix >= w) continue;
              const v = x.data[((n * h + iy) * w + ix) * c + ci]!;
              max = Math.max(max, v);
              sum += v;
              count++;
            }
          }
          y[at++] = kind === 'max' ? max : sum / count;
        }
  return { shape: [batch, rows.out, cols.out, c], data: y };
}

/** The max or the mean over height and width of each channel. */
function globalPoolReference(x: Tensor, keepdims: boolean, kind: Reduction): Tensor {
  const [batch, h, w, c] = x.shape as Dims4;
  const y = new Float64Array(batch * c);
  for (let n = 0; n < batch; n++)
    for (let ci = 0; ci < c; ci++) {
      let max = -Infinity;
      let sum = 0;
      for (let i = 0; i < h * w; i++) {
        const v = x.data[(n * h * w + i) * c + ci]!;
        max = Math.max(max, v);
        sum += v;
      }
      y[n * c + ci] = kind === 'max' ? max : sum / (h * w);
    }
  return { shape: keepdims ? [batch, 1, 1, c] : [batch, c], data: y };
}

function poolOp(name: string, summary: string, kind: Reduction): OpDef {
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
    reference: ([x], a) => poolReference(x!, a, kind),
    emit: ({ operands: [x], result, attrs: a }) => {
      const [, h, w, c] = x!.shape as Dims4;
      const [, oh, ow] = result.shape as Dims4;
      const [ph, pw] = a.pool_size as [number, number];
      const [sy, sx] = a.strides as [number, number];
      const top = windowAxis(h, ph, sy, a.padding as Padding).before;
      const left = windowAxis(w, pw, sx, a.padding as Padding).before;
      // Window bounds clipped to the image: padding cells take no part.
      const range = (v: string, o: string, s: number, before: number, p: number, size: number) =>
        a.padding === 'valid'
          ? `const ${v}0 = ${o} * ${s}, ${v}1 = ${v}0 + ${p};`
          : `const ${v}0 = Math.max(${o} * ${s} - ${before}, 0), ${v}1 = Math.min(${o} * ${s} - ${before} + ${p}, ${size});`;
      const reduce = kind === 'max'
        ? { init: '-Infinity', step: 'acc = Math.max(acc, v);', result: 'acc' }
        : { init: '0', step: 'acc += v;', result: `acc / ((iy1 - iy0) * (ix1 - ix0))` };
      const body = `for (let e = 0; e < n; e++) {
  for (let oy = 0; oy < ${oh}; oy++) {
    ${range('iy', 'oy', sy, top, ph, h)}
    for (let ox = 0; ox < ${ow}; ox++) {
      ${range('ix', 'ox', sx, left, pw, w)}
      const yAt = ((e * ${oh} + oy) * ${ow} + ox) * ${c};
      for (let c = 0; c < ${c}; c++) {
        let acc = ${reduce.init};
        for (let iy = iy0; iy < iy1; iy++) {
          for (let ix = ix0; ix < ix1; ix++) {
            const v = x[((e * ${h} + iy) * ${w} + ix) * ${c} + c]!;
            ${reduce.step}
          }
        }
        y[yAt + c] = ${reduce.result};
      }
    }
  }
}`;
      const tag = `${shapeTag(x!)}_p${ph}x${pw}_s${sy}x${sx}${a.padding === 'same' ? '_same' : ''}`;
      return kernel(`${name}_${tag}`, ['x'], `${kind} pooling ${ph}x${pw}, stride ${sy}x${sx}, ${h}x${w} -> ${oh}x${ow}, ${c} channels`, body);
    },
  });
}

function globalPoolOp(name: string, summary: string, kind: Reduction): OpDef {
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
    reference: ([x], a) => globalPoolReference(x!, a.keepdims, kind),
    emit: ({ operands: [x] }) => {
      const [, h, w, c] = x!.shape as Dims4;
      const body = `for (let e = 0; e < n; e++) {
  for (let c = 0; c < ${c}; c++) {
    let acc = ${kind === 'max' ? '-Infinity' : '0'};
    for (let i = 0; i < ${h * w}; i++) {
      const v = x[(e * ${h * w} + i) * ${c} + c]!;
      ${kind === 'max' ? 'acc = Math.max(acc, v);' : 'acc += v;'}
    }
    y[e * ${c} + c] = ${kind === 'max' ? 'acc' : `acc / ${h * w}`};
  }
}`;
      return kernel(`${name}_${shapeTag(x!)}`, ['x'], `${kind} over ${h}x${w} of ${c} channels`, body);
    },
  });
}

export const poolOps: OpDef[] = [
  poolOp('max_pool2d', 'maximum over each window', 'max'),
  poolOp('avg_pool2d', 'mean over each window (valid cells only)', 'avg'),
  globalPoolOp('global_max_pool2d', 'maximum over height and width', 'max'),
  globalPoolOp('global_avg_pool2d', 'mean over height and width', 'avg'),
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

/** Gradient ops of the pools. */
export const poolGradOps: OpDef[] = [];
