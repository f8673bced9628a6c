/**
 * NumPy .npy data: a small writer (the format numpy.lib.format writes) makes
 * files in every supported dtype and header version; they read back exactly,
 * and every malformed or misfitting file names the file and the element.
 */
import fc from 'fast-check';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelcError } from '../../src/diagnostics/diagnostic.js';
import { renderDiagnostics } from '../../src/diagnostics/render.js';
import { loadData, type Target } from '../../src/data/index.js';
import { npyValues, parseNpy } from '../../src/data/npy.js';
import { tempDir } from '../helpers/cli.js';

interface NpyOptions {
  version?: 1 | 2 | 3;
  fortran?: boolean;
  /** Replaces the whole header dict. */
  header?: string;
}

const writers: Record<string, [number, (v: DataView, at: number, x: number) => void]> = {
  '<f4': [4, (v, at, x) => v.setFloat32(at, x, true)],
  '<f8': [8, (v, at, x) => v.setFloat64(at, x, true)],
  '<i1': [1, (v, at, x) => v.setInt8(at, x)],
  '<i2': [2, (v, at, x) => v.setInt16(at, x, true)],
  '<i4': [4, (v, at, x) => v.setInt32(at, x, true)],
  '<i8': [8, (v, at, x) => v.setBigInt64(at, BigInt(x), true)],
  '<u2': [2, (v, at, x) => v.setUint16(at, x, true)],
  '<u4': [4, (v, at, x) => v.setUint32(at, x, true)],
  '<u8': [8, (v, at, x) => v.setBigUint64(at, BigInt(x), true)],
  '|u1': [1, (v, at, x) => v.setUint8(at, x)],
  '|b1': [1, (v, at, x) => v.setUint8(at, x)],
  '>f4': [4, (v, at, x) => v.setFloat32(at, x, false)],
  '<c8': [8, (v, at, x) => v.setFloat32(at, x, true)],
};

/** A .npy file as numpy writes it: the header padded with spaces and a newline to a multiple of 64 bytes. */
function npyBytes(descr: string, shape: readonly number[], values: ArrayLike<number>, options: NpyOptions = {}): Uint8Array {
  const version = options.version ?? 1;
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = options.header ?? `{'descr': '${descr}', 'fortran_order': ${options.fortran ? 'True' : 'False'}, 'shape': ${shapeText}, }`;
  const prefix = version === 1 ? 10 : 12;
  const padded = dict + ' '.repeat(63 - ((prefix + dict.length) % 64)) + '\n';
  const [size, write] = writers[descr]!;
  const out = new Uint8Array(prefix + padded.length + values.length * size);
  out.set([0x93, ...Buffer.from('NUMPY'), version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, padded.length, true);
  else view.setUint32(8, padded.length, true);
  out.set(Buffer.from(padded, 'latin1'), prefix);
  for (let i = 0; i < values.length; i++) write(view, prefix + padded.length + i * size, values[i]!);
  return out;
}

const sparse: Target = { inputShape: [2, 2], outputSize: 3, loss: 'sparse_categorical_crossentropy' };

/** Writes x.npy and y.npy (or raw bytes for either) into a temp directory and loads them. */
function load(x: Uint8Array, y: Uint8Array, target: Target = sparse) {
  const dir = tempDir();
  writeFileSync(join(dir, 'x.npy'), x);
  writeFileSync(join(dir, 'y.npy'), y);
  return { dir, run: () => loadData({ kind: 'npy', x: join(dir, 'x.npy'), y: join(dir, 'y.npy') }, target) };
}

/** The rendered diagnostic, with the temp directory taken out of the path. */
function npyError(x: Uint8Array, y: Uint8Array, target: Target = sparse): string {
  const { dir, run } = load(x, y, target);
  try {
    run();
  } catch (err) {
    if (!(err instanceof ModelcError)) throw err;
    expect(err.diagnostics[0]!.code).toBe('data');
    return renderDiagnostics(err.diagnostics).replaceAll(`${dir}/`, '');
  }
  throw new Error('expected a ModelcError');
}

const x3 = npyBytes('<f4', [3, 2, 2], [0, 0.5, -1.25, 3, 4, 5, 6, 7, 8, 9, 10, 1e-3]);
const y3 = npyBytes('<i8', [3], [2, 0, 1]);

describe('.npy data', () => {
  it('reads f4 inputs and i8 class labels', () => {
    const data = load(x3, y3).run();
    expect(data.train.count).toBe(3);
    expect(Array.from(data.train.x)).toEqual([0, 0.5, -1.25, 3, 4, 5, 6, 7, 8, 9, 10, Math.fround(1e-3)]);
    expect(Array.from(data.train.y)).toEqual([2, 0, 1]);
    expect(data.labelSize).toBe(1);
    expect(data.description).toMatch(/^NumPy .*x\.npy \(3, 2, 2\) <f4, .*y\.npy \(3,\) <i8: 3 examples$/);
  });

  it('reads f8 inputs flattened to (n, 4), u1 labels one-hot, and version 2 and 3 headers', () => {
    const x = npyBytes('<f8', [2, 4], [0.1, 2, 3, 4, 5, 6, 7, 8], { version: 2 });
    const data = load(x, npyBytes('|u1', [2], [1, 2], { version: 3 }), { ...sparse, loss: 'categorical_crossentropy' }).run();
    expect(Array.from(data.train.x)).toEqual([Math.fround(0.1), 2, 3, 4, 5, 6, 7, 8]);
    expect(Array.from(data.train.y)).toEqual([0, 1, 0, 0, 0, 1]);
  });

  it('takes (n, k) labels as they are and b1 probabilities for binary_crossentropy', () => {
    const oneHot = npyBytes('<f4', [3, 3], [1, 0, 0, 0, 0.5, 0.5, 0, 0, 1]);
    expect(Array.from(load(x3, oneHot, { ...sparse, loss: 'categorical_crossentropy' }).run().train.y)).toEqual([1, 0, 0, 0, 0.5, 0.5, 0, 0, 1]);
    const binary = load(x3, npyBytes('|b1', [3], [1, 0, 7]), { ...sparse, outputSize: 1, loss: 'binary_crossentropy' }).run();
    expect(Array.from(binary.train.y)).toEqual([1, 0, 1]);
  });

  it('decodes every integer dtype', () => {
    for (const descr of ['<i1', '<i2', '<i4', '<i8', '<u2', '<u4', '<u8']) {
      const a = parseNpy(npyBytes(descr, [3], [0, 5, 100]), 'a.npy');
      expect(Array.from(npyValues(a, new Float64Array(3)))).toEqual([0, 5, 100]);
    }
    expect(Array.from(npyValues(parseNpy(npyBytes('<i8', [2], [-3, 2 ** 40]), 'a.npy'), new Float64Array(2)))).toEqual([-3, 2 ** 40]);
  });

  it('reads random float32 arrays back exactly (property)', () => {
    fc.assert(
      fc.property(fc.float32Array({ minLength: 1, maxLength: 64, noNaN: true }), fc.constantFrom(1, 2, 3) as fc.Arbitrary<1 | 2 | 3>, (values, version) => {
        const a = parseNpy(npyBytes('<f4', [values.length], values, { version }), 'a.npy');
        const back = npyValues(a, new Float32Array(values.length));
        return values.every((v, i) => Object.is(v, back[i]));
      }),
    );
    fc.assert(
      fc.property(fc.float32Array({ minLength: 1, maxLength: 32, noNaN: true, noDefaultInfinity: true }), (values) => {
        const data = load(npyBytes('<f4', [values.length, 1], values), npyBytes('<f4', [values.length], values), { inputShape: [1], outputSize: 1, loss: 'mse' }).run();
        return values.every((v, i) => Object.is(v, data.train.x[i]) && Object.is(v, data.train.y[i]));
      }),
      { numRuns: 30 },
    );
  });

  it.each([
    ['a bad magic', Buffer.from('PK\x03\x04 not numpy at all'), y3, 'x.npy: error: not a .npy file (no \\x93NUMPY magic at the start)'],
    ['truncated data', x3.subarray(0, x3.length - 8), y3, 'x.npy: error: truncated data: shape (3, 2, 2) of <f4 needs 48 data bytes, the file has 40'],
    ['a truncated header', x3.subarray(0, 40), y3, 'x.npy: error: truncated .npy header: it declares 118 bytes, the file has 30'],
    ['an unsupported dtype', npyBytes('<c8', [3, 4], new Array(12).fill(0)), y3, "x.npy: error: unsupported dtype '<c8'; supported: <f4 <f8 <i1"],
    ['a big-endian dtype', npyBytes('>f4', [3, 4], new Array(12).fill(0)), y3, "x.npy: error: big-endian dtype >f4 is not supported; save with arr.astype('<f4')"],
    ['Fortran order', npyBytes('<f4', [3, 4], new Array(12).fill(0), { fortran: true }), y3, 'x.npy: error: the array is in Fortran order; save it in C order'],
    ['a 0-d array', npyBytes('<f4', [], [1]), y3, 'x.npy: error: the array is 0-dimensional (shape ()); expected one row per example'],
    ['a structured dtype', npyBytes('<f4', [1], [0], { header: "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }" }), y3, 'x.npy: error: structured dtypes are not supported'],
    ['a shape that is not the input shape', npyBytes('<f4', [3, 4, 1], new Array(12).fill(0)), y3, 'x.npy: error: x has shape (3, 4, 1), but the model takes [2, 2] per example: expected (n, 2, 2) or (n, 4)'],
    ['an example count mismatch', x3, npyBytes('<i8', [2], [0, 1]), 'y.npy: error: x has 3 examples (shape (3, 2, 2)) but y has 2 (shape (2,))'],
    ['a 3-d y', x3, npyBytes('<i8', [3, 1, 1], [0, 1, 2]), 'y.npy: error: y has shape (3, 1, 1); expected (n,) or (n, k)'],
    ['a NaN input', npyBytes('<f4', [3, 4], [0, 1, 2, 3, 4, 5, 6, NaN, 8, 9, 10, 11]), y3, 'x.npy: error: element 7 (row 1) is NaN; inputs must be finite'],
    ['an f8 input beyond float32', npyBytes('<f8', [3, 4], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1e300]), y3, 'x.npy: error: element 11 (row 2) overflows float32; inputs must be finite'],
    ['a class out of range', x3, npyBytes('<i8', [3], [0, 1, 3]), 'y.npy: error: element 2 (row 2): class 3 is out of range [0, 3)'],
    ['a wrong label width', x3, npyBytes('<f4', [3, 2], [0, 1, 1, 0, 0, 1]), 'y.npy: error: y has shape (3, 2): sparse_categorical_crossentropy takes one class index in [0, 3) per example, but the labels have 2 values per example'],
  ])('rejects %s', (_, x, y, expected) => {
    expect(npyError(x, y)).toContain(expected);
  });

  it('names the element, row and column of a bad label in (n, k) labels', () => {
    const y = npyBytes('<f4', [3, 3], [1, 0, 0, 0, 1, 0, 0, 1.5, 0]);
    expect(npyError(x3, y, { ...sparse, loss: 'binary_crossentropy' })).toBe(
      'y.npy: error: element 7 (row 2, column 1): value 1.5 is outside [0, 1] (binary_crossentropy targets are probabilities)',
    );
  });

  it('reports a missing file as an io error', () => {
    const dir = tempDir();
    expect(() => loadData({ kind: 'npy', x: join(dir, 'x.npy'), y: join(dir, 'y.npy') }, sparse)).toThrow('cannot read file: no such file or directory');
  });
});
