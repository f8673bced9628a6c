/**
 * safetensors: the exact bytes of a small file, round trips of random tensor
 * maps, reading F16/BF16/F64, and one case per malformed-file diagnostic.
 * Files under test are assembled byte by byte here, not by the writer.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelcError } from '../../src/diagnostics/diagnostic.js';
import { halfToNumber, readSafetensors, writeSafetensors } from '../../src/formats/safetensors.js';
import { diagnosticOf } from '../helpers/graphs.js';

const ascii = (s: string) => Array.from(new TextEncoder().encode(s));
const u64le = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24, 0, 0, 0, 0];

/** A file from a header object (serialized as is, unpadded) and raw data bytes. */
function file(header: unknown, data: readonly number[] = []): Uint8Array {
  const json = ascii(typeof header === 'string' ? header : JSON.stringify(header));
  return new Uint8Array([...u64le(json.length), ...json, ...data]);
}

const f32 = (shape: number[], begin: number, end: number) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

describe('writeSafetensors', () => {
  it('writes the bytes of the reference layout', () => {
    const bytes = writeSafetensors(
      new Map([
        ['b', { shape: [2], data: new Float32Array([1, -2]) }],
        ['a', { shape: [], data: new Float32Array([0.5]) }],
      ]),
      { format: 'pt' },
    );
    const header =
      '{"__metadata__":{"format":"pt"},' +
      '"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},' +
      '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}';
    // 138 bytes of JSON + 6 spaces = 144 = 0x90
    const expected = [
      ...[0x90, 0, 0, 0, 0, 0, 0, 0],
      ...ascii(header),
      ...ascii('      '),
      ...[0x00, 0x00, 0x00, 0x3f], // a = 0.5
      ...[0x00, 0x00, 0x80, 0x3f], // b[0] = 1
      ...[0x00, 0x00, 0x00, 0xc0], // b[1] = -2
    ];
    expect(header.length).toBe(138);
    expect(Array.from(bytes)).toEqual(expected);
  });

  it('writes an empty file as an empty header padded to 8 bytes', () => {
    expect(Array.from(writeSafetensors(new Map()))).toEqual([8, 0, 0, 0, 0, 0, 0, 0, ...ascii('{}      ')]);
  });

  it('refuses a tensor whose data does not fit its shape, and the reserved name', () => {
    const bad = new Map([['w', { shape: [2, 2], data: new Float32Array(3) }]]);
    expect(diagnosticOf(() => writeSafetensors(bad))).toEqual({
      code: 'weights',
      message: "cannot write tensor 'w': it has 3 values, but shape [2, 2] needs 4",
    });
    const reserved = new Map([['__metadata__', { shape: [1], data: new Float32Array(1) }]]);
    expect(diagnosticOf(() => writeSafetensors(reserved)).message).toBe(
      "cannot write a tensor named '__metadata__': the name is reserved for metadata",
    );
  });
});

describe('round trip', () => {
  const arbTensor = fc
    .array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 })
    .chain((shape) =>
      fc.record({
        shape: fc.constant(shape),
        data: fc.float32Array({ minLength: shape.reduce((a, b) => a * b, 1), maxLength: shape.reduce((a, b) => a * b, 1) }),
      }),
    );
  const arbName = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).filter((s) => s !== '__metadata__');

  it('reads back what it writes: names, shapes, f32 values (-0, infinities, NaN included), metadata', () => {
    fc.assert(
      fc.property(fc.dictionary(arbName, arbTensor, { maxKeys: 6 }), fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }), (dict, metadata) => {
        const tensors = new Map(Object.entries(dict));
        const bytes = writeSafetensors(tensors, metadata);
        const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
        expect(headerLength % 8).toBe(0);
        const back = readSafetensors(bytes);
        expect([...back.tensors.keys()].sort()).toEqual([...tensors.keys()].sort());
        for (const [name, t] of tensors) {
          const r = back.tensors.get(name)!;
          expect(r.dtype).toBe('F32');
          expect(r.shape).toEqual(t.shape);
          expect(new Uint8Array(r.data.buffer)).toEqual(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
        }
        expect(back.metadata).toEqual(metadata);
      }),
    );
  });

  it('reads a file whose data does not start 4-byte aligned', () => {
    const bytes = file({ w: f32([2], 0, 8) }, [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]);
    expect(Array.from(readSafetensors(bytes.subarray(0)).tensors.get('w')!.data)).toEqual([1, 2]);
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    expect(Array.from(readSafetensors(shifted.subarray(1)).tensors.get('w')!.data)).toEqual([1, 2]);
  });
});

describe('reading other dtypes', () => {
  it('F16, with subnormals, signed zeros, infinities and NaN', () => {
    const halves = [0x3c00, 0xc000, 0x3555, 0x7bff, 0x0400, 0x0001, 0x03ff, 0x8000, 0x7c00, 0xfc00, 0x7e00];
    const data = halves.flatMap((h) => [h & 0xff, h >>> 8]);
    const t = readSafetensors(file({ h: { dtype: 'F16', shape: [11], data_offsets: [0, 22] } }, data)).tensors.get('h')!;
    expect(t.dtype).toBe('F16');
    expect(Array.from(t.data)).toEqual([
      1,
      -2,
      0.333251953125, // 0x3555 = (1 + 341/1024) / 4
      65504, // largest normal
      2 ** -14, // smallest normal
      2 ** -24, // smallest subnormal
      1023 * 2 ** -24, // largest subnormal
      -0,
      Infinity,
      -Infinity,
      NaN,
    ]);
    expect(Object.is(t.data[7], -0)).toBe(true);
  });

  it('halfToNumber agrees on all 65,536 halves with a bit-level re-encoding as f32', () => {
    // f32 bits of a half: normals keep sign and fraction (<< 13) and rebias the exponent (+112);
    // subnormals are normalized first; exponent 31 becomes 255 (infinities, NaN).
    const bits = new Uint32Array(1);
    const asF32 = new Float32Array(bits.buffer);
    const mismatches: number[] = [];
    for (let h = 0; h < 0x10000; h++) {
      const sign = (h & 0x8000) << 16;
      let exponent = (h >>> 10) & 0x1f;
      let fraction = h & 0x3ff;
      if (exponent === 0x1f) exponent = 0xff - 112;
      else if (exponent === 0 && fraction !== 0) {
        exponent = 1;
        while ((fraction & 0x400) === 0) {
          fraction <<= 1;
          exponent--;
        }
        fraction &= 0x3ff;
      } else if (exponent === 0) exponent = -112;
      bits[0] = (sign | ((exponent + 112) << 23) | (fraction << 13)) >>> 0;
      if (!Object.is(halfToNumber(h), asF32[0]) && !(Number.isNaN(asF32[0]) && Number.isNaN(halfToNumber(h)))) mismatches.push(h);
    }
    expect(mismatches).toEqual([]);
  });

  it('BF16: the upper half of an f32', () => {
    const words = [0x3f80, 0xc040, 0x4049, 0x0001, 0x7f80, 0xff80, 0x8000];
    const data = words.flatMap((h) => [h & 0xff, h >>> 8]);
    const t = readSafetensors(file({ b: { dtype: 'BF16', shape: [7], data_offsets: [0, 14] } }, data)).tensors.get('b')!;
    expect(t.dtype).toBe('BF16');
    expect(Array.from(t.data)).toEqual([1, -3, 3.140625, 2 ** -133, Infinity, -Infinity, -0]);
  });

  it('F64, rounded to f32', () => {
    const values = [1.5, 0.1, -1e300, 1e-50];
    const data = new Uint8Array(32);
    values.forEach((v, i) => new DataView(data.buffer).setFloat64(8 * i, v, true));
    const t = readSafetensors(file({ d: { dtype: 'F64', shape: [2, 2], data_offsets: [0, 32] } }, Array.from(data))).tensors.get('d')!;
    expect(t.dtype).toBe('F64');
    expect(t.shape).toEqual([2, 2]);
    expect(Array.from(t.data)).toEqual([1.5, Math.fround(0.1), -Infinity, 0]);
  });

  it('mixed dtypes in one file, header padded with spaces, metadata kept', () => {
    const header = `{"__metadata__":{"k":"v"},"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}   `;
    const r = readSafetensors(file(header, [0x00, 0x3c, 0, 0, 0x80, 0xbf]));
    expect(r.metadata).toEqual({ k: 'v' });
    expect(Array.from(r.tensors.get('a')!.data)).toEqual([1]);
    expect(Array.from(r.tensors.get('b')!.data)).toEqual([-1]);
  });
});

describe('malformed files', () => {
  const error = (message: string) => ({ code: 'weights', message, path: 'w.safetensors' });
  const read = (bytes: Uint8Array) => () => readSafetensors(bytes, 'w.safetensors');
  const longHeader = new Uint8Array([100, 0, 0, 0, 0, 0, 0, 0, ...ascii('{"a":1}   ')]);
  const hugeHeader = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...ascii('{}')]);
  it.each([
    ['a file shorter than the length', new Uint8Array(5), 'truncated safetensors file: 5 bytes, too short for the 8-byte header length'],
    ['a header length past the end', longHeader, 'safetensors header length 100 runs past the end of the file (10 bytes after the length)'],
    ['a 2^64 - 1 header length', hugeHeader, 'safetensors header length 18446744073709551615 runs past the end of the file (2 bytes after the length)'],
    ['invalid JSON', file('{"a": '), 'invalid safetensors header: not valid JSON'],
    ['a header that is not UTF-8', new Uint8Array([2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe]), 'invalid safetensors header: not UTF-8 text'],
    ['a header that is not an object', file([1, 2]), 'invalid safetensors header: expected a JSON object of tensors'],
    ['non-string metadata', file({ __metadata__: { epoch: 3 } }), "invalid safetensors header: '__metadata__' must map keys to strings"],
    ['an entry that is not an object', file({ w: 'F32' }), "tensor 'w': header entry is not an object"],
    ['a missing dtype', file({ w: { shape: [], data_offsets: [0, 4] } }, [0, 0, 0, 0]), `tensor 'w': missing "dtype"`],
    ['an unknown dtype', file({ w: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Array(8).fill(0)), "tensor 'w' has dtype 'I64'; modelc reads F32, F16, BF16 and F64"],
    ['a dtype named like an Object method', file({ w: { dtype: 'toString', shape: [], data_offsets: [0, 4] } }), "tensor 'w' has dtype 'toString'; modelc reads F32, F16, BF16 and F64"],
    ['a bad shape', file({ w: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }), `tensor 'w': "shape" must be a list of non-negative integers`],
    ['bad offsets', file({ w: f32([1], 4, 0) }), `tensor 'w': "data_offsets" must be [begin, end] with 0 <= begin <= end`],
    ['a byte length not matching dtype x shape', file({ w: f32([3], 0, 8) }, new Array(8).fill(0)), "tensor 'w' has 8 bytes of data, but F32 [3] needs 12"],
    ['overlapping tensors', file({ a: f32([2], 0, 8), b: f32([2], 4, 12) }, new Array(12).fill(0)), "tensor 'b' overlaps tensor 'a': it begins at byte 4, before byte 8"],
    ['a gap between tensors', file({ a: f32([1], 0, 4), b: f32([1], 8, 12) }, new Array(12).fill(0)), "bytes 4 to 8 of the data (between tensors 'a' and 'b') belong to no tensor"],
    ['a gap at the start', file({ b: f32([1], 4, 8) }, new Array(8).fill(0)), "bytes 0 to 4 of the data (before tensor 'b') belong to no tensor"],
    ['trailing bytes', file({ a: f32([1], 0, 4) }, new Array(6).fill(0)), "bytes 4 to 6 of the data (after tensor 'a') belong to no tensor"],
    ['data without tensors', file({}, [1, 2, 3]), 'bytes 0 to 3 of the data belong to no tensor'],
    ['offsets past the data (a truncated file)', file({ a: f32([1], 0, 4), b: f32([2], 4, 12) }, new Array(9).fill(0)), "tensor 'b' runs past the data: it ends at byte 12, but the data has 9 bytes"],
  ])('%s', (_, bytes, message) => {
    expect(diagnosticOf(read(bytes))).toEqual(error(message));
  });

  it('never throws anything but a ModelcError on truncated or corrupted files', () => {
    const good = writeSafetensors(new Map([['dense/kernel', { shape: [2, 3], data: new Float32Array(6).fill(0.5) }], ['dense/bias', { shape: [3], data: new Float32Array(3) }]]), { a: 'b' });
    fc.assert(
      fc.property(fc.nat(good.length), fc.array(fc.tuple(fc.nat(good.length - 1), fc.nat(255)), { maxLength: 4 }), (cut, edits) => {
        const bytes = good.slice(0, cut);
        for (const [i, b] of edits) if (i < bytes.length) bytes[i] = b;
        try {
          const r = readSafetensors(bytes);
          for (const t of r.tensors.values()) expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
        } catch (err) {
          expect(err).toBeInstanceOf(ModelcError);
        }
      }),
    );
  });
});
