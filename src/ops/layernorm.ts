/**
 * Layer normalization (Keras `LayerNormalization`) and ConvNeXt's `LayerScale`.
 *
 *   %ln: f32[N,7,7,96] = layernorm(%x, %ln/gamma, %ln/beta) {axis=3, epsilon=0.000001, center=true, scale=true}
 *   %ls: f32[N,7,7,96] = channel_scale(%x, %ls/gamma) {axis=3}
 *
 * layernorm normalizes each example along one axis (positive in the IR,
 * counting the batch): xhat = (x - mean) / sqrt(variance + epsilon) with the
 * biased variance over that axis, then gamma * xhat + beta per position along
 * it, as Keras 3 computes it (ops.moments, rsqrt). `scale: false` drops gamma,
 * `center: false` beta (the operand list follows the attributes).
 *
 * Gradient, with g = dy * gamma: dx = (g - mean(g) - xhat * mean(g * xhat)) /
 * sqrt(variance + epsilon) per row (`layernorm_grad_input`), dgamma =
 * channel_sum(dy * xhat), dbeta = channel_sum(dy). ONNX: LayerNormalization
 * (opset 17) over the last axis, another axis moved last by Transposes.
 *
 * LayerScale (ConvNeXt's application-internal layer, config
 * {init_values, projection_dim}) multiplies the last axis by its weight
 * `gamma`: the existing `channel_scale` op.
 */
import { Type } from '@sinclair/typebox';
import { aroundAxis, type Tensor } from '../ir/tensor.js';
import { tensor, type TensorType } from '../ir/types.js';
import { kernel, shapeTag, times } from './emit.js';
import { initializer, initSpec } from './init.js';
import { gradientOnly, onnxFloat, onnxInt, onnxInts, type OnnxBuilder } from './onnx-def.js';
import { show } from './keras-def.js';
import { byRole, defineFamily, defineLayer, defineOp, dim, formatShape, ShapeError, type OpNode } from './op-def.js';

type LayernormAttrs = { axis: number; epsilon: number; center: boolean; scale: boolean };

const layernormOperands = (a: { scale: boolean; center: boolean }) => ['x', ...(a.scale ? ['gamma'] : []), ...(a.center ? ['beta'] : [])];

/** For every row along `axis` (outer x inner of them), `f(mean, 1 / sqrt(variance + epsilon), row index -> flat index)`. */
function eachRow(x: Tensor, axis: number, epsilon: number, f: (mean: number, inv: number, at: (c: number) => number) => void): void {
  const { outer, n, inner } = aroundAxis(x.shape, axis);
  for (let o = 0; o < outer; o++) {
    for (let r = 0; r < inner; r++) {
      const at = (c: number) => (o * n + c) * inner + r;
      let mean = 0;
      for (let c = 0; c < n; c++) mean += x.data[at(c)]!;
      mean /= n;
      let variance = 0;
      for (let c = 0; c < n; c++) variance += (x.data[at(c)]! - mean) ** 2;
      f(mean, 1 / Math.sqrt(variance / n + epsilon), at);
    }
  }
}

/** The loop over rows of the kernels: `n` values `stride` apart from `at`, mean `m` and `inv` computed in float64. */
function rowLoop(t: TensorType, axis: number, epsilon: number, body: string): string {
  const { outer, n, inner } = aroundAxis([1, ...(t.shape.slice(1) as number[])], axis);
  const at = inner === 1 ? `o * ${n}` : `o * ${n * inner} + r`;
  const loop = `const at = ${at};
let m = 0;
for (let c = 0; c < ${n}; c++) m += x[at + c * ${inner}]!;
m /= ${n};
let v = 0;
for (let c = 0; c < ${n}; c++) v += (x[at + c * ${inner}]! - m) ** 2;
const inv = 1 / Math.sqrt(v / ${n} + ${epsilon});
${body.replaceAll('STRIDE', String(inner))}`;
  const rows = inner === 1 ? loop : `for (let r = 0; r < ${inner}; r++) {\n${loop}\n}`;
  return `for (let o = 0; o < ${times('n', outer)}; o++) {\n${rows}\n}`;
}

/** ONNX LayerNormalization over the IR axis: directly when it is the last, else between two Transposes. */
function layernormToOnnx(b: OnnxBuilder, n: OpNode<LayernormAttrs>): void {
  const { x, gamma, beta } = byRole(layernormOperands(n.attrs), n.operands);
  const rank = n.type.shape.length;
  const size = n.type.shape[n.attrs.axis] as number;
  const scale = gamma === undefined ? b.constant(new Float32Array(size).fill(1), [size]) : b.param(gamma);
  const bias = beta === undefined ? b.constant(new Float32Array(size), [size]) : b.param(beta);
  const attrs = [onnxInt('axis', -1), onnxFloat('epsilon', n.attrs.epsilon)];
  if (n.attrs.axis === rank - 1) return b.produce(n, 'nhwc', (out) => b.emit('LayerNormalization', [b.nhwc(x!), scale, bias], [out], attrs));
  const perm = [...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== n.attrs.axis), n.attrs.axis];
  b.produce(n, 'nhwc', (out) => {
    const moved = b.temp('Transpose', [b.nhwc(x!)], [onnxInts('perm', perm)]);
    const normed = b.temp('LayerNormalization', [moved, scale, bias], attrs);
    b.emit('Transpose', [normed], [out], [onnxInts('perm', perm.map((_, i) => perm.indexOf(i)))]);
  });
}

const layernormExamples = [
  { note: 'last axis, gamma and beta', attrs: { axis: 3, epsilon: 1e-6, center: true, scale: true }, operands: [tensor(['N', 2, 2, 5]), tensor([5]), tensor([5])] },
  { note: 'features, no beta', attrs: { axis: 1, epsilon: 1e-3, center: false, scale: true }, operands: [tensor(['N', 6]), tensor([6])] },
  { note: 'a middle axis, neither', attrs: { axis: 1, epsilon: 1e-3, center: false, scale: false }, operands: [tensor(['N', 4, 3])] },
];

export const layernormOp = defineOp({
  name: 'layernorm',
  summary: 'per-example normalization along an axis, then gamma and beta along it',
  traits: ['pure'],
  attrs: { axis: Type.Integer({ minimum: 1 }), epsilon: Type.Number({ exclusiveMinimum: 0 }), center: Type.Boolean(), scale: Type.Boolean() },
  operands: layernormOperands,
  examples: layernormExamples,
  infer: ([x, ...params], a) => {
    if (a.axis >= x!.shape.length) throw new ShapeError(`layernorm axis ${a.axis} is out of range for ${formatShape(x!.shape)}`);
    const size = dim(x!, a.axis);
    for (const p of params) {
      if (p!.shape.length !== 1 || p!.shape[0] !== size) throw new ShapeError(`layernorm gamma and beta must have shape [${size}], got ${formatShape(p!.shape)}`);
    }
    return x!;
  },
  reference: (inputs, a) => {
    const { x, gamma, beta } = byRole(layernormOperands(a), inputs);
    const y = new Float64Array(x!.data.length);
    eachRow(x!, a.axis, a.epsilon, (mean, inv, at) => {
      for (let c = 0; c < x!.shape[a.axis]!; c++) {
        y[at(c)] = (x!.data[at(c)]! - mean) * inv * (gamma ? gamma.data[c]! : 1) + (beta ? beta.data[c]! : 0);
      }
    });
    return { shape: [...x!.shape], data: y };
  },
  emit: ({ operands: [x], attrs: a }) => {
    const n = dim(x!, a.axis);
    const value = `(x[i]! - m) * inv${a.scale ? ' * gamma[c]!' : ''}${a.center ? ' + beta[c]!' : ''}`;
    const body = `for (let c = 0; c < ${n}; c++) {\n  const i = at + c * STRIDE;\n  y[i] = ${value};\n}`;
    return kernel(`layernorm_${shapeTag(x!)}_axis${a.axis}${a.scale ? '' : '_noscale'}${a.center ? '' : '_nocenter'}`, layernormOperands(a),
      `layer normalization along axis ${a.axis} (mean and variance per example in float64)`, rowLoop(x!, a.axis, a.epsilon, body));
  },
  onnx: layernormToOnnx,
  grad: (g, { operands, attrs: a }, dy) => {
    const { x, gamma } = byRole(layernormOperands(a), operands);
    const plain = { axis: a.axis, epsilon: a.epsilon, center: false, scale: false };
    return layernormOperands(a).map((role) => {
      if (role === 'x') {
        return () => {
          const scaled = gamma === undefined ? dy : g.op('channel_scale', [dy, gamma], { axis: a.axis });
          return g.op('layernorm_grad_input', [scaled, x!], { axis: a.axis, epsilon: a.epsilon });
        };
      }
      if (role === 'gamma') return () => g.op('channel_sum', [g.op('multiply', [dy, g.op('layernorm', [x!], plain)], {})], { axis: a.axis });
      return () => g.op('channel_sum', [dy], { axis: a.axis });
    });
  },
});

/**
 * dx of layernorm from g = dy * gamma: (g - mean(g) - xhat * mean(g * xhat)) /
 * sqrt(variance + epsilon), means along the axis, per row.
 *
 *   %ln/grad_x: f32[N,7,7,96] = layernorm_grad_input(%ln/grad_scaled, %x) {axis=3, epsilon=0.000001}
 */
export const layernormGradInputOp = defineOp({
  name: 'layernorm_grad_input',
  summary: 'the gradient of layernorm with respect to x, from dy * gamma',
  traits: ['pure'],
  attrs: { axis: Type.Integer({ minimum: 1 }), epsilon: Type.Number({ exclusiveMinimum: 0 }) },
  operands: () => ['g', 'x'],
  examples: [
    { note: 'last axis', attrs: { axis: 3, epsilon: 1e-6 }, operands: [tensor(['N', 2, 2, 5]), tensor(['N', 2, 2, 5])] },
    { note: 'a middle axis', attrs: { axis: 1, epsilon: 1e-3 }, operands: [tensor(['N', 4, 3]), tensor(['N', 4, 3])] },
  ],
  infer: ([g, x]) => {
    if (formatShape(g!.shape) !== formatShape(x!.shape)) throw new ShapeError('layernorm_grad_input: g and x differ in shape');
    return x!;
  },
  reference: ([g, x], a) => {
    const n = x!.shape[a.axis]!;
    const dx = new Float64Array(x!.data.length);
    eachRow(x!, a.axis, a.epsilon, (mean, inv, at) => {
      let gm = 0;
      let gx = 0;
      for (let c = 0; c < n; c++) {
        gm += g!.data[at(c)]!;
        gx += g!.data[at(c)]! * (x!.data[at(c)]! - mean) * inv;
      }
      for (let c = 0; c < n; c++) dx[at(c)] = (g!.data[at(c)]! - gm / n - (x!.data[at(c)]! - mean) * inv * (gx / n)) * inv;
    });
    return { shape: [...x!.shape], data: dx };
  },
  emit: ({ operands: [, x], attrs: a }) => {
    const n = dim(x!, a.axis);
    const body = `let gm = 0, gx = 0;
for (let c = 0; c < ${n}; c++) {
  const i = at + c * STRIDE;
  gm += g[i]!;
  gx += g[i]! * (x[i]! - m) * inv;
}
gm /= ${n};
gx /= ${n};
for (let c = 0; c < ${n}; c++) {
  const i = at + c * STRIDE;
  y[i] = (g[i]! - gm - (x[i]! - m) * inv * gx) * inv;
}`;
    return kernel(`layernorm_grad_input_${shapeTag(x!)}_axis${a.axis}`, ['g', 'x'], `dx of layer normalization along axis ${a.axis}`, rowLoop(x!, a.axis, a.epsilon, body));
  },
  onnx: gradientOnly,
  grad: 'none',
});

/** Keras's axis: an int or a list of one int (Keras 3 saves [-1]). */
function kerasAxis(v: unknown): number | undefined {
  if (Number.isInteger(v)) return v as number;
  if (Array.isArray(v) && v.length === 1 && Number.isInteger(v[0])) return v[0] as number;
  return undefined;
}

export const layerNormalizationLayer = defineLayer({
  type: 'layer_normalization',
  aliases: ['layernorm'],
  keras: 'LayerNormalization',
  kerasImport: {
    classes: ['LayerNormalization'],
    fromConfig: (c) => {
      const axis = c.optional('axis', (k) => c.get(k));
      if (axis !== undefined && kerasAxis(axis) === undefined) c.fail('axis', `only one axis is supported, got ${show(axis)}`);
      c.set('axis', kerasAxis(axis));
      c.set('epsilon', c.optional('epsilon', (k) => c.number(k)));
      for (const k of ['center', 'scale']) c.set(k, c.optional(k, (key) => c.bool(key)));
      if (c.optional('rms_scaling', (k) => c.bool(k)) === true) c.fail('rms_scaling', 'rms_scaling is not supported');
      for (const k of ['beta_initializer', 'gamma_initializer']) c.set(k, c.initializer(k));
    },
  },
  kerasExport: (a) => ({
    className: 'LayerNormalization',
    config: { axis: a.axis, epsilon: a.epsilon, center: a.center, scale: a.scale, rms_scaling: false },
  }),
  examples: [
    { attrs: { epsilon: 1e-6 }, inputs: [[3, 4]] },
    { attrs: { axis: 1, center: false }, inputs: [[3, 4]] },
  ],
  namePrefix: 'layer_normalization',
  summary: 'layer normalization',
  attrs: {
    axis: Type.Integer({ default: -1, description: 'the axis normalized over (negative counts from the end)' }),
    epsilon: Type.Number({ exclusiveMinimum: 0, default: 0.001 }),
    center: Type.Boolean({ default: true, description: 'learn beta' }),
    scale: Type.Boolean({ default: true, description: 'learn gamma' }),
    beta_initializer: initializer('zeros'),
    gamma_initializer: initializer('ones'),
  },
  arity: [1, 1],
  lower: (ctx, [x], a) => {
    const t = ctx.typeOf(x!);
    const axis = a.axis < 0 ? t.shape.length + a.axis : a.axis;
    if (axis <= 0 || axis >= t.shape.length) throw new ShapeError(`layer_normalization axis ${a.axis} is out of range for input rank ${t.shape.length} (axis 0 is the batch)`);
    const size = [dim(t, axis)];
    // Keras builds gamma, then beta.
    const operands = [x!];
    if (a.scale) operands.push(ctx.param('gamma', size, initSpec(a.gamma_initializer)));
    if (a.center) operands.push(ctx.param('beta', size, initSpec(a.beta_initializer)));
    return ctx.op('layernorm', operands, { axis, epsilon: a.epsilon, center: a.center, scale: a.scale });
  },
});

export const layerScaleLayer = defineLayer({
  type: 'layer_scale',
  keras: 'LayerScale',
  kerasImport: {
    classes: ['LayerScale'],
    fromConfig: (c) => {
      c.set('init_values', c.number('init_values'));
      c.set('projection_dim', c.int('projection_dim'));
    },
  },
  kerasExport: (a) => ({
    module: 'keras.src.applications.convnext',
    className: 'LayerScale',
    registeredName: 'LayerScale',
    config: { init_values: a.init_values, projection_dim: a.projection_dim },
  }),
  examples: [{ attrs: { init_values: 1e-6, projection_dim: 3 }, inputs: [[2, 2, 3]] }],
  namePrefix: 'layer_scale',
  summary: "x * gamma along the last axis (ConvNeXt's LayerScale)",
  attrs: {
    init_values: Type.Number({ description: "gamma's initial value" }),
    projection_dim: Type.Integer({ minimum: 1, description: 'the size of the last axis' }),
  },
  positional: ['init_values', 'projection_dim'],
  arity: [1, 1],
  lower: (ctx, [x], a) => {
    const t = ctx.typeOf(x!);
    const last = t.shape.length - 1;
    if (dim(t, last) !== a.projection_dim) throw new ShapeError(`layer_scale projection_dim ${a.projection_dim} differs from the input's last axis ${formatShape(t.shape)}`);
    // Keras saves it unnamed (`variable`); modelc calls it gamma, as ConvNeXt's code does.
    const gamma = ctx.param('gamma', [a.projection_dim], { type: 'constant', args: { value: a.init_values } });
    return ctx.op('channel_scale', [x!, gamma], { axis: last });
  },
});

/** Layer normalization, its input gradient op, and LayerScale (over channel_scale). */
export const layernormFamily = defineFamily({ ops: [layernormOp, layernormGradInputOp], layers: [layerNormalizationLayer, layerScaleLayer] });
