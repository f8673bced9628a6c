/**
 * Merge layers: elementwise `add` of same-shaped inputs and `concatenate`
 * along an axis (positive in the IR, counting the batch dimension).
 *
 *   %add: f32[N,32,32,16] = add(%x, %b)
 */
import { Type } from '@sinclair/typebox';
import { aroundAxis, type Tensor } from '../ir/tensor.js';
import { formatType, tensor, type TensorType } from '../ir/types.js';
import { broadcasts, broadcastLoops, broadcastReference, broadcastShape, broadcastType, reduceTo } from './broadcast.js';
import { applyEpilogue, epilogueAttr, epilogueCode } from './activation.js';
import { isBatched, kernel, perExample, shapeTag, times, total } from './emit.js';
import { gradientOnly, onnxInt } from './onnx-def.js';
import { defineFamily, defineLayer, defineOp, ShapeError } from './op-def.js';

export const addOp = defineOp({
  name: 'add',
  summary: 'elementwise sum of inputs of one shape, or broadcast to one (a size-1 axis repeats)',
  traits: ['pure', 'elementwise'],
  // Only relu is fused into a sum (the residual block's add -> relu); others stay separate ops.
  epilogue: { fuses: ['relu'] },
  attrs: { ...epilogueAttr },
  operands: () => ['x', 'y', '...rest'],
  examples: [
    { note: 'two inputs', attrs: {}, operands: [tensor(['N', 5]), tensor(['N', 5])] },
    { note: 'three inputs, relu epilogue', attrs: { epilogue: { op: 'relu' } }, operands: [tensor(['N', 2, 2, 3]), tensor(['N', 2, 2, 3]), tensor(['N', 2, 2, 3])] },
    { note: 'static values (gradients of a shared weight)', attrs: {}, operands: [tensor([2, 3]), tensor([2, 3])] },
    { note: 'broadcast, relu epilogue', attrs: { epilogue: { op: 'relu' } }, operands: [tensor(['N', 2, 3, 4]), tensor(['N', 1, 3, 1])] },
  ],
  infer: (xs) => broadcastType('add', xs),
  reference: (xs, a) => {
    if (xs.some((x) => x.data.length !== xs[0]!.data.length)) {
      const shape = broadcastShape(xs.map((x) => x.shape));
      return applyEpilogue(broadcastReference(shape, xs, (...v) => v.reduce((p, q) => p + q, 0)), a.epilogue);
    }
    const sum = new Float64Array(xs[0]!.data.length);
    for (const x of xs) for (let i = 0; i < sum.length; i++) sum[i] += x.data[i]!;
    return applyEpilogue({ shape: [...xs[0]!.shape], data: sum }, a.epilogue);
  },
  emit: ({ operands, result, attrs: a }) => {
    const ep = epilogueCode(a.epilogue);
    const size = isBatched(result) ? perExample(result) : Number(total(result));
    const params = operands.map((_, i) => `x${i}`);
    const last = result.shape[result.shape.length - 1] as number;
    const body = [
      `for (let i = 0; i < ${total(result)}; i++) y[i] = ${ep.scalar(params.map((p) => `${p}[i]!`).join(' + '))};`,
      ep.rows(isBatched(result) ? times('n', size / last) : String(size / last), last),
    ].filter((c) => c !== '').join('\n');
    if (operands.some((t) => broadcasts(t, result))) return broadcastAdd(operands, result, ep);
    const tag = `${operands.length}x${shapeTag(result)}${ep.tag ? `_${ep.tag}` : ''}`;
    return kernel(`add_${tag}`, params, `sum of ${operands.length} inputs of ${size} values${isBatched(result) ? ' per example' : ''}${ep.tag ? `, ${ep.tag}` : ''}`, body, ep.helpers);
  },
  // A chain of Adds in the operands' common layout.
  onnx: (b, n) => {
    const layout = b.layoutFor(n.operands);
    b.produce(n, layout, (out) => {
      let sum = b.in(n.operands[0]!, layout);
      n.operands.slice(1).forEach((o, i) => {
        const inputs = [sum, b.in(o, layout)];
        if (i === n.operands.length - 2) b.emit('Add', inputs, [out]);
        else sum = b.temp('Add', inputs);
      });
    });
  },
  // z = x + y + ...: each operand's gradient is dz itself, summed over the axes it was broadcast along.
  grad: (g, { operands }, dy) => operands.map((o) => () => reduceTo(g, dy, g.typeOf(o))),
});

/** The sum of inputs broadcast to `result`, its epilogue applied per row. */
function broadcastAdd(operands: readonly TensorType[], result: TensorType, ep: ReturnType<typeof epilogueCode>) {
  const params = operands.map((_, i) => `x${i}`);
  const last = result.shape[result.shape.length - 1] as number;
  const body = [
    broadcastLoops(result, operands, (idx) => `y[at] = ${ep.scalar(idx.map((at, i) => `x${i}[${at}]!`).join(' + '))};`),
    ep.rows(times('n', perExample(result) / last), last),
  ].filter((c) => c !== '').join('\n');
  const tag = `${operands.map(shapeTag).join('_')}${ep.tag ? `_${ep.tag}` : ''}`;
  return kernel(`add_broadcast_${tag}`, params, `sum of ${operands.length} inputs broadcast to ${shapeTag(result)} per example${ep.tag ? `, ${ep.tag}` : ''}`, body, ep.helpers);
}

/**
 * Elementwise product of two values of one shape, or broadcast to one (Keras
 * Multiply: squeeze-and-excitation scales [N, H, W, C] by [N, 1, 1, C]);
 * dropout in training is `multiply(x, mask)`.
 *
 *   %dropout: f32[N,64] = multiply(%tanh, %dropout/mask)
 */
export const multiplyOp = defineOp({
  name: 'multiply',
  summary: 'elementwise product of two values of one shape, or broadcast to one',
  traits: ['pure', 'elementwise'],
  attrs: {},
  operands: () => ['x', 'y'],
  examples: [
    { attrs: {}, operands: [tensor(['N', 2, 3]), tensor(['N', 2, 3])] },
    { note: 'static values', attrs: {}, operands: [tensor([3, 2]), tensor([3, 2])] },
    { note: 'squeeze-and-excitation: per-channel factors', attrs: {}, operands: [tensor(['N', 3, 2, 4]), tensor(['N', 1, 1, 4])] },
    { note: 'both operands broadcast', attrs: {}, operands: [tensor(['N', 1, 3]), tensor(['N', 2, 1])] },
  ],
  infer: (xs) => broadcastType('multiply', xs),
  reference: ([x, y]) =>
    x!.data.length === y!.data.length
      ? { shape: [...x!.shape], data: x!.data.map((v, i) => v * y!.data[i]!) }
      : broadcastReference(broadcastShape([x!.shape, y!.shape]), [x!, y!], (a, b) => a! * b!),
  emit: ({ operands, result }) =>
    operands.some((t) => broadcasts(t, result))
      ? kernel(`multiply_broadcast_${operands.map(shapeTag).join('_')}`, ['x', 'm'], `elementwise product broadcast to ${shapeTag(result)} per example`,
        broadcastLoops(result, operands, ([a, b]) => `y[at] = x[${a}]! * m[${b}]!;`))
      : kernel(`multiply_${shapeTag(result)}`, ['x', 'm'], 'elementwise product', `for (let i = 0; i < ${total(result)}; i++) y[i] = x[i]! * m[i]!;`),
  onnx: (b, n) => {
    const layout = b.layoutFor(n.operands);
    b.produce(n, layout, (out) => b.emit('Mul', n.operands.map((o) => b.in(o, layout)), [out]));
  },
  // z = x * y: dx = dz * y, dy = dz * x, each summed over the axes its operand was broadcast along.
  grad: (g, { operands: [x, y] }, dz) => [
    () => reduceTo(g, g.op('multiply', [dz, y!], {}), g.typeOf(x!)),
    () => reduceTo(g, g.op('multiply', [dz, x!], {}), g.typeOf(y!)),
  ],
});

function concatShape(xs: readonly TensorType[], axis: number): TensorType {
  const rank = xs[0]!.shape.length;
  if (axis <= 0 || axis >= rank) throw new ShapeError(`concatenate axis ${axis} is out of range for rank ${rank}`);
  let total = 0;
  for (const t of xs) {
    const mismatch = t.shape.length !== rank || t.shape.some((d, i) => i !== axis && d !== xs[0]!.shape[i]);
    if (mismatch) {
      throw new ShapeError(
        `concatenate along axis ${axis} needs inputs that match on every other axis, got ${xs.map(formatType).join(' and ')}`,
      );
    }
    total += t.shape[axis] as number;
  }
  return tensor(xs[0]!.shape.map((d, i) => (i === axis ? total : d)));
}

/** Along `axis`, each input's block in turn: for every outer index, x0's n0*inner values, then x1's, ... */
function concatReference(xs: readonly Tensor[], axis: number): Tensor {
  const shape = xs[0]!.shape.map((d, i) => (i === axis ? xs.reduce((total, x) => total + x.shape[axis]!, 0) : d));
  const { outer, inner } = aroundAxis(shape, axis);
  const y = new Float64Array(outer * shape[axis]! * inner);
  let at = 0;
  for (let o = 0; o < outer; o++) {
    for (const x of xs) {
      const block = x.shape[axis]! * inner;
      y.set(x.data.subarray(o * block, (o + 1) * block), at);
      at += block;
    }
  }
  return { shape, data: y };
}

export const concatenateOp = defineOp({
  name: 'concatenate',
  summary: 'joins inputs along an axis',
  traits: ['pure', 'shape-only'],
  attrs: { axis: Type.Integer({ minimum: 1 }) },
  operands: () => ['x', 'y', '...rest'],
  examples: [
    { note: 'features', attrs: { axis: 1 }, operands: [tensor(['N', 2]), tensor(['N', 3])] },
    { note: 'three inputs along channels', attrs: { axis: 3 }, operands: [tensor(['N', 2, 2, 1]), tensor(['N', 2, 2, 2]), tensor(['N', 2, 2, 3])] },
    { note: 'along height', attrs: { axis: 1 }, operands: [tensor(['N', 1, 2, 2]), tensor(['N', 2, 2, 2])] },
  ],
  infer: (xs, a) => concatShape(xs, a.axis),
  reference: (xs, a) => concatReference(xs, a.axis),
  emit: ({ operands, result, attrs: a }) => {
    // Per outer index (batch and the axes before `axis`), each input's block in turn.
    const { outer, inner } = aroundAxis([1, ...(result.shape.slice(1) as number[])], a.axis);
    const params = operands.map((_, i) => `x${i}`);
    const total = (result.shape[a.axis] as number) * inner;
    let offset = 0;
    const copies = operands.map((t, i) => {
      const block = (t.shape[a.axis] as number) * inner;
      const line = `for (let i = 0; i < ${block}; i++) y[o * ${total} + ${offset} + i] = x${i}[o * ${block} + i]!;`;
      offset += block;
      return line;
    });
    const body = `for (let o = 0; o < ${times('n', outer)}; o++) {\n${copies.join('\n')}\n}`;
    const tag = `${operands.map(shapeTag).join('_')}_axis${a.axis}`;
    return kernel(`concatenate_${tag}`, params, `concatenation of ${operands.length} inputs along axis ${a.axis}`, body);
  },
  // Concat in the operands' common layout, the axis moved with it.
  onnx: (b, n) => {
    const layout = b.layoutFor(n.operands);
    const axis = b.axisIn(n.attrs.axis, layout, n.type.shape.length);
    b.produce(n, layout, (out) => b.emit('Concat', n.operands.map((o) => b.in(o, layout)), [out], [onnxInt('axis', axis)]));
  },
  // Each operand's gradient is its own block of dy along the axis.
  grad: (g, { operands, attrs: a }, dy) => {
    let start = 0;
    return operands.map((x) => {
      const size = g.typeOf(x).shape[a.axis] as number;
      const attrs = { axis: a.axis, start, size };
      start += size;
      return () => g.op('slice', [dy], attrs);
    });
  },
});

export const addLayer = defineLayer({
  type: 'add',
  keras: 'Add',
  kerasImport: { classes: ['Add'], fromConfig: () => {} },
  kerasExport: () => ({ className: 'Add', config: {} }),
  examples: [{ attrs: {}, inputs: [[3, 2], [3, 2], [3, 2]] }],
  namePrefix: 'add',
  summary: 'elementwise sum',
  attrs: {},
  arity: [2, Infinity],
  lower: (ctx, xs) => ctx.op('add', xs, {}),
});

export const concatenateLayer = defineLayer({
  type: 'concatenate',
  keras: 'Concatenate',
  kerasImport: { classes: ['Concatenate'], fromConfig: (c) => c.set('axis', c.optional('axis', (k) => c.axis(k))) },
  kerasExport: (a) => ({ className: 'Concatenate', config: { axis: a.axis } }),
  examples: [{ attrs: { axis: 1 }, inputs: [[2, 3], [4, 3]] }],
  namePrefix: 'concatenate',
  summary: 'concatenation along an axis',
  attrs: { axis: Type.Integer({ default: -1 }) },
  arity: [2, Infinity],
  lower: (ctx, xs, a) => {
    const rank = ctx.typeOf(xs[0]!).shape.length;
    const axis = a.axis < 0 ? rank + a.axis : a.axis;
    if (axis <= 0 || axis >= rank) throw new ShapeError(`concatenate axis ${a.axis} is out of range for rank ${rank} (axis 0 is the batch)`);
    return ctx.op('concatenate', xs, { axis });
  },
});

/**
 * The block [start, start + size) of x along `axis` (positive, counting the
 * batch dimension): concatenate's gradient.
 *
 *   %concatenate/grad_1: f32[N,8,8,16] = slice(%grad) {axis=3, start=32, size=16}
 */
export const sliceOp = defineOp({
  name: 'slice',
  summary: 'a contiguous block of x along an axis',
  traits: ['pure', 'shape-only'],
  attrs: { axis: Type.Integer({ minimum: 1 }), start: Type.Integer({ minimum: 0 }), size: Type.Integer({ minimum: 1 }) },
  operands: () => ['x'],
  examples: [
    { note: 'channels', attrs: { axis: 3, start: 1, size: 3 }, operands: [tensor(['N', 2, 2, 5])] },
    { note: 'the first features', attrs: { axis: 1, start: 0, size: 2 }, operands: [tensor(['N', 6])] },
    { note: 'a static value', attrs: { axis: 1, start: 1, size: 2 }, operands: [tensor([4, 3])] },
  ],
  infer: ([x], a) => {
    if (a.axis >= x!.shape.length) throw new ShapeError(`slice axis ${a.axis} is out of range for ${formatType(x!)}`);
    const length = x!.shape[a.axis] as number;
    if (a.start + a.size > length) {
      throw new ShapeError(`slice [${a.start}, ${a.start + a.size}) does not fit axis ${a.axis} of ${formatType(x!)} (length ${length})`);
    }
    return tensor(x!.shape.map((d, i) => (i === a.axis ? a.size : d)));
  },
  reference: ([x], a) => {
    const { outer, n, inner } = aroundAxis(x!.shape, a.axis);
    const y = new Float64Array(outer * a.size * inner);
    for (let o = 0; o < outer; o++) {
      y.set(x!.data.subarray((o * n + a.start) * inner, (o * n + a.start + a.size) * inner), o * a.size * inner);
    }
    return { shape: x!.shape.map((d, i) => (i === a.axis ? a.size : d)), data: y };
  },
  emit: ({ operands: [x], attrs: a }) => {
    const { outer, n, inner } = aroundAxis(staticDims(x!), a.axis);
    const rows = isBatched(x!) ? times('n', outer) : String(outer);
    const block = a.size * inner;
    const body = `for (let o = 0; o < ${rows}; o++) {
  const from = o * ${n * inner} + ${a.start * inner};
  for (let i = 0; i < ${block}; i++) y[o * ${block} + i] = x[from + i]!;
}`;
    return kernel(`slice_${shapeTag(x!)}_axis${a.axis}_${a.start}_${a.size}`, ['x'], `values [${a.start}, ${a.start + a.size}) along axis ${a.axis}`, body);
  },
  onnx: gradientOnly,
  grad: 'none',
});

/** A type's dimensions with the batch counted as 1 (sizes per example). */
function staticDims(t: TensorType): number[] {
  return t.shape.map((d) => (d === 'N' ? 1 : d));
}

/**
 * x * scale[c] per channel c along `axis`: affine's input gradient (dy * scale)
 * and Keras's LayerScale (ConvNeXt: x * gamma along the last axis).
 *
 *   %bn/grad_x: f32[N,8,8,16] = channel_scale(%grad, %bn/scale) {axis=3}
 */
export const channelScaleOp = defineOp({
  name: 'channel_scale',
  summary: 'per-channel scaling: x * scale along an axis',
  traits: ['pure'],
  attrs: { axis: Type.Integer({ minimum: 1 }) },
  operands: () => ['x', 'scale'],
  examples: [
    { note: 'channels last', attrs: { axis: 3 }, operands: [tensor(['N', 2, 2, 3]), tensor([3])] },
    { note: 'a middle axis', attrs: { axis: 1 }, operands: [tensor(['N', 3, 2]), tensor([3])] },
  ],
  infer: ([x, scale], a) => {
    if (a.axis >= x!.shape.length) throw new ShapeError(`channel_scale axis ${a.axis} is out of range for ${formatType(x!)}`);
    const channels = x!.shape[a.axis] as number;
    if (scale!.shape.length !== 1 || scale!.shape[0] !== channels) {
      throw new ShapeError(`channel_scale: scale must be f32[${channels}], got ${formatType(scale!)}`);
    }
    return x!;
  },
  reference: ([x, scale], a) => {
    const { n, inner } = aroundAxis(x!.shape, a.axis);
    return { shape: [...x!.shape], data: x!.data.map((v, i) => v * scale!.data[Math.floor(i / inner) % n]!) };
  },
  emit: ({ operands: [x], attrs: a }) => {
    const { outer, n, inner } = aroundAxis(staticDims(x!), a.axis);
    const rows = isBatched(x!) ? times('n', outer) : String(outer);
    const body = `for (let o = 0; o < ${rows}; o++) {
  for (let c = 0; c < ${n}; c++) {
    const s = scale[c]!, at = (o * ${n} + c) * ${inner};
    for (let i = at; i < at + ${inner}; i++) y[i] = x[i]! * s;
  }
}`;
    return kernel(`channel_scale_${shapeTag(x!)}_axis${a.axis}`, ['x', 'scale'], `x * scale per channel along axis ${a.axis}`, body);
  },
  // Mul in the input's layout, scale shaped [C, 1, ...] to broadcast along the channel axis (as affine).
  onnx: (b, n) => {
    const [x, scale] = n.operands;
    const layout = b.layoutFor([x!]);
    const rank = n.type.shape.length;
    const dims = [n.type.shape[n.attrs.axis] as number, ...new Array<number>(rank - 1 - b.axisIn(n.attrs.axis, layout, rank)).fill(1)];
    const s = b.param(scale!, `c${dims.length}`, (_, data) => ({ dims, data }));
    b.produce(n, layout, (out) => b.emit('Mul', [b.in(x!, layout), s], [out]));
  },
  // y = x * scale[c]: dx = dy * scale[c], dscale = sum(dy * x) per channel.
  grad: (g, { operands: [x, scale], attrs: a }, dy) => [
    () => g.op('channel_scale', [dy, scale!], { axis: a.axis }),
    () => g.op('channel_sum', [g.op('multiply', [dy, x!], {})], { axis: a.axis }),
  ],
});

/** Gradient ops of the merges (`slice`, concatenate's gradient) and affine's `channel_scale`. */
export const mergeGradOps = [sliceOp, channelScaleOp] as const;

/** Merges of several values, multiply (dropout in training) and the merges' gradient ops. */
export const mergeFamily = defineFamily({ ops: [addOp, concatenateOp, multiplyOp, ...mergeGradOps], layers: [addLayer, concatenateLayer] });
