/**
 * Window pooling over NHWC tensors: max_pool2d and avg_pool2d, their gradient
 * ops and their Keras layers, and the pool family, which adds the global
 * pools of `pool-global.ts`. The window math is the convolutions'
 * (`conv/window.ts`).
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
import { convOutputLength, intPair, pair, Pair, Padding, windowAxis } from './conv/window.js';
import { kernel, shapeTag, total, type EmitRequest, type RuntimeHelper } from './emit.js';
import { gradientOnly, onnxInt, onnxInts } from './onnx-def.js';
import { forwardPads } from './onnx-util.js';
import { globalPoolGradOps, globalPoolLayers, globalPoolOps, InputShape } from './pool-global.js';
import { defineFamily, defineLayer, defineOp, dim, expectRank, formatShape, ShapeError, type NamedOpDef } from './op-def.js';
import { selection, unrolledPoolCells, type PoolWindow, type SimdSelection, type SimdUse } from './simd-def.js';

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

/** Window cells the SIMD kernels may unroll (large pools with many clipped windows would make megabytes of code). */
const MAX_UNROLLED_CELLS = 4096;

/**
 * The windows of a max pool over x (pooled to `pooled`) for the Trainer's
 * SIMD kernels (codegen/wasm/pool.ts): channels in whole f32x4 vectors, code
 * of a sensible size; undefined otherwise.
 */
function simdWindow(x: TensorType, pooled: TensorType, a: PoolAttrs, use: SimdUse): PoolWindow | undefined {
  const [, h, w, c] = x.shape as Dims4;
  if (use !== 'training' || c % 4 !== 0) return undefined;
  const [, oh, ow] = pooled.shape as Dims4;
  const [ph, pw] = a.pool_size as [number, number];
  const [sy, sx] = a.strides as [number, number];
  const before = [windowAxis(h, ph, sy, a.padding as Padding).before, windowAxis(w, pw, sx, a.padding as Padding).before] as const;
  const window: PoolWindow = { input: [h, w, c], output: [oh, ow], pool: [ph, pw], strides: [sy, sx], before };
  return unrolledPoolCells(window) <= MAX_UNROLLED_CELLS ? window : undefined;
}

function maxPoolSimd(kind: 'max_pool2d' | 'max_pool2d_grad', x: TensorType, pooled: TensorType, a: PoolAttrs, use: SimdUse): SimdSelection | undefined {
  const window = simdWindow(x, pooled, a, use);
  return window && selection({ kind, window });
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
      { note: "channels in whole f32x4 vectors (max: the Trainer's SIMD kernel), 3x2, stride 2x1, same", attrs: { pool_size: [3, 2], strides: [2, 1], padding: 'same' }, operands: [tensor(['N', 5, 4, 8])] },
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
    ...(kind === 'max' ? { simd: ({ operands: [x], result, attrs: a }: EmitRequest<PoolAttrs>, use: SimdUse) => maxPoolSimd('max_pool2d', x!, result, a, use) } : {}),
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

export const windowPoolOps = [
  poolOp('max_pool2d', 'maximum over each window', 'max'),
  poolOp('avg_pool2d', 'mean over each window (valid cells only)', 'avg'),
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
    kerasExport: (a) => ({
      className: keras,
      config: { pool_size: pair(a.pool_size), strides: pair(a.strides ?? a.pool_size), padding: a.padding, data_format: 'channels_last' },
    }),
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

export const windowPoolLayers = [
  poolLayer('max_pool2d', 'max_pool2d', 'MaxPooling2D', 'MaxPool2D', 'max_pooling2d'),
  poolLayer('avg_pool2d', 'avg_pool2d', 'AveragePooling2D', 'AvgPool2D', 'average_pooling2d'),
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
    { note: "channels in whole f32x4 vectors (the Trainer's SIMD kernel), non-overlapping 2x2 windows", attrs: { pool_size: [2, 2], strides: [2, 2], padding: 'same' }, operands: [tensor(['N', 3, 2, 8]), tensor(['N', 5, 4, 8])] },
    { note: 'whole f32x4 vectors, overlapping 3x3 windows, stride 2, valid (cells in no window)', attrs: { pool_size: [3, 3], strides: [2, 2], padding: 'valid' }, operands: [tensor(['N', 2, 1, 4]), tensor(['N', 6, 4, 4])] },
  ],
  infer: ([dy, x], a) => {
    expectPooled('max_pool2d_grad', x!, dy!, a);
    return x!;
  },
  reference: ([dy, x], a) => poolGradReference(dy!, x!, x!.shape as unknown as Dims4, a, 'max'),
  emit: ({ operands: [dy, x], attrs: a }) =>
    kernel(`max_pool2d_grad_${poolGradTag(x!, a)}`, ['dy', 'x'], 'max pooling gradient: dy to the first maximum of each window', poolGradCode(x!, dy!, a, 'max'), [max2Helper]),
  simd: ({ operands: [dy, x], attrs: a }, use) => maxPoolSimd('max_pool2d_grad', x!, dy!, a, use),
  onnx: gradientOnly,
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
  onnx: gradientOnly,
  grad: 'none',
});

/** Gradient ops of the window pools. */
export const windowPoolGradOps = [maxPool2dGradOp, avgPool2dGradOp] as const;

/** Window and global pools, their gradient ops and layers; the order is the one the JSON Schema and `ops` already had. */
export const poolFamily = defineFamily({
  ops: [...windowPoolOps, ...globalPoolOps, ...windowPoolGradOps, ...globalPoolGradOps],
  layers: [...windowPoolLayers, ...globalPoolLayers],
});
