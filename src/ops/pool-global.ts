/**
 * Global pooling over NHWC tensors: global_max_pool2d and global_avg_pool2d
 * (the max or the mean over height and width of each channel), their gradient
 * ops and their Keras layers. Part of the pool family, which `pool.ts` lists.
 *
 *   %global_average_pooling2d: f32[N,64] = global_avg_pool2d(%relu_3) {keepdims=false}
 *
 * With keepdims the result is [N, 1, 1, C], the same data as [N, C]; the
 * gradient ops accept dy in either form. Max pooling's gradient goes to the
 * first maximum of each channel in row-major order (TF).
 */
import { Type } from '@sinclair/typebox';
import type { Tensor } from '../ir/tensor.js';
import { batched, exampleShape, formatType, tensor, type TensorType } from '../ir/types.js';
import { kernel, shapeTag, total } from './emit.js';
import { gradientOnly, onnxInt } from './onnx-def.js';
import { defineLayer, defineOp, dim, expectRank, ShapeError, type NamedOpDef } from './op-def.js';

type Dims4 = readonly [number, number, number, number];
type Reduction = 'max' | 'avg';

/** `input_shape` of the gradient ops that take no x (both average pools'). */
export const InputShape = Type.Array(Type.Integer({ minimum: 1 }), { minItems: 3, maxItems: 3, description: 'the per-example shape of the pool input' });

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

export const globalPoolOps = [
  globalPoolOp('global_max_pool2d', 'maximum over height and width', 'max'),
  globalPoolOp('global_avg_pool2d', 'mean over height and width', 'avg'),
] as const;

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
    kerasExport: (a) => ({ className: keras, config: { data_format: 'channels_last', keepdims: a.keepdims } }),
    examples: [{ attrs: { keepdims: true }, inputs: [[3, 4, 2]] }],
    namePrefix,
    summary: `global ${op.startsWith('global_max') ? 'max' : 'average'} pooling`,
    attrs: { keepdims: Type.Boolean({ default: false }) },
    arity: [1, 1],
    lower: (ctx, [x], a) => ctx.op(op, [x!], { keepdims: a.keepdims }),
  });
}

export const globalPoolLayers = [
  globalPoolLayer('global_max_pool2d', 'global_max_pool2d', 'GlobalMaxPooling2D', 'GlobalMaxPool2D', 'global_max_pooling2d'),
  globalPoolLayer('global_avg_pool2d', 'global_avg_pool2d', 'GlobalAveragePooling2D', 'GlobalAvgPool2D', 'global_average_pooling2d'),
];

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
  onnx: gradientOnly,
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
  onnx: gradientOnly,
  grad: 'none',
});

/** Gradient ops of the global pools. */
export const globalPoolGradOps = [globalMaxPool2dGradOp, globalAvgPool2dGradOp] as const;
