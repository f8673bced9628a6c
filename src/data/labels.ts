/**
 * The per-example layout of a dataset (input size, label size) and label
 * encoding: raw per-example label values (one scalar, or k values, per
 * example) to the `y` the training module takes for the model's loss.
 *
 *   loss                              raw label (per example)            y (per example)
 *   sparse_categorical_crossentropy   integer class in [0, outputSize)   the class as a float (1 value)
 *   categorical_crossentropy          integer class in range             one-hot (outputSize values)
 *                                     k === outputSize values            as they are
 *   binary_crossentropy, 1 output     value in [0, 1]                    as it is
 *   binary_crossentropy, > 1 output   integer class in range             one-hot (a 2-unit softmax in Keras)
 *                                     k === outputSize values in [0, 1]  as they are
 *   mse / mae                         exactly outputSize values          as they are
 *
 * A label that does not fit is reported through the caller's `fault`, which
 * knows where the label came from (a CSV cell, a .npy element, an MNIST image)
 * and turns the message into a located diagnostic.
 */
import type { Target } from './types.js';

/** Where a bad label sits: example `row`, value `col` within it (0 for scalar labels). */
export interface LabelAt {
  readonly row: number;
  readonly col: number;
}

/** Reports a label problem: `at` is absent when the problem is the labels' width, not one value. */
export type LabelFault = (message: string, at?: LabelAt) => never;

/** How many floats per example the model's input takes: prod(inputShape). */
export function inputSize(target: Target): number {
  return target.inputShape.reduce((a, b) => a * b, 1);
}

/** A model shape for messages: `[28, 28, 1]`. */
export function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** How many floats per example the training module's `y` takes. */
export function labelSize(target: Target): number {
  return target.loss === 'sparse_categorical_crossentropy' ? 1 : target.outputSize;
}

/** The loss reads class indices (k === 1) rather than values as they are. */
function takesClass(target: Target, k: number): boolean {
  switch (target.loss) {
    case 'sparse_categorical_crossentropy':
      return true;
    case 'categorical_crossentropy':
    case 'binary_crossentropy':
      return k === 1 && target.outputSize > 1;
    default:
      return false;
  }
}

/** Why `k` values per example do not suit the target, or undefined when they do. */
export function labelWidthProblem(k: number, target: Target): string | undefined {
  const { loss, outputSize: n } = target;
  const have = `but the labels have ${k} value${k === 1 ? '' : 's'} per example`;
  switch (loss) {
    case 'sparse_categorical_crossentropy':
      return k === 1 ? undefined : `${loss} takes one class index in [0, ${n}) per example, ${have}`;
    case 'categorical_crossentropy':
      return k === 1 || k === n ? undefined : `${loss} takes a class index in [0, ${n}) or ${n} values (one-hot) per example, ${have}`;
    case 'binary_crossentropy':
      if (n === 1) return k === 1 ? undefined : `${loss} with 1 output takes one value in [0, 1] per example, ${have}`;
      return k === 1 || k === n ? undefined : `${loss} with ${n} outputs takes a class index in [0, ${n}) or ${n} values in [0, 1] per example, ${have}`;
    case 'mse':
    case 'mae':
      return k === n ? undefined : `${loss} takes ${n} value${n === 1 ? '' : 's'} per example (the model's output size), ${have}`;
  }
}

/** `value` as an integer class in [0, n), or a message saying why it is not one. */
function classOf(value: number, n: number): number | string {
  if (!Number.isInteger(value)) return `class ${value} is not an integer class index in [0, ${n})`;
  if (value < 0 || value >= n) return `class ${value} is out of range [0, ${n})`;
  return value;
}

/**
 * Encodes `count` examples of `k` raw values each (`values`, row-major) for
 * `target`; returns `count * labelSize(target)` floats.
 */
export function encodeLabels(values: ArrayLike<number>, count: number, k: number, target: Target, fault: LabelFault): Float32Array {
  const problem = labelWidthProblem(k, target);
  if (problem !== undefined) fault(problem);
  const size = labelSize(target);
  const n = target.outputSize;
  const y = new Float32Array(count * size);
  const byClass = takesClass(target, k);
  const probabilities = target.loss === 'binary_crossentropy';
  for (let row = 0; row < count; row++) {
    for (let col = 0; col < k; col++) {
      const v = values[row * k + col]!;
      if (!Number.isFinite(v)) fault(`label ${v} is not a finite number`, { row, col });
      if (byClass) {
        const c = classOf(v, n);
        if (typeof c === 'string') fault(c, { row, col });
        if (size === 1) y[row] = c;
        else y[row * size + c] = 1;
      } else {
        if (probabilities && (v < 0 || v > 1)) fault(`value ${v} is outside [0, 1] (binary_crossentropy targets are probabilities)`, { row, col });
        y[row * size + col] = v;
      }
    }
  }
  return y;
}
