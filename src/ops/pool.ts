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
import { batched, exampleShape, formatType, sameType, tensor, type TensorType } from '../ir/types.js';
import { convOutputLength, intPair, pair, Padding, windowAxis } from './conv/window.js';
import { kernel, shapeTag, total, type RuntimeHelper } from './emit.js';
import { onnxInt, onnxInts } from './onnx-def.js';
import { forwardPads } from './onnx-util.js';
import { defineFamily, defineLayer, defineOp, dim, expectRank, formatShape, ShapeError, type NamedOpDef } from './op-def.js';

const Pair = Type.Array(Type.Integer({ minimum: 1 }), { minItems: 2, maxItems: 2 });

/**
 * max(a, b) without a data-dependent branch: (a + b + |a - b|) / 2 when that
 * is exactly a or b (always, except for operands ~2^30 apart in magnitude, an
 * infinite or NaN one: then Math.max, a branch that is rarely taken). V8
 * compiles Math.max to branches that mispredict on data: 6 ns against 1.8 ns
 * per call (bench/micro/kernels.js, max pooling). max(-0, -0) is +0.
 */
const max2Helper: RuntimeHelper = {
  name: 'max2',
  source: `/** max(a, b), branch-free in the common case: (a + b + |a - b|) / 2 when that is exactly a or b, else Math.max. */
function max2(a: number, b: number): number {
  const r = 0.5 * (a + b + Math.abs(a - b));
  return +(r === a) | +(r === b) ? r : Math.max(a, b);
}`,
};

type Dims4 = readonly [number, number, number, number];
type Reduction = 'max' | 'avg';
interface PoolAttrs {
  readonly pool_size: readonly number[];
  readonly strides: readonly number[];
  readonly padding: string;
}

/** The max or the mean of the input cells of each window (padding cells skipped). */
function poolReference(x: Tensor, a: PoolAttrs, kind: Reduction): Tensor {
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

/** The result type of a window pool over `x`, or why there is none. */
function pooledType(op: string, x: TensorType, a: PoolAttrs): TensorType {
  expectRank(x, 4, op);
  const out = [0, 1].map((i) => convOutputLength(dim(x, i + 1), a.pool_size[i]!, a.strides[i]!, a.padding as Padding));
  if (out[0]! < 1 || out[1]! < 1) {
    throw new ShapeError(`input ${formatShape(x.shape.slice(1))} is smaller than pool_size ${formatShape(a.pool_size)}`);
  }
  return tensor(['N', out[0]!, out[1]!, dim(x, 3)]);
}

/** Code for the window bounds `<v>0`, `<v>1` of output index `o`, clipped to the image: padding cells take no part. */
function windowRangeCode(padding: string, v: string, o: string, s: number, before: number, p: number, size: number): string {
  return padding === 'valid'
    ? `const ${v}0 = ${o} * ${s}, ${v}1 = ${v}0 + ${p};`
    : `const ${v}0 = Math.max(${o} * ${s} - ${before}, 0), ${v}1 = Math.min(${o} * ${s} - ${before} + ${p}, ${size});`;
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

function poolOp<const N extends string>(name: N, summary: string, kind: Reduction): NamedOpDef<N> {
  return defineOp({
    name,
    summary,
    traits: ['pure'],
    attrs: { pool_size: Pair, strides: Pair, padding: Padding },
    operands: () => ['x'],
    examples: [
      { note: '2x2, stride 2, valid', attrs: { pool_size: [2, 2], strides: [2, 2], padding: 'valid' }, operands: [tensor(['N', 4, 4, 2])] },
      { note: '3x3, stride 2, same (padding cells take no part)', attrs: { pool_size: [3, 3], strides: [2, 2], padding: 'same' }, operands: [tensor(['N', 5, 4, 2])] },
      { note: 'overlapping 2x2 windows, stride 1, same', attrs: { pool_size: [2, 2], strides: [1, 1], padding: 'same' }, operands: [tensor(['N', 3, 3, 1])] },
    ],
    infer: ([x], a) => pooledType(name, x!, a),
    reference: ([x], a) => poolReference(x!, a, kind),
    emit: ({ operands: [x], result, attrs: a }) => {
      const [, h, w, c] = x!.shape as Dims4;
      const [, oh, ow] = result.shape as Dims4;
      const [ph, pw] = a.pool_size as [number, number];
      const [sy, sx] = a.strides as [number, number];
      const top = windowAxis(h, ph, sy, a.padding as Padding).before;
      const left = windowAxis(w, pw, sx, a.padding as Padding).before;
      const range = (v: string, o: string, s: number, before: number, p: number, size: number) =>
        windowRangeCode(a.padding, v, o, s, before, p, size);
      const reduce = kind === 'max'
        ? { init: '-Infinity', step: 'acc = max2(acc, v);', result: 'acc' }
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
      return kernel(`${name}_${tag}`, ['x'], `${kind} pooling ${ph}x${pw}, stride ${sy}x${sx}, ${h}x${w} -> ${oh}x${ow}, ${c} channels`, body, kind === 'max' ? [max2Helper] : []);
    },
    // MaxPool / AveragePool channels-first with explicit pads; count_include_pad=0: padding cells do not count.
    onnx: (b, n) => {
      const [x] = n.operands;
      const [, h, w] = b.typeOf(x!).shape as Dims4;
      const [, oh, ow] = n.type.shape as Dims4;
      const { pool_size: size, strides, padding } = n.attrs;
      const before = [0, 1].map((i) => windowAxis([h, w][i]!, size[i]!, strides[i]!, padding as Padding).before);
      const pads = forwardPads({ input: [h, w], output: [oh, ow], kernel: size, strides, dilations: [1, 1], before });
      const attrs = [onnxInts('kernel_shape', size), onnxInts('strides', strides), onnxInts('pads', pads)];
      const input = b.nchw(x!);
      if (kind === 'max') b.produce(n, 'nchw', (out) => b.emit('MaxPool', [input], [out], attrs));
      else b.produce(n, 'nchw', (out) => b.emit('AveragePool', [input], [out], [...attrs, onnxInt('count_include_pad', 0)]));
    },
    // max: dy goes to the first max of each window (TF); avg: dy / count to each of its input cells.
    grad: (g, { operands: [x], attrs: a }, dy) => [
      kind === 'max'
        ? () => g.op('max_pool2d_grad', [dy, x!], { ...a })
        : () => g.op('avg_pool2d_grad', [dy], { ...a, input_shape: exampleShape(g.typeOf(x!)) }),
    ],
  });
}

function globalPoolOp<const N extends string>(name: N, summary: string, kind: Reduction): NamedOpDef<N> {
  return defineOp({
    name,
    summary,
    traits: ['pure'],
    attrs: { keepdims: Type.Boolean() },
    operands: () => ['x'],
    examples: [
      { attrs: { keepdims: false }, operands: [tensor(['N', 3, 2, 4])] },
      { note: 'keepdims', attrs: { keepdims: true }, operands: [tensor(['N', 2, 2, 3])] },
    ],
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
    // GlobalMaxPool / GlobalAveragePool make [N, C, 1, 1]: kept channels-first with keepdims, else flattened to [N, C].
    onnx: (b, n) => {
      const type = kind === 'max' ? 'GlobalMaxPool' : 'GlobalAveragePool';
      const input = b.nchw(n.operands[0]!);
      if (n.attrs.keepdims) b.produce(n, 'nchw', (out) => b.emit(type, [input], [out]));
      else b.produce(n, 'nhwc', (out) => b.emit('Flatten', [b.temp(type, [input])], [out], [onnxInt('axis', 1)]));
    },
    // max: dy goes to the first max of each channel (TF); avg: dy / (h w) to every cell.
    grad: (g, { operands: [x] }, dy) => [
      kind === 'max'
        ? () => g.op('global_max_pool2d_grad', [dy, x!], {})
        : () => g.op('global_avg_pool2d_grad', [dy], { input_shape: exampleShape(g.typeOf(x!)) }),
    ],
  });
}

export const poolOps = [
  poolOp('max_pool2d', 'maximum over each window', 'max'),
  poolOp('avg_pool2d', 'mean over each window (valid cells only)', 'avg'),
  globalPoolOp('global_max_pool2d', 'maximum over height and width', 'max'),
  globalPoolOp('global_avg_pool2d', 'mean over height and width', 'avg'),
] as const;

/** `kerasAlias`: Keras's short name of the class (`MaxPool2D`). */
function poolLayer(type: string, op: string, keras: string, kerasAlias: string, namePrefix: string) {
  return defineLayer({
    type,
    keras,
    kerasImport: {
      classes: [keras, kerasAlias],
      fromConfig: (c) => {
        const pool = c.optional('pool_size', (k) => c.intPair(k)) ?? 2;
        c.set('pool_size', pool);
        const strides = c.optional('strides', (k) => c.intPair(k));
        if (strides !== undefined && JSON.stringify(strides) !== JSON.stringify(pool)) c.set('strides', strides);
        c.set('padding', c.padding());
        c.dataFormat();
      },
    },
    examples: [
      { attrs: { pool_size: 3, strides: 2, padding: 'same' }, inputs: [[5, 6, 2]] },
      { attrs: { pool_size: [2, 3] }, inputs: [[4, 6, 1]] },
    ],
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

function globalPoolLayer(type: string, op: string, keras: string, kerasAlias: string, namePrefix: string) {
  return defineLayer({
    type,
    keras,
    kerasImport: {
      classes: [keras, kerasAlias],
      fromConfig: (c) => {
        c.dataFormat();
        c.set('keepdims', c.optional('keepdims', (k) => c.bool(k)));
      },
    },
    examples: [{ attrs: { keepdims: true }, inputs: [[3, 4, 2]] }],
    namePrefix,
    summary: `global ${op.startsWith('global_max') ? 'max' : 'average'} pooling`,
    attrs: { keepdims: Type.Boolean({ default: false }) },
    arity: [1, 1],
    lower: (ctx, [x], a) => ctx.op(op, [x!], { keepdims: a.keepdims }),
  });
}

export const poolLayers = [
  poolLayer('max_pool2d', 'max_pool2d', 'MaxPooling2D', 'MaxPool2D', 'max_pooling2d'),
  poolLayer('avg_pool2d', 'avg_pool2d', 'AveragePooling2D', 'AvgPool2D', 'average_pooling2d'),
  globalPoolLayer('global_max_pool2d', 'global_max_pool2d', 'GlobalMaxPooling2D', 'GlobalMaxPool2D', 'global_max_pooling2d'),
  globalPoolLayer('global_avg_pool2d', 'global_avg_pool2d', 'GlobalAveragePooling2D', 'GlobalAvgPool2D', 'global_average_pooling2d'),
];

// ---------------------------------------------------------------------------
// Gradient ops. Max pooling routes each window's dy to the window's first
// maximum in row-major order (TF and TF.js: a strict `>` scan), average
// pooling spreads dy / count over the window's input cells. Windows overlap
// when strides < pool_size; a cell's contributions are then added in turn.

/** Per output index along one axis, the input range [start, end) of its window, padding cells clipped. */
function clippedWindows(size: number, k: number, stride: number, padding: string): [number, number][] {
  const { out, before } = windowAxis(size, k, stride, padding as Padding);
  return Array.from({ length: out }, (_, o) => [Math.max(o * stride - before, 0), Math.min(o * stride - before + k, size)]);
}

/** dx of a window pool with input shape `[batch, h, w, c]` (max pooling reads its input x). */
function poolGradReference(dy: Tensor, x: Tensor | undefined, [batch, h, w, c]: Dims4, a: PoolAttrs, kind: Reduction): Tensor {
  const rows = clippedWindows(h, a.pool_size[0]!, a.strides[0]!, a.padding);
  const cols = clippedWindows(w, a.pool_size[1]!, a.strides[1]!, a.padding);
  const dx = new Float64Array(batch * h * w * c);
  let at = 0;
  for (let n = 0; n < batch; n++)
    for (const [y0, y1] of rows)
      for (const [x0, x1] of cols)
        for (let ci = 0; ci < c; ci++) {
          const d = dy.data[at++]!;
          const cell = (iy: number, ix: number) => ((n * h + iy) * w + ix) * c + ci;
          if (kind === 'avg') {
            const share = d / ((y1 - y0) * (x1 - x0));
            for (let iy = y0; iy < y1; iy++) for (let ix = x0; ix < x1; ix++) dx[cell(iy, ix)] += share;
            continue;
          }
          let best = -Infinity;
          let arg = -1;
          for (let iy = y0; iy < y1; iy++) {
            for (let ix = x0; ix < x1; ix++) {
              const v = x!.data[cell(iy, ix)]!;
              if (v > best) [best, arg] = [v, cell(iy, ix)];
            }
          }
          if (arg >= 0) dx[arg] += d;
        }
  return { shape: [batch, h, w, c], data: dx };
}

function poolGradCode(x: TensorType, dy: TensorType, a: PoolAttrs, kind: Reduction): string {
  const [, h, w, c] = x.shape as Dims4;
  const [, oh, ow] = dy.shape as Dims4;
  const [ph, pw] = a.pool_size as [number, number];
  const [sy, sx] = a.strides as [number, number];
  const top = windowAxis(h, ph, sy, a.padding as Padding).before;
  const left = windowAxis(w, pw, sx, a.padding as Padding).before;
  const cell = `((e * ${h} + iy) * ${w} + ix) * ${c} + ch`;
  // max: dy to the first maximum of the window, found without data-dependent branches (a maximum
  // at a random place mispredicts): `arg` moves to a cell only when it is strictly greater.
  const perChannel = kind === 'max'
    ? `let best = -Infinity, arg = -1;
        for (let iy = iy0; iy < iy1; iy++) {
          for (let ix = ix0; ix < ix1; ix++) {
            const i = ${cell};
            const v = x[i]!;
            arg += +(v > best) * (i - arg);
            best = max2(best, v);
          }
        }
        if (arg >= 0) y[arg] = y[arg]! + dy[dAt + ch]!;`
    : `const share = dy[dAt + ch]! / ((iy1 - iy0) * (ix1 - ix0));
        for (let iy = iy0; iy < iy1; iy++) for (let ix = ix0; ix < ix1; ix++) { const i = ${cell}; y[i] = y[i]! + share; }`;
  return `y.fill(0, 0, ${total(x)});
for (let e = 0; e < n; e++) {
  for (let oy = 0; oy < ${oh}; oy++) {
    ${windowRangeCode(a.padding, 'iy', 'oy', sy, top, ph, h)}
    for (let ox = 0; ox < ${ow}; ox++) {
      ${windowRangeCode(a.padding, 'ix', 'ox', sx, left, pw, w)}
      const dAt = ((e * ${oh} + oy) * ${ow} + ox) * ${c};
      for (let ch = 0; ch < ${c}; ch++) {
        ${perChannel}
      }
    }
  }
}`;
}

const poolAttrs = { pool_size: Pair, strides: Pair, padding: Padding };
const InputShape = Type.Array(Type.Integer({ minimum: 1 }), { minItems: 3, maxItems: 3, description: 'the per-example shape of the pool input' });

function expectPooled(op: string, x: TensorType, dy: TensorType, a: PoolAttrs): void {
  const want = pooledType(op, x, a);
  if (!sameType(want, dy)) throw new ShapeError(`${op}: dy must be ${formatType(want)} for an input ${formatType(x)}, got ${formatType(dy)}`);
}

function poolGradTag(x: TensorType, a: PoolAttrs): string {
  return `${shapeTag(x)}_p${a.pool_size.join('x')}_s${a.strides.join('x')}${a.padding === 'same' ? '_same' : ''}`;
}

/**
 * dx of max_pool2d: each window's dy added at its first maximum.
 *
 *   %pool/grad: f32[N,8,8,4] = max_pool2d_grad(%grad, %relu) {pool_size=[2,2], strides=[2,2], padding="valid"}
 */
export const maxPool2dGradOp = defineOp({
  name: 'max_pool2d_grad',
  summary: 'the gradient of max_pool2d: dy routed to the first maximum of each window',
  traits: ['pure'],
  attrs: poolAttrs,
  operands: () => ['dy', 'x'],
  examples: [
    { note: '2x2, stride 2, valid', attrs: { pool_size: [2, 2], strides: [2, 2], padding: 'valid' }, operands: [tensor(['N', 2, 2, 2]), tensor(['N', 4, 4, 2])] },
    { note: '3x3, stride 2, same', attrs: { pool_size: [3, 3], strides: [2, 2], padding: 'same' }, operands: [tensor(['N', 3, 2, 2]), tensor(['N', 5, 4, 2])] },
    { note: 'overlapping windows add up', attrs: { pool_size: [2, 2], strides: [1, 1], padding: 'same' }, operands: [tensor(['N', 3, 3, 1]), tensor(['N', 3, 3, 1])] },
  ],
  infer: ([dy, x], a) => {
    expectPooled('max_pool2d_grad', x!, dy!, a);
    return x!;
  },
  reference: ([dy, x], a) => poolGradReference(dy!, x!, x!.shape as unknown as Dims4, a, 'max'),
  emit: ({ operands: [dy, x], attrs: a }) =>
    kernel(`max_pool2d_grad_${poolGradTag(x!, a)}`, ['dy', 'x'], 'max pooling gradient: dy to the first maximum of each window', poolGradCode(x!, dy!, a, 'max'), [max2Helper]),
  onnx: { notExportable: 'a gradient op: only training graphs compute it' },
  grad: 'none',
});

/**
 * dx of avg_pool2d: dy / count to each input cell of the window.
 *
 *   %pool/grad: f32[N,8,8,4] = avg_pool2d_grad(%grad) {pool_size=[2,2], strides=[2,2], padding="same", input_shape=[8,8,4]}
 */
export const avgPool2dGradOp = defineOp({
  name: 'avg_pool2d_grad',
  summary: 'the gradient of avg_pool2d: dy / count spread over each window',
  traits: ['pure'],
  attrs: { ...poolAttrs, input_shape: InputShape },
  operands: () => ['dy'],
  examples: [
    { note: '2x2, stride 2, valid', attrs: { pool_size: [2, 2], strides: [2, 2], padding: 'valid', input_shape: [4, 4, 2] }, operands: [tensor(['N', 2, 2, 2])] },
    { note: '3x3, stride 2, same', attrs: { pool_size: [3, 3], strides: [2, 2], padding: 'same', input_shape: [5, 4, 2] }, operands: [tensor(['N', 3, 2, 2])] },
    { note: 'overlapping windows add up', attrs: { pool_size: [2, 2], strides: [1, 1], padding: 'same', input_shape: [3, 3, 1] }, operands: [tensor(['N', 3, 3, 1])] },
  ],
  infer: ([dy], a) => {
    const x = batched(a.input_shape);
    expectPooled('avg_pool2d_grad', x, dy!, a);
    return x;
  },
  reference: ([dy], a) => poolGradReference(dy!, undefined, [dy!.shape[0]!, ...a.input_shape] as unknown as Dims4, a, 'avg'),
  emit: ({ operands: [dy], result, attrs: a }) =>
    kernel(`avg_pool2d_grad_${poolGradTag(result, a)}`, ['dy'], 'average pooling gradient: dy / count over each window', poolGradCode(result, dy!, a, 'avg')),
  onnx: { notExportable: 'a gradient op: only training graphs compute it' },
  grad: 'none',
});

/** dy of a global pool over `channels` channels: [N, C], or [N, 1, 1, C] with keepdims (the same data). */
function expectGlobalDy(op: string, dy: TensorType, channels: number): void {
  const ok = dy.shape[0] === 'N' && dy.shape[dy.shape.length - 1] === channels
    && (dy.shape.length === 2 || (dy.shape.length === 4 && dy.shape[1] === 1 && dy.shape[2] === 1));
  if (!ok) throw new ShapeError(`${op}: dy must be f32[N,${channels}] or f32[N,1,1,${channels}], got ${formatType(dy)}`);
}

/**
 * dx of global_max_pool2d: each channel's dy at its first maximum over height and width.
 *
 *   %gmp/grad: f32[N,8,8,4] = global_max_pool2d_grad(%grad, %relu)
 */
export const globalMaxPool2dGradOp = defineOp({
  name: 'global_max_pool2d_grad',
  summary: 'the gradient of global_max_pool2d: dy at the first maximum of each channel',
  traits: ['pure'],
  attrs: {},
  operands: () => ['dy', 'x'],
  examples: [
    { attrs: {}, operands: [tensor(['N', 4]), tensor(['N', 3, 2, 4])] },
    { note: 'dy with keepdims', attrs: {}, operands: [tensor(['N', 1, 1, 3]), tensor(['N', 2, 2, 3])] },
  ],
  infer: ([dy, x]) => {
    expectRank(x!, 4, 'global_max_pool2d_grad');
    expectGlobalDy('global_max_pool2d_grad', dy!, dim(x!, 3));
    return x!;
  },
  reference: ([dy, x]) => {
    const [batch, h, w, c] = x!.shape as unknown as Dims4;
    const dx = new Float64Array(x!.data.length);
    for (let n = 0; n < batch; n++)
      for (let ci = 0; ci < c; ci++) {
        let best = -Infinity;
        let arg = -1;
        for (let i = 0; i < h * w; i++) {
          const v = x!.data[(n * h * w + i) * c + ci]!;
          if (v > best) [best, arg] = [v, (n * h * w + i) * c + ci];
        }
        if (arg >= 0) dx[arg] = dy!.data[n * c + ci]!;
      }
    return { shape: [...x!.shape], data: dx };
  },
  emit: ({ operands: [, x] }) => {
    const [, h, w, c] = x!.shape as Dims4;
    return kernel(`global_max_pool2d_grad_${shapeTag(x!)}`, ['dy', 'x'], `global max pooling gradient over ${h}x${w}: dy to each channel's first maximum`,
      `y.fill(0, 0, ${total(x!)});
for (let e = 0; e < n; e++) {
  for (let ch = 0; ch < ${c}; ch++) {
    let best = -Infinity, arg = -1;
    for (let i = (e * ${h * w}) * ${c} + ch; i < (e + 1) * ${h * w * c}; i += ${c}) {
      if (x[i]! > best) { best = x[i]!; arg = i; }
    }
    if (arg >= 0) y[arg] = dy[e * ${c} + ch]!;
  }
}`);
  },
  onnx: { notExportable: 'a gradient op: only training graphs compute it' },
  grad: 'none',
});

/**
 * dx of global_avg_pool2d: each channel's dy / (h w) at every cell.
 *
 *   %gap/grad: f32[N,8,8,4] = global_avg_pool2d_grad(%grad) {input_shape=[8,8,4]}
 */
export const globalAvgPool2dGradOp = defineOp({
  name: 'global_avg_pool2d_grad',
  summary: 'the gradient of global_avg_pool2d: dy / (height * width) at every cell',
  traits: ['pure'],
  attrs: { input_shape: InputShape },
  operands: () => ['dy'],
  examples: [
    { attrs: { input_shape: [3, 2, 4] }, operands: [tensor(['N', 4])] },
    { note: 'dy with keepdims', attrs: { input_shape: [2, 2, 3] }, operands: [tensor(['N', 1, 1, 3])] },
  ],
  infer: ([dy], a) => {
    expectGlobalDy('global_avg_pool2d_grad', dy!, a.input_shape[2]!);
    return batched(a.input_shape);
  },
  reference: ([dy], a) => {
    const [h, w, c] = a.input_shape as [number, number, number];
    const batch = dy!.shape[0]!;
    const dx = new Float64Array(batch * h * w * c);
    for (let n = 0; n < batch; n++)
      for (let i = 0; i < h * w; i++)
        for (let ci = 0; ci < c; ci++) dx[(n * h * w + i) * c + ci] = dy!.data[n * c + ci]! / (h * w);
    return { shape: [batch, h, w, c], data: dx };
  },
  emit: ({ result, attrs: a }) => {
    const [h, w, c] = a.input_shape as [number, number, number];
    return kernel(`global_avg_pool2d_grad_${shapeTag(result)}`, ['dy'], `global average pooling gradient: dy / ${h * w} at every cell`,
      `for (let e = 0; e < n; e++) {
  for (let i = 0; i < ${h * w}; i++) {
    const at = (e * ${h * w} + i) * ${c};
    for (let ch = 0; ch < ${c}; ch++) y[at + ch] = dy[e * ${c} + ch]! / ${h * w};
  }
}`);
  },
  onnx: { notExportable: 'a gradient op: only training graphs compute it' },
  grad: 'none',
});

/** Gradient ops of the pools. */
export const poolGradOps = [maxPool2dGradOp, avgPool2dGradOp, globalMaxPool2dGradOp, globalAvgPool2dGradOp] as const;

/** Window and global pools, their gradient ops and layers. */
export const poolFamily = defineFamily({ ops: [...poolOps, ...poolGradOps], layers: poolLayers });
