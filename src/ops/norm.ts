/**
 * Batch normalization (Keras `BatchNormalization`), including batch
 * renormalization attributes for training.
 *
 *   %batch_normalization: f32[N,64] = batchnorm(%dense, %bn/gamma, %bn/beta,
 *       %bn/moving_mean, %bn/moving_variance) {axis=1, epsilon=0.001, ...}
 *
 * Inference: y = gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta,
 * per channel along `axis`. `center: false` drops beta, `scale: false` drops
 * gamma (the operand list follows the attributes). gamma and beta are
 * trainable; the moving statistics are not (Keras counts them non-trainable).
 * In the IR `axis` is positive and counts the batch dimension.
 */
import { Type } from '@sinclair/typebox';
import { aroundAxis, type Tensor } from '../ir/tensor.js';
import { applyEpilogue, epilogueAttr, epilogueCode } from './activation.js';
import { tensor, type TensorType } from '../ir/types.js';
import { kernel, perExample, shapeTag, times } from './emit.js';
import { initializer, initSpec } from './init.js';
import { gradientOnly, onnxFloat, onnxInts, type OnnxBuilder } from './onnx-def.js';
import { isObj, show } from './keras-def.js';
import { kerasInitializer, renormVariables } from './keras-export-def.js';
import { noEpilogue } from './linear.js';
import { byRole, defineFamily, defineLayer, defineOp, dim, formatShape, ShapeError, type OpNode } from './op-def.js';

const RenormClipping = Type.Object(
  {
    rmax: Type.Optional(Type.Number({ minimum: 0, description: 'upper bound of r (default: unbounded)' })),
    rmin: Type.Optional(Type.Number({ minimum: 0, description: 'lower bound of r (default 0)' })),
    dmax: Type.Optional(Type.Number({ minimum: 0, description: 'bound of |d| (default: unbounded)' })),
  },
  { additionalProperties: false, description: 'clipping of the renorm correction' },
);

/** In the IR, unbounded clipping is `null` (JSON has no infinity). */
const IrRenormClipping = Type.Object(
  {
    rmax: Type.Union([Type.Number(), Type.Null()]),
    rmin: Type.Number(),
    dmax: Type.Union([Type.Number(), Type.Null()]),
  },
  { additionalProperties: false },
);

function normalizeAxis(axis: number, rank: number): number {
  const a = axis < 0 ? rank + axis : axis;
  if (a <= 0 || a >= rank) {
    throw new ShapeError(`batchnorm axis ${axis} is out of range for input rank ${rank} (axis 0 is the batch)`);
  }
  return a;
}

/** y = f(x, c) for every element, where c is the element's index along `axis`. */
function perChannel(x: Tensor, axis: number, f: (value: number, channel: number) => number): Tensor {
  const { n, inner } = aroundAxis(x.shape, axis);
  return { shape: [...x.shape], data: x.data.map((v, i) => f(v, Math.floor(i / inner) % n)) };
}

/** batchnorm's operands: gamma only with `scale`, beta only with `center`. */
const batchnormOperands = (a: { scale: boolean; center: boolean }) => [
  'x',
  ...(a.scale ? ['gamma'] : []),
  ...(a.center ? ['beta'] : []),
  'moving_mean',
  'moving_variance',
];

/**
 * ONNX BatchNormalization normalizes along axis 1: channels-first for a rank-4
 * input with channels last, as is for axis 1, else between two Transposes.
 * Absent gamma / beta are constant 1 / 0.
 */
function batchnormToOnnx(b: OnnxBuilder, n: OpNode<{ axis: number; epsilon: number; center: boolean; scale: boolean }>): void {
  const { x, gamma, beta, moving_mean: mean, moving_variance: variance } = byRole(batchnormOperands(n.attrs), n.operands);
  const rank = n.type.shape.length;
  const channels = n.type.shape[n.attrs.axis] as number;
  const stats = [
    gamma === undefined ? b.constant(new Float32Array(channels).fill(1), [channels]) : b.param(gamma),
    beta === undefined ? b.constant(new Float32Array(channels), [channels]) : b.param(beta),
    b.param(mean!),
    b.param(variance!),
  ];
  const epsilon = [onnxFloat('epsilon', n.attrs.epsilon)];
  if (n.attrs.axis === 1) return b.produce(n, 'nhwc', (out) => b.emit('BatchNormalization', [b.nhwc(x!), ...stats], [out], epsilon));
  if (rank === 4 && n.attrs.axis === 3) return b.produce(n, 'nchw', (out) => b.emit('BatchNormalization', [b.nchw(x!), ...stats], [out], epsilon));
  const perm = [0, n.attrs.axis, ...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== 0 && i !== n.attrs.axis)];
  b.produce(n, 'nhwc', (out) => {
    const moved = b.temp('Transpose', [b.nhwc(x!)], [onnxInts('perm', perm)]);
    const normed = b.temp('BatchNormalization', [moved, ...stats], epsilon);
    b.emit('Transpose', [normed], [out], [onnxInts('perm', perm.map((_, i) => perm.indexOf(i)))]);
  });
}

export const batchnormOp = defineOp({
  name: 'batchnorm',
  summary: 'per-channel normalization by batch (training) or moving (inference) statistics',
  traits: ['pure', 'training-dependent'],
  attrs: {
    axis: Type.Integer({ minimum: 1 }),
    epsilon: Type.Number({ exclusiveMinimum: 0 }),
    momentum: Type.Number(),
    center: Type.Boolean(),
    scale: Type.Boolean(),
    renorm: Type.Boolean(),
    renorm_clipping: IrRenormClipping,
    renorm_momentum: Type.Number(),
  },
  operands: batchnormOperands,
  examples: [
    {
      note: 'rank 2, gamma and beta',
      attrs: { axis: 1, epsilon: 0.001, momentum: 0.99, center: true, scale: true, renorm: false, renorm_clipping: { rmax: null, rmin: 0, dmax: null }, renorm_momentum: 0.99 },
      operands: [tensor(['N', 4]), tensor([4]), tensor([4]), tensor([4]), tensor([4])],
      values: [undefined, undefined, undefined, undefined, { min: 0.5, max: 2 }],
    },
    {
      note: 'channels last, no gamma (scale false)',
      attrs: { axis: 3, epsilon: 0.001, momentum: 0.9, center: true, scale: false, renorm: false, renorm_clipping: { rmax: null, rmin: 0, dmax: null }, renorm_momentum: 0.99 },
      operands: [tensor(['N', 2, 3, 3]), tensor([3]), tensor([3]), tensor([3])],
      values: [undefined, undefined, undefined, { min: 0.5, max: 2 }],
    },
    {
      note: 'a middle axis, neither gamma nor beta, renorm (inference ignores it)',
      attrs: { axis: 1, epsilon: 0.01, momentum: 0.99, center: false, scale: false, renorm: true, renorm_clipping: { rmax: 3, rmin: 0.3, dmax: 5 }, renorm_momentum: 0.9 },
      operands: [tensor(['N', 3, 2]), tensor([3]), tensor([3])],
      values: [undefined, undefined, { min: 0.5, max: 2 }],
    },
  ],
  infer: ([x, ...stats], a) => {
    if (a.axis >= x!.shape.length) throw new ShapeError(`batchnorm axis ${a.axis} is out of range for ${formatShape(x!.shape)}`);
    const channels = dim(x!, a.axis);
    for (const s of stats) {
      if (s!.shape.length !== 1 || s!.shape[0] !== channels) {
        throw new ShapeError(`batchnorm statistics must have shape [${channels}], got ${formatShape(s!.shape)}`);
      }
    }
    return x!;
  },
  // Inference: the moving statistics; an absent gamma is 1, an absent beta 0.
  reference: (inputs, a) => {
    const { x, gamma, beta, moving_mean: mean, moving_variance: variance } = byRole(batchnormOperands(a), inputs);
    return perChannel(x!, a.axis, (v, c) => {
      const normalized = (v - mean!.data[c]!) / Math.sqrt(variance!.data[c]! + a.epsilon);
      return (gamma ? gamma.data[c]! : 1) * normalized + (beta ? beta.data[c]! : 0);
    });
  },
  emit: ({ operands: [x], result, attrs: a }) => {
    const roles = batchnormOperands(a);
    const params = roles.map((r) => ({ x: 'x', gamma: 'gamma', beta: 'beta', moving_mean: 'mean', moving_variance: 'variance' })[r]!);
    const scale = a.scale ? `gamma[c]! / Math.sqrt(variance[c]! + ${a.epsilon})` : `1 / Math.sqrt(variance[c]! + ${a.epsilon})`;
    const value = `(x[i]! - mean[c]!) * s${a.center ? ' + beta[c]!' : ''}`;
    return kernel(
      `batchnorm_${shapeTag(x!)}_axis${a.axis}`,
      params,
      `inference batch normalization (moving statistics) along axis ${a.axis}`,
      perChannelLoop(result, a.axis, `const s = ${scale};`, value, (v) => v),
    );
  },
  onnx: batchnormToOnnx,
  // Inference mode (the moving statistics are constants here): y = gamma * xhat + beta with
  // xhat = (x - moving_mean) / sqrt(moving_variance + epsilon): dx = dy * gamma / sqrt(...),
  // dgamma = sum(dy * xhat), dbeta = sum(dy). Training graphs never get here: `training` replaces the node.
  grad: (g, { operands, attrs: a }, dy) => {
    const { x, gamma, moving_mean: mean, moving_variance: variance } = byRole(batchnormOperands(a), operands);
    const stats = [...(gamma ? [gamma] : []), mean!, variance!];
    const attrs = { axis: a.axis, epsilon: a.epsilon, scale: a.scale };
    return batchnormOperands(a).map((role) => {
      if (role === 'x') return () => g.op('batchnorm_grad', [dy, x!, ...stats], { ...attrs, wrt: 'x' });
      if (role === 'gamma') return () => g.op('batchnorm_grad', [dy, x!, ...stats], { ...attrs, wrt: 'gamma' });
      if (role === 'beta') return () => g.op('channel_sum', [dy], { axis: a.axis });
      return undefined; // moving statistics: not trainable
    });
  },
  // Training: normalize by the batch statistics (norm-train.ts) and move the
  // moving statistics towards them: moving = moving * m + batch * (1 - m), with
  // the biased batch variance (TF.js: tf.moments). With renorm the moving
  // statistics also give r and d, and move by renorm_momentum.
  training: (t, { operands, attrs: a, result }) => {
    const { x, gamma, beta, moving_mean: mean, moving_variance: variance } = byRole(batchnormOperands(a), operands);
    const { momentum: _m, renorm_momentum: _rm, ...trainAttrs } = a;
    const y = t.op('batchnorm_train', [x!, ...(gamma ? [gamma] : []), ...(beta ? [beta] : []), ...(a.renorm ? [mean!, variance!] : [])], trainAttrs);
    const decay = a.renorm ? a.renorm_momentum : a.momentum;
    const batchMean = t.op('channel_mean', [x!], { axis: a.axis }, `${result}/batch_mean`);
    t.update(mean!, t.op('ema', [mean!, batchMean], { decay, square: false }, `${mean}/next`));
    const batchVariance = t.op('channel_variance', [x!], { axis: a.axis }, `${result}/batch_variance`);
    t.update(variance!, t.op('ema', [variance!, batchVariance], { decay, square: false }, `${variance}/next`));
    return y;
  },
});

/**
 * Loops over a batch of \`t\` by (outer, channel along \`axis\`, inner), running
 * \`setup\` once per channel and storing \`wrap(value)\` at index \`i\`.
 */
function perChannelLoop(t: TensorType, axis: number, setup: string, value: string, wrap: (v: string) => string): string {
  const { outer, n: channels, inner } = aroundAxis([1, ...(t.shape.slice(1) as number[])], axis);
  return `for (let o = 0; o < ${times('n', outer)}; o++) {
  for (let c = 0; c < ${channels}; c++) {
    ${setup}
    const at = (o * ${channels} + c) * ${inner};
    for (let i = at; i < at + ${inner}; i++) y[i] = ${wrap(value)};
  }
}`;
}

/**
 * What an inference-mode batchnorm with no linear neighbour becomes (`fold-bn`):
 * y = x * scale + shift per channel along `axis`.
 *
 *   %bn: f32[N,8,8,3] = affine(%x, %bn/scale, %bn/shift) {axis=3}
 */
export const affineOp = defineOp({
  name: 'affine',
  summary: 'per-channel scale and shift: x * scale + shift along an axis',
  traits: ['pure'],
  epilogue: { fuses: 'all' },
  attrs: { axis: Type.Integer({ minimum: 1 }), ...epilogueAttr },
  operands: () => ['x', 'scale', 'shift'],
  examples: [
    { note: 'channels last', attrs: { axis: 3 }, operands: [tensor(['N', 2, 2, 3]), tensor([3]), tensor([3])] },
    { note: 'a middle axis, tanh epilogue', attrs: { axis: 1, epilogue: { op: 'tanh' } }, operands: [tensor(['N', 3, 2]), tensor([3]), tensor([3])] },
  ],
  infer: ([x, scale, shift], a) => {
    if (a.axis >= x!.shape.length) throw new ShapeError(`affine axis ${a.axis} is out of range for ${formatShape(x!.shape)}`);
    const channels = dim(x!, a.axis);
    for (const s of [scale, shift]) {
      if (s!.shape.length !== 1 || s!.shape[0] !== channels) {
        throw new ShapeError(`affine scale and shift must have shape [${channels}], got ${formatShape(s!.shape)}`);
      }
    }
    return x!;
  },
  reference: ([x, scale, shift], a) =>
    applyEpilogue(perChannel(x!, a.axis, (v, c) => v * scale!.data[c]! + shift!.data[c]!), a.epilogue),
  emit: ({ operands: [x], result, attrs: a }) => {
    const ep = epilogueCode(a.epilogue);
    const last = result.shape[result.shape.length - 1] as number;
    const rows = ep.rows(times('n', perExample(result) / last), last);
    return kernel(
      `affine_${shapeTag(x!)}_axis${a.axis}${ep.tag ? `_${ep.tag}` : ''}`,
      ['x', 'scale', 'shift'],
      `per-channel scale and shift along axis ${a.axis}${ep.tag ? `, ${ep.tag}` : ''}`,
      perChannelLoop(result, a.axis, 'const s = scale[c]!, t = shift[c]!;', 'x[i]! * s + t', ep.scalar) + (rows ? `\n${rows}` : ''),
      ep.helpers,
    );
  },
  // Mul + Add in the input's layout, scale and shift shaped [C, 1, ...] to broadcast along the channel axis.
  onnx: (b, n) => {
    const [x, scale, shift] = n.operands;
    const layout = b.layoutFor([x!]);
    const rank = n.type.shape.length;
    const channels = n.type.shape[n.attrs.axis] as number;
    const dims = [channels, ...new Array<number>(rank - 1 - b.axisIn(n.attrs.axis, layout, rank)).fill(1)];
    const s = b.param(scale!, `c${dims.length}`, (_, data) => ({ dims, data }));
    const t = b.param(shift!, `c${dims.length}`, (_, data) => ({ dims, data }));
    b.produce(n, layout, (out) => b.emit('Add', [b.temp('Mul', [b.in(x!, layout), s]), t], [out]));
  },
  // y = x * scale + shift per channel c: dx = dy * scale[c], dscale = sum(dy * x) and dshift = sum(dy) per channel.
  grad: (g, { operands: [x, scale], attrs: a, result }, dy) => {
    noEpilogue('affine', result, a.epilogue);
    return [
      () => g.op('channel_scale', [dy, scale!], { axis: a.axis }),
      () => g.op('channel_sum', [g.op('multiply', [dy, x!], {})], { axis: a.axis }),
      () => g.op('channel_sum', [dy], { axis: a.axis }),
    ];
  },
});

const gradRoles = (a: { scale: boolean }) => ['dy', 'x', ...(a.scale ? ['gamma'] : []), 'moving_mean', 'moving_variance'];

/**
 * The gradient of inference-mode batchnorm with respect to x (`wrt: "x"`,
 * dy * gamma / sqrt(moving_variance + epsilon)) or gamma (`wrt: "gamma"`,
 * per channel sum(dy * xhat)).
 *
 *   %bn/grad: f32[N,64] = batchnorm_grad(%g, %x, %bn/gamma, %bn/moving_mean, %bn/moving_variance) {axis=1, wrt="x", ...}
 */
export const batchnormGradOp = defineOp({
  name: 'batchnorm_grad',
  summary: 'the gradient of inference-mode batchnorm with respect to x or gamma',
  traits: ['pure'],
  attrs: { axis: Type.Integer({ minimum: 1 }), epsilon: Type.Number({ exclusiveMinimum: 0 }), scale: Type.Boolean(), wrt: Type.Union([Type.Literal('x'), Type.Literal('gamma')]) },
  operands: gradRoles,
  examples: [
    {
      note: 'dx, channels last',
      attrs: { axis: 3, epsilon: 0.001, scale: true, wrt: 'x' },
      operands: [tensor(['N', 2, 2, 3]), tensor(['N', 2, 2, 3]), tensor([3]), tensor([3]), tensor([3])],
      values: [undefined, undefined, undefined, undefined, { min: 0.5, max: 2 }],
    },
    {
      note: 'dgamma, a middle axis',
      attrs: { axis: 1, epsilon: 0.001, scale: true, wrt: 'gamma' },
      operands: [tensor(['N', 3, 2]), tensor(['N', 3, 2]), tensor([3]), tensor([3]), tensor([3])],
      values: [undefined, undefined, undefined, undefined, { min: 0.5, max: 2 }],
    },
    {
      note: 'dx without gamma',
      attrs: { axis: 1, epsilon: 0.01, scale: false, wrt: 'x' },
      operands: [tensor(['N', 4]), tensor(['N', 4]), tensor([4]), tensor([4])],
      values: [undefined, undefined, undefined, { min: 0.5, max: 2 }],
    },
  ],
  infer: ([dy, x, ...stats], a) => {
    if (formatShape(dy!.shape) !== formatShape(x!.shape)) throw new ShapeError('batchnorm_grad: dy and x differ in shape');
    const channels = dim(x!, a.axis);
    for (const s of stats) if (s!.shape.length !== 1 || s!.shape[0] !== channels) throw new ShapeError(`batchnorm_grad statistics must have shape [${channels}]`);
    return a.wrt === 'x' ? x! : { dtype: 'f32', shape: [channels] };
  },
  reference: (inputs, a) => {
    const { dy, x, gamma, moving_mean: mean, moving_variance: variance } = byRole(gradRoles(a), inputs);
    const inv = (c: number) => 1 / Math.sqrt(variance!.data[c]! + a.epsilon);
    if (a.wrt === 'x') return perChannel(dy!, a.axis, (v, c) => v * (gamma ? gamma.data[c]! : 1) * inv(c));
    const { n: channels, inner } = aroundAxis(x!.shape, a.axis);
    const out = new Float64Array(channels);
    for (let i = 0; i < x!.data.length; i++) {
      const c = Math.floor(i / inner) % channels;
      out[c] += dy!.data[i]! * (x!.data[i]! - mean!.data[c]!) * inv(c);
    }
    return { shape: [channels], data: out };
  },
  emit: ({ operands: [, x], attrs: a }) => {
    const params = gradRoles(a).map((r) => ({ moving_mean: 'mean', moving_variance: 'variance' })[r] ?? r);
    const stem = `batchnorm_grad_${a.wrt}_${shapeTag(x!)}_axis${a.axis}`;
    const inv = `1 / Math.sqrt(variance[c]! + ${a.epsilon})`;
    if (a.wrt === 'x') {
      const s = a.scale ? `gamma[c]! * ${inv}` : inv;
      return kernel(stem, params, `dx of inference batch normalization along axis ${a.axis}`, perChannelLoop(x!, a.axis, `const s = ${s};`, 'dy[i]! * s', (v) => v));
    }
    const { outer, n: channels, inner } = aroundAxis([1, ...(x!.shape.slice(1) as number[])], a.axis);
    return kernel(stem, params, `dgamma of inference batch normalization along axis ${a.axis}`, `for (let c = 0; c < ${channels}; c++) {
  const m = mean[c]!, s = ${inv};
  let acc = 0;
  for (let o = 0; o < ${times('n', outer)}; o++) {
    const at = (o * ${channels} + c) * ${inner};
    for (let i = at; i < at + ${inner}; i++) acc += dy[i]! * (x[i]! - m) * s;
  }
  y[c] = acc;
}`);
  },
  onnx: gradientOnly,
  grad: 'none',
});

export const batchnormLayer = defineLayer({
  type: 'batchnorm',
  keras: 'BatchNormalization',
  kerasImport: {
    classes: ['BatchNormalization'],
    fromConfig: (c) => {
      c.set('axis', c.optional('axis', (k) => c.axis(k)));
      for (const k of ['momentum', 'epsilon', 'renorm_momentum']) c.set(k, c.optional(k, (key) => c.number(key)));
      for (const k of ['center', 'scale', 'renorm']) c.set(k, c.optional(k, (key) => c.bool(key)));
      const clip = c.optional('renorm_clipping', (k) => c.get(k));
      if (clip !== undefined) {
        if (!isObj(clip)) return c.fail('renorm_clipping', `renorm_clipping must be an object, got ${show(clip)}`);
        c.set('renorm_clipping', Object.fromEntries(Object.entries(clip).filter(([, v]) => v !== null)));
      }
      for (const k of ['beta_initializer', 'gamma_initializer', 'moving_mean_initializer', 'moving_variance_initializer']) c.set(k, c.initializer(k));
      c.get('fused'); // an implementation choice, same result
      if (c.get('synchronized') === true) c.fail('synchronized', 'synchronized batch normalization is not supported');
    },
  },
  kerasExport: (a) => ({
    className: 'BatchNormalization',
    config: {
      ...{ axis: a.axis, momentum: a.momentum, epsilon: a.epsilon, center: a.center, scale: a.scale },
      beta_initializer: kerasInitializer(a.beta_initializer),
      gamma_initializer: kerasInitializer(a.gamma_initializer),
      moving_mean_initializer: kerasInitializer(a.moving_mean_initializer),
      moving_variance_initializer: kerasInitializer(a.moving_variance_initializer),
      ...{ renorm: a.renorm, renorm_clipping: a.renorm_clipping ?? null, renorm_momentum: a.renorm_momentum },
    },
    ...(a.renorm ? { variables: (params) => renormVariables(params, a.epsilon) } : {}),
  }),
  examples: [
    { attrs: { axis: 1, momentum: 0.9, epsilon: 0.01, center: false }, inputs: [[3, 4]] },
    { attrs: { renorm: true, renorm_clipping: { rmax: 2, dmax: 1 }, renorm_momentum: 0.5, scale: false }, inputs: [[2, 2, 3]] },
  ],
  namePrefix: 'batch_normalization',
  summary: 'batch normalization',
  attrs: {
    axis: Type.Integer({ default: -1, description: 'the channel axis (negative counts from the end)' }),
    momentum: Type.Number({ minimum: 0, maximum: 1, default: 0.99 }),
    epsilon: Type.Number({ exclusiveMinimum: 0, default: 0.001 }),
    center: Type.Boolean({ default: true, description: 'learn beta' }),
    scale: Type.Boolean({ default: true, description: 'learn gamma' }),
    renorm: Type.Boolean({ default: false, description: 'batch renormalization in training' }),
    renorm_clipping: Type.Optional(RenormClipping),
    renorm_momentum: Type.Number({ minimum: 0, maximum: 1, default: 0.99 }),
    beta_initializer: initializer('zeros'),
    gamma_initializer: initializer('ones'),
    moving_mean_initializer: initializer('zeros'),
    moving_variance_initializer: initializer('ones'),
  },
  arity: [1, 1],
  lower: (ctx, [x], a) => {
    const t = ctx.typeOf(x!);
    const axis = normalizeAxis(a.axis, t.shape.length);
    const c = [dim(t, axis)];
    const operands = [x!];
    if (a.scale) operands.push(ctx.param('gamma', c, initSpec(a.gamma_initializer)));
    if (a.center) operands.push(ctx.param('beta', c, initSpec(a.beta_initializer)));
    operands.push(ctx.param('moving_mean', c, initSpec(a.moving_mean_initializer), false));
    operands.push(ctx.param('moving_variance', c, initSpec(a.moving_variance_initializer), false));
    const clip = a.renorm_clipping ?? {};
    return ctx.op('batchnorm', operands, {
      axis,
      epsilon: a.epsilon,
      momentum: a.momentum,
      center: a.center,
      scale: a.scale,
      renorm: a.renorm,
      renorm_clipping: { rmax: clip.rmax ?? null, rmin: clip.rmin ?? 0, dmax: clip.dmax ?? null },
      renorm_momentum: a.renorm_momentum,
    });
  },
});

/** Batch normalization at inference, the affine map it folds to, and its gradient op. */
export const normFamily = defineFamily({ ops: [batchnormOp, affineOp, batchnormGradOp], layers: [batchnormLayer] });
