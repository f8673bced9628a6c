/**
 * NumPy .npy training data: `x.npy` holds the inputs, `y.npy` the labels.
 *
 * The format (numpy.lib.format), versions 1.0, 2.0 and 3.0:
 *   "\x93NUMPY" major minor  header length (u16 LE in 1.0, u32 LE in 2.0/3.0)
 *   header: a Python dict literal, e.g. {'descr': '<f4', 'fortran_order': False, 'shape': (100, 784), }
 *           (latin-1 in 1.0/2.0, UTF-8 in 3.0), padded with spaces and a newline
 *   data:   prod(shape) items of descr, in C order
 *
 * Supported: little-endian `<f4 <f8 <i1..<i8 <u1..<u8` and `|u1 |i1 |b1`, C order.
 * x has shape (n, ...) with the trailing dimensions equal to the model's input
 * shape or flattened to (n, prod(inputShape)); y has shape (n,) or (n, k).
 * Errors name the file (diagnostic `path`) and, for values, the element index.
 * `loadNpyInputs` reads x alone (`modelc predict` without labels); `writeNpy`
 * writes float32 arrays (version 1.0, `<f4`, C order) that np.load reads.
 */
import { fail } from '../diagnostics/diagnostic.js';
import { readRegularFile } from '../util/fs.js';
import type { LoadedData, Target } from './types.js';
import { encodeLabels, labelSize, shapeText, type LabelAt } from './labels.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

type Kind = 'f' | 'i' | 'u' | 'b';

/** A parsed .npy file: its header and where its data lies in `bytes`. */
export interface NpyArray {
  readonly descr: string;
  readonly shape: readonly number[];
  readonly kind: Kind;
  readonly itemSize: number;
  readonly bytes: Uint8Array;
  readonly offset: number;
}

const SUPPORTED = '<f4 <f8 <i1 <i2 <i4 <i8 <u1 <u2 <u4 <u8 |u1 |i1 |b1';

/** A NumPy shape for messages: `(100, 784)`, `(100,)`. */
export function npyShapeText(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

function dtypeOf(descr: string, path: string): { kind: Kind; itemSize: number } {
  const m = /^([<>|=])([fiub])(\d+)$/.exec(descr);
  if (m && SUPPORTED.split(' ').includes(descr)) return { kind: m[2] as Kind, itemSize: Number(m[3]) };
  if (m && m[1] === '>') fail('data', `big-endian dtype ${descr} is not supported; save with arr.astype('<${m[2]}${m[3]}')`, undefined, path);
  return fail('data', `unsupported dtype '${descr}'; supported: ${SUPPORTED}`, undefined, path);
}

/** The value of `key` in the header dict, as its source text. */
function headerField(header: string, key: string, value: RegExp, path: string): string {
  const m = new RegExp(`['"]${key}['"]\\s*:\\s*(${value.source})`).exec(header);
  if (!m) fail('data', `the .npy header has no readable '${key}': ${header.trim()}`, undefined, path);
  return m[1]!;
}

/** Parses the magic, version and header of a .npy file; checks the data size. */
export function parseNpy(bytes: Uint8Array, path: string): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) fail('data', 'not a .npy file (no \\x93NUMPY magic at the start)', undefined, path);
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major < 1 || major > 3) fail('data', `unsupported .npy format version ${major}.${bytes[7]} (supported: 1.0, 2.0, 3.0)`, undefined, path);
  const start = major === 1 ? 10 : 12;
  if (bytes.length < start) fail('data', 'truncated .npy header', undefined, path);
  const length = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (bytes.length < start + length) fail('data', `truncated .npy header: it declares ${length} bytes, the file has ${bytes.length - start}`, undefined, path);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + length));

  const descr = headerField(header, 'descr', /'[^']*'|"[^"]*"|\[[^\]]*\]/, path);
  if (!/^['"]/.test(descr)) fail('data', `structured dtypes are not supported (descr ${descr}); supported: ${SUPPORTED}`, undefined, path);
  const { kind, itemSize } = dtypeOf(descr.slice(1, -1), path);
  if (headerField(header, 'fortran_order', /True|False/, path) === 'True') {
    fail('data', 'the array is in Fortran order; save it in C order (np.save(path, np.ascontiguousarray(arr)))', undefined, path);
  }
  const dims = headerField(header, 'shape', /\([^)]*\)/, path).slice(1, -1).split(',').map((d) => d.trim()).filter((d) => d !== '');
  if (!dims.every((d) => /^\d+L?$/.test(d))) fail('data', `unreadable shape in the .npy header: ${header.trim()}`, undefined, path);
  const shape = dims.map((d) => parseInt(d, 10));
  if (shape.length === 0) fail('data', 'the array is 0-dimensional (shape ()); expected one row per example', undefined, path);

  const offset = start + length;
  const expected = shape.reduce((a, b) => a * b, 1) * itemSize;
  const actual = bytes.length - offset;
  if (actual !== expected) {
    const what = actual < expected ? 'truncated data' : 'extra bytes after the data';
    fail('data', `${what}: shape ${npyShapeText(shape)} of ${descr.slice(1, -1)} needs ${expected} data bytes, the file has ${actual}`, undefined, path);
  }
  return { descr: descr.slice(1, -1), shape, kind, itemSize, bytes, offset };
}

/** The array's values, converted into `out` (length prod(shape)). */
export function npyValues<T extends Float32Array | Float64Array>(a: NpyArray, out: T): T {
  const view = new DataView(a.bytes.buffer, a.bytes.byteOffset + a.offset, out.length * a.itemSize);
  const read = reader(a.kind, a.itemSize, view);
  for (let i = 0; i < out.length; i++) out[i] = read(i * a.itemSize);
  return out;
}

function reader(kind: Kind, size: number, v: DataView): (at: number) => number {
  switch (`${kind}${size}`) {
    case 'f4': return (at) => v.getFloat32(at, true);
    case 'f8': return (at) => v.getFloat64(at, true);
    case 'i1': return (at) => v.getInt8(at);
    case 'i2': return (at) => v.getInt16(at, true);
    case 'i4': return (at) => v.getInt32(at, true);
    case 'i8': return (at) => Number(v.getBigInt64(at, true));
    case 'u1': return (at) => v.getUint8(at);
    case 'u2': return (at) => v.getUint16(at, true);
    case 'u4': return (at) => v.getUint32(at, true);
    case 'u8': return (at) => Number(v.getBigUint64(at, true));
    default: return (at) => (v.getUint8(at) === 0 ? 0 : 1); // b1
  }
}

/** Reads and parses a .npy file; read errors are `io` diagnostics naming the path. */
export function readNpy(path: string): NpyArray {
  return parseNpy(readRegularFile(path, 'npy'), path);
}

/** x's trailing dimensions fit `inputShape`: equal to it, or flattened to its size. */
function fitsInput(trailing: readonly number[], inputShape: readonly number[]): boolean {
  const inSize = inputShape.reduce((a, b) => a * b, 1);
  const same = trailing.length === inputShape.length && trailing.every((d, i) => d === inputShape[i]);
  return same || (trailing.length === 1 && trailing[0] === inSize) || (trailing.length === 0 && inSize === 1);
}

/** The inputs in `xPath` for `target`: checked against its input shape and finite, as float32. */
function readInputs(xPath: string, target: Pick<Target, 'inputShape'>): { xa: NpyArray; x: Float32Array; n: number } {
  const xa = readNpy(xPath);
  const inSize = target.inputShape.reduce((a, b) => a * b, 1);
  const n = xa.shape[0]!;
  if (!fitsInput(xa.shape.slice(1), target.inputShape)) {
    const want = `(n, ${target.inputShape.join(', ')})`;
    const flat = target.inputShape.length > 1 ? ` or (n, ${inSize})` : '';
    fail('data', `x has shape ${npyShapeText(xa.shape)}, but the model takes ${shapeText(target.inputShape)} per example: expected ${want}${flat}`, undefined, xPath);
  }
  if (n === 0) fail('data', `x has no examples (shape ${npyShapeText(xa.shape)})`, undefined, xPath);
  const x = npyValues(xa, new Float32Array(n * inSize));
  const bad = x.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    const why = Number.isNaN(x[bad]) ? 'is NaN' : xa.kind === 'f' && xa.itemSize === 8 ? 'overflows float32' : 'is infinite';
    fail('data', `element ${bad} (row ${Math.floor(bad / inSize)}) ${why}; inputs must be finite`, undefined, xPath);
  }
  return { xa, x, n };
}

/** An .npy file of inputs without labels (`modelc predict --data x.npy`). */
export function loadNpyInputs(xPath: string, target: Pick<Target, 'inputShape'>): { x: Float32Array; count: number; description: string } {
  const { xa, x, n } = readInputs(xPath, target);
  return { x, count: n, description: `NumPy ${xPath} ${npyShapeText(xa.shape)} ${xa.descr}: ${n} example${n === 1 ? '' : 's'}` };
}

export function loadNpy(xPath: string, yPath: string, target: Target): LoadedData {
  const { xa, x, n } = readInputs(xPath, target);
  const ya = readNpy(yPath);
  if (ya.shape.length > 2) fail('data', `y has shape ${npyShapeText(ya.shape)}; expected (n,) or (n, k)`, undefined, yPath);
  if (ya.shape[0] !== n) {
    fail('data', `x has ${n} examples (shape ${npyShapeText(xa.shape)}) but y has ${ya.shape[0]} (shape ${npyShapeText(ya.shape)})`, undefined, yPath);
  }
  const k = ya.shape[1] ?? 1;
  const labels = npyValues(ya, new Float64Array(n * k));
  const fault = (message: string, at?: LabelAt): never => {
    if (at === undefined) return fail('data', `y has shape ${npyShapeText(ya.shape)}: ${message}`, undefined, yPath);
    const where = ya.shape.length === 2 ? `row ${at.row}, column ${at.col}` : `row ${at.row}`;
    return fail('data', `element ${at.row * k + at.col} (${where}): ${message}`, undefined, yPath);
  };
  const y = encodeLabels(labels, n, k, target, fault);
  return {
    train: { x, y, count: n },
    labelSize: labelSize(target),
    description: `NumPy ${xPath} ${npyShapeText(xa.shape)} ${xa.descr}, ${yPath} ${npyShapeText(ya.shape)} ${ya.descr}: ${n} examples`,
  };
}

/**
 * A float32 array as .npy bytes (version 1.0, `<f4`, C order; 2.0 when the
 * header outgrows 1.0's 16-bit length). The header is padded with spaces and
 * ends in a newline so that the data starts at a multiple of 64 bytes, as
 * NumPy writes it.
 */
export function writeNpy(shape: readonly number[], data: Float32Array): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`writeNpy: shape ${npyShapeText(shape)} holds ${count} values, the data ${data.length}`);
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape.length === 0 ? '()' : npyShapeText(shape)}, }`;
  let start = 10;
  let length = Math.ceil((start + dict.length + 1) / 64) * 64 - start;
  if (length > 0xffff) {
    start = 12;
    length = Math.ceil((start + dict.length + 1) / 64) * 64 - start;
  }
  const bytes = new Uint8Array(start + length + data.length * 4);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  bytes[6] = start === 10 ? 1 : 2;
  bytes[7] = 0;
  if (start === 10) view.setUint16(8, length, true);
  else view.setUint32(8, length, true);
  const header = dict.padEnd(length - 1, ' ') + '\n';
  for (let i = 0; i < header.length; i++) bytes[start + i] = header.charCodeAt(i);
  for (let i = 0; i < data.length; i++) view.setFloat32(start + length + i * 4, data[i]!, true);
  return bytes;
}
