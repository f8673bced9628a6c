/**
 * softmax, the one `rows` activation: exp(x) / sum(exp(x)) along an axis,
 * each fibre's max subtracted first. Also its gradient op, from the output:
 *
 *   %softmax/grad: f32[N,10] = softmax_grad(%grad, %softmax) {axis=1}
 */
import { Type } from '@sinclair/typebox';
import { aroundAxis, type Tensor } from '../../ir/tensor.js';
import { formatType, sameType, tensor, type TensorType } from '../../ir/types.js';
import { kernel, shapeTag, times } from '../emit.js';
import { gradientOnly, onnxInt } from '../onnx-def.js';
import { defineOp, ShapeError } from '../op-def.js';
import { defineActivation, normalizeAxis } from './define.js';

/** Softmax over the fibres along `axis` (positive, counting the batch), subtracting each fibre's max first. */
export function softmax(x: Tensor, axis: number): Tensor {
  const { outer, n, inner } = aroundAxis(x.shape, axis);
  const y = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    for (let r = 0; r < inner; r++) {
      const at = (i: number) => (o * n + i) * inner + r;
      let max = -Infinity;
      for (let i = 0; i < n; i++) max = Math.max(max, x.data[at(i)]!);
      let sum = 0;
      for (let i = 0; i < n; i++) {
        y[at(i)] = Math.exp(x.data[at(i)]! - max);
        sum += y[at(i)]!;
      }
      for (let i = 0; i < n; i++) y[at(i)]! /= sum;
    }
  }
  return { shape: [...x.shape], data: y };
}

/**
 * Softmax over `len` contiguous values starting at each of `rows` offsets
 * `r * len` of `y`, in place (subtracting the row's max first).
 */
export function softmaxRowsCode(rows: string, len: number): string {
  return `for (let r = 0; r < ${rows}; r++) {
  const at = r * ${len};
  let max = -Infinity;
  for (let i = 0; i < ${len}; i++) max = Math.max(max, y[at + i]!);
  let sum = 0;
  for (let i = 0; i < ${len}; i++) {
    const e = Math.exp(y[at + i]! - max);
    y[at + i] = e;
    sum += e;
  }
  for (let i = 0; i < ${len}; i++) y[at + i] = y[at + i]! / sum;
}`;
}

/** Softmax along `axis` of a batch of `shape`: per (outer, inner) fibre of `len` values spaced `inner` apart. */
function softmaxKernel(t: TensorType, axis: number) {
  const shape = t.shape.slice(1) as number[];
  const { outer, n: len, inner } = aroundAxis([1, ...shape], axis);
  const body = inner === 1
    ? `for (let i = 0; i < ${times('n', outer * len)}; i++) y[i] = x[i]!;\n${softmaxRowsCode(times('n', outer), len)}`
    : `for (let o = 0; o < ${times('n', outer)}; o++) {
  for (let r = 0; r < ${inner}; r++) {
    const at = o * ${len * inner} + r;
    let max = -Infinity;
    for (let i = 0; i < ${len}; i++) max = Math.max(max, x[at + i * ${inner}]!);
    let sum = 0;
    for (let i = 0; i < ${len}; i++) {
      const e = Math.exp(x[at + i * ${inner}]! - max);
      y[at + i * ${inner}] = e;
      sum += e;
    }
    for (let i = 0; i < ${len}; i++) y[at + i * ${inner}] = y[at + i * ${inner}]! / sum;
  }
}`;
  return kernel(`softmax_${shapeTag(t)}_axis${axis}`, ['x'], `softmax over axis ${axis} of ${shapeTag(t)}`, body);
}

export const softmaxActivation = defineActivation({
  name: 'softmax',
  summary: 'exp(x) / sum(exp(x)) along an axis',
  attrs: { axis: Type.Integer({ default: -1, description: 'the axis to normalize over' }) },
  logitsLosses: ['categorical_crossentropy', 'sparse_categorical_crossentropy'],
  form: 'rows',
  reference: softmax,
  kernel: softmaxKernel,
  rowsCode: softmaxRowsCode,
  // dx = y * (dy - sum(dy * y)), from the output alone.
  grad: (g, dy, y, axis) => g.op('softmax_grad', [dy, y], { axis }),
  onnx: (e, x, y, { axis }) => e.emit('Softmax', [x], [y], [onnxInt('axis', axis)]),
  examples: [{}, { axis: 1 }],
});

/** dx = y * (dy - sum(dy * y)) over each fibre along `axis`, y = softmax(x). */
function softmaxGradReference(dy: Tensor, y: Tensor, axis: number): Tensor {
  const { outer, n, inner } = aroundAxis(y.shape, axis);
  const dx = new Float64Array(y.data.length);
  for (let o = 0; o < outer; o++) {
    for (let r = 0; r < inner; r++) {
      const at = (i: number) => (o * n + i) * inner + r;
      let dot = 0;
      for (let i = 0; i < n; i++) dot += dy.data[at(i)]! * y.data[at(i)]!;
      for (let i = 0; i < n; i++) dx[at(i)] = y.data[at(i)]! * (dy.data[at(i)]! - dot);
    }
  }
  return { shape: [...y.shape], data: dx };
}

/** The operands' common type, for gradient ops reading dy and a value of dy's type. */
export function sameOperands(op: string, [a, b]: readonly TensorType[]): TensorType {
  if (!sameType(a!, b!)) throw new ShapeError(`${op} needs operands of one shape, got ${formatType(a!)} and ${formatType(b!)}`);
  return a!;
}

/** The gradient of softmax along `axis` from its output y: dx = y * (dy - sum(dy * y)). */
export const softmaxGradOp = defineOp({
  name: 'softmax_grad',
  summary: 'the gradient of softmax from its output: y * (dy - sum(dy * y)) along an axis',
  traits: ['pure'],
  attrs: { axis: Type.Integer({ minimum: 1 }) },
  operands: () => ['dy', 'y'],
  infer: (xs, a) => {
    normalizeAxis(a.axis, xs[0]!.shape.length);
    return sameOperands('softmax_grad', xs);
  },
  reference: ([dy, y], a) => softmaxGradReference(dy!, y!, a.axis),
  emit: ({ result, attrs: a }) => {
    const { outer, n: len, inner } = aroundAxis([1, ...(result.shape.slice(1) as number[])], a.axis);
    const at = (i: string) => (inner === 1 ? `at + ${i}` : `at + ${i} * ${inner}`);
    const body = `for (let o = 0; o < ${times('n', outer)}; o++) {
  for (let r = 0; r < ${inner}; r++) {
    const at = o * ${len * inner} + r;
    let dot = 0;
    for (let i = 0; i < ${len}; i++) dot += dy[${at('i')}]! * s[${at('i')}]!;
    for (let i = 0; i < ${len}; i++) y[${at('i')}] = s[${at('i')}]! * (dy[${at('i')}]! - dot);
  }
}`;
    return kernel(`softmax_grad_${shapeTag(result)}_axis${a.axis}`, ['dy', 's'], `softmax gradient over axis ${a.axis} of ${shapeTag(result)}`, body);
  },
  grad: 'none',
  onnx: gradientOnly,
  examples: [
    { attrs: { axis: 1 }, operands: [tensor(['N', 8]), tensor(['N', 8])], note: 'rows' },
    { attrs: { axis: 3 }, operands: [tensor(['N', 2, 3, 4]), tensor(['N', 2, 3, 4])], note: 'last axis of an image' },
    { attrs: { axis: 1 }, operands: [tensor(['N', 2, 3, 4]), tensor(['N', 2, 3, 4])], note: 'a middle axis (strided fibres)' },
  ],
});
