/**
 * Label encoding for each loss: class indices, one-hot, values as they are,
 * and the faults (with the example and value they point at) for labels that
 * do not fit; splitValidation's Keras semantics.
 */
import { describe, expect, it } from 'vitest';
import { ModelcError } from '../../src/diagnostics/diagnostic.js';
import { splitValidation, type Dataset, type Target } from '../../src/data/index.js';
import { encodeLabels, inputSize, labelSize, type LabelAt } from '../../src/data/labels.js';

const target = (loss: Target['loss'], outputSize: number): Target => ({ inputShape: [2], outputSize, loss });

/** A fault that throws its message and location as one string. */
const fault = (message: string, at?: LabelAt): never => {
  throw new Error(at ? `${at.row}/${at.col}: ${message}` : message);
};

const encode = (values: number[], k: number, t: Target) => Array.from(encodeLabels(values, values.length / k, k, t, fault));

describe('encodeLabels', () => {
  it('gives sparse_categorical_crossentropy the class index', () => {
    expect(labelSize(target('sparse_categorical_crossentropy', 3))).toBe(1);
    expect(encode([2, 0, 1], 1, target('sparse_categorical_crossentropy', 3))).toEqual([2, 0, 1]);
  });

  it('one-hot encodes classes for categorical_crossentropy and keeps k === outputSize values', () => {
    const t = target('categorical_crossentropy', 3);
    expect(labelSize(t)).toBe(3);
    expect(encode([2, 0], 1, t)).toEqual([0, 0, 1, 1, 0, 0]);
    expect(encode([0.2, 0.3, 0.5], 3, t)).toEqual([0.2, 0.3, 0.5].map(Math.fround));
  });

  it('binary_crossentropy: a probability with 1 output, one-hot classes or values with more', () => {
    expect(encode([0, 1, 0.25], 1, target('binary_crossentropy', 1))).toEqual([0, 1, 0.25]);
    expect(encode([1, 0], 1, target('binary_crossentropy', 2))).toEqual([0, 1, 1, 0]);
    expect(encode([0.5, 1, 0, 0], 2, target('binary_crossentropy', 2))).toEqual([0.5, 1, 0, 0]);
  });

  it('mse and mae take exactly outputSize values', () => {
    expect(encode([-3.5, 7], 1, target('mse', 1))).toEqual([-3.5, 7]);
    expect(encode([1, 2, 3, 4], 2, target('mae', 2))).toEqual([1, 2, 3, 4]);
  });

  it.each([
    ['sparse_categorical_crossentropy', 10, [3, 10], 1, '1/0: class 10 is out of range [0, 10)'],
    ['sparse_categorical_crossentropy', 10, [-1], 1, '0/0: class -1 is out of range [0, 10)'],
    ['sparse_categorical_crossentropy', 10, [2.5], 1, '0/0: class 2.5 is not an integer class index in [0, 10)'],
    ['categorical_crossentropy', 3, [1, 3], 1, '1/0: class 3 is out of range [0, 3)'],
    ['binary_crossentropy', 1, [0, 1.5], 1, '1/0: value 1.5 is outside [0, 1] (binary_crossentropy targets are probabilities)'],
    ['binary_crossentropy', 2, [0, 1, 2, 0], 2, '1/0: value 2 is outside [0, 1] (binary_crossentropy targets are probabilities)'],
    ['mse', 1, [1, NaN], 1, '1/0: label NaN is not a finite number'],
    ['sparse_categorical_crossentropy', 3, [0, 1, 2, 0, 1, 2], 3, 'sparse_categorical_crossentropy takes one class index in [0, 3) per example, but the labels have 3 values per example'],
    ['categorical_crossentropy', 3, [0, 1, 2, 0], 2, 'categorical_crossentropy takes a class index in [0, 3) or 3 values (one-hot) per example, but the labels have 2 values per example'],
    ['binary_crossentropy', 1, [0, 1], 2, 'binary_crossentropy with 1 output takes one value in [0, 1] per example, but the labels have 2 values per example'],
    ['mse', 2, [1, 2], 1, "mse takes 2 values per example (the model's output size), but the labels have 1 value per example"],
  ] as const)('%s with %i outputs rejects %j (k = %i)', (loss, outputSize, values, k, message) => {
    expect(() => encode([...values], k, target(loss, outputSize))).toThrow(message);
  });
});

describe('splitValidation', () => {
  const data = (count: number, inSize: number, size: number): Dataset => ({
    x: Float32Array.from({ length: count * inSize }, (_, i) => i),
    y: Float32Array.from({ length: count * size }, (_, i) => 1000 + i),
    count,
  });

  it('takes the last fraction of the examples, in order, as validation (Keras)', () => {
    const { train, validation } = splitValidation(data(10, 2, 3), 0.3, 3, 2);
    expect(train.count).toBe(7); // floor(10 * 0.7)
    expect(validation.count).toBe(3);
    expect(Array.from(train.x)).toEqual(Array.from({ length: 14 }, (_, i) => i));
    expect(Array.from(validation.x)).toEqual(Array.from({ length: 6 }, (_, i) => 14 + i));
    expect(Array.from(train.y)).toEqual(Array.from({ length: 21 }, (_, i) => 1000 + i));
    expect(Array.from(validation.y)).toEqual(Array.from({ length: 9 }, (_, i) => 1021 + i));
    expect(splitValidation(data(3, 1, 1), 0.1, 1, 1).validation.count).toBe(1); // floor(2.7) = 2
  });

  it('fails when a part would be empty or the fraction is out of (0, 1)', () => {
    expect(() => splitValidation(data(1, 1, 1), 0.5, 1, 1)).toThrow('a validation split of 0.5 of 1 example leaves the training set empty');
    expect(() => splitValidation(data(5, 1, 1), 1e-20, 1, 1)).toThrow('a validation split of 1e-20 of 5 examples leaves the validation set empty');
    expect(() => splitValidation(data(5, 1, 1), 1, 1, 1)).toThrow('the validation split must be a fraction in (0, 1), got 1');
    expect(() => splitValidation(data(5, 1, 1), 0, 1, 1)).toThrow(ModelcError);
  });

  it('inputSize is the product of the input shape', () => {
    expect(inputSize({ inputShape: [28, 28, 1], outputSize: 10, loss: 'mse' })).toBe(784);
  });
});
