/**
 * Broadcasting of elementwise ops, as Keras's merge layers do it
 * (squeeze-and-excitation: [N, H, W, C] * [N, 1, 1, C]). Operands have one
 * rank (the layers first give a lower-rank input leading 1s after the batch,
 * as Keras's `expand_dims(x, axis=1)`); along each axis an operand has the
 * result's size or 1, and a 1 repeats. Both operands are activations (the
 * batch dimension `N` first): weights never broadcast here.
 *
 * A leaf: the shape rule, the float64 reference, the kernel loop nest and the
 * gradient's reduction back to an operand's shape, shared by the merge ops.
 */
import { strides, type Tensor } from '../ir/tensor.js';
import { exampleShape, formatType, sameType, tensor, type TensorType } from '../ir/types.js';
import { ShapeError, type GradBuilder } from './op-def.js';

/** The shape every operand broadcasts to, or a ShapeError naming the operands. */
export function broadcastType(op: string, xs: readonly TensorType[]): TensorType {
  const first = xs[0]!;
  if (xs.every((t) => sameType(t, first))) return first;
  const fail = (why: string) => new ShapeError(`${op} cannot broadcast ${xs.map(formatType).join(' and ')}: ${why}`);
  if (xs.some((t) => t.shape.length !== first.shape.length)) throw fail('the ranks differ');
  if (xs.some((t) => t.shape[0] !== 'N')) throw fail('only activations (batch first) broadcast');
  const shape = first.shape.map((_, axis) => {
    const sizes = new Set(xs.map((t) => t.shape[axis]!).filter((d) => d !== 1));
    if (sizes.size > 1) throw fail(`axis ${axis} has sizes ${[...sizes].join(' and ')} (each must match or be 1)`);
    return sizes.size === 0 ? 1 : [...sizes][0]!;
  });
  return tensor(shape);
}

/** Whether an operand of type `t` must be repeated to reach `result`. */
export const broadcasts = (t: TensorType, result: TensorType): boolean => !sameType(t, result);

/** The flat index into each input for every element of `shape` (row-major), broadcast axes held at 0. */
function operandIndex(shape: readonly number[], input: readonly number[]): (flat: number) => number {
  const out = strides(shape);
  const inp = strides(input);
  return (flat) => {
    let at = 0;
    for (let a = 0; a < shape.length; a++) {
      const i = Math.floor(flat / out[a]!) % shape[a]!;
      if (input[a] !== 1) at += i * inp[a]!;
    }
    return at;
  };
}

/** y = f(x0, x1, ...) elementwise, each input broadcast to `shape` (float64). */
export function broadcastReference(shape: readonly number[], xs: readonly Tensor[], f: (...v: number[]) => number): Tensor {
  const total = shape.reduce((a, d) => a * d, 1);
  const index = xs.map((x) => operandIndex(shape, x.shape));
  const y = new Float64Array(total);
  for (let i = 0; i < total; i++) y[i] = f(...xs.map((x, k) => x.data[index[k]!(i)]!));
  return { shape: [...shape], data: y };
}

/** dy summed over every axis where `target` is 1 and dy is not: the gradient of a broadcast operand. */
export function sumToReference(dy: Tensor, target: readonly number[]): Tensor {
  const index = operandIndex(dy.shape, target);
  const y = new Float64Array(target.reduce((a, d) => a * d, 1));
  for (let i = 0; i < dy.data.length; i++) y[index(i)] += dy.data[i]!;
  return { shape: [...target], data: y };
}

/** One loop of the nest: its trip count (code) and, per operand, its stride (0: broadcast). */
interface Loop {
  readonly count: string;
  readonly strides: readonly number[];
}

/**
 * The loops over `full` (batch first) with, per operand, its stride along each
 * loop. Axes of size 1 drop out, and neighbouring axes along which every operand
 * either runs or repeats alike merge into one loop ([N, H, W, C] * [N, 1, 1, C]
 * is three loops: batch, H * W pixels, C channels).
 */
function loops(full: TensorType, parts: readonly TensorType[]): Loop[] {
  const partStrides = parts.map((p) => strides(p.shape.map((d) => (d === 'N' ? 1 : d))));
  const out: { count: string | number; strides: number[]; key: string }[] = [];
  full.shape.forEach((d, axis) => {
    if (d === 1) return;
    const runs = parts.map((p) => p.shape[axis] !== 1);
    const key = runs.join();
    const s = parts.map((_, k) => (runs[k] ? partStrides[k]![axis]! : 0));
    const last = out[out.length - 1];
    if (last && last.key === key && typeof last.count === 'number' && d !== 'N') {
      // Merged: the inner axis's strides (row-major, the outer one is inner * size).
      last.count *= d;
      last.strides = s;
    } else out.push({ count: d === 'N' ? 'n' : d, strides: s, key });
  });
  return out.map((l) => ({ count: String(l.count), strides: l.strides }));
}

/**
 * A loop nest over `full` (the batch `n` first) in row-major order: `body`
 * gets, per operand of `parts`, its index expression, and writes one element
 * (the element's own index is `at`, counted up after each body).
 */
export function broadcastLoops(full: TensorType, parts: readonly TensorType[], body: (index: readonly string[]) => string): string {
  const nest = loops(full, parts);
  const index = parts.map((_, k) => {
    const terms = nest.flatMap((l, j) => (l.strides[k] === 0 ? [] : [l.strides[k] === 1 ? `i${j}` : `i${j} * ${l.strides[k]}`]));
    return terms.length === 0 ? '0' : terms.join(' + ');
  });
  let code = `${body(index)}\nat++;`;
  for (let j = nest.length - 1; j >= 0; j--) code = `for (let i${j} = 0; i${j} < ${nest[j]!.count}; i${j}++) {\n${code}\n}`;
  return `let at = 0;\n${code}`;
}

/** The concrete shape of a broadcast (each axis: the size that is not 1, else 1). */
export function broadcastShape(shapes: readonly (readonly number[])[]): number[] {
  return shapes[0]!.map((_, axis) => Math.max(...shapes.map((s) => s[axis]!)));
}

/** `value` (of the result's type) as the gradient of an operand of type `target`: summed over the axes it was repeated along. */
export function reduceTo(g: GradBuilder, value: string, target: TensorType): string {
  return sameType(g.typeOf(value), target) ? value : g.op('sum_to', [value], { shape: exampleShape(target) });
}
