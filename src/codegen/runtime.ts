/**
 * Support code that generated modules carry (they import nothing): argument
 * checks, the embedded-weights decoder and a safetensors reader. Each piece is
 * TypeScript source, emitted only when the module needs it.
 */

export const checkBatchSizeSource = `/** A batch size must be a positive integer. */
function checkBatchSize(batchSize: number): void {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError("batchSize must be a positive integer, got " + String(batchSize));
  }
}`;

export const checkInputSource = `/** An input holds \`size\` floats per example, batch-major. */
function checkInput(x: Float32Array, batchSize: number, size: number, what: string): void {
  if (!(x instanceof Float32Array)) {
    throw new TypeError(what + " must be a Float32Array");
  }
  if (x.length !== batchSize * size) {
    throw new RangeError(
      what + " needs batchSize * " + size + " = " + batchSize * size + " floats for batchSize " + batchSize +
        ", got " + x.length + (x.length % size === 0 ? " (a batch of " + x.length / size + ")" : ""),
    );
  }
}`;

/** Base64 to bytes (no atob: the same code in every engine); the embedded weights and SIMD kernels use it. */
export const base64BytesSource = `/** Base64 to bytes. */
function base64Bytes(text: string): Uint8Array {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const code = new Uint8Array(128);
  for (let i = 0; i < 64; i++) code[alphabet.charCodeAt(i)] = i;
  const pad = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  const bytes = new Uint8Array((text.length / 4) * 3 - pad);
  for (let i = 0, o = 0; i < text.length; i += 4) {
    const v =
      (code[text.charCodeAt(i)]! << 18) | (code[text.charCodeAt(i + 1)]! << 12) |
      (code[text.charCodeAt(i + 2)]! << 6) | code[text.charCodeAt(i + 3)]!;
    bytes[o++] = v >> 16;
    if (o < bytes.length) bytes[o++] = (v >> 8) & 255;
    if (o < bytes.length) bytes[o++] = v & 255;
  }
  return bytes;
}`;

/** Little-endian float32s from base64, whatever the platform's byte order (needs base64BytesSource). */
export const decodeWeightsSource = `/** The embedded weights: base64 of little-endian float32s. */
function decodeWeights(text: string): Float32Array {
  const bytes = base64Bytes(text);
  // A little-endian engine (every one in use) reads the bytes as they are.
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) return new Float32Array(bytes.buffer, 0, bytes.length / 4);
  const view = new DataView(bytes.buffer);
  const floats = new Float32Array(bytes.length / 4);
  for (let i = 0; i < floats.length; i++) floats[i] = view.getFloat32(i * 4, true);
  return floats;
}`;

/**
 * safetensors: an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}}` (offsets relative to
 * the data after the header) and the raw little-endian data. The reader checks
 * every tensor the module needs (present, F32, the right shape, inside the
 * file) and that there are no others, and copies the data out.
 */
export const readSafetensorsSource = safetensorsReader(
  'this module reads only the tensors in PARAMS, as the passes left them (batchnorm folded into kernels); use the .safetensors that modelc compile wrote with it',
);

/** The reader, with `hint` closing the message about a tensor the module does not read. */
export function safetensorsReader(hint: string): string {
  return `/** The parameters, in PARAMS order, from safetensors bytes; throws a clear error on any mismatch. */
function readSafetensors(bytes: Uint8Array): Float32Array[] {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError("weights must be the bytes of a safetensors file (a Uint8Array)");
  }
  const fail = (message: string): never => {
    throw new Error("weights: " + message);
  };
  if (bytes.length < 8) fail("not a safetensors file: " + bytes.length + " bytes, shorter than the 8-byte header length");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(0, true) + view.getUint32(4, true) * 4294967296;
  if (8 + headerLength > bytes.length) {
    fail("header length " + headerLength + " runs past the end of the file (" + bytes.length + " bytes)");
  }
  let header: unknown;
  try {
    header = JSON.parse(utf8(bytes.subarray(8, 8 + headerLength)));
  } catch {
    fail("the header is not valid JSON");
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) fail("the header is not a JSON object");
  const entries = header as Record<string, unknown>;
  const dataLength = bytes.length - 8 - headerLength;
  const expected = new Set(PARAMS.map(([name]) => name));
  for (const name of Object.keys(entries)) {
    if (name !== "__metadata__" && !expected.has(name)) {
      fail(
        "unexpected tensor " + JSON.stringify(name) + ": " + ${JSON.stringify(hint)},
      );
    }
  }
  return PARAMS.map(([name, shape]) => {
    const entry = entries[name] as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | undefined;
    const what = "tensor " + JSON.stringify(name);
    if (entry === undefined) return fail("missing " + what + " of shape [" + shape.join(", ") + "]");
    if (entry.dtype !== "F32") fail(what + " has dtype " + JSON.stringify(entry.dtype) + "; expected F32");
    const given = entry.shape;
    if (!Array.isArray(given) || given.length !== shape.length || given.some((d, i) => d !== shape[i])) {
      fail(what + " has shape " + JSON.stringify(given) + "; expected [" + shape.join(", ") + "]");
    }
    const size = shape.reduce((a, b) => a * b, 1);
    const offsets = entry.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
      return fail(what + " has invalid data_offsets " + JSON.stringify(offsets));
    }
    const [begin, end] = offsets as [number, number];
    if (end - begin !== size * 4 || end > dataLength) {
      fail(what + " has data_offsets [" + begin + ", " + end + "]; expected " + size * 4 + " bytes inside " + dataLength + " bytes of data");
    }
    const out = new Float32Array(size);
    const at = 8 + headerLength + begin;
    // A little-endian engine copies the bytes as they are.
    if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) new Uint8Array(out.buffer).set(bytes.subarray(at, at + size * 4));
    else for (let i = 0; i < size; i++) out[i] = view.getFloat32(at + i * 4, true);
    return out;
  });
}

/** UTF-8 bytes to a string (TextDecoder is not in every TypeScript lib). */
function utf8(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i++]!;
    let c = b;
    if (b >= 0xf0) c = ((b & 7) << 18) | ((bytes[i++]! & 63) << 12) | ((bytes[i++]! & 63) << 6) | (bytes[i++]! & 63);
    else if (b >= 0xe0) c = ((b & 15) << 12) | ((bytes[i++]! & 63) << 6) | (bytes[i++]! & 63);
    else if (b >= 0xc0) c = ((b & 31) << 6) | (bytes[i++]! & 63);
    s += String.fromCodePoint(c);
  }
  return s;
}`;
}

/**
 * The writer: F32 tensors laid out as modelc's own writer does (metadata
 * first, tensors in sorted name order, contiguous data, the header padded
 * with spaces to a multiple of 8 bytes), so files round-trip byte for byte.
 */
export const writeSafetensorsSource = `/** Safetensors bytes of F32 tensors (names sorted), with string metadata. */
function writeSafetensors(tensors: ReadonlyArray<readonly [name: string, shape: readonly number[], data: Float32Array]>, metadata: Record<string, string>): Uint8Array {
  const sorted = [...tensors].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const header: Record<string, unknown> = Object.create(null);
  header["__metadata__"] = metadata;
  let offset = 0;
  for (const [name, shape, data] of sorted) {
    header[name] = { dtype: "F32", shape: [...shape], data_offsets: [offset, offset + data.length * 4] };
    offset += data.length * 4;
  }
  let json = JSON.stringify(header);
  const encoded: number[] = [];
  for (const ch of json) {
    const c = ch.codePointAt(0)!;
    if (c < 0x80) encoded.push(c);
    else if (c < 0x800) encoded.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) encoded.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else encoded.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  while (encoded.length % 8 !== 0) encoded.push(0x20);
  const bytes = new Uint8Array(8 + encoded.length + offset);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, encoded.length, true);
  bytes.set(encoded, 8);
  let at = 8 + encoded.length;
  for (const [, , data] of sorted) {
    for (let i = 0; i < data.length; i++, at += 4) view.setFloat32(at, data[i]!, true);
  }
  return bytes;
}`;

/** The embedded weights split per parameter (PARAMS order), decoded once and shared. */
export const embeddedWeightsSource = `/** The embedded weights, decoded on first use and shared (callers copy what they change). */
let embedded: Float32Array[] | undefined;
function embeddedWeights(): Float32Array[] {
  if (embedded === undefined) {
    const all = decodeWeights(WEIGHTS);
    let at = 0;
    embedded = PARAMS.map(([, shape]) => {
      const size = shape.reduce((a, b) => a * b, 1);
      at += size;
      return all.subarray(at - size, at);
    });
  }
  return embedded;
}`;
