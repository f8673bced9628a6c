/**
 * The smooth activations: gelu, swish, tanh, sigmoid, softplus, mish, and
 * hard_sigmoid and hard_swish (piecewise, but of sigmoid's and swish's
 * family). From the output, hard_sigmoid's derivative takes the one-sided
 * value 0 at both bends (TF.js: the inner slope).
 */
import { Type } from '@sinclair/typebox';
import { lit, numberTag } from '../emit.js';
import { onnxFloat } from '../onnx-def.js';
import { defineActivation, derivative, scalarHelper } from './define.js';
import { erfc, erfcHelper, sigmoid as sigmoidFn, sigmoidHelper, softplus as softplusFn, tanhHelper } from './math.js';

const GELU_C = Math.sqrt(2 / Math.PI);
const SQRT_2PI = Math.sqrt(2 * Math.PI);

/** d/dx x Phi(x) = Phi(x) + x phi(x) */
const geluExactDerivative = derivative('input', 'gelu_grad', "gelu' from x: Phi(x) + x phi(x)",
  (x) => 0.5 * erfc(-x / Math.SQRT2) + (x * Math.exp(-0.5 * x * x)) / SQRT_2PI,
  `return 0.5 * erfc(-x / Math.SQRT2) + (x * Math.exp(-0.5 * x * x)) / ${SQRT_2PI};`, [erfcHelper]);

/** f = 0.5 x (1 + t), t = tanh(c (x + 0.044715 x^3)): f' = 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 * 0.044715 x^2) */
const geluTanhDerivative = derivative('input', 'gelu_tanh_grad', "gelu' (tanh approximation) from x",
  (x) => {
    const t = Math.tanh(GELU_C * (x + 0.044715 * x ** 3));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 0.134145 * x * x);
  },
  `const t = Math.tanh(${GELU_C} * (x + 0.044715 * x ** 3));
  return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * ${GELU_C} * (1 + 0.134145 * x * x);`);

export const gelu = defineActivation({
  name: 'gelu',
  summary: 'x * Phi(x) (exact erf form, or the tanh approximation)',
  attrs: { approximate: Type.Boolean({ default: false, description: 'use the tanh approximation' }) },
  keras: ['gelu', { name: 'gelu_new', attrs: { approximate: true } }],
  form: 'elementwise',
  reference: ({ approximate }) => approximate
    ? (x) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))
    // Exact: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) = 0.5 x erfc(-x / sqrt 2), accurate for x << 0 too.
    : (x) => 0.5 * x * erfc(-x / Math.SQRT2),
  helper: ({ approximate }) => approximate
    ? scalarHelper('gelu_tanh', 'gelu, tanh approximation', '0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))')
    : scalarHelper('gelu', 'x * Phi(x) = 0.5 x erfc(-x / sqrt 2)', '0.5 * x * erfc(-x / Math.SQRT2)', [erfcHelper]),
  derivative: ({ approximate }) => (approximate ? geluTanhDerivative : geluExactDerivative),
  onnx: (e, x, y, { approximate }) => {
    let inner: string;
    if (approximate) {
      // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
      const cube = e.temp('Mul', [e.temp('Mul', [x, x]), x]);
      const poly = e.temp('Add', [x, e.temp('Mul', [cube, e.constant([0.044715])])]);
      inner = e.temp('Tanh', [e.temp('Mul', [poly, e.constant([Math.sqrt(2 / Math.PI)])])]);
    } else {
      // 0.5 x (1 + erf(x / sqrt 2))
      inner = e.temp('Erf', [e.temp('Mul', [x, e.constant([Math.SQRT1_2])])]);
    }
    const half = e.temp('Mul', [x, e.constant([0.5])]);
    e.emit('Mul', [half, e.temp('Add', [inner, e.constant([1])])], [y]);
  },
  examples: [{}, { approximate: true }],
});

export const swish = defineActivation({
  name: 'swish',
  summary: 'x * sigmoid(x)',
  attrs: {},
  keras: ['swish', 'silu'],
  form: 'elementwise',
  reference: () => (x) => x * sigmoidFn(x),
  helper: () => scalarHelper('swish', 'x * sigmoid(x)', 'x * sigmoid(x)', [sigmoidHelper]),
  // (x s)' = s + x s (1 - s), s = sigmoid(x). With s and 1 - s each within 6e-7 relative (the
  // rational sigmoid), the result is within 6e-7 (|f'| + |x s (1 - s)|), and |x s (1 - s)| < 0.224.
  derivative: () => derivative('input', 'swish_grad', "swish' from x: s (1 + x (1 - s)), s = sigmoid(x)",
    (x) => {
      const s = sigmoidFn(x);
      return s * (1 + x * (1 - s));
    },
    'const s = sigmoid(x);\n  return s * (1 + x * (1 - s));', [sigmoidHelper], { absolute: 1.4e-7, relative: 6e-7 }),
  onnx: (e, x, y) => e.emit('Mul', [x, e.temp('Sigmoid', [x])], [y]),
  examples: [{}],
  // Through the rational sigmoid (see math.ts).
  helperAccuracy: { relative: 6e-7 },
});

export const tanh = defineActivation({
  name: 'tanh',
  summary: 'hyperbolic tangent',
  attrs: {},
  form: 'elementwise',
  reference: () => Math.tanh,
  helper: () => tanhHelper,
  derivative: () => derivative('output', 'tanh_grad', "tanh' from y: 1 - y^2", (y) => 1 - y * y, 'return 1 - y * y;'),
  onnx: (e, x, y) => e.emit('Tanh', [x], [y]),
  examples: [{}],
  // The rational tanh (see math.ts).
  helperAccuracy: { absolute: 3e-7 },
  simdEpilogue: 'tanh',
});

export const sigmoid = defineActivation({
  name: 'sigmoid',
  summary: '1 / (1 + exp(-x))',
  attrs: {},
  logitsLosses: ['binary_crossentropy'],
  form: 'elementwise',
  reference: () => sigmoidFn,
  helper: () => sigmoidHelper,
  derivative: () => derivative('output', 'sigmoid_grad', "sigmoid' from y: y (1 - y)", (y) => y * (1 - y), 'return y * (1 - y);'),
  onnx: (e, x, y) => e.emit('Sigmoid', [x], [y]),
  examples: [{}],
  // Through the rational tanh (see math.ts): relative in sigmoid and in 1 - sigmoid.
  helperAccuracy: { relative: 6e-7 },
  simdEpilogue: 'sigmoid',
});

/**
 * clip(alpha x + 0.5, 0, 1). The slope differs between Keras versions: Keras 2
 * and TF.js use 0.2 (the default here, so their models read as before),
 * Keras 3 relu6(x + 3) / 6, which is alpha 1/6 (its `hard_sigmoid` string
 * imports so). ONNX HardSigmoid has the same two parameters.
 */
export const hardSigmoid = defineActivation({
  name: 'hard_sigmoid',
  summary: 'clip(alpha * x + 0.5, 0, 1) (alpha 0.2: Keras 2 and TF.js; 1/6: Keras 3)',
  attrs: { alpha: Type.Number({ exclusiveMinimum: 0, default: 0.2, description: 'the slope: 0.2 in Keras 2 and TF.js, 1/6 in Keras 3 (relu6(x + 3) / 6)' }) },
  keras: ['hard_sigmoid', 'hardSigmoid'],
  keras3: [{ name: 'hard_sigmoid', attrs: { alpha: 1 / 6 } }],
  form: 'elementwise',
  reference: ({ alpha }) => (x) => Math.min(Math.max(alpha * x + 0.5, 0), 1),
  // The default keeps its untagged names, so modules generated before the slope existed stay byte-identical.
  helper: ({ alpha }) => alpha === 0.2
    ? scalarHelper('hard_sigmoid', 'clip(0.2 x + 0.5, 0, 1)', 'Math.min(Math.max(0.2 * x + 0.5, 0), 1)')
    : scalarHelper(`hard_sigmoid_${numberTag(alpha)}`, `clip(${lit(alpha)} x + 0.5, 0, 1)`, `Math.min(Math.max(${lit(alpha)} * x + 0.5, 0), 1)`),
  derivative: ({ alpha }) => derivative('output', alpha === 0.2 ? 'hard_sigmoid_grad' : `hard_sigmoid_${numberTag(alpha)}_grad`,
    `hard_sigmoid' from y: ${lit(alpha)} where 0 < y < 1`, (y) => (y > 0 && y < 1 ? alpha : 0), `return y > 0 && y < 1 ? ${lit(alpha)} : 0;`),
  onnx: (e, x, y, { alpha }) => e.emit('HardSigmoid', [x], [y], [onnxFloat('alpha', alpha), onnxFloat('beta', 0.5)]),
  examples: [{}, { alpha: 1 / 6 }],
});

/**
 * Hard swish (MobileNetV3), x * relu6(x + 3) / 6: Keras 3's `hard_silu`,
 * also named `hard_swish`. Its relu6(x + 3) / 6 is Keras 3's hard_sigmoid,
 * not modelc's `hard_sigmoid` (Keras 2 and TF.js: clip(0.2 x + 0.5, 0, 1)).
 * The derivative is TF's gradient of that expression, where relu6' is 1 only
 * strictly inside (0, 6): 0 for x <= -3, 1 for x >= 3, else (2x + 3) / 6.
 * It cannot be taken from the output (y < 0 has two inputs).
 */
export const hardSwish = defineActivation({
  name: 'hard_swish',
  summary: 'x * relu6(x + 3) / 6 (Keras 3; its factor is not hard_sigmoid, which is 0.2 x + 0.5 here)',
  attrs: {},
  keras: ['hard_swish', 'hard_silu'],
  form: 'elementwise',
  reference: () => (x) => (x * Math.min(Math.max(x + 3, 0), 6)) / 6,
  helper: () => scalarHelper('hard_swish', 'x * relu6(x + 3) / 6', '(x * Math.min(Math.max(x + 3, 0), 6)) / 6'),
  derivative: () => derivative('input', 'hard_swish_grad', "hard_swish' from x: 0 for x <= -3, 1 for x >= 3, else (2x + 3) / 6 (TF at the bends)",
    (x) => (x <= -3 ? 0 : x >= 3 ? 1 : (2 * x + 3) / 6), 'return x <= -3 ? 0 : x >= 3 ? 1 : (2 * x + 3) / 6;'),
  // ONNX HardSwish (opset 14): x * max(0, min(1, x / 6 + 0.5)), the same function; alpha and beta are fixed.
  onnx: (e, x, y) => e.emit('HardSwish', [x], [y]),
  examples: [{}],
});

export const softplus = defineActivation({
  name: 'softplus',
  summary: 'log(1 + exp(x))',
  attrs: {},
  form: 'elementwise',
  reference: () => softplusFn,
  helper: () => scalarHelper('softplus', 'log(1 + exp(x)) without overflow', 'Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)))'),
  derivative: () => derivative('input', 'softplus_grad', "softplus' from x: sigmoid(x)", sigmoidFn, 'return sigmoid(x);', [sigmoidHelper], { relative: 6e-7 }),
  onnx: (e, x, y) => e.emit('Softplus', [x], [y]),
  examples: [{}],
});

/**
 * Mish (Misra 2019), x * tanh(softplus(x)); Keras's `mish`. ONNX has a Mish op
 * only from opset 18, so the export spells it out.
 */
export const mish = defineActivation({
  name: 'mish',
  summary: 'x * tanh(softplus(x))',
  attrs: {},
  keras: ['mish'],
  form: 'elementwise',
  reference: () => (x) => x * Math.tanh(softplusFn(x)),
  helper: () => scalarHelper('mish', 'x * tanh(softplus(x)), softplus without overflow', 'x * Math.tanh(Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))))'),
  // (x t)' = t + x (1 - t^2) sigmoid(x), t = tanh(softplus(x)), since softplus' = sigmoid.
  derivative: () => derivative('input', 'mish_grad', "mish' from x: t + x (1 - t^2) sigmoid(x), t = tanh(softplus(x))",
    (x) => {
      const t = Math.tanh(softplusFn(x));
      return t + x * (1 - t * t) * sigmoidFn(x);
    },
    `const t = Math.tanh(Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x))));
  return t + (x * (1 - t * t)) / (1 + Math.exp(-x));`),
  onnx: (e, x, y) => e.emit('Mul', [x, e.temp('Tanh', [e.temp('Softplus', [x])])], [y]),
  examples: [{}],
});
