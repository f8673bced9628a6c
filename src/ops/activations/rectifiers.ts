/**
 * The piecewise-linear and exponential-linear activations: relu, relu6,
 * leaky_relu, elu, selu. At kinks the derivative follows TF.js: relu'(0) = 0,
 * leaky_relu'(0) = alpha, elu'(0) = 1, selu'(0) = scale * alpha; from the
 * output, relu6 takes the one-sided value 0 at both bends.
 */
import { Type } from '@sinclair/typebox';
import { lit, numberTag, type RuntimeHelper } from '../emit.js';
import { onnxFloat } from '../onnx-def.js';
import { defineActivation, derivative, scalarHelper } from './define.js';
import { SELU_ALPHA, SELU_SCALE } from './math.js';

/**
 * max(x, 0) without a data-dependent branch: (x + |x|) / 2 is exact (2x, or
 * +0), and V8 compiles Math.max and `x > 0 ? x : 0` to branches that
 * mispredict on activations of random sign: 5-6 ns per element against 1 ns
 * (bench/micro/activations.js). Only -Infinity gives NaN there; the rare,
 * predictable second branch returns its 0 (and NaN stays NaN).
 */
const reluHelper: RuntimeHelper = {
  name: 'relu',
  source: `/** max(x, 0), branch-free: (x + |x|) / 2 is exact; only x = -Infinity needs the (rarely taken) fix-up. */
function relu(x: number): number {
  const r = 0.5 * (x + Math.abs(x));
  return r === r ? r : x === x ? 0 : x;
}`,
};

export const relu = defineActivation({
  name: 'relu',
  summary: 'max(x, 0)',
  attrs: {},
  form: 'elementwise',
  reference: () => (x) => Math.max(x, 0),
  helper: () => reluHelper,
  // `+(y > 0)` compiles without a branch (a ternary mispredicts on data of random sign).
  derivative: () => derivative('output', 'relu_grad', "relu' from y: 1 where y > 0 (relu'(0) = 0), branch-free", (y) => (y > 0 ? 1 : 0), 'return +(y > 0);'),
  onnx: (e, x, y) => e.emit('Relu', [x], [y]),
  simd: 'relu',
  examples: [{}],
});

export const relu6 = defineActivation({
  name: 'relu6',
  summary: 'min(max(x, 0), 6)',
  attrs: {},
  form: 'elementwise',
  reference: () => (x) => Math.min(Math.max(x, 0), 6),
  helper: () => scalarHelper('relu6', 'min(max(x, 0), 6)', 'Math.min(Math.max(x, 0), 6)'),
  derivative: () => derivative('output', 'relu6_grad', "relu6' from y: 1 where 0 < y < 6", (y) => (y > 0 && y < 6 ? 1 : 0), 'return y > 0 && y < 6 ? 1 : 0;'),
  onnx: (e, x, y) => e.emit('Clip', [x, e.constant([0]), e.constant([6])], [y]),
  simd: 'relu6',
  examples: [{}],
});

export const leakyRelu = defineActivation({
  name: 'leaky_relu',
  summary: 'x if x > 0 else alpha * x',
  attrs: { alpha: Type.Number({ default: 0.3, description: 'slope for x < 0 (Keras LeakyReLU default 0.3)' }) },
  // Keras's `leaky_relu` activation string has slope 0.2 where the LeakyReLU layer, whose default
  // this record keeps, has 0.3: importing the string would silently change the slope. Keras 3's
  // configs say which Keras wrote them, so there it imports with its slope.
  keras: [],
  keras3: [{ name: 'leaky_relu', attrs: { alpha: 0.2 } }],
  form: 'elementwise',
  reference: ({ alpha }) => (x) => (x >= 0 ? x : alpha * x),
  helper: ({ alpha }) => scalarHelper(`leaky_relu_${numberTag(alpha)}`, `leaky_relu, alpha = ${lit(alpha)}`, `x >= 0 ? x : ${lit(alpha)} * x`),
  derivative: ({ alpha }) => {
    // With alpha >= 0, y > 0 exactly where x > 0.
    const tag = `leaky_relu_${numberTag(alpha)}_grad`;
    return alpha >= 0
      ? derivative('output', tag, `leaky_relu' from y, alpha = ${lit(alpha)}`, (y) => (y > 0 ? 1 : alpha), `return y > 0 ? 1 : ${lit(alpha)};`)
      : derivative('input', tag, `leaky_relu' from x, alpha = ${lit(alpha)}`, (x) => (x > 0 ? 1 : alpha), `return x > 0 ? 1 : ${lit(alpha)};`);
  },
  onnx: (e, x, y, { alpha }) => e.emit('LeakyRelu', [x], [y], [onnxFloat('alpha', alpha)]),
  examples: [{}, { alpha: 0.1 }, { alpha: -0.2 }],
});

export const elu = defineActivation({
  name: 'elu',
  summary: 'x if x > 0 else alpha * (exp(x) - 1)',
  attrs: { alpha: Type.Number({ default: 1.0, description: 'scale for x < 0' }) },
  form: 'elementwise',
  reference: ({ alpha }) => (x) => (x > 0 ? x : alpha * Math.expm1(x)),
  helper: ({ alpha }) => scalarHelper(`elu_${numberTag(alpha)}`, `elu, alpha = ${lit(alpha)}`, `x > 0 ? x : ${lit(alpha)} * Math.expm1(x)`),
  derivative: ({ alpha }) => {
    // For x <= 0, alpha * exp(x) = y + alpha; with alpha > 0, y >= 0 exactly where x >= 0.
    const tag = `elu_${numberTag(alpha)}_grad`;
    return alpha > 0
      ? derivative('output', tag, `elu' from y, alpha = ${lit(alpha)}`, (y) => (y >= 0 ? 1 : y + alpha), `return y >= 0 ? 1 : y + ${lit(alpha)};`)
      : derivative('input', tag, `elu' from x, alpha = ${lit(alpha)}`, (x) => (x >= 0 ? 1 : alpha * Math.exp(x)), `return x >= 0 ? 1 : ${lit(alpha)} * Math.exp(x);`);
  },
  onnx: (e, x, y, { alpha }) => e.emit('Elu', [x], [y], [onnxFloat('alpha', alpha)]),
  examples: [{}, { alpha: 0.5 }, { alpha: -0.5 }],
});

const SELU_SCALE_ALPHA = SELU_SCALE * SELU_ALPHA;

export const selu = defineActivation({
  name: 'selu',
  summary: 'scale * elu(x, alpha) with the self-normalizing constants',
  attrs: {},
  form: 'elementwise',
  reference: () => (x) => SELU_SCALE * (x > 0 ? x : SELU_ALPHA * Math.expm1(x)),
  helper: () => scalarHelper('selu', 'scale * elu(x, alpha) with the self-normalizing constants', `${SELU_SCALE} * (x > 0 ? x : ${SELU_ALPHA} * Math.expm1(x))`),
  derivative: () => derivative('output', 'selu_grad', "selu' from y: scale, or y + scale * alpha where y <= 0",
    (y) => (y > 0 ? SELU_SCALE : y + SELU_SCALE_ALPHA), `return y > 0 ? ${SELU_SCALE} : y + ${SELU_SCALE_ALPHA};`),
  onnx: (e, x, y) => e.emit('Selu', [x], [y], [onnxFloat('alpha', SELU_ALPHA), onnxFloat('gamma', SELU_SCALE)]),
  examples: [{}],
});

/**
 * Keras's ReLU with all three options (ReLU(max_value, negative_slope,
 * threshold), keras.activations.relu), as Keras 3 computes it:
 * p = x if x > threshold else 0, clipped to [0, max_value] when there is a
 * max_value, minus negative_slope * max(threshold - x, 0). The common cases
 * stay their own records (relu, relu6, leaky_relu); the Keras import picks
 * this one only for the others. Each option is >= 0, as the Keras layer
 * requires. Its derivative is from the input (two inputs
 * can share an output).
 */
export const reluGeneral = defineActivation({
  name: 'relu_general',
  summary: 'Keras ReLU with max_value, negative_slope and threshold',
  attrs: {
    max_value: Type.Union([Type.Number({ minimum: 0 }), Type.Null()], { default: null, description: 'the largest output (null: none)' }),
    negative_slope: Type.Number({ minimum: 0, default: 0, description: 'slope below the threshold' }),
    threshold: Type.Number({ minimum: 0, default: 0, description: 'inputs at or below it are damped (negative_slope) or zeroed' }),
  },
  keras: [],
  form: 'elementwise',
  reference: ({ max_value: max, negative_slope: slope, threshold: t }) => (x) => {
    const p = x > t ? x : 0;
    return (max === null ? p : Math.min(Math.max(p, 0), max)) - slope * Math.max(t - x, 0);
  },
  helper: ({ max_value: max, negative_slope: slope, threshold: t }) => {
    const name = `relu_general_${max === null ? 'nomax' : numberTag(max)}_${numberTag(slope)}_${numberTag(t)}`;
    const p = max === null ? 'p' : `Math.min(Math.max(p, 0), ${lit(max)})`;
    return {
      name,
      source: `/** Keras ReLU: max_value ${max === null ? 'none' : lit(max)}, negative_slope ${lit(slope)}, threshold ${lit(t)} */
function ${name}(x: number): number {
  const p = x > ${lit(t)} ? x : 0;
  return ${p} - ${lit(slope)} * Math.max(${lit(t)} - x, 0);
}`,
    };
  },
  derivative: ({ max_value: max, negative_slope: slope, threshold: t }) => {
    // d/dx of the clipped part: 1 where x > threshold and (with a max) strictly inside (0, max_value).
    const inside = max === null ? '1' : `x > 0 && x < ${lit(max)} ? 1 : 0`;
    const ref = (x: number) => (x > t ? (max === null || (x > 0 && x < max) ? 1 : 0) : 0) + (x < t ? slope : 0);
    return derivative('input', `relu_general_${max === null ? 'nomax' : numberTag(max)}_${numberTag(slope)}_${numberTag(t)}_grad`,
      "Keras ReLU' from x", ref, `return (x > ${lit(t)} ? (${inside}) : 0) + (x < ${lit(t)} ? ${lit(slope)} : 0);`);
  },
  // Where(x > threshold, x, 0), Clip to [0, max_value], minus slope * Relu(threshold - x).
  onnx: (e, x, y, { max_value: max, negative_slope: slope, threshold: t }) => {
    const zero = e.constant([0]);
    let p = e.temp('Where', [e.temp('Greater', [x, e.constant([t])]), x, zero]);
    if (max !== null) p = e.temp('Clip', [p, zero, e.constant([max])]);
    e.emit('Sub', [p, e.temp('Mul', [e.temp('Relu', [e.temp('Sub', [e.constant([t]), x])]), e.constant([slope])])], [y]);
  },
  examples: [
    { max_value: 4, negative_slope: 0.1 },
    { threshold: 0.5 },
    { threshold: 1, max_value: 3, negative_slope: 0.2 },
    { threshold: 2, negative_slope: 0.3 },
  ],
});
