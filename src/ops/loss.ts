/**
 * Losses and the accuracy metric of the training block, as Keras and TF.js
 * define them (epsilon 1e-7). Each reduces a batch to one value of the static
 * type f32[1]:
 *
 *   %loss: f32[1] = loss(%dense_1/linear, %labels) {kind="categorical_crossentropy", from_logits=true}
 *   %dense_1/linear/grad: f32[N,10] = loss_grad(%dense_1/linear, %labels, %loss/grad) {kind=..., from_logits=true}
 *   %accuracy: f32[1] = accuracy(%dense_1, %labels) {kind="categorical"}
 *
 * Labels have the prediction's type, except sparse ones: class indices (stored
 * as floats, floored) with the prediction's shape minus its last axis.
 *
 *  - binary_crossentropy: p clipped to [eps, 1 - eps], -(t log p + (1 - t) log(1 - p))
 *    per element (no gradient where the clip is active, as TF's clip); from
 *    logits z: max(z, 0) - z t + log(1 + exp(-|z|)).
 *  - categorical_crossentropy: per row along the last axis, q = p / sum(p)
 *    clipped to [eps, 1 - eps], -sum(t log q); from logits: -sum(t log_softmax(z)).
 *  - sparse_categorical_crossentropy: the categorical loss of the one-hot labels.
 *  - mse, mae: (p - t)^2, |p - t| per element.
 *
 * Per-element losses are averaged over every element (the mean over the last
 * axis, then over the rows); per-row losses over the rows (every position of
 * the axes before the last, batch included).
 */
import { Type, type Static, type TObject } from '@sinclair/typebox';
import type { Tensor } from '../ir/tensor.js';
import { formatType, sameType, tensor, type TensorType } from '../ir/types.js';
import { activationHelper } from './activation.js';
import { kernel, lit, shapeTag, total } from './emit.js';
import { defineFamily, defineOp, dim, formatShape, ShapeError } from './op-def.js';
import { lossNames } from '../spec/training.js';

/** The loss op computes the losses a spec's `train` block may name (listed with the spec types). */
export const lossKinds = lossNames;
export type LossKind = (typeof lossKinds)[number];

export const accuracyKinds = ['binary', 'categorical', 'sparse_categorical'] as const;
export type AccuracyKind = (typeof accuracyKinds)[number];

/** Keras's `backend.epsilon()`. */
export const EPSILON = 1e-7;

const lossAttrs = {
  kind: Type.Union(lossKinds.map((k) => Type.Literal(k))),
  from_logits: Type.Boolean(),
};
type LossAttrs = Static<TObject<typeof lossAttrs>>;

const isSparse = (kind: LossKind | AccuracyKind) => kind === 'sparse_categorical_crossentropy' || kind === 'sparse_categorical';
const perRow = (kind: LossKind) => kind === 'categorical_crossentropy' || kind === 'sparse_categorical_crossentropy';

/** Checks a prediction and its labels; sparse labels drop the prediction's last axis. */
function checkOperands(op: string, pred: TensorType, labels: TensorType, sparse: boolean): void {
  if (pred.shape[0] !== 'N' || pred.shape.length < 2) {
    throw new ShapeError(`${op} needs a batch of predictions of rank >= 2, got ${formatShape(pred.shape)}`);
  }
  dim(pred, -1);
  const want = sparse ? tensor(pred.shape.slice(0, -1)) : pred;
  if (!sameType(labels, want)) {
    throw new ShapeError(`${op}: predictions ${formatType(pred)} need ${sparse ? 'class-index ' : ''}labels ${formatType(want)}, got ${formatType(labels)}`);
  }
}

function checkLoss(pred: TensorType, labels: TensorType, a: LossAttrs, op: string): void {
  if (a.from_logits && !a.kind.endsWith('crossentropy')) throw new ShapeError(`${op}: ${a.kind} has no from_logits form`);
  checkOperands(op, pred, labels, isSparse(a.kind));
}

// ---------------------------------------------------------------------------
// Reference: per-element losses

/** One element's loss and its derivative with respect to the prediction. */
interface Pointwise {
  value(p: number, t: number): number;
  slope(p: number, t: number): number;
}

const clip = (p: number) => Math.min(Math.max(p, EPSILON), 1 - EPSILON);
const sigmoid = (z: number) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

function pointwise(kind: LossKind, fromLogits: boolean): Pointwise {
  switch (kind) {
    case 'binary_crossentropy':
      return fromLogits
        ? { value: (z, t) => Math.max(z, 0) - z * t + Math.log1p(Math.exp(-Math.abs(z))), slope: (z, t) => sigmoid(z) - t }
        : {
            value: (p, t) => -(t * Math.log(clip(p)) + (1 - t) * Math.log(1 - clip(p))),
            slope: (p, t) => (p < EPSILON || p > 1 - EPSILON ? 0 : (1 - t) / (1 - p) - t / p),
          };
    case 'mse':
      return { value: (p, t) => (p - t) ** 2, slope: (p, t) => 2 * (p - t) };
    case 'mae':
      return { value: (p, t) => Math.abs(p - t), slope: (p, t) => Math.sign(p - t) };
    default:
      throw new Error(`${kind} is not a per-element loss`);
  }
}

// ---------------------------------------------------------------------------
// Reference: per-row losses (categorical, sparse categorical)

/** The row's target at class j: the label row, or the one-hot of a sparse label. */
function targets(labels: Tensor, sparse: boolean, classes: number): (r: number, j: number) => number {
  return sparse ? (r, j) => (Math.floor(labels.data[r]!) === j ? 1 : 0) : (r, j) => labels.data[r * classes + j]!;
}

/** A row's loss; `grad` (when given) receives d loss_row / d x_j, scaled by `scale`. */
function rowLoss(x: Float64Array, at: number, c: number, t: (j: number) => number, fromLogits: boolean, grad?: { out: Float64Array; scale: number }): number {
  let loss = 0;
  if (fromLogits) {
    let max = -Infinity;
    for (let j = 0; j < c; j++) max = Math.max(max, x[at + j]!);
    let sum = 0;
    for (let j = 0; j < c; j++) sum += Math.exp(x[at + j]! - max);
    const lse = max + Math.log(sum);
    let targetSum = 0;
    for (let j = 0; j < c; j++) {
      loss += t(j) * (lse - x[at + j]!);
      targetSum += t(j);
    }
    // d/dz_j: softmax_j * sum(t) - t_j
    if (grad) for (let j = 0; j < c; j++) grad.out[at + j] = grad.scale * ((Math.exp(x[at + j]! - max) / sum) * targetSum - t(j));
    return loss;
  }
  let sum = 0;
  for (let j = 0; j < c; j++) sum += x[at + j]!;
  // q = p / sum; d loss / d q_j = -t_j / q_j where unclipped; d q_j / d p_i = (δ_ij - q_j) / sum.
  const dq = (j: number) => {
    const q = x[at + j]! / sum;
    return q < EPSILON || q > 1 - EPSILON ? 0 : -t(j) / q;
  };
  let dot = 0;
  for (let j = 0; j < c; j++) {
    loss -= t(j) * Math.log(clip(x[at + j]! / sum));
    dot += dq(j) * (x[at + j]! / sum);
  }
  if (grad) for (let j = 0; j < c; j++) grad.out[at + j] = (grad.scale * (dq(j) - dot)) / sum;
  return loss;
}

/** The loss's value, and its gradient with respect to the prediction scaled by `dl` when given. */
function lossReference(pred: Tensor, labels: Tensor, a: LossAttrs, dl?: number): { value: number; grad: Float64Array } {
  const grad = new Float64Array(pred.data.length);
  let sum = 0;
  if (perRow(a.kind)) {
    const c = pred.shape[pred.shape.length - 1]!;
    const rows = pred.data.length / c;
    const t = targets(labels, isSparse(a.kind), c);
    const out = dl === undefined ? undefined : { out: grad, scale: dl / rows };
    for (let r = 0; r < rows; r++) sum += rowLoss(pred.data, r * c, c, (j) => t(r, j), a.from_logits, out);
    return { value: sum / rows, grad };
  }
  const f = pointwise(a.kind, a.from_logits);
  const count = pred.data.length;
  for (let i = 0; i < count; i++) {
    sum += f.value(pred.data[i]!, labels.data[i]!);
    if (dl !== undefined) grad[i] = (dl * f.slope(pred.data[i]!, labels.data[i]!)) / count;
  }
  return { value: sum / count, grad };
}

// ---------------------------------------------------------------------------
// Codegen: the same formulas over `p` (predictions), `t` (labels), `dl`

const EPS = lit(EPSILON);
const ONE_MINUS_EPS = lit(1 - EPSILON);

/** Statements setting `v` (the element's loss) or `d` (its slope) from scalars `p` and `t`. */
function pointwiseCode(kind: LossKind, fromLogits: boolean): { value: string; slope: string } {
  if (kind === 'binary_crossentropy' && fromLogits) {
    return { value: 'v = Math.max(p, 0) - p * t + Math.log1p(Math.exp(-Math.abs(p)));', slope: 'd = sigmoid(p) - t;' };
  }
  if (kind === 'binary_crossentropy') {
    return {
      value: `const c = Math.min(Math.max(p, ${EPS}), ${ONE_MINUS_EPS});\nv = -(t * Math.log(c) + (1 - t) * Math.log(1 - c));`,
      slope: `d = p < ${EPS} || p > ${ONE_MINUS_EPS} ? 0 : (1 - t) / (1 - p) - t / p;`,
    };
  }
  if (kind === 'mse') return { value: 'v = (p - t) ** 2;', slope: 'd = 2 * (p - t);' };
  return { value: 'v = Math.abs(p - t);', slope: 'd = Math.sign(p - t);' };
}

/** One row's loss added to `sum` (and with `grad`, its gradient stored scaled by `scale`), for the row at `at`. */
function rowCode(c: number, sparse: boolean, fromLogits: boolean, grad: boolean): string {
  const target = sparse ? '(j === k ? 1 : 0)' : 't[at + j]!';
  const lines = sparse ? ['const k = Math.floor(t[r]!);'] : [];
  if (fromLogits) {
    lines.push(
      'let max = -Infinity;',
      `for (let j = 0; j < ${c}; j++) max = Math.max(max, p[at + j]!);`,
      'let s = 0;',
      `for (let j = 0; j < ${c}; j++) s += Math.exp(p[at + j]! - max);`,
    );
    if (!grad) lines.push('const lse = max + Math.log(s);', `for (let j = 0; j < ${c}; j++) sum += ${target} * (lse - p[at + j]!);`);
    else {
      lines.push('let targetSum = 0;', `for (let j = 0; j < ${c}; j++) targetSum += ${target};`);
      lines.push(`for (let j = 0; j < ${c}; j++) y[at + j] = scale * ((Math.exp(p[at + j]! - max) / s) * targetSum - ${target});`);
    }
    return lines.join('\n');
  }
  lines.push('let s = 0;', `for (let j = 0; j < ${c}; j++) s += p[at + j]!;`);
  if (!grad) {
    lines.push(`for (let j = 0; j < ${c}; j++) sum -= ${target} * Math.log(Math.min(Math.max(p[at + j]! / s, ${EPS}), ${ONE_MINUS_EPS}));`);
    return lines.join('\n');
  }
  const dq = `const q = p[at + j]! / s;\n    const dq = q < ${EPS} || q > ${ONE_MINUS_EPS} ? 0 : -${target} / q;`;
  lines.push('let dot = 0;', `for (let j = 0; j < ${c}; j++) {\n    ${dq}\n    dot += dq * q;\n  }`);
  lines.push(`for (let j = 0; j < ${c}; j++) {\n    ${dq}\n    y[at + j] = (scale * (dq - dot)) / s;\n  }`);
  return lines.join('\n');
}

/** The body of `loss` (grad false) or `loss_grad` (grad true). */
function lossCode(pred: TensorType, a: LossAttrs, grad: boolean): string {
  const count = total(pred);
  if (perRow(a.kind)) {
    const c = dim(pred, -1);
    const row = rowCode(c, isSparse(a.kind), a.from_logits, grad).replace(/\n/g, '\n  ');
    const rows = `(${count}) / ${c}`;
    const head = grad ? [`const scale = dl[0]! / (${rows});`] : ['let sum = 0;'];
    const tail = grad ? [] : [`y[0] = sum / (${rows});`];
    return [...head, `for (let r = 0; r < ${rows}; r++) {`, `  const at = r * ${c};`, `  ${row}`, '}', ...tail].join('\n');
  }
  const code = pointwiseCode(a.kind, a.from_logits);
  const element = (grad ? `let d: number;\n${code.slope}\ny[i] = scale * d;` : `let v: number;\n${code.value}\nsum += v;`).replace(/\n/g, '\n  ');
  const head = grad ? [`const scale = dl[0]! / (${count});`] : ['let sum = 0;'];
  const loop = [`for (let i = 0; i < ${count}; i++) {`, '  const p = x[i]!, t = labels[i]!;', `  ${element}`, '}'];
  return [...head, ...loop, ...(grad ? [] : [`y[0] = sum / (${count});`])].join('\n');
}

function lossTag(pred: TensorType, a: LossAttrs): string {
  return `${a.kind}${a.from_logits ? '_logits' : ''}_${shapeTag(pred)}`;
}

/** Per-row kernels name the predictions `p`; per-element ones `x` (`p` is the element). */
function lossParams(a: LossAttrs, grad: boolean): string[] {
  const pred = perRow(a.kind) ? ['p', 't'] : ['x', 'labels'];
  return grad ? [...pred, 'dl'] : pred;
}

/** The gradient of binary crossentropy from logits calls `sigmoid`. */
function gradHelpers(a: LossAttrs) {
  return a.kind === 'binary_crossentropy' && a.from_logits ? [activationHelper('sigmoid')] : [];
}

export const lossOp = defineOp({
  name: 'loss',
  summary: 'a Keras loss of predictions against labels, averaged over the batch',
  traits: ['pure'],
  attrs: lossAttrs,
  operands: () => ['prediction', 'labels'],
  examples: [
    { note: 'categorical from logits', attrs: { kind: 'categorical_crossentropy', from_logits: true }, operands: [tensor(['N', 4]), tensor(['N', 4])], values: [undefined, { min: 0, max: 1 }] },
    { note: 'categorical of probabilities, rank 3', attrs: { kind: 'categorical_crossentropy', from_logits: false }, operands: [tensor(['N', 2, 3]), tensor(['N', 2, 3])], values: [{ min: 0.1, max: 1 }, { min: 0, max: 1 }] },
    { note: 'sparse labels, from logits', attrs: { kind: 'sparse_categorical_crossentropy', from_logits: true }, operands: [tensor(['N', 4]), tensor(['N'])], values: [undefined, { min: 0, max: 4, integer: true }] },
    { note: 'sparse labels of rank 2, probabilities', attrs: { kind: 'sparse_categorical_crossentropy', from_logits: false }, operands: [tensor(['N', 2, 3]), tensor(['N', 2])], values: [{ min: 0.1, max: 1 }, { min: 0, max: 3, integer: true }] },
    { note: 'binary of probabilities (clip inactive)', attrs: { kind: 'binary_crossentropy', from_logits: false }, operands: [tensor(['N', 3]), tensor(['N', 3])], values: [{ min: 0.05, max: 0.95 }, { min: 0, max: 1 }] },
    { note: 'binary from logits', attrs: { kind: 'binary_crossentropy', from_logits: true }, operands: [tensor(['N', 3]), tensor(['N', 3])], values: [undefined, { min: 0, max: 1 }] },
    { note: 'mse', attrs: { kind: 'mse', from_logits: false }, operands: [tensor(['N', 2, 2]), tensor(['N', 2, 2])] },
    { note: 'mae', attrs: { kind: 'mae', from_logits: false }, operands: [tensor(['N', 3]), tensor(['N', 3])] },
  ],
  infer: ([pred, labels], a) => {
    checkLoss(pred!, labels!, a, 'loss');
    return tensor([1]);
  },
  reference: ([pred, labels], a) => ({ shape: [1], data: Float64Array.of(lossReference(pred!, labels!, a).value) }),
  emit: ({ operands: [pred], attrs: a }) =>
    kernel(`loss_${lossTag(pred!, a)}`, lossParams(a, false), `${a.kind}${a.from_logits ? ' from logits' : ''}, mean over the batch`, lossCode(pred!, a, false)),
  onnx: { notExportable: 'a loss or metric against labels: training and evaluation graphs only' },
  // The labels are data: only the prediction gets a gradient.
  grad: (g, { operands: [pred, labels], attrs }, dl) => [() => g.op('loss_grad', [pred!, labels!, dl], attrs), undefined],
});

/**
 * The loss's gradient with respect to the prediction, times the upstream
 * f32[1] gradient `dl`.
 */
export const lossGradOp = defineOp({
  name: 'loss_grad',
  summary: 'the gradient of a loss with respect to its prediction',
  traits: ['pure'],
  attrs: lossAttrs,
  operands: () => ['prediction', 'labels', 'dl'],
  examples: [
    { note: 'categorical from logits', attrs: { kind: 'categorical_crossentropy', from_logits: true }, operands: [tensor(['N', 4]), tensor(['N', 4]), tensor([1])], values: [undefined, { min: 0, max: 1 }, undefined] },
    { note: 'categorical of probabilities, rank 3', attrs: { kind: 'categorical_crossentropy', from_logits: false }, operands: [tensor(['N', 2, 3]), tensor(['N', 2, 3]), tensor([1])], values: [{ min: 0.1, max: 1 }, { min: 0, max: 1 }, undefined] },
    { note: 'sparse labels, from logits', attrs: { kind: 'sparse_categorical_crossentropy', from_logits: true }, operands: [tensor(['N', 4]), tensor(['N']), tensor([1])], values: [undefined, { min: 0, max: 4, integer: true }, undefined] },
    { note: 'sparse labels of rank 2, probabilities', attrs: { kind: 'sparse_categorical_crossentropy', from_logits: false }, operands: [tensor(['N', 2, 3]), tensor(['N', 2]), tensor([1])], values: [{ min: 0.1, max: 1 }, { min: 0, max: 3, integer: true }, undefined] },
    { note: 'binary of probabilities (clip inactive)', attrs: { kind: 'binary_crossentropy', from_logits: false }, operands: [tensor(['N', 3]), tensor(['N', 3]), tensor([1])], values: [{ min: 0.05, max: 0.95 }, { min: 0, max: 1 }, undefined] },
    { note: 'binary from logits', attrs: { kind: 'binary_crossentropy', from_logits: true }, operands: [tensor(['N', 3]), tensor(['N', 3]), tensor([1])], values: [undefined, { min: 0, max: 1 }, undefined] },
    { note: 'mse', attrs: { kind: 'mse', from_logits: false }, operands: [tensor(['N', 2, 2]), tensor(['N', 2, 2]), tensor([1])] },
    { note: 'mae', attrs: { kind: 'mae', from_logits: false }, operands: [tensor(['N', 3]), tensor(['N', 3]), tensor([1])] },
  ],
  infer: ([pred, labels, dl], a) => {
    checkLoss(pred!, labels!, a, 'loss_grad');
    if (!sameType(dl!, tensor([1]))) throw new ShapeError(`loss_grad: the loss's gradient must be f32[1], got ${formatType(dl!)}`);
    return pred!;
  },
  reference: ([pred, labels, dl], a) => ({ shape: [...pred!.shape], data: lossReference(pred!, labels!, a, dl!.data[0]!).grad }),
  emit: ({ operands: [pred], attrs: a }) =>
    kernel(`loss_grad_${lossTag(pred!, a)}`, lossParams(a, true), `gradient of ${a.kind}${a.from_logits ? ' from logits' : ''}`, lossCode(pred!, a, true), gradHelpers(a)),
  onnx: { notExportable: 'a loss or metric against labels: training and evaluation graphs only' },
  grad: 'none',
});

// ---------------------------------------------------------------------------
// Accuracy

const accuracyAttrs = { kind: Type.Union(accuracyKinds.map((k) => Type.Literal(k))) };

/** The index of the first largest value of the row at `at`. */
function argmax(x: Float64Array, at: number, c: number): number {
  let best = 0;
  for (let j = 1; j < c; j++) if (x[at + j]! > x[at + best]!) best = j;
  return best;
}

function accuracyReference(pred: Tensor, labels: Tensor, kind: AccuracyKind): number {
  if (kind === 'binary') {
    let hits = 0;
    for (let i = 0; i < pred.data.length; i++) if ((pred.data[i]! > 0.5 ? 1 : 0) === labels.data[i]) hits++;
    return hits / pred.data.length;
  }
  const c = pred.shape[pred.shape.length - 1]!;
  const rows = pred.data.length / c;
  let hits = 0;
  for (let r = 0; r < rows; r++) {
    const want = kind === 'sparse_categorical' ? labels.data[r]! : argmax(labels.data, r * c, c);
    if (argmax(pred.data, r * c, c) === want) hits++;
  }
  return hits / rows;
}

function accuracyCode(pred: TensorType, kind: AccuracyKind): string {
  const count = total(pred);
  if (kind === 'binary') {
    return `let hits = 0;
for (let i = 0; i < ${count}; i++) if ((p[i]! > 0.5 ? 1 : 0) === t[i]!) hits++;
y[0] = hits / (${count});`;
  }
  const c = dim(pred, -1);
  const argmax = (a: string, to: string) => `let ${to} = 0;
  for (let j = 1; j < ${c}; j++) if (${a}[at + j]! > ${a}[at + ${to}]!) ${to} = j;`;
  const want = kind === 'sparse_categorical' ? 'const want = t[r]!;' : argmax('t', 'want');
  return `const rows = (${count}) / ${c};
let hits = 0;
for (let r = 0; r < rows; r++) {
  const at = r * ${c};
  ${argmax('p', 'got')}
  ${want}
  if (got === want) hits++;
}
y[0] = hits / rows;`;
}

/**
 * Keras accuracy metrics: `binary` (prediction > 0.5 equals the label,
 * averaged over every element), `categorical` (the first argmax of the
 * prediction equals the label's), `sparse_categorical` (it equals the label).
 */
export const accuracyOp = defineOp({
  name: 'accuracy',
  summary: 'the fraction of correct predictions (Keras binary, categorical or sparse categorical accuracy)',
  traits: ['pure'],
  attrs: accuracyAttrs,
  operands: () => ['prediction', 'labels'],
  examples: [
    { note: 'binary', attrs: { kind: 'binary' }, operands: [tensor(['N', 3]), tensor(['N', 3])], values: [{ min: 0, max: 1 }, { min: 0, max: 2, integer: true }] },
    { note: 'categorical', attrs: { kind: 'categorical' }, operands: [tensor(['N', 4]), tensor(['N', 4])] },
    { note: 'sparse labels of rank 2', attrs: { kind: 'sparse_categorical' }, operands: [tensor(['N', 2, 3]), tensor(['N', 2])], values: [undefined, { min: 0, max: 3, integer: true }] },
  ],
  infer: ([pred, labels], a) => {
    checkOperands('accuracy', pred!, labels!, isSparse(a.kind));
    return tensor([1]);
  },
  reference: ([pred, labels], a) => ({ shape: [1], data: Float64Array.of(accuracyReference(pred!, labels!, a.kind)) }),
  emit: ({ operands: [pred], attrs: a }) =>
    kernel(`accuracy_${a.kind}_${shapeTag(pred!)}`, ['p', 't'], `${a.kind} accuracy over the batch`, accuracyCode(pred!, a.kind)),
  onnx: { notExportable: 'a loss or metric against labels: training and evaluation graphs only' },
  grad: 'none',
});

export const lossOps = [lossOp, lossGradOp, accuracyOp] as const;

export const lossFamily = defineFamily({ ops: lossOps });
