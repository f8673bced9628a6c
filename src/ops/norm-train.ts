/**
 * Batch normalization in training mode, and its gradient.
 *
 *   %bn: f32[N,64] = batchnorm_train(%dense, %bn/gamma, %bn/beta) {axis=1, epsilon=0.001, ...}
 *
 * Per channel c along `axis`, over every other axis (batch included), with the
 * batch's own statistics:
 *   mean_B = mean(x), var_B = mean((x - mean_B)^2)  (biased, as TF.js's tf.moments),
 *   sigma_B = sqrt(var_B + epsilon), xhat = (x - mean_B) / sigma_B,
 *   y = gamma * (r * xhat + d) + beta,
 * where r = 1 and d = 0, except with batch renormalization (`renorm: true`,
 * Ioffe 2017), which corrects towards the moving statistics:
 *   sigma = sqrt(moving_variance + epsilon),
 *   r = clip(sigma_B / sigma, rmin, rmax), d = clip((mean_B - moving_mean) / sigma, -dmax, dmax).
 * r and d are constants for the gradient (stop_gradient in the paper).
 *
 * Backward (exact, through mean_B and var_B), with g = dy * gamma * r:
 *   dx = (g - mean(g) - xhat * mean(g * xhat)) / sigma_B
 *   dgamma = sum(dy * (r * xhat + d)), dbeta = sum(dy).
 * The moving statistics get no gradient; `batchnorm`'s training rule
 * (norm.ts) updates them by moving averages of channel_mean/channel_variance.
 */
import { Type, type Static } from '@sinclair/typebox';
import { aroundAxis, type Tensor } from '../ir/tensor.js';
import { tensor, type TensorType } from '../ir/types.js';
import { kernel, lit, shapeTag, times } from './emit.js';
import { scratch64Helper } from './gemm.js';
import { channelsLast, forwardBody, gradGammaBody, gradInputBody } from './norm-train-emit.js';
import { byRole, defineFamily, defineOp, dim, formatShape, ShapeError } from './op-def.js';
import { gradientOnly } from './onnx-def.js';
import { rowsField, selection, type SimdUse } from './simd-def.js';

/** In the IR, unbounded clipping is `null` (JSON has no infinity). */
export const IrRenormClipping = Type.Object(
  {
    rmax: Type.Union([Type.Number(), Type.Null()]),
    rmin: Type.Number(),
    dmax: Type.Union([Type.Number(), Type.Null()]),
  },
  { additionalProperties: false },
);

const trainAttrs = {
  axis: Type.Integer({ minimum: 1 }),
  epsilon: Type.Number({ exclusiveMinimum: 0 }),
  center: Type.Boolean(),
  scale: Type.Boolean(),
  renorm: Type.Boolean(),
  renorm_clipping: IrRenormClipping,
};
type TrainAttrs = Static<ReturnType<typeof Type.Object<typeof trainAttrs>>>;

/** The moving statistics are operands only with renorm (r and d read them). */
const movingRoles = (a: { renorm: boolean }) => (a.renorm ? ['moving_mean', 'moving_variance'] : []);
const forwardRoles = (a: TrainAttrs) => ['x', ...(a.scale ? ['gamma'] : []), ...(a.center ? ['beta'] : []), ...movingRoles(a)];
const gradInputRoles = (a: TrainAttrs) => ['dy', 'x', ...(a.scale ? ['gamma'] : []), ...movingRoles(a)];
const gradGammaRoles = (a: TrainAttrs) => ['dy', 'x', ...movingRoles(a)];

/** Per-channel batch statistics and the renorm correction of one channel. */
interface ChannelStats {
  readonly mean: number;
  readonly sigma: number;
  readonly r: number;
  readonly d: number;
}

function clip(v: number, lo: number | null, hi: number | null): number {
  return Math.min(Math.max(v, lo ?? -Infinity), hi ?? Infinity);
}

/** The batch statistics of every channel (float64), with r and d. */
function channelStats(x: Tensor, a: TrainAttrs, movingMean?: Tensor, movingVariance?: Tensor): ChannelStats[] {
  const { outer, n: channels, inner } = aroundAxis(x.shape, a.axis);
  const count = outer * inner;
  return Array.from({ length: channels }, (_, c) => {
    let sum = 0;
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) sum += x.data[(o * channels + c) * inner + i]!;
    const mean = sum / count;
    let squares = 0;
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) squares += (x.data[(o * channels + c) * inner + i]! - mean) ** 2;
    const sigma = Math.sqrt(squares / count + a.epsilon);
    if (!a.renorm) return { mean, sigma, r: 1, d: 0 };
    const movingSigma = Math.sqrt(movingVariance!.data[c]! + a.epsilon);
    const { rmin, rmax, dmax } = a.renorm_clipping;
    return {
      mean,
      sigma,
      r: clip(sigma / movingSigma, rmin, rmax),
      d: clip((mean - movingMean!.data[c]!) / movingSigma, dmax === null ? null : -dmax, dmax),
    };
  });
}

/** Calls f(flat index, channel) for every element, channel by channel. */
function eachInChannel(shape: readonly number[], axis: number, c: number, f: (i: number) => void): void {
  const { outer, n: channels, inner } = aroundAxis(shape, axis);
  for (let o = 0; o < outer; o++) {
    const at = (o * channels + c) * inner;
    for (let i = at; i < at + inner; i++) f(i);
  }
}

function checkChannels(x: TensorType, stats: readonly TensorType[], a: { axis: number }, op: string): number {
  if (x.shape[0] !== 'N') throw new ShapeError(`${op} normalizes a batch; got the static shape ${formatShape(x.shape)}`);
  if (a.axis >= x.shape.length) throw new ShapeError(`${op} axis ${a.axis} is out of range for ${formatShape(x.shape)}`);
  const channels = dim(x, a.axis);
  for (const s of stats) {
    if (s.shape.length !== 1 || s.shape[0] !== channels) throw new ShapeError(`${op} per-channel operands must have shape [${channels}], got ${formatShape(s.shape)}`);
  }
  return channels;
}

// ---------------------------------------------------------------------------
// Codegen: per channel, the statistics in float64, then one pass per output.
// Channels last (NHWC, [N, C]): the row-by-row templates of norm-train-emit.ts.

/** Statements computing `mean`, `sigma`, `r`, `d` of channel `c` (inside the channel loop). */
function statsCode(x: TensorType, a: TrainAttrs, withD = true): { walk: (stmt: string) => string; stats: string } {
  const { outer, n: channels, inner } = aroundAxis([1, ...(x.shape.slice(1) as number[])], a.axis);
  const walk = (stmt: string) => `for (let o = 0; o < ${times('n', outer)}; o++) {
  const at = (o * ${channels} + c) * ${inner};
  for (let i = at; i < at + ${inner}; i++) ${stmt}
}`;
  const count = times('n', outer * inner);
  const { rmin, rmax, dmax } = a.renorm_clipping;
  const clipCode = (v: string, lo: number | null, hi: number | null) =>
    lo === null && hi === null ? v : hi === null ? `Math.max(${v}, ${lit(lo!)})` : lo === null ? `Math.min(${v}, ${lit(hi)})` : `Math.min(Math.max(${v}, ${lit(lo)}), ${lit(hi)})`;
  const stats = [
    'let sum = 0;',
    walk('sum += x[i]!;'),
    `const mean = sum / (${count});`,
    'let squares = 0;',
    walk('squares += (x[i]! - mean) ** 2;'),
    `const sigma = Math.sqrt(squares / (${count}) + ${lit(a.epsilon)});`,
    ...(a.renorm
      ? [
          `const movingSigma = Math.sqrt(movingVariance[c]! + ${lit(a.epsilon)});`,
          `const r = ${clipCode('sigma / movingSigma', rmin, rmax)};`,
          ...(withD ? [`const d = ${clipCode('(mean - movingMean[c]!) / movingSigma', dmax === null ? null : -dmax, dmax)};`] : []),
        ]
      : []),
  ].join('\n');
  return { walk, stats };
}

/**
 * The fields of the Trainer's SIMD kernel for x (codegen/wasm/batchnorm.ts):
 * channels last in whole f32x4 vectors, without renorm; undefined otherwise.
 */
function simdFields(x: TensorType, a: TrainAttrs, use: SimdUse) {
  if (use !== 'training' || a.renorm || !channelsLast(x, a)) return undefined;
  const channels = dim(x, a.axis);
  return channels % 4 === 0 ? { channels, epsilon: a.epsilon, ...rowsField(x) } : undefined;
}

const paramName = (role: string) => ({ moving_mean: 'movingMean', moving_variance: 'movingVariance' })[role] ?? role;
const renormTag = (a: TrainAttrs) => (a.renorm ? '_renorm' : '');

export const batchnormTrainOp = defineOp({
  name: 'batchnorm_train',
  summary: 'batch normalization by the batch statistics (training), with optional batch renormalization',
  traits: ['pure'],
  attrs: trainAttrs,
  operands: forwardRoles,
  examples: [
    {
      note: 'rank 2, gamma and beta',
      attrs: { axis: 1, epsilon: 0.001, center: true, scale: true, renorm: false, renorm_clipping: { rmax: null, rmin: 0, dmax: null } },
      operands: [tensor(['N', 3]), tensor([3]), tensor([3])],
    },
    {
      // r and d clipped to constants: the rule holds them constant (stop_gradient), so central differences agree.
      note: 'channels last, renorm with r and d clipped to constants',
      attrs: { axis: 3, epsilon: 0.001, center: true, scale: true, renorm: true, renorm_clipping: { rmax: 1.5, rmin: 1.5, dmax: 0 } },
      operands: [tensor(['N', 2, 2, 3]), tensor([3]), tensor([3]), tensor([3]), tensor([3])],
      values: [undefined, undefined, undefined, undefined, { min: 0.5, max: 2 }],
    },
    {
      note: 'a middle axis, neither gamma nor beta',
      attrs: { axis: 1, epsilon: 0.001, center: false, scale: false, renorm: false, renorm_clipping: { rmax: null, rmin: 0, dmax: null } },
      operands: [tensor(['N', 3, 2, 2])],
    },
    {
      note: 'channels last in whole vectors (the SIMD kernel), beta without gamma',
      attrs: { axis: 2, epsilon: 0.001, center: true, scale: false, renorm: false, renorm_clipping: { rmax: null, rmin: 0, dmax: null } },
      operands: [tensor(['N', 3, 8]), tensor([8])],
    },
  ],
  infer: ([x, ...stats], a) => {
    checkChannels(x!, stats as TensorType[], a, 'batchnorm_train');
    return x!;
  },
  reference: (inputs, a) => {
    const { x, gamma, beta, moving_mean, moving_variance } = byRole(forwardRoles(a), inputs);
    const stats = channelStats(x!, a, moving_mean, moving_variance);
    const y = new Float64Array(x!.data.length);
    stats.forEach((s, c) => {
      const g = gamma ? gamma.data[c]! : 1;
      const b = beta ? beta.data[c]! : 0;
      eachInChannel(x!.shape, a.axis, c, (i) => (y[i] = g * (s.r * ((x!.data[i]! - s.mean) / s.sigma) + s.d) + b));
    });
    return { shape: [...x!.shape], data: y };
  },
  emit: ({ operands: [x], attrs: a }) => {
    const stem = `batchnorm_train_${shapeTag(x!)}_axis${a.axis}${renormTag(a)}`;
    const what = `training batch normalization along axis ${a.axis}: batch statistics in float64${a.renorm ? ', renorm correction' : ''}`;
    if (channelsLast(x!, a)) return kernel(stem, forwardRoles(a).map(paramName), `${what}, row by row`, forwardBody(x!, a), [scratch64Helper]);
    const { walk, stats } = statsCode(x!, a);
    const g = a.scale ? 'gamma[c]!' : '1';
    const value = a.renorm ? `${g} * (r * ((x[i]! - mean) / sigma) + d)` : `${g} * ((x[i]! - mean) / sigma)`;
    return kernel(
      stem,
      forwardRoles(a).map(paramName),
      what,
      `for (let c = 0; c < ${dim(x!, a.axis)}; c++) {\n${stats}\n${walk(`y[i] = ${value}${a.center ? ' + beta[c]!' : ''};`)}\n}`,
    );
  },
  simd: ({ operands: [x], attrs: a }, use) => {
    const fields = simdFields(x!, a, use);
    return fields && selection({ kind: 'batchnorm_train', ...fields, gamma: a.scale, beta: a.center });
  },
  onnx: { notExportable: 'batchnorm by batch statistics: training graphs only (inference uses batchnorm with the moving statistics)' },
  grad: (g, { operands, attrs: a }, dy) => {
    const { x, gamma, moving_mean, moving_variance } = byRole(forwardRoles(a), operands);
    const moving = a.renorm ? [moving_mean!, moving_variance!] : [];
    const roles = forwardRoles(a);
    return roles.map((role) => {
      if (role === 'x') return () => g.op('batchnorm_train_grad_input', [dy, x!, ...(gamma ? [gamma] : []), ...moving], a);
      if (role === 'gamma') return () => g.op('batchnorm_train_grad_gamma', [dy, x!, ...moving], a);
      if (role === 'beta') return () => g.op('channel_sum', [dy], { axis: a.axis });
      return undefined; // moving statistics: constants of the step
    });
  },
});

export const batchnormTrainGradInputOp = defineOp({
  name: 'batchnorm_train_grad_input',
  summary: 'the gradient of batchnorm_train with respect to x, through the batch mean and variance',
  traits: ['pure'],
  attrs: trainAttrs,
  operands: gradInputRoles,
  examples: [
    {
      note: 'rank 2, gamma',
      attrs: { axis: 1, epsilon: 0.001, center: true, scale: true, renorm: false, renorm_clipping: { rmax: null, rmin: 0, dmax: null } },
      operands: [tensor(['N', 3]), tensor(['N', 3]), tensor([3])],
    },
    {
      note: 'channels last, renorm (r clipped to [0.9, 1.2])',
      attrs: { axis: 3, epsilon: 0.001, center: true, scale: true, renorm: true, renorm_clipping: { rmax: 1.2, rmin: 0.9, dmax: 0.1 } },
      operands: [tensor(['N', 2, 2, 3]), tensor(['N', 2, 2, 3]), tensor([3]), tensor([3]), tensor([3])],
      values: [undefined, undefined, undefined, undefined, { min: 0.5, max: 2 }],
    },
    {
      note: 'a middle axis, no gamma',
      attrs: { axis: 1, epsilon: 0.001, center: false, scale: false, renorm: false, renorm_clipping: { rmax: null, rmin: 0, dmax: null } },
      operands: [tensor(['N', 3, 2, 2]), tensor(['N', 3, 2, 2])],
    },
    {
      note: 'channels last in whole vectors (the SIMD kernel), 20 channels: a block of 16 and one of 4',
      attrs: { axis: 3, epsilon: 0.001, center: true, scale: true, renorm: false, renorm_clipping: { rmax: null, rmin: 0, dmax: null } },
      operands: [tensor(['N', 2, 3, 20]), tensor(['N', 2, 3, 20]), tensor([20])],
    },
  ],
  infer: ([dy, x, ...stats], a) => {
    checkChannels(x!, stats as TensorType[], a, 'batchnorm_train_grad_input');
    if (formatShape(dy!.shape) !== formatShape(x!.shape)) throw new ShapeError('batchnorm_train_grad_input: dy and x differ in shape');
    return x!;
  },
  reference: (inputs, a) => {
    const { dy, x, gamma, moving_mean, moving_variance } = byRole(gradInputRoles(a), inputs);
    const stats = channelStats(x!, a, moving_mean, moving_variance);
    const dx = new Float64Array(x!.data.length);
    const { outer, inner } = aroundAxis(x!.shape, a.axis);
    const count = outer * inner;
    stats.forEach((s, c) => {
      const scale = (gamma ? gamma.data[c]! : 1) * s.r;
      let sumG = 0;
      let sumGx = 0;
      eachInChannel(x!.shape, a.axis, c, (i) => {
        const xhat = (x!.data[i]! - s.mean) / s.sigma;
        sumG += dy!.data[i]! * scale;
        sumGx += dy!.data[i]! * scale * xhat;
      });
      eachInChannel(x!.shape, a.axis, c, (i) => {
        const xhat = (x!.data[i]! - s.mean) / s.sigma;
        dx[i] = (dy!.data[i]! * scale - sumG / count - (xhat * sumGx) / count) / s.sigma;
      });
    });
    return { shape: [...x!.shape], data: dx };
  },
  emit: ({ operands: [, x], attrs: a }) => {
    const stem = `batchnorm_train_grad_input_${shapeTag(x!)}_axis${a.axis}${renormTag(a)}`;
    const what = `dx of training batch normalization along axis ${a.axis} (exact, through the batch mean and variance)`;
    if (channelsLast(x!, a)) return kernel(stem, gradInputRoles(a).map(paramName), `${what}, row by row`, gradInputBody(x!, a), [scratch64Helper]);
    const { walk, stats } = statsCode(x!, a, false); // dx does not depend on d
    const { outer, inner } = aroundAxis([1, ...(x!.shape.slice(1) as number[])], a.axis);
    const scale = [a.scale ? 'gamma[c]!' : '', a.renorm ? 'r' : ''].filter((s) => s).join(' * ') || '1';
    return kernel(
      stem,
      gradInputRoles(a).map(paramName),
      what,
      `for (let c = 0; c < ${dim(x!, a.axis)}; c++) {
${stats}
const scale = ${scale};
const count = ${times('n', outer * inner)};
let sumG = 0, sumGx = 0;
${walk('{ const g = dy[i]! * scale; sumG += g; sumGx += g * ((x[i]! - mean) / sigma); }')}
const meanG = sumG / count, meanGx = sumGx / count;
${walk('y[i] = (dy[i]! * scale - meanG - ((x[i]! - mean) / sigma) * meanGx) / sigma;')}
}`,
    );
  },
  simd: ({ operands: [, x], attrs: a }, use) => {
    const fields = simdFields(x!, a, use);
    return fields && selection({ kind: 'batchnorm_train_grad_input', ...fields, gamma: a.scale });
  },
  onnx: gradientOnly,
  grad: 'none',
});

export const batchnormTrainGradGammaOp = defineOp({
  name: 'batchnorm_train_grad_gamma',
  summary: 'the gradient of batchnorm_train with respect to gamma: sum(dy * (r * xhat + d)) per channel',
  traits: ['pure'],
  attrs: trainAttrs,
  operands: gradGammaRoles,
  examples: [
    {
      note: 'rank 2',
      attrs: { axis: 1, epsilon: 0.001, center: true, scale: true, renorm: false, renorm_clipping: { rmax: null, rmin: 0, dmax: null } },
      operands: [tensor(['N', 3]), tensor(['N', 3])],
    },
    {
      note: 'channels last, renorm (r and d clipped)',
      attrs: { axis: 3, epsilon: 0.001, center: true, scale: true, renorm: true, renorm_clipping: { rmax: 1.2, rmin: 0.9, dmax: 0.1 } },
      operands: [tensor(['N', 2, 2, 3]), tensor(['N', 2, 2, 3]), tensor([3]), tensor([3])],
      values: [undefined, undefined, undefined, { min: 0.5, max: 2 }],
    },
    {
      note: 'a middle axis',
      attrs: { axis: 1, epsilon: 0.01, center: false, scale: true, renorm: false, renorm_clipping: { rmax: null, rmin: 0, dmax: null } },
      operands: [tensor(['N', 3, 2, 2]), tensor(['N', 3, 2, 2])],
    },
    {
      note: 'channels last in whole vectors (the SIMD kernel)',
      attrs: { axis: 1, epsilon: 0.001, center: true, scale: true, renorm: false, renorm_clipping: { rmax: null, rmin: 0, dmax: null } },
      operands: [tensor(['N', 4]), tensor(['N', 4])],
    },
  ],
  infer: ([, x, ...stats], a) => tensor([checkChannels(x!, stats as TensorType[], a, 'batchnorm_train_grad_gamma')]),
  reference: (inputs, a) => {
    const { dy, x, moving_mean, moving_variance } = byRole(gradGammaRoles(a), inputs);
    const stats = channelStats(x!, a, moving_mean, moving_variance);
    const out = stats.map((s, c) => {
      let sum = 0;
      eachInChannel(x!.shape, a.axis, c, (i) => (sum += dy!.data[i]! * (s.r * ((x!.data[i]! - s.mean) / s.sigma) + s.d)));
      return sum;
    });
    return { shape: [out.length], data: Float64Array.from(out) };
  },
  emit: ({ operands: [, x], attrs: a }) => {
    const stem = `batchnorm_train_grad_gamma_${shapeTag(x!)}_axis${a.axis}${renormTag(a)}`;
    const what = `dgamma of training batch normalization along axis ${a.axis}`;
    if (channelsLast(x!, a)) return kernel(stem, gradGammaRoles(a).map(paramName), `${what}, row by row`, gradGammaBody(x!, a), [scratch64Helper]);
    const { walk, stats } = statsCode(x!, a);
    const term = a.renorm ? 'dy[i]! * (r * ((x[i]! - mean) / sigma) + d)' : 'dy[i]! * ((x[i]! - mean) / sigma)';
    return kernel(
      stem,
      gradGammaRoles(a).map(paramName),
      what,
      `for (let c = 0; c < ${dim(x!, a.axis)}; c++) {\n${stats}\nlet acc = 0;\n${walk(`acc += ${term};`)}\ny[c] = acc;\n}`,
    );
  },
  simd: ({ operands: [, x], attrs: a }, use) => {
    const fields = simdFields(x!, a, use);
    return fields && selection({ kind: 'batchnorm_train_grad_gamma', ...fields });
  },
  onnx: gradientOnly,
  grad: 'none',
});

export const batchnormTrainOps = [batchnormTrainOp, batchnormTrainGradInputOp, batchnormTrainGradGammaOp] as const;

/** Batch normalization in training mode (no layers: batchnorm's training rule emits these). */
export const normTrainFamily = defineFamily({ ops: batchnormTrainOps });
