/**
 * Keras's preprocessing `Normalization` layer (EfficientNet, EfficientNetV2):
 * per channel c along `axis`, (x - mean[c]) / max(sqrt(variance[c]), 1e-7),
 * 1e-7 being Keras's backend epsilon; `invert` maps back:
 * mean[c] + x * max(sqrt(variance[c]), 1e-7).
 *
 *   %normalization: f32[N,8,8,3] = normalize(%x, %normalization/mean, %normalization/variance) {axis=3, invert=false, mean=null, variance=null}
 *   %normalization: f32[N,8,8,3] = normalize(%x) {axis=3, invert=false, mean=[0.485,0.456,0.406], variance=[...]}
 *
 * The statistics come from the config (Keras's `mean` and `variance`
 * arguments; then the op holds them as attributes and has one operand) or
 * are the layer's non-trainable parameters `mean` and `variance`, which Keras
 * saves after `adapt` (with an integer `count` that modelc does not keep).
 * Gradient: dy / max(sqrt(variance), 1e-7) per channel (`normalize_grad`;
 * times it with `invert`). ONNX: Sub and Div (Mul and Add), the statistics
 * shaped [C, 1, ...] to broadcast along the channel axis. A per-channel affine
 * map (`channelAffine`): `fold-bn` folds it into a neighbouring linear op.
 */
import { Type } from '@sinclair/typebox';
import { aroundAxis, type Tensor } from '../ir/tensor.js';
import { tensor, type TensorType } from '../ir/types.js';
import { kernel, shapeTag, times } from './emit.js';
import { show, type KerasConfig } from './keras-def.js';
import { gradientOnly, type OnnxBuilder } from './onnx-def.js';
import { defineFamily, defineLayer, defineOp, dim, formatShape, ShapeError, type OpNode } from './op-def.js';

/** Keras's `backend.epsilon()`, the smallest standard deviation Normalization divides by. */
const EPSILON = 1e-7;

const Stats = Type.Union([Type.Array(Type.Number()), Type.Null()]);
type NormalizeAttrs = { axis: number; invert: boolean; mean: number[] | null; variance: number[] | null };

const normalizeOperands = (a: { mean: readonly number[] | null }) => (a.mean === null ? ['x', 'mean', 'variance'] : ['x']);

/** The statistics of a node: its attributes, or its operands' values. */
function stats(inputs: readonly Tensor[], a: NormalizeAttrs): { mean: ArrayLike<number>; variance: ArrayLike<number> } {
  return a.mean === null ? { mean: inputs[1]!.data, variance: inputs[2]!.data } : { mean: a.mean, variance: a.variance! };
}

/** y = f(x, c) per element, c its index along `axis`. */
function perChannel(x: Tensor, axis: number, f: (v: number, c: number) => number): Tensor {
  const { n, inner } = aroundAxis(x.shape, axis);
  return { shape: [...x.shape], data: x.data.map((v, i) => f(v, Math.floor(i / inner) % n)) };
}

const deviation = (variance: number) => Math.max(Math.sqrt(variance), EPSILON);

/** The kernel's per-channel loop; config statistics become constant arrays named as the parameters. */
function channelLoop(t: TensorType, a: { axis: number; mean?: readonly number[] | null; variance: readonly number[] | null }, value: string, withMean: boolean): string {
  const { outer, n, inner } = aroundAxis([1, ...(t.shape.slice(1) as number[])], a.axis);
  const constants = [
    ...(a.mean ? [`const mean = [${a.mean.join(', ')}];`] : []),
    ...(a.variance ? [`const variance = [${a.variance.join(', ')}];`] : []),
  ];
  return `${constants.join('\n')}
for (let o = 0; o < ${times('n', outer)}; o++) {
  for (let c = 0; c < ${n}; c++) {
    const d = Math.max(Math.sqrt(variance[c]!), ${EPSILON});${withMean ? '\n    const m = mean[c]!;' : ''}
    const at = (o * ${n} + c) * ${inner};
    for (let i = at; i < at + ${inner}; i++) y[i] = ${value};
  }
}`.trimStart();
}

/** A per-channel vector as an initializer shaped [C, 1, ...] for the channel axis in the exported layout. */
function channelConstant(b: OnnxBuilder, n: OpNode<NormalizeAttrs>, layoutAxis: number, role: 'mean' | 'variance'): string {
  const rank = n.type.shape.length;
  const dims = [n.type.shape[n.attrs.axis] as number, ...new Array<number>(rank - 1 - layoutAxis).fill(1)];
  const f = role === 'mean' ? (v: number) => v : deviation;
  const given = n.attrs[role];
  if (given !== null) return b.constant(Float32Array.from(given, f), dims);
  return b.param(n.operands[role === 'mean' ? 1 : 2]!, `${role}${dims.length}`, (_, data) => ({ dims, data: data.map(f) }));
}

export const normalizeOp = defineOp({
  name: 'normalize',
  summary: '(x - mean) / max(sqrt(variance), 1e-7) per channel (Keras Normalization), or its inverse',
  traits: ['pure'],
  attrs: { axis: Type.Integer({ minimum: 1 }), invert: Type.Boolean(), mean: Stats, variance: Stats },
  operands: normalizeOperands,
  examples: [
    { note: 'statistics as parameters', attrs: { axis: 3, invert: false, mean: null, variance: null }, operands: [tensor(['N', 2, 2, 3]), tensor([3]), tensor([3])], values: [undefined, undefined, { min: 0.1, max: 2 }] },
    { note: 'statistics from the config', attrs: { axis: 1, invert: false, mean: [0.485, 0.456], variance: [0.052441, 4] }, operands: [tensor(['N', 2, 3])] },
    { note: 'inverted', attrs: { axis: 1, invert: true, mean: null, variance: null }, operands: [tensor(['N', 4]), tensor([4]), tensor([4])], values: [undefined, undefined, { min: 0.1, max: 2 }] },
  ],
  infer: ([x, ...operands], a) => {
    if (a.axis >= x!.shape.length) throw new ShapeError(`normalize axis ${a.axis} is out of range for ${formatShape(x!.shape)}`);
    const channels = dim(x!, a.axis);
    const sizes = a.mean === null ? operands.map((t) => (t!.shape.length === 1 ? t!.shape[0] : -1)) : [a.mean.length, a.variance?.length ?? -1];
    if (sizes.some((s) => s !== channels)) throw new ShapeError(`normalize mean and variance must have ${channels} values (one per channel along axis ${a.axis})`);
    return x!;
  },
  reference: (inputs, a) => {
    const { mean, variance } = stats(inputs, a);
    return perChannel(inputs[0]!, a.axis, (v, c) =>
      a.invert ? mean[c]! + v * deviation(variance[c]!) : (v - mean[c]!) / deviation(variance[c]!));
  },
  emit: ({ operands: [x], attrs: a }) =>
    kernel(`normalize_${shapeTag(x!)}_axis${a.axis}${a.invert ? '_invert' : ''}`, normalizeOperands(a),
      `${a.invert ? 'mean + x * std' : '(x - mean) / std'} per channel along axis ${a.axis}, std = max(sqrt(variance), 1e-7)`,
      channelLoop(x!, a, a.invert ? 'x[i]! * d + m' : '(x[i]! - m) / d', true)),
  onnx: (b, n) => {
    const x = n.operands[0]!;
    const layout = b.layoutFor([x]);
    const axis = b.axisIn(n.attrs.axis, layout, n.type.shape.length);
    const mean = channelConstant(b, n, axis, 'mean');
    const std = channelConstant(b, n, axis, 'variance');
    b.produce(n, layout, (out) =>
      n.attrs.invert
        ? b.emit('Add', [b.temp('Mul', [b.in(x, layout), std]), mean], [out])
        : b.emit('Div', [b.temp('Sub', [b.in(x, layout), mean]), std], [out]));
  },
  // (x - mean) / std = x * (1 / std) - mean / std; inverted: x * std + mean.
  channelAffine: ({ attrs: a }, value) => {
    const mean = a.mean ?? value(1)!;
    const variance = a.variance ?? value(2)!;
    const std = Float64Array.from(variance, deviation);
    return a.invert
      ? { scale: std, shift: Float64Array.from(mean) }
      : { scale: std.map((d) => 1 / d), shift: std.map((d, c) => -mean[c]! / d) };
  },
  // y = (x - mean) / std per channel: dx = dy / std (invert: dy * std); the statistics are not trainable.
  grad: (g, { operands, attrs: a }, dy) => [
    () => g.op('normalize_grad', [dy, ...(a.mean === null ? [operands[2]!] : [])], { axis: a.axis, invert: a.invert, variance: a.variance }),
  ],
});

/**
 * dx of normalize: dy / max(sqrt(variance), 1e-7) per channel (times it when inverted).
 *
 *   %normalization/grad: f32[N,8,8,3] = normalize_grad(%grad, %normalization/variance) {axis=3, invert=false, variance=null}
 */
export const normalizeGradOp = defineOp({
  name: 'normalize_grad',
  summary: 'the gradient of normalize with respect to x',
  traits: ['pure'],
  attrs: { axis: Type.Integer({ minimum: 1 }), invert: Type.Boolean(), variance: Stats },
  operands: (a) => (a.variance === null ? ['dy', 'variance'] : ['dy']),
  examples: [
    { attrs: { axis: 3, invert: false, variance: null }, operands: [tensor(['N', 2, 2, 3]), tensor([3])], values: [undefined, { min: 0.1, max: 2 }] },
    { note: 'config variance, inverted', attrs: { axis: 1, invert: true, variance: [0.5, 2] }, operands: [tensor(['N', 2, 3])] },
    { note: 'a zero variance divides by 1e-7', attrs: { axis: 2, invert: false, variance: [0.5, 0] }, operands: [tensor(['N', 3, 2])] },
  ],
  infer: ([dy, variance], a) => {
    const channels = dim(dy!, a.axis);
    const size = a.variance === null ? (variance!.shape.length === 1 ? variance!.shape[0] : -1) : a.variance.length;
    if (size !== channels) throw new ShapeError(`normalize_grad variance must have ${channels} values`);
    return dy!;
  },
  reference: ([dy, variance], a) => {
    const v = a.variance ?? variance!.data;
    return perChannel(dy!, a.axis, (g, c) => (a.invert ? g * deviation(v[c]!) : g / deviation(v[c]!)));
  },
  emit: ({ operands: [dy], attrs: a }) =>
    kernel(`normalize_grad_${shapeTag(dy!)}_axis${a.axis}${a.invert ? '_invert' : ''}`, a.variance === null ? ['dy', 'variance'] : ['dy'],
      `dy ${a.invert ? '*' : '/'} max(sqrt(variance), 1e-7) per channel along axis ${a.axis}`, channelLoop(dy!, a, a.invert ? 'dy[i]! * d' : 'dy[i]! / d', false)),
  onnx: gradientOnly,
  grad: 'none',
});

/** Keras's `mean` / `variance` config value: a number, a list of numbers, or absent. */
function kerasStats(c: KerasConfig, key: string): number | number[] | undefined {
  const v = c.optional(key, (k) => c.get(k));
  if (v === undefined) return undefined;
  const flat = Array.isArray(v) ? v.flat(Infinity) : v;
  if (typeof flat === 'number' || (Array.isArray(flat) && flat.every((d) => typeof d === 'number'))) return flat as number | number[];
  return c.fail(key, `${key} must be a number or a list of numbers, got ${show(v)}`);
}

export const normalizationLayer = defineLayer({
  type: 'normalization',
  keras: 'Normalization',
  kerasImport: {
    classes: ['Normalization'],
    fromConfig: (c) => {
      const axis = c.optional('axis', (k) => c.get(k));
      const single = Array.isArray(axis) && axis.length === 1 ? axis[0] : axis;
      if (axis !== undefined && !Number.isInteger(single)) c.fail('axis', `only one axis is supported, got ${show(axis)}`);
      c.set('axis', single);
      c.set('mean', kerasStats(c, 'mean'));
      c.set('variance', kerasStats(c, 'variance'));
      c.set('invert', c.optional('invert', (k) => c.bool(k)));
    },
  },
  // Keras saves mean, variance and an integer count; modelc keeps the first two.
  kerasVariables: (roles) => (roles.length === 0 ? [] : ['mean', 'variance', null]),
  kerasExport: (a) => ({ className: 'Normalization', config: { axis: a.axis, mean: a.mean ?? null, variance: a.variance ?? null, invert: a.invert } }),
  examples: [
    { attrs: {}, inputs: [[2, 2, 3]] },
    { attrs: { mean: [1, 2, 3], variance: 4, invert: true }, inputs: [[2, 3]] },
  ],
  namePrefix: 'normalization',
  summary: '(x - mean) / sqrt(variance) per channel (Keras preprocessing)',
  attrs: {
    axis: Type.Integer({ default: -1, description: 'the channel axis (negative counts from the end)' }),
    mean: Type.Optional(Type.Union([Type.Number(), Type.Array(Type.Number())], { description: 'per-channel means (one number: every channel); absent: the parameter mean' })),
    variance: Type.Optional(Type.Union([Type.Number(), Type.Array(Type.Number({ minimum: 0 }))], { description: 'per-channel variances, with mean' })),
    invert: Type.Boolean({ default: false, description: 'map normalized values back: mean + x * sqrt(variance)' }),
  },
  arity: [1, 1],
  lower: (ctx, [x], a) => {
    const t = ctx.typeOf(x!);
    const axis = a.axis < 0 ? t.shape.length + a.axis : a.axis;
    if (axis <= 0 || axis >= t.shape.length) throw new ShapeError(`normalization axis ${a.axis} is out of range for input rank ${t.shape.length} (axis 0 is the batch)`);
    const channels = dim(t, axis);
    if ((a.mean === undefined) !== (a.variance === undefined)) throw new ShapeError('normalization needs both mean and variance, or neither (then they are parameters)');
    if (a.mean === undefined) {
      const mean = ctx.param('mean', [channels], { type: 'zeros', args: {} }, false);
      const variance = ctx.param('variance', [channels], { type: 'ones', args: {} }, false);
      return ctx.op('normalize', [x!, mean, variance], { axis, invert: a.invert, mean: null, variance: null });
    }
    const values = (v: number | readonly number[], what: string) => {
      const list = typeof v === 'number' ? [v] : [...v];
      if (list.length === 1) return new Array<number>(channels).fill(list[0]!);
      if (list.length !== channels) throw new ShapeError(`normalization ${what} has ${list.length} values for ${channels} channels along axis ${a.axis}`);
      return list;
    };
    return ctx.op('normalize', [x!], { axis, invert: a.invert, mean: values(a.mean, 'mean'), variance: values(a.variance!, 'variance') });
  },
});

/** Keras's Normalization: the op, its gradient op and the layer. */
export const normalizationFamily = defineFamily({ ops: [normalizeOp, normalizeGradOp], layers: [normalizationLayer] });
