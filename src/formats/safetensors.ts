/**
 * The safetensors format (huggingface/safetensors), read and write.
 *
 *   [u64 little-endian: header length N][N bytes: JSON header][data bytes]
 *   header = { "<tensor>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
 *              ..., "__metadata__"?: {"<key>": "<string>"} }
 *
 * Offsets are relative to the start of the data; tensors are row-major and
 * little-endian, and together they cover the data exactly (no overlap, no gap).
 *
 * Writing emits F32 only, the way the reference implementation lays files out:
 * compact JSON with `__metadata__` first and tensors in sorted name order, data
 * contiguous in that order, the header padded with spaces to a multiple of 8 bytes.
 * Reading accepts F32, F16, BF16 and F64 and converts to Float32Array (F64 is
 * rounded to f32). Every malformed file is a ModelcError (code `weights`)
 * naming the tensor, with the file path in the diagnostic; a read either
 * returns every tensor or throws.
 */
import { fail, q } from '../diagnostics/diagnostic.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64';

export interface ReadTensor {
  /** The dtype stored in the file (the data is converted to f32). */
  readonly dtype: SafetensorsDtype;
  readonly shape: number[];
  readonly data: Float32Array;
}

export interface Safetensors {
  readonly tensors: Map<string, ReadTensor>;
  readonly metadata: Record<string, string>;
}

export interface WriteTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

const METADATA = '__metadata__';
const bytesPer: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const fmtShape = (shape: readonly number[]) => `[${shape.join(', ')}]`;

// ---------------------------------------------------------------------------
// Writing

/** A safetensors file of F32 tensors (keys sorted, offsets contiguous, header space-padded to 8 bytes). */
export function writeSafetensors(tensors: ReadonlyMap<string, WriteTensor>, metadata?: Readonly<Record<string, string>>): Uint8Array {
  const names = [...tensors.keys()].sort();
  const header: Record<string, unknown> = Object.create(null); // so a tensor may be named `__proto__`
  if (metadata && Object.keys(metadata).length > 0) header[METADATA] = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name)!;
    if (name === METADATA) fail('weights', `cannot write a tensor named ${q(METADATA)}: the name is reserved for metadata`);
    if (t.data.length !== numel(t.shape)) {
      fail('weights', `cannot write tensor ${q(name)}: it has ${t.data.length} values, but shape ${fmtShape(t.shape)} needs ${numel(t.shape)}`);
    }
    header[name] = { dtype: 'F32', shape: [...t.shape], data_offsets: [offset, offset + 4 * t.data.length] };
    offset += 4 * t.data.length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  let pos = 8 + padded;
  for (const name of names) {
    for (const v of tensors.get(name)!.data) {
      view.setFloat32(pos, v, true);
      pos += 4;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Reading

interface Entry {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: number[];
  readonly begin: number;
  readonly end: number;
}

/** Parse and validate a safetensors file; `path` only names the file in diagnostics. */
export function readSafetensors(bytes: Uint8Array, path?: string): Safetensors {
  const bad = (message: string): never => fail('weights', message, undefined, path);
  if (bytes.length < 8) bad(`truncated safetensors file: ${bytes.length} bytes, too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8)) {
    bad(`safetensors header length ${headerLength} runs past the end of the file (${bytes.length - 8} bytes after the length)`);
  }
  const dataStart = 8 + Number(headerLength);
  const header = parseHeader(bytes.subarray(8, dataStart), bad);
  const metadata = readMetadata(header[METADATA], bad);
  const entries = Object.entries(header)
    .filter(([name]) => name !== METADATA)
    .map(([name, raw]) => readEntry(name, raw, bad));
  checkLayout(entries, bytes.length - dataStart, bad);
  const tensors = new Map<string, ReadTensor>();
  for (const e of entries) {
    const data = decode(e.dtype, new DataView(bytes.buffer, bytes.byteOffset + dataStart + e.begin, e.end - e.begin));
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

type Bad = (message: string) => never;

function parseHeader(raw: Uint8Array, bad: Bad): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    return bad('invalid safetensors header: not UTF-8 text');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch {
    return bad('invalid safetensors header: not valid JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    return bad('invalid safetensors header: expected a JSON object of tensors');
  }
  return header as Record<string, unknown>;
}

function readMetadata(raw: unknown, bad: Bad): Record<string, string> {
  if (raw === undefined) return {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || Object.values(raw).some((v) => typeof v !== 'string')) {
    return bad(`invalid safetensors header: ${q(METADATA)} must map keys to strings`);
  }
  return { ...(raw as Record<string, string>) };
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** One tensor's header entry, checked on its own: dtype, shape, offsets, byte length. */
function readEntry(name: string, raw: unknown, bad: Bad): Entry {
  const where = `tensor ${q(name)}`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad(`${where}: header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string') return bad(`${where}: missing "dtype"`);
  if (!Object.hasOwn(bytesPer, dtype)) return bad(`${where} has dtype ${q(dtype)}; modelc reads F32, F16, BF16 and F64`);
  if (!Array.isArray(shape) || !shape.every(isCount)) return bad(`${where}: "shape" must be a list of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    return bad(`${where}: "data_offsets" must be [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = offsets as [number, number];
  const expected = numel(shape) * bytesPer[dtype as SafetensorsDtype];
  if (end - begin !== expected) {
    bad(`${where} has ${end - begin} bytes of data, but ${dtype} ${fmtShape(shape)} needs ${expected}`);
  }
  return { name, dtype: dtype as SafetensorsDtype, shape, begin, end };
}

/** The tensors, in offset order, must tile the data exactly: no overlap, no gap, nothing past the end. */
function checkLayout(entries: readonly Entry[], dataLength: number, bad: Bad): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  const unused = (from: number, to: number, where: string) => bad(`bytes ${from} to ${to} of the data${where} belong to no tensor`);
  let pos = 0;
  let prev: Entry | undefined;
  for (const e of sorted) {
    if (e.begin < pos) bad(`tensor ${q(e.name)} overlaps tensor ${q(prev!.name)}: it begins at byte ${e.begin}, before byte ${pos}`);
    if (e.begin > pos) unused(pos, e.begin, prev ? ` (between tensors ${q(prev.name)} and ${q(e.name)})` : ` (before tensor ${q(e.name)})`);
    if (e.end > dataLength) bad(`tensor ${q(e.name)} runs past the data: it ends at byte ${e.end}, but the data has ${dataLength} bytes`);
    pos = e.end;
    prev = e;
  }
  if (pos < dataLength) unused(pos, dataLength, prev ? ` (after tensor ${q(prev.name)})` : '');
}

/** Little-endian data of one dtype -> f32 values. */
function decode(dtype: SafetensorsDtype, view: DataView): Float32Array {
  const out = new Float32Array(view.byteLength / bytesPer[dtype]);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
      break;
    case 'F64':
      for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(8 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < out.length; i++) out[i] = halfToNumber(view.getUint16(2 * i, true));
      break;
    case 'BF16': {
      // bf16 is the upper half of an f32: reinterpret (bits << 16) through a shared buffer.
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < out.length; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      break;
    }
  }
  return out;
}

/** IEEE 754 binary16: 1 sign bit, 5 exponent bits (bias 15), 10 fraction bits. */
export function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >>> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
