/**
 * Keras's elementwise merge layers besides Add: Multiply, Subtract, Maximum,
 * Minimum and Average, broadcasting as Keras 3 does (`broadcast.ts`: a
 * lower-rank input first gets leading 1s after the batch, then size-1 axes
 * repeat). Squeeze-and-excitation blocks (EfficientNet, MobileNetV3) multiply
 * [N, H, W, C] by [N, 1, 1, C].
 *
 *   %subtract: f32[N,4,4,8] = subtract(%a, %b)
 *   %maximum: f32[N,4,4,8] = max(%a, %b)
 *
 * (`max` and `min`, as ONNX names them: the optimizers' `maximum` is AMSGrad's
 * update of two weights.) The ops are binary; a layer with more inputs chains them (Keras folds its
 * inputs left to right the same way). Average is the sum (`add`, broadcasting)
 * times 1 / count (`rescale`). Gradients reduce a broadcast operand's share
 * with `sum_to`; max's goes to x where x >= y (TF's choice at ties),
 * min's where x <= y. ONNX: Sub, Max, Min, which broadcast the same way
 * at equal rank.
 */
import { Type } from '@sinclair/typebox';
import { batched, exampleShape, formatType, tensor } from '../ir/types.js';
import { broadcastLoops, broadcastReference, broadcastShape, broadcastType, reduceTo, sumToReference } from './broadcast.js';
import { kernel, perExample, shapeTag } from './emit.js';
import { gradientOnly } from './onnx-def.js';
import { defineFamily, defineLayer, defineOp, formatShape, ShapeError, type LayerDef, type LowerContext } from './op-def.js';

/** The operand types the binary ops' examples run on: equal shapes, per-channel factors, both sides broadcast. */
const binaryExamples = [
  { note: 'one shape', attrs: {}, operands: [tensor(['N', 2, 3]), tensor(['N', 2, 3])] },
  { note: 'per-channel (squeeze-and-excitation)', attrs: {}, operands: [tensor(['N', 3, 2, 4]), tensor(['N', 1, 1, 4])] },
  { note: 'both operands broadcast', attrs: {}, operands: [tensor(['N', 1, 3]), tensor(['N', 2, 1])] },
];

interface Binary {
  readonly name: 'subtract' | 'max' | 'min';
  readonly summary: string;
  readonly f: (a: number, b: number) => number;
  /** The generated expression of two operand reads. */
  readonly code: (a: string, b: string) => string;
  readonly onnx: string;
}

function binaryOp<const N extends Binary['name']>(def: Binary & { readonly name: N }, grad: Parameters<typeof defineOp>[0]['grad']) {
  return defineOp({
    name: def.name,
    summary: def.summary,
    traits: ['pure', 'elementwise'],
    attrs: {},
    operands: () => ['x', 'y'],
    examples: binaryExamples,
    infer: (xs) => broadcastType(def.name, xs),
    reference: ([x, y]) => broadcastReference(broadcastShape([x!.shape, y!.shape]), [x!, y!], (a, b) => def.f(a!, b!)),
    emit: ({ operands, result }) =>
      kernel(`${def.name}_${operands.map(shapeTag).join('_')}`, ['a', 'b'], `${def.summary}, broadcast to ${shapeTag(result)} per example`,
        broadcastLoops(result, operands, ([i, j]) => `y[at] = ${def.code(`a[${i}]!`, `b[${j}]!`)};`)),
    onnx: (b, n) => {
      const layout = b.layoutFor(n.operands);
      b.produce(n, layout, (out) => b.emit(def.onnx, n.operands.map((o) => b.in(o, layout)), [out]));
    },
    grad,
  });
}

export const subtractOp = binaryOp(
  { name: 'subtract', summary: 'x - y elementwise', f: (a, b) => a - b, code: (a, b) => `${a} - ${b}`, onnx: 'Sub' },
  // z = x - y: dx = dz, dy = -dz, each summed over the axes its operand was broadcast along.
  (g, { operands: [x, y] }, dz) => [
    () => reduceTo(g, dz, g.typeOf(x!)),
    () => reduceTo(g, g.op('rescale', [dz], { scale: -1, offset: 0 }), g.typeOf(y!)),
  ],
);

/** The gradient of max or min: dz where the operand is the one chosen (x on ties), then reduced to it. */
const extremumGrad = (fn: 'max' | 'min') =>
  ((g, { operands: [x, y] }, dz) =>
    (['x', 'y'] as const).map((wrt, k) => () => reduceTo(g, g.op('extremum_grad', [dz, x!, y!], { fn, wrt }), g.typeOf([x, y][k]!)))
  ) satisfies Parameters<typeof defineOp>[0]['grad'];

export const maxOp = binaryOp(
  { name: 'max', summary: 'max(x, y) elementwise', f: Math.max, code: (a, b) => `Math.max(${a}, ${b})`, onnx: 'Max' },
  extremumGrad('max'),
);

export const minOp = binaryOp(
  { name: 'min', summary: 'min(x, y) elementwise', f: Math.min, code: (a, b) => `Math.min(${a}, ${b})`, onnx: 'Min' },
  extremumGrad('min'),
);

/**
 * dz where the operand `wrt` is the one max (min) takes: x where
 * x >= y (x <= y), y elsewhere, as TF's gradients of tf.maximum and
 * tf.minimum; the result has dz's (the broadcast) shape.
 *
 *   %maximum/grad_x: f32[N,4,4,8] = extremum_grad(%grad, %a, %b) {fn="max", wrt="x"}
 */
export const extremumGradOp = defineOp({
  name: 'extremum_grad',
  summary: 'the gradient of max or min: dz where the operand is the one chosen',
  traits: ['pure'],
  attrs: { fn: Type.Union([Type.Literal('max'), Type.Literal('min')]), wrt: Type.Union([Type.Literal('x'), Type.Literal('y')]) },
  operands: () => ['dz', 'x', 'y'],
  examples: [
    { note: 'max, dx', attrs: { fn: 'max', wrt: 'x' }, operands: [tensor(['N', 3, 2, 4]), tensor(['N', 3, 2, 4]), tensor(['N', 1, 1, 4])] },
    { note: 'min, dy', attrs: { fn: 'min', wrt: 'y' }, operands: [tensor(['N', 2, 3]), tensor(['N', 1, 3]), tensor(['N', 2, 3])] },
  ],
  infer: ([dz, x, y]) => {
    const z = broadcastType('extremum_grad', [x!, y!]);
    if (formatType(z) !== formatType(dz!)) throw new ShapeError(`extremum_grad: dz is ${formatType(dz!)}, the broadcast of x and y ${formatType(z)}`);
    return dz!;
  },
  reference: ([dz, x, y], a) => {
    const chosen = a.fn === 'max' ? (p: number, q: number) => p >= q : (p: number, q: number) => p <= q;
    return broadcastReference(dz!.shape, [dz!, x!, y!], (d, p, q) => (chosen(p!, q!) === (a.wrt === 'x') ? d! : 0));
  },
  emit: ({ operands, result, attrs: a }) => {
    const test = a.fn === 'max' ? '>=' : '<=';
    const [keep, drop] = a.wrt === 'x' ? ['d', '0'] : ['0', 'd'];
    return kernel(`extremum_grad_${a.fn}_${a.wrt}_${operands.map(shapeTag).join('_')}`, ['dz', 'p', 'q'], `dz where ${a.wrt} is the ${a.fn}`,
      broadcastLoops(result, operands, ([d, p, q]) => `{\n  const d = dz[${d}]!;\n  y[at] = p[${p}]! ${test} q[${q}]! ? ${keep} : ${drop};\n}`));
  },
  onnx: gradientOnly,
  grad: 'none',
});

/**
 * dy summed over every axis along which the operand of per-example shape
 * `shape` was broadcast (size 1 there): a broadcast operand's gradient.
 *
 *   %multiply/grad_1: f32[N,1,1,8] = sum_to(%multiply/grad) {shape=[1,1,8]}
 */
export const sumToOp = defineOp({
  name: 'sum_to',
  summary: 'dy summed over the axes where the target shape is 1',
  traits: ['pure'],
  attrs: { shape: Type.Array(Type.Integer({ minimum: 1 })) },
  operands: () => ['dy'],
  examples: [
    { note: 'per channel', attrs: { shape: [1, 1, 4] }, operands: [tensor(['N', 3, 2, 4])] },
    { note: 'a middle axis', attrs: { shape: [2, 1] }, operands: [tensor(['N', 2, 3])] },
  ],
  infer: ([dy], a) => {
    const from = exampleShape(dy!);
    if (dy!.shape[0] !== 'N' || from.length !== a.shape.length || a.shape.some((d, i) => d !== 1 && d !== from[i])) {
      throw new ShapeError(`sum_to cannot reduce ${formatType(dy!)} to ${formatShape(a.shape)}`);
    }
    return batched(a.shape);
  },
  reference: ([dy], a) => sumToReference(dy!, [dy!.shape[0]!, ...a.shape]),
  emit: ({ operands: [dy], result, attrs: a }) => {
    // Accumulates in the float32 result: a broadcast operand is repeated a few hundred times at most.
    const body = `y.fill(0, 0, n * ${perExample(result)});\n${broadcastLoops(dy!, [result], ([i]) => `y[${i}] += dy[at]!;`)}`;
    return kernel(`sum_to_${shapeTag(dy!)}_to_${a.shape.join('x')}`, ['dy'], `dy summed to ${formatShape(a.shape)} per example`, body);
  },
  onnx: gradientOnly,
  grad: 'none',
});

/** Each input of lower rank than the highest, with leading 1s after the batch (Keras: expand_dims(x, axis=1)). */
function sameRank(ctx: LowerContext, xs: readonly string[]): string[] {
  const rank = Math.max(...xs.map((x) => ctx.typeOf(x).shape.length));
  return xs.map((x, i) => {
    const shape = exampleShape(ctx.typeOf(x));
    if (shape.length + 1 === rank) return x;
    return ctx.op('reshape', [x], { shape: [...new Array<number>(rank - 1 - shape.length).fill(1), ...shape] }, `expand_${i}`);
  });
}

/** Folds `op` over the inputs left to right; the last application is the layer's own value. */
function chain(ctx: LowerContext, op: string, xs: readonly string[]): string {
  let acc = xs[0]!;
  for (let i = 1; i < xs.length; i++) acc = ctx.op(op, [acc, xs[i]!], {}, i === xs.length - 1 ? undefined : `${op}_${i}`);
  return acc;
}

function mergeLayer(type: string, keras: string, summary: string, arity: readonly [number, number], lower: (ctx: LowerContext, xs: string[]) => string): LayerDef {
  return defineLayer({
    type,
    keras,
    kerasImport: { classes: [keras], fromConfig: () => {} },
    kerasExport: () => ({ className: keras, config: {} }),
    examples: [{ attrs: {}, inputs: arity[1] === 2 ? [[2, 3], [1, 3]] : [[2, 2, 3], [1, 1, 3], [3]] }],
    namePrefix: type,
    summary,
    attrs: {},
    arity,
    lower: (ctx, xs) => lower(ctx, sameRank(ctx, xs)),
  }) as LayerDef;
}

export const multiplyLayer = mergeLayer('multiply', 'Multiply', 'elementwise product, broadcasting', [2, Infinity], (ctx, xs) => chain(ctx, 'multiply', xs));
export const subtractLayer = mergeLayer('subtract', 'Subtract', 'x - y elementwise, broadcasting', [2, 2], (ctx, xs) => chain(ctx, 'subtract', xs));
export const maximumLayer = mergeLayer('maximum', 'Maximum', 'elementwise maximum, broadcasting', [2, Infinity], (ctx, xs) => chain(ctx, 'max', xs));
export const minimumLayer = mergeLayer('minimum', 'Minimum', 'elementwise minimum, broadcasting', [2, Infinity], (ctx, xs) => chain(ctx, 'min', xs));

/** Keras's Average: the sum, then divided by the count (here times 1 / count). */
export const averageLayer = mergeLayer('average', 'Average', 'elementwise mean, broadcasting', [2, Infinity], (ctx, xs) =>
  ctx.op('rescale', [ctx.op('add', xs, {}, 'sum')], { scale: 1 / xs.length, offset: 0 }));

/** The broadcasting merges besides add and multiply (merge.ts) and their gradient ops. */
export const mergeBroadcastFamily = defineFamily({
  ops: [subtractOp, maxOp, minOp, extremumGradOp, sumToOp],
  layers: [multiplyLayer, subtractLayer, maximumLayer, minimumLayer, averageLayer],
});
