/**
 * Losses and accuracy: values against hand-computed numbers (clipping
 * included), the from_logits forms against the probability forms, gradients
 * against central differences, the emitted kernels against the reference
 * kernels, and buildLoss's labels, fusion and metric choice.
 */
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/autodiff/builder.js';
import { buildLoss, type LossName } from '../../src/autodiff/loss.js';
import { interpret } from '../../src/interp/interpret.js';
import { mapTensor, type Tensor } from '../../src/ir/tensor.js';
import { formatType, tensor, type Attrs } from '../../src/ir/types.js';
import { expectGradientsMatch, randomValues } from '../helpers/gradcheck.js';
import { runKernel } from '../helpers/kernel.js';
import { softmax } from '../../src/ops/activation.js';
import { getOp } from '../../src/ops/registry.js';
import { reference, rng, t } from '../helpers/tensors.js';

const EPS = 1e-7;
const loss = (pred: Tensor, labels: Tensor, kind: LossName, fromLogits = false) =>
  reference('loss', [pred, labels], { kind, from_logits: fromLogits }).data[0]!;
const lossGrad = (pred: Tensor, labels: Tensor, kind: LossName, fromLogits = false, dl = 1) =>
  [...reference('loss_grad', [pred, labels, t([1], [dl])], { kind, from_logits: fromLogits }).data];
const accuracy = (pred: Tensor, labels: Tensor, kind: string) => reference('accuracy', [pred, labels], { kind }).data[0]!;
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
const softmaxOf = (x: Tensor) => softmax(x, x.shape.length - 1);

describe('loss values by hand', () => {
  it('binary crossentropy: mean over every element', () => {
    const p = t([2, 2], [0.9, 0.2, 0.6, 0.4]);
    const y = t([2, 2], [1, 0, 0, 1]);
    expect(loss(p, y, 'binary_crossentropy')).toBeCloseTo(-(Math.log(0.9) + Math.log(0.8) + Math.log(0.4) + Math.log(0.4)) / 4, 14);
  });
  it('binary crossentropy clips to [eps, 1 - eps], with no gradient where the clip is active', () => {
    const p = t([1, 3], [0, 1, 0.5]);
    const y = t([1, 3], [1, 1, 0]);
    expect(loss(p, y, 'binary_crossentropy')).toBeCloseTo(-(Math.log(EPS) + Math.log(1 - EPS) + Math.log(0.5)) / 3, 12);
    expect(lossGrad(p, y, 'binary_crossentropy')).toEqual([0, 0, 1 / 0.5 / 3]);
  });
  it('binary crossentropy from logits: max(z, 0) - z y + log(1 + exp(-|z|))', () => {
    const z = t([1, 2], [2, -1]);
    const y = t([1, 2], [1, 0]);
    expect(loss(z, y, 'binary_crossentropy', true)).toBeCloseTo((Math.log(1 + Math.exp(-2)) + Math.log(1 + Math.exp(-1))) / 2, 14);
    // far beyond where the probability form saturates
    expect(loss(t([1, 1], [-200]), t([1, 1], [1]), 'binary_crossentropy', true)).toBeCloseTo(200, 10);
  });
  it('categorical crossentropy: normalized rows, -sum(y log p), mean over rows', () => {
    expect(loss(t([1, 3], [0.7, 0.2, 0.1]), t([1, 3], [1, 0, 0]), 'categorical_crossentropy')).toBeCloseTo(-Math.log(0.7), 14);
    expect(loss(t([1, 3], [1.4, 0.4, 0.2]), t([1, 3], [1, 0, 0]), 'categorical_crossentropy')).toBeCloseTo(-Math.log(0.7), 14);
    const soft = loss(t([2, 3], [0.7, 0.2, 0.1, 0.7, 0.2, 0.1]), t([2, 3], [0.5, 0.5, 0, 0, 0, 1]), 'categorical_crossentropy');
    expect(soft).toBeCloseTo((-(0.5 * Math.log(0.7) + 0.5 * Math.log(0.2)) - Math.log(0.1)) / 2, 14);
  });
  it('categorical crossentropy clips a zero probability to eps', () => {
    expect(loss(t([1, 3], [1, 0, 0]), t([1, 3], [0, 1, 0]), 'categorical_crossentropy')).toBeCloseTo(-Math.log(EPS), 12);
    expect(lossGrad(t([1, 3], [0.5, 0, 0.5]), t([1, 3], [0, 1, 0]), 'categorical_crossentropy').map((v) => v + 0)).toEqual([0, 0, 0]);
  });
  it('categorical crossentropy from logits: -log_softmax', () => {
    const lse = Math.log(Math.E + Math.E ** 2 + Math.E ** 3);
    expect(loss(t([1, 3], [1, 2, 3]), t([1, 3], [0, 0, 1]), 'categorical_crossentropy', true)).toBeCloseTo(lse - 3, 14);
    expect(loss(t([1, 2], [1000, 0]), t([1, 2], [0, 1]), 'categorical_crossentropy', true)).toBeCloseTo(1000, 10);
  });
  it('sparse categorical crossentropy: class indices (floored), both forms', () => {
    const lse = Math.log(Math.E + Math.E ** 2 + Math.E ** 3);
    expect(loss(t([1, 3], [1, 2, 3]), t([1], [2]), 'sparse_categorical_crossentropy', true)).toBeCloseTo(lse - 3, 14);
    const p = t([2, 3], [0.7, 0.2, 0.1, 0.1, 0.3, 0.6]);
    expect(loss(p, t([2], [0, 1.9]), 'sparse_categorical_crossentropy')).toBeCloseTo(-(Math.log(0.7) + Math.log(0.3)) / 2, 14);
  });
  it('mse and mae: mean over the last axis, then over the rows', () => {
    const p = t([2, 2], [1, 2, 3, 4]);
    const y = t([2, 2], [0, 2, 5, 4]);
    expect(loss(p, y, 'mse')).toBe(1.25);
    expect(loss(p, y, 'mae')).toBe(0.75);
  });
  it('rank-3 predictions: every leading position is a row', () => {
    const p = t([1, 2, 2], [0.25, 0.75, 0.5, 0.5]);
    expect(loss(p, t([1, 2], [1, 0]), 'sparse_categorical_crossentropy')).toBeCloseTo(-(Math.log(0.75) + Math.log(0.5)) / 2, 14);
    expect(loss(p, t([1, 2, 2], [0, 0, 1, 1]), 'mse')).toBeCloseTo((0.0625 + 0.5625 + 0.25 + 0.25) / 4, 14);
  });
  it('the logits forms equal the probability forms away from clipping', () => {
    const z = randomValues([4, 5], 11, 3);
    const y = mapTensor(randomValues([4, 5], 12), (v) => (v + 1) / 2);
    expect(loss(z, y, 'binary_crossentropy', true)).toBeCloseTo(loss(mapTensor(z, sigmoid), y, 'binary_crossentropy'), 12);
    const onehot = t([4, 5], [...Array(20)].map((_, i) => (i % 5 === [1, 4, 0, 2][Math.floor(i / 5)] ? 1 : 0)));
    expect(loss(z, onehot, 'categorical_crossentropy', true)).toBeCloseTo(loss(softmaxOf(z), onehot, 'categorical_crossentropy'), 12);
    const sparse = t([4], [1, 4, 0, 2]);
    expect(loss(z, sparse, 'sparse_categorical_crossentropy', true)).toBeCloseTo(loss(z, onehot, 'categorical_crossentropy', true), 14);
    expect(loss(softmaxOf(z), sparse, 'sparse_categorical_crossentropy')).toBeCloseTo(loss(z, onehot, 'categorical_crossentropy', true), 12);
  });
  it('rejects mismatched labels and from_logits on regression losses', () => {
    const attrs = (kind: string, from_logits = false) => ({ kind, from_logits });
    const infer = (labels: number[], a: Attrs) => formatType(getLossOp().infer([tensor(['N', 10]), tensor(labels.length ? ['N', ...labels] : ['N'])], a as never));
    expect(infer([10], attrs('categorical_crossentropy'))).toBe('f32[1]');
    expect(infer([], attrs('sparse_categorical_crossentropy', true))).toBe('f32[1]');
    expect(() => infer([], attrs('categorical_crossentropy'))).toThrow(/labels f32\[N,10\]/);
    expect(() => infer([10], attrs('mse', true))).toThrow(/no from_logits/);
  });
});

const getLossOp = () => getOp('loss')!;

/** Labels for gradient checks and kernels: soft or one-hot rows, or class indices. */
function labelsFor(kind: LossName, shape: number[], seed: number): Tensor {
  const next = rng(seed);
  const c = shape[shape.length - 1]!;
  const rows = shape.reduce((a, b) => a * b, 1) / c;
  if (kind === 'sparse_categorical_crossentropy') return t(shape.slice(0, -1), [...Array(rows)].map(() => Math.floor(next() * c)));
  if (kind === 'categorical_crossentropy') {
    const classes = [...Array(rows)].map(() => Math.floor(next() * c));
    return t(shape, [...Array(rows * c)].map((_, i) => (i % c === classes[Math.floor(i / c)] ? 1 : 0)));
  }
  if (kind === 'binary_crossentropy') return t(shape, [...Array(rows * c)].map(() => next()));
  return randomValues(shape, seed);
}

/** Predictions: probabilities in (0.05, 0.95) (rows of positive values for categorical) or logits / any values. */
function predictionFor(kind: LossName, fromLogits: boolean, shape: number[], seed: number): Tensor {
  const x = randomValues(shape, seed, 2);
  if (fromLogits || kind === 'mse' || kind === 'mae') return x;
  return mapTensor(x, (v) => 0.05 + (0.9 * (v + 2)) / 4);
}

const forms: [LossName, boolean][] = [
  ['binary_crossentropy', false],
  ['binary_crossentropy', true],
  ['categorical_crossentropy', false],
  ['categorical_crossentropy', true],
  ['sparse_categorical_crossentropy', false],
  ['sparse_categorical_crossentropy', true],
  ['mse', false],
  ['mae', false],
];

describe('loss gradients match central differences', () => {
  it.each(forms)('%s (from_logits %s)', (kind, fromLogits) => {
    for (const shape of [[3, 4], [2, 2, 3]]) {
      const pred = predictionFor(kind, fromLogits, shape, 3);
      const labels = labelsFor(kind, shape, 4);
      expectGradientsMatch('loss', [{ value: pred }, { value: labels, batched: true, check: false }], { kind, from_logits: fromLogits }, { tol: 1e-6 });
    }
  });
  it('the labels get no gradient and dl scales the prediction gradient', () => {
    const pred = t([1, 2], [0.3, 0.6]);
    const y = t([1, 2], [1, 0]);
    const g1 = lossGrad(pred, y, 'binary_crossentropy');
    expect(lossGrad(pred, y, 'binary_crossentropy', false, 2.5)).toEqual(g1.map((v) => v * 2.5));
    const node = { op: 'loss', result: 'l', type: tensor([1]), operands: ['p', 'y'], attrs: { kind: 'mse', from_logits: false }, layer: 'l' };
    const rules = (getLossOp().grad as Exclude<ReturnType<typeof getLossOp>['grad'], 'none' | undefined>)({ op: () => 'x', typeOf: () => tensor([1]) }, node, 'dl');
    expect(rules[1]).toBeUndefined();
  });
});

describe('accuracy', () => {
  it('binary: prediction > 0.5 (0.5 itself is 0) equals the label, over every element', () => {
    expect(accuracy(t([1, 4], [0.5, 0.51, 0.2, 0.9]), t([1, 4], [0, 1, 0, 0]), 'binary')).toBe(0.75);
    expect(accuracy(t([2, 1], [0.5, 0.5000001]), t([2, 1], [1, 1]), 'binary')).toBe(0.5);
  });
  it('categorical: the first argmax of prediction and label, on ties too', () => {
    const p = t([3, 3], [0.4, 0.4, 0.2, 0.1, 0.3, 0.3, 0.2, 0.2, 0.6]);
    expect(accuracy(p, t([3, 3], [1, 0, 0, 0, 0, 1, 0.5, 0.5, 0]), 'categorical')).toBeCloseTo(1 / 3, 15);
    expect(accuracy(p, t([3, 3], [0, 1, 0, 0, 1, 0, 0, 0, 1]), 'categorical')).toBeCloseTo(2 / 3, 15);
  });
  it('sparse categorical: the label equals the first argmax', () => {
    const p = t([3, 3], [0.4, 0.4, 0.2, 0.1, 0.3, 0.3, 0.2, 0.2, 0.6]);
    expect(accuracy(p, t([3], [0, 2, 2]), 'sparse_categorical')).toBeCloseTo(2 / 3, 15);
    expect(accuracy(p, t([3], [1, 1, 2]), 'sparse_categorical')).toBeCloseTo(2 / 3, 15);
  });
});

describe('emitted kernels equal the reference kernels', () => {
  const cases = forms.flatMap(([kind, fromLogits]) =>
    [[5, 4], [3, 2, 3]].map((shape) => [kind, fromLogits, shape] as const),
  );
  it.each(cases)('loss and loss_grad: %s (from_logits %s) %j', (kind, fromLogits, shape) => {
    const pred = predictionFor(kind, fromLogits, [...shape], 5);
    const labels = labelsFor(kind, [...shape], 6);
    const attrs = { kind, from_logits: fromLogits };
    expectNear(runKernel('loss', [pred, labels], attrs, [true, true]), reference('loss', [pred, labels], attrs));
    const dl = t([1], [0.7]);
    expectNear(runKernel('loss_grad', [pred, labels, dl], attrs, [true, true, false]), reference('loss_grad', [pred, labels, dl], attrs));
  });
  it('loss kernels clip as the reference does', () => {
    const p = t([2, 3], [1, 0, 0, 0.5, 0.5, 0]);
    for (const kind of ['binary_crossentropy', 'categorical_crossentropy'] as const) {
      const y = t([2, 3], [0, 1, 0, 0, 0, 1]);
      const attrs = { kind, from_logits: false };
      expectNear(runKernel('loss', [p, y], attrs), reference('loss', [p, y], attrs));
      expectNear(runKernel('loss_grad', [p, y, t([1], [1])], attrs, [true, true, false]), reference('loss_grad', [p, y, t([1], [1])], attrs));
    }
  });
  it.each(['binary', 'categorical', 'sparse_categorical'])('accuracy: %s', (kind) => {
    const p = t([4, 3], [0.4, 0.4, 0.2, 0.1, 0.3, 0.3, 0.2, 0.2, 0.6, 0.9, 0.05, 0.05]);
    const labels = kind === 'sparse_categorical' ? t([4], [0, 2, 2, 1]) : t([4, 3], [1, 0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 0]);
    expect(runKernel('accuracy', [p, labels], { kind }, [true, true]).data[0]).toBeCloseTo(accuracy(p, labels, kind), 6);
  });
});

function expectNear(got: Tensor, want: Tensor): void {
  expect(got.shape).toEqual(want.shape);
  got.data.forEach((v, i) => expect(Math.abs(v - want.data[i]!) / Math.max(1, Math.abs(want.data[i]!))).toBeLessThan(2e-6));
}

describe('buildLoss', () => {
  /** x [N,4] -> dense -> activation (when given): the prediction. */
  function model(activation: 'softmax' | 'sigmoid' | undefined, units = 3) {
    const b = new GraphBuilder({ inputs: [{ name: 'x', type: tensor(['N', 4]) }], params: [], nodes: [] });
    const kernel = b.addParam({ name: 'dense/kernel', type: tensor([4, units]), trainable: true, init: { type: 'zeros', args: {} }, value: Float32Array.from(randomValues([4, units], 9).data) });
    const logits = b.naming('dense', 'dense').op('dense', ['x', kernel], {});
    if (activation === undefined) return { b, logits, prediction: logits };
    const prediction = b.op(activation, [logits], activation === 'softmax' ? { axis: 1 } : {});
    return { b, logits, prediction };
  }
  const nodeOf = (b: GraphBuilder, v: string) => b.nodes.find((n) => n.result === v)!;

  it('a softmax prediction: the loss reads the logits, accuracy the probabilities', () => {
    const { b, logits, prediction } = model('softmax');
    const out = buildLoss(b, { loss: 'categorical_crossentropy', metrics: ['accuracy'] }, prediction);
    expect(b.inputs.map((i) => [i.name, formatType(i.type)])).toEqual([['x', 'f32[N,4]'], ['labels', 'f32[N,3]']]);
    expect(out.labels).toBe('labels');
    expect(nodeOf(b, out.loss)).toMatchObject({ op: 'loss', operands: [logits, 'labels'], attrs: { kind: 'categorical_crossentropy', from_logits: true } });
    expect(nodeOf(b, out.accuracy!)).toMatchObject({ op: 'accuracy', operands: [prediction, 'labels'], attrs: { kind: 'categorical' } });
    // the fused value is the unfused one
    const x = randomValues([5, 4], 1);
    const y = labelsFor('categorical_crossentropy', [5, 3], 2);
    const values = interpret(b.finish('m', [out.loss, prediction]), { x, labels: y });
    expect(values[out.loss]!.data[0]).toBeCloseTo(loss(values[prediction]!, y, 'categorical_crossentropy'), 10);
  });
  it('sparse labels drop the last axis; sigmoid fuses into binary crossentropy', () => {
    const s = model('softmax');
    const sparse = buildLoss(s.b, { loss: 'sparse_categorical_crossentropy', metrics: ['accuracy'] }, s.prediction, 'y');
    expect(formatType(s.b.typeOf(sparse.labels))).toBe('f32[N]');
    expect(sparse.labels).toBe('y');
    expect(nodeOf(s.b, sparse.loss).attrs).toEqual({ kind: 'sparse_categorical_crossentropy', from_logits: true });
    expect(nodeOf(s.b, sparse.accuracy!).attrs).toEqual({ kind: 'sparse_categorical' });
    const g = model('sigmoid', 1);
    const binary = buildLoss(g.b, { loss: 'binary_crossentropy' }, g.prediction);
    expect(nodeOf(g.b, binary.loss)).toMatchObject({ operands: [g.logits, 'labels'], attrs: { from_logits: true } });
    expect(binary.accuracy).toBeUndefined();
  });
  it('no fusion across kinds: softmax with binary crossentropy or mse, sigmoid with categorical', () => {
    for (const [activation, lossName] of [['softmax', 'binary_crossentropy'], ['softmax', 'mse'], ['sigmoid', 'categorical_crossentropy']] as const) {
      const m = model(activation);
      const out = buildLoss(m.b, { loss: lossName }, m.prediction);
      expect(nodeOf(m.b, out.loss)).toMatchObject({ operands: [m.prediction, 'labels'], attrs: { from_logits: false } });
    }
  });
  it('accuracy for regression losses: binary for one output, categorical otherwise', () => {
    for (const [units, want] of [[1, 'binary'], [3, 'categorical']] as const) {
      const m = model(undefined, units);
      const out = buildLoss(m.b, { loss: 'mae', metrics: ['accuracy'] }, m.prediction);
      expect(nodeOf(m.b, out.accuracy!).attrs).toEqual({ kind: want });
    }
  });
});
