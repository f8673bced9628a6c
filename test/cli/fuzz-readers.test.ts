/**
 * Mutated input files never crash modelc's readers: a TF.js model.json with
 * its weight shard, a safetensors weights file, a pair of .npy files and a
 * CSV file each either load, or fail with a ModelcError whose diagnostics
 * are located (a span in the file, or at least the file's path) — never a
 * TypeError, a RangeError ("Invalid typed array length"), a stack overflow
 * or a hang.
 *
 * Each mutant starts from a valid file and takes up to three edits aimed at
 * what a reader trusts: keys deleted, values of the wrong type, sizes huge,
 * negative, fractional or written as strings, shards and data truncated, a
 * header length that lies. Every reader runs in-process, as the CLI calls it
 * (`lowerFile` for model.json, the `--weights` path for safetensors,
 * `loadNpy`, `loadCsv`).
 *
 * "Never crashes" alone would also hold for readers that reject everything,
 * so each property tallies its outcomes (loaded, or the first diagnostic's
 * code and the start of its message with names and numbers blanked) and
 * asserts a floor on both: mutants accepted, and rejections for several
 * reasons. The floors sit far below the counts measured at the time of
 * writing (stated beside each). A crash is collected, not thrown at once,
 * so a failure lists every distinct crash with the mutant that made it.
 *
 * Left to other tests: JSON nested thousands deep (the nesting limit's tests;
 * no mutation here nests). Huge sizes in a layer's config are made here, and
 * are either accepted as a spec (nothing is allocated by loading it) or
 * refused by the size limits (code `limit`); allocating them is for the
 * size limits' tests.
 */
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { withWeights } from '../../src/compile/inputs.js';
import { loadCsv } from '../../src/data/csv.js';
import { loadNpy } from '../../src/data/npy.js';
import type { Target } from '../../src/data/types.js';
import { ModelcError, type Diagnostic } from '../../src/diagnostics/diagnostic.js';
import { renderDiagnostic } from '../../src/diagnostics/render.js';
import { writeSafetensors } from '../../src/formats/safetensors.js';
import { lowerFile } from '../../src/frontend/load.js';
import { extractWeights } from '../../src/weights/attach.js';
import { run } from '../helpers/cli.js';
import { Tally } from '../helpers/tally.js';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A fresh folder for one property's files (rewritten by each run). */
function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'modelc-fuzz-'));
  dirs.push(dir);
  return dir;
}

/** A diagnostic message as a reason: its code and first clause, with names and numbers blanked. */
function reason(err: ModelcError): string {
  const d = err.diagnostics[0]!;
  const text = d.message
    .replace(/'[^']*'/g, '_')
    .replace(/"[^"]*"/g, '_')
    .replace(/(^|\s)\/\S+/g, '$1/path')
    .replace(/-?\b\d[\d.e+-]*/gi, '#')
    .split(/[:;(]|, got /)[0]!
    .slice(0, 60)
    .trim();
  return `${d.code}: ${text}`;
}

/**
 * Runs `read` on a mutant and tallies what happened: loaded, or rejected with
 * located diagnostics (each rendered as `path...: error: ...`). Anything else
 * thrown is a crash, kept with the mutant for the final report.
 */
function outcome(tally: Tally, crashes: Map<string, string>, mutant: unknown, read: () => unknown, check?: (d: Diagnostic) => void): void {
  try {
    read();
    tally.add('ok');
  } catch (err) {
    if (!(err instanceof ModelcError)) {
      const key = err instanceof Error ? `${err.name}: ${err.message.slice(0, 120)}` : String(err);
      if (!crashes.has(key)) crashes.set(key, `${key}\n  mutant: ${JSON.stringify(mutant).slice(0, 600)}\n  ${err instanceof Error ? err.stack?.split('\n').slice(1, 4).join('\n  ') : ''}`);
      tally.add('CRASH');
      return;
    }
    for (const d of err.diagnostics) {
      expect(d.span !== undefined || d.path !== undefined, `unlocated: ${d.message}`).toBe(true);
      expect(renderDiagnostic(d)).toMatch(/^\S.*: error: \S/);
      if (d.span) {
        expect(0 <= d.span.start && d.span.start <= d.span.end && d.span.end <= d.span.file.text.length, `span ${d.span.start}..${d.span.end}`).toBe(true);
      }
      check?.(d);
    }
    tally.add(reason(err));
  }
}

function expectNoCrash(crashes: Map<string, string>, tally: Tally): void {
  expect([...crashes.values()].join('\n\n'), String(tally)).toBe('');
}

// Values a mutation writes in place of another: wrong types, sizes that cannot be, numbers as strings.
const oddValues: unknown[] = [
  null, true, false, 0, -1, 1.5, -0.5, 2 ** 31, 2 ** 53 + 2, 1e12, 1e308, 'NaN', '1e999', 'Infinity', '-1', '3', '', 'x',
  [], {}, [null], [1e12], [-1], [2, 2], [1.5], [3, '3'], ['a'], { class_name: 'Zeros', config: {} },
];
const oddValue = fc.constantFrom(...oddValues);

// ---------------------------------------------------------------------------
// TF.js model.json and its shard

/** Two models saved by TF.js's own save path (test/fixtures/tfjs/make.mjs): a functional one and a Sequential one. */
const tfjsFixtures = ['functional', 'sequential'].map((n) => ({
  name: n,
  json: JSON.parse(readFileSync(`test/fixtures/tfjs/${n}/model.json`, 'utf8')) as unknown,
  shard: new Uint8Array(readFileSync(`test/fixtures/tfjs/${n}/weights.bin`)),
}));

type JsonPath = (string | number)[];

/** Every path in a JSON value, parents before children. */
function pathsOf(v: unknown, at: JsonPath = [], out: JsonPath[] = []): JsonPath[] {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => pathsOf(x, [...at, i], out));
  else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) pathsOf(x, [...at, k], out);
  return out;
}

function getAt(root: unknown, path: JsonPath): unknown {
  return path.reduce<unknown>((v, k) => (v as Record<string | number, unknown>)[k], root);
}

/** Names that are also properties of every object, names that collide, names with separators. */
const oddNames = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'conv', 'x', 'd1', 'a/b', 'kernel', 'dense:0', ''];
const classNames = ['Dense', 'Conv2D', 'Flatten', 'Add', 'Concatenate', 'BatchNormalization', 'InputLayer', 'Dropout', 'LSTM', 'Model', 'Sequential', 'Activation', 'GlobalAveragePooling2D', 'Reshape', ''];

type TfjsEdit =
  | { kind: 'delete'; at: number }
  | { kind: 'set'; at: number; value: unknown }
  | { kind: 'number'; at: number; value: unknown }
  | { kind: 'duplicate'; at: number }
  | { kind: 'class'; at: number; name: string }
  | { kind: 'rename'; at: number; name: string }
  | { kind: 'manifest'; at: number; value: unknown }
  | { kind: 'shard'; length: number; extra: number }
  | { kind: 'shardPath'; path: string };

const tfjsEdit: fc.Arbitrary<TfjsEdit> = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: oddValue }),
  fc.record({ kind: fc.constant('number' as const), at: fc.nat(), value: oddValue }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('class' as const), at: fc.nat(), name: fc.constantFrom(...classNames) }),
  fc.record({ kind: fc.constant('rename' as const), at: fc.nat(), name: fc.constantFrom(...oddNames) }),
  fc.record({ kind: fc.constant('manifest' as const), at: fc.nat(), value: fc.oneof(oddValue, fc.constantFrom('float16', 'int32', 'float32', 'optimizer', 'd1/kernel', 'conv/bias')) }),
  fc.record({ kind: fc.constant('shard' as const), length: fc.nat(), extra: fc.nat({ max: 8 }) }),
  fc.record({ kind: fc.constant('shardPath' as const), path: fc.constantFrom('', 'missing.bin', 'weights.bin', 'http://example.com/w.bin', '.', 'model.json') }),
);

/** The mutant model.json and shard: `at` picks among the paths an edit applies to (modulo their number). */
function applyTfjs(json: unknown, shard: Uint8Array, edits: readonly TfjsEdit[]): { json: unknown; shard: Uint8Array | undefined } {
  const root = structuredClone(json) as Record<string, unknown>;
  let bytes: Uint8Array | undefined = shard;
  for (const e of edits) {
    const all = pathsOf(root).filter((p) => p.length > 0);
    const pick = (filter: (p: JsonPath, v: unknown) => boolean): JsonPath | undefined => {
      const ps = all.filter((p) => filter(p, getAt(root, p)));
      return ps.length === 0 || !('at' in e) ? undefined : ps[e.at % ps.length];
    };
    const put = (p: JsonPath | undefined, v: unknown) => {
      if (p) (getAt(root, p.slice(0, -1)) as Record<string | number, unknown>)[p[p.length - 1]!] = structuredClone(v);
    };
    switch (e.kind) {
      case 'delete': {
        const p = pick(() => true);
        if (!p) break;
        const parent = getAt(root, p.slice(0, -1));
        if (Array.isArray(parent)) parent.splice(p[p.length - 1] as number, 1);
        else delete (parent as Record<string, unknown>)[p[p.length - 1] as string];
        break;
      }
      case 'set':
        put(pick(() => true), e.value);
        break;
      case 'number':
        put(pick((_, v) => typeof v === 'number'), e.value);
        break;
      case 'duplicate': {
        const p = pick((p) => typeof p[p.length - 1] === 'number');
        if (p) (getAt(root, p.slice(0, -1)) as unknown[]).splice(p[p.length - 1] as number, 0, structuredClone(getAt(root, p)));
        break;
      }
      case 'class':
        put(pick((p) => p[p.length - 1] === 'class_name'), e.name);
        break;
      case 'rename': // a layer's name, a reference to one in inbound_nodes or the model's inputs and outputs, a weight's name
        put(pick((p, v) => p[p.length - 1] === 'name' || (typeof v === 'string' && p.some((k) => k === 'inbound_nodes' || k === 'input_layers' || k === 'output_layers'))), e.name);
        break;
      case 'manifest':
        put(pick((p) => p[0] === 'weightsManifest'), e.value);
        break;
      case 'shard':
        bytes = e.length % 4 === 3 ? undefined : bytes && Uint8Array.from([...bytes.subarray(0, e.length % (bytes.length + 1)), ...new Uint8Array(e.extra)]);
        break;
      case 'shardPath': {
        const group = (root['weightsManifest'] as { paths?: unknown[] }[] | undefined)?.[0];
        if (group && Array.isArray(group.paths)) group.paths[0] = e.path;
        break;
      }
    }
  }
  return { json: root, shard: bytes };
}

// ---------------------------------------------------------------------------
// safetensors: the weights of examples/seed_mlp.nn, as `--weights` reads them

const mlp = withWeights(lowerFile('examples/seed_mlp.nn').graph, undefined, 1);
const safetensors = writeSafetensors(extractWeights(mlp));
const stHeaderLength = Number(new DataView(safetensors.buffer, safetensors.byteOffset).getBigUint64(0, true));
const stHeader = JSON.parse(new TextDecoder().decode(safetensors.subarray(8, 8 + stHeaderLength))) as Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>;

type StEdit =
  | { kind: 'length'; value: bigint }
  | { kind: 'entry'; tensor: number; key: 'dtype' | 'shape' | 'data_offsets'; value: unknown }
  | { kind: 'dim'; tensor: number; dim: number; value: unknown }
  | { kind: 'offset'; tensor: number; end: boolean; delta: number }
  | { kind: 'drop'; tensor: number }
  | { kind: 'rename'; tensor: number; name: string }
  | { kind: 'metadata'; value: unknown }
  | { kind: 'text'; at: number; length: number; insert: string }
  | { kind: 'truncate'; at: number }
  | { kind: 'append'; bytes: number };

const stEdit: fc.Arbitrary<StEdit> = fc.oneof(
  fc.record({ kind: fc.constant('length' as const), value: fc.constantFrom(0n, 1n, 2n ** 64n - 1n, 2n ** 53n, BigInt(stHeaderLength - 1), BigInt(stHeaderLength + 8), BigInt(safetensors.length)) }),
  fc.record({
    kind: fc.constant('entry' as const),
    tensor: fc.nat(),
    key: fc.constantFrom('dtype' as const, 'shape' as const, 'data_offsets' as const),
    value: fc.oneof(oddValue, fc.constantFrom('F16', 'BF16', 'F64', 'I32', 'U8', 'f32', 'BOOL')),
  }),
  fc.record({ kind: fc.constant('dim' as const), tensor: fc.nat(), dim: fc.nat(), value: oddValue }),
  fc.record({ kind: fc.constant('offset' as const), tensor: fc.nat(), end: fc.boolean(), delta: fc.integer({ min: -64, max: 64 }) }),
  fc.record({ kind: fc.constant('drop' as const), tensor: fc.nat() }),
  fc.record({ kind: fc.constant('rename' as const), tensor: fc.nat(), name: fc.constantFrom('__proto__', 'constructor', '__metadata__', 'dense/kernel', '') }),
  fc.record({ kind: fc.constant('metadata' as const), value: oddValue }),
  fc.record({ kind: fc.constant('text' as const), at: fc.nat(), length: fc.nat({ max: 6 }), insert: fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom('{', '}', '[', ']', ',', '"', '-1', '1e400', '\u0000')) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.integer({ min: 1, max: 16 }) }),
);

/** The mutant file: header edits first (re-encoded, length updated), then edits of the raw bytes. */
function applySafetensors(edits: readonly StEdit[]): Uint8Array {
  const header = structuredClone(stHeader) as Record<string, unknown>;
  const names = Object.keys(stHeader);
  const entry = (i: number) => header[names[i % names.length]!] as Record<string, unknown> | undefined;
  for (const e of edits) {
    const t = 'tensor' in e ? entry(e.tensor) : undefined;
    if (e.kind === 'entry' && t) t[e.key] = e.value;
    else if (e.kind === 'dim' && t && Array.isArray(t['shape']) && t['shape'].length > 0) t['shape'][e.dim % t['shape'].length] = e.value;
    else if (e.kind === 'offset' && t && Array.isArray(t['data_offsets']) && typeof t['data_offsets'][+e.end] === 'number') t['data_offsets'][+e.end] += e.delta;
    else if (e.kind === 'drop') delete header[names[e.tensor % names.length]!];
    else if (e.kind === 'rename') {
      const from = names[e.tensor % names.length]!;
      const value = header[from];
      delete header[from];
      Object.defineProperty(header, e.name, { value, enumerable: true, writable: true, configurable: true });
    }
    else if (e.kind === 'metadata') header['__metadata__'] = e.value;
  }
  let text = JSON.stringify(header);
  for (const e of edits) if (e.kind === 'text') text = text.slice(0, e.at % (text.length + 1)) + e.insert + text.slice((e.at % (text.length + 1)) + e.length);
  const json = new TextEncoder().encode(text);
  let bytes = new Uint8Array(8 + json.length + safetensors.length - 8 - stHeaderLength);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
  bytes.set(json, 8);
  bytes.set(safetensors.subarray(8 + stHeaderLength), 8 + json.length);
  for (const e of edits) {
    if (e.kind === 'length' && bytes.length >= 8) new DataView(bytes.buffer).setBigUint64(0, e.value, true);
    else if (e.kind === 'truncate') bytes = bytes.slice(0, e.at % (bytes.length + 1));
    else if (e.kind === 'append') bytes = Uint8Array.from([...bytes, ...new Uint8Array(e.bytes).fill(7)]);
  }
  return bytes;
}

// ---------------------------------------------------------------------------
// .npy: x of shape (4, 2, 3) and y of shape (4,), for a model taking [2, 3] with 3 classes

const npyTarget: Target = { inputShape: [2, 3], outputSize: 3, loss: 'sparse_categorical_crossentropy' };

/** A .npy file as numpy writes it (version 1.0, header padded to a multiple of 64 bytes). */
function npyFile(dict: string, data: Uint8Array, version = 1): Uint8Array {
  const pre = version === 1 ? 10 : 12;
  const padded = Math.ceil((pre + dict.length + 1) / 64) * 64 - pre;
  const header = new TextEncoder().encode(dict.padEnd(padded - 1, ' ') + '\n');
  const out = new Uint8Array(pre + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(header, pre);
  out.set(data, pre + header.length);
  return out;
}

const descrs = ['<f4', '<f8', '<i2', '|u1', '<i8', '>f4', '<f2', '<c8', '|O', '<U4', '|b1', '=f4', 'f4', '<u8', '', '<f16', '<i3'];
const shapes = ['(4, 2, 3)', '(4, 6)', '(4,)', '(1000000000000,)', '(1000000000000, 2, 3)', '(-1, 6)', '(4.5, 6)', '(4, 6', '()', '(0, 2, 3)', '(4, 2, 3, 1)', '(4L, 6L)', '(9007199254740993, 2, 3)', '(1e3,)', '( 4 , 2 , 3 , )', '(99999999999999999999999,)', '(4, 0)', '(0,)', '((4,),)'];

interface NpyEdit {
  readonly file: 'x' | 'y';
  readonly descr?: string;
  readonly fortran?: string;
  readonly shape?: string;
  readonly version?: number;
  readonly magic?: { at: number; value: number };
  readonly length?: number;
  readonly dict?: { at: number; length: number; insert: string };
  readonly data?: { keep: number; extra: number };
}

/** Zero to two of the fields at once: more would leave almost no mutant that loads. */
const npyEdit: fc.Arbitrary<NpyEdit> = fc
  .tuple(
    fc.constantFrom('x' as const, 'y' as const),
    fc.array(
      fc.oneof(
        fc.record({ descr: fc.constantFrom(...descrs) }),
        fc.record({ fortran: fc.constantFrom('True', 'False', 'Tru', '1', 'None') }),
        { arbitrary: fc.record({ shape: fc.constantFrom(...shapes) }), weight: 2 },
        fc.record({ version: fc.constantFrom(0, 1, 2, 3, 4, 255) }),
        fc.record({ magic: fc.record({ at: fc.nat({ max: 5 }), value: fc.nat({ max: 255 }) }) }),
        fc.record({ length: fc.constantFrom(0, 1, 63, 65, 0xffff, 0xffffffff) }),
        fc.record({ dict: fc.record({ at: fc.nat(), length: fc.nat({ max: 8 }), insert: fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom("'", '(', ')', ',', ':', "'shape': (2,), ", '{', '}')) }) }),
        fc.record({ data: fc.record({ keep: fc.nat(), extra: fc.nat({ max: 9 }) }) }),
      ),
      { maxLength: 2 },
    ),
  )
  .map(([file, parts]) => Object.assign({ file }, ...parts) as NpyEdit);

/** The bytes of little-endian values of `descr` (f4, f8, i2, u1, i8, b1 as the valid files use). */
function npyData(descr: string, values: readonly number[]): Uint8Array {
  const size = Number(descr.slice(2)) || 4;
  const out = new Uint8Array(values.length * size);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => {
    if (descr === '<f4') view.setFloat32(4 * i, v, true);
    else if (descr === '<f8') view.setFloat64(8 * i, v, true);
    else if (descr === '<i2') view.setInt16(2 * i, Math.round(v), true);
    else if (descr === '<i8') view.setBigInt64(8 * i, BigInt(Math.round(v)), true);
    else out[i] = Math.round(v);
  });
  return out;
}

/** x.npy and y.npy, one of them mutated by `e` (the others fields default to the valid file's). */
function npyPair(e: NpyEdit, dir: string): { x: string; y: string } {
  const files = {
    x: { descr: '<f4', shape: '(4, 2, 3)', values: Array.from({ length: 24 }, (_, i) => i / 8 - 1) },
    y: { descr: '<i8', shape: '(4,)', values: [0, 2, 1, 2] },
  };
  const write = (which: 'x' | 'y') => {
    const f = files[which];
    const edit = e.file === which ? e : { file: which };
    const descr = edit.descr ?? f.descr;
    let dict = `{'descr': '${descr}', 'fortran_order': ${edit.fortran ?? 'False'}, 'shape': ${edit.shape ?? f.shape}, }`;
    if (edit.dict) {
      const at = edit.dict.at % (dict.length + 1);
      dict = dict.slice(0, at) + edit.dict.insert + dict.slice(at + edit.dict.length);
    }
    const data = npyData(/^<[fi]\d$|^\|u1$/.test(descr) ? descr : f.descr, f.values);
    let bytes = npyFile(dict, edit.data ? Uint8Array.from([...data.subarray(0, edit.data.keep % (data.length + 1)), ...new Uint8Array(edit.data.extra)]) : data, edit.version === 2 || edit.version === 3 ? edit.version : 1);
    if (edit.version !== undefined) bytes[6] = edit.version;
    if (edit.magic) bytes[edit.magic.at] = edit.magic.value;
    if (edit.length !== undefined) {
      const view = new DataView(bytes.buffer);
      if (bytes[6] === 1) view.setUint16(8, edit.length & 0xffff, true);
      else view.setUint32(8, edit.length, true);
    }
    if (edit.data && edit.data.keep % 7 === 0) bytes = bytes.slice(0, edit.data.keep % (bytes.length + 1)); // cut anywhere, header included
    const path = join(dir, `${which}.npy`);
    writeFileSync(path, bytes);
    return path;
  };
  return { x: write('x'), y: write('y') };
}

// ---------------------------------------------------------------------------
// CSV: 3 features and a class label

const csvTarget: Target = { inputShape: [3], outputSize: 3, loss: 'sparse_categorical_crossentropy' };
const csvText = 'a,b,c,label\n0.5,1,-2,0\n1e-3,2.5,3,2\n-1,0,.5,1\n4,5,6,1\n';
const cells = ['', ' ', '1', '-0', '2', '3', 'x', 'NaN', 'Infinity', '1e999', '-1e39', '3.4e38', '1e-50', '0x10', '1,2', '"1"', '"', '""', '"a""b"', '1.5', '99999999999999999999', '+7', '.', 'e5', '١'];

type CsvEdit =
  | { kind: 'cell'; row: number; col: number; value: string }
  | { kind: 'dropCell'; row: number; col: number }
  | { kind: 'addCell'; row: number; value: string }
  | { kind: 'dropRow'; row: number }
  | { kind: 'text'; at: number; length: number; insert: string }
  | { kind: 'truncate'; at: number }
  | { kind: 'bom' }
  | { kind: 'crlf' }
  | { kind: 'empty' };

const csvEdit: fc.Arbitrary<CsvEdit> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('cell' as const), row: fc.nat(), col: fc.nat(), value: fc.constantFrom(...cells) }), weight: 3 },
  fc.record({ kind: fc.constant('dropCell' as const), row: fc.nat(), col: fc.nat() }),
  fc.record({ kind: fc.constant('addCell' as const), row: fc.nat(), value: fc.constantFrom(...cells) }),
  fc.record({ kind: fc.constant('dropRow' as const), row: fc.nat() }),
  fc.record({ kind: fc.constant('text' as const), at: fc.nat(), length: fc.nat({ max: 4 }), insert: fc.oneof(fc.string({ maxLength: 3 }), fc.constantFrom('"', ',', '\n', '\r', '\r\n', '\n\n', '\uFEFF', '\u0000')) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.constant({ kind: 'bom' as const }),
  { arbitrary: fc.constant({ kind: 'crlf' as const }), weight: 2 },
  fc.constant({ kind: 'empty' as const }),
);

/** A diagnostic about one cell points at that cell: the span's text, unquoted, is the cell the message quotes. */
function pointsAtCell(d: Diagnostic): void {
  const m = /^row \d+, column '[^']*': (?:'(.*)' is not a number|the cell is empty)/s.exec(d.message);
  if (!m || !d.span) return;
  const text = d.span.file.text.slice(d.span.start, d.span.end);
  const unquoted = /^".*"$/s.test(text) ? text.slice(1, -1).replace(/""/g, '"') : text;
  expect(unquoted.trim(), d.message).toBe(m[1] ?? '');
}

function applyCsv(edits: readonly CsvEdit[]): string {
  let rows = csvText.trimEnd().split('\n').map((r) => r.split(','));
  let text: string | undefined;
  const row = (i: number) => rows[i % rows.length];
  for (const e of edits) {
    if (e.kind === 'cell' && row(e.row)) row(e.row)![e.col % row(e.row)!.length] = e.value;
    else if (e.kind === 'dropCell' && row(e.row)) row(e.row)!.splice(e.col % row(e.row)!.length, 1);
    else if (e.kind === 'addCell' && row(e.row)) row(e.row)!.push(e.value);
    else if (e.kind === 'dropRow' && rows.length > 0) rows = rows.filter((_, i) => i !== e.row % rows.length);
  }
  text = rows.map((r) => r.join(',')).join('\n') + '\n';
  for (const e of edits) {
    if (e.kind === 'text') text = text.slice(0, e.at % (text.length + 1)) + e.insert + text.slice((e.at % (text.length + 1)) + e.length);
    else if (e.kind === 'truncate') text = text.slice(0, e.at % (text.length + 1));
    else if (e.kind === 'bom') text = '\uFEFF' + text;
    else if (e.kind === 'crlf') text = text.replace(/\n/g, '\r\n');
    else if (e.kind === 'empty') text = '';
  }
  return text;
}

// ---------------------------------------------------------------------------

describe('no crash on mutated input files', () => {
  it('TF.js model.json and its shard: loaded, or rejected with located diagnostics', () => {
    const dir = scratch();
    const tally = new Tally();
    const crashes = new Map<string, string>();
    const mutant = fc.record({
      fixture: fc.constantFrom(...tfjsFixtures),
      edits: fc.array(tfjsEdit, { minLength: 0, maxLength: 3 }),
    });
    fc.assert(
      fc.property(mutant, ({ fixture, edits }) => {
        const m = applyTfjs(fixture.json, fixture.shard, edits);
        const file = join(dir, 'model.json');
        writeFileSync(file, JSON.stringify(m.json));
        rmSync(join(dir, 'weights.bin'), { force: true });
        if (m.shard) writeFileSync(join(dir, 'weights.bin'), m.shard);
        outcome(tally, crashes, { fixture: fixture.name, edits }, () => lowerFile(file));
      }),
      { numRuns: 400 },
    );
    expectNoCrash(crashes, tally);
    // Measured over 5 runs: 119..135 loaded (edits of names, initializers, unread keys), 34..40 reasons under
    // 7..9 codes (import ~45%, weights, io, unknownLayer, duplicateName, shape, schema, limit). Below 60 loaded
    // is 7 standard deviations off.
    expect(tally.ok, String(tally)).toBeGreaterThanOrEqual(60);
    expect(tally.rejected, String(tally)).toBeGreaterThanOrEqual(150);
    expect(tally.reasons, String(tally)).toBeGreaterThanOrEqual(10);
  });

  it('safetensors weights: attached, or rejected with located diagnostics', () => {
    const file = join(scratch(), 'w.safetensors');
    const tally = new Tally();
    const crashes = new Map<string, string>();
    fc.assert(
      fc.property(fc.array(stEdit, { minLength: 0, maxLength: 3 }), (edits) => {
        const bytes = applySafetensors(edits);
        outcome(tally, crashes, edits.map((e) => (e.kind === 'length' ? { ...e, value: String(e.value) } : e)), () => {
          writeFileSync(file, bytes);
          return withWeights(mlp, file);
        });
      }),
      { numRuns: 500 },
    );
    expectNoCrash(crashes, tally);
    // Measured over 5 runs: 127..137 attached (edits of metadata, of a tensor's offsets that cancel out), 10..12
    // reasons (header not JSON ~25%, unused bytes, header length past the end, bad shape, byte count, past the data).
    expect(tally.ok, String(tally)).toBeGreaterThanOrEqual(60);
    expect(tally.rejected, String(tally)).toBeGreaterThanOrEqual(250);
    expect(tally.reasons, String(tally)).toBeGreaterThanOrEqual(6);
  });

  it('.npy training data: loaded, or rejected with located diagnostics', () => {
    const dir = scratch();
    const tally = new Tally();
    const crashes = new Map<string, string>();
    fc.assert(
      fc.property(npyEdit, (e) => {
        const { x, y } = npyPair(e, dir);
        outcome(tally, crashes, e, () => loadNpy(x, y, npyTarget));
      }),
      { numRuns: 500 },
    );
    expectNoCrash(crashes, tally);
    // Measured over 5 runs: 203..222 loaded (edits inside the padding, dtypes the reader converts, shape spellings),
    // 11..12 reasons (no readable key, bad magic, truncated or extra data, dtype, version, shape, Fortran order).
    expect(tally.ok, String(tally)).toBeGreaterThanOrEqual(120);
    expect(tally.rejected, String(tally)).toBeGreaterThanOrEqual(200);
    expect(tally.reasons, String(tally)).toBeGreaterThanOrEqual(6);
  });

  it('CSV training data: loaded, or rejected with located diagnostics', () => {
    const dir = scratch();
    const tally = new Tally();
    const crashes = new Map<string, string>();
    fc.assert(
      fc.property(fc.array(csvEdit, { minLength: 0, maxLength: 3 }), (edits) => {
        const path = join(dir, 'data.csv');
        writeFileSync(path, applyCsv(edits));
        outcome(tally, crashes, edits, () => loadCsv(path, 'label', csvTarget), pointsAtCell);
      }),
      { numRuns: 500 },
    );
    expectNoCrash(crashes, tally);
    // Measured over 5 runs: 229..255 loaded (BOM, CRLF, numbers in other spellings, blank lines), 7..8 reasons
    // (row length ~25%, a cell, empty file, no label column, malformed quotes, blank header name).
    expect(tally.ok, String(tally)).toBeGreaterThanOrEqual(150);
    expect(tally.rejected, String(tally)).toBeGreaterThanOrEqual(150);
    expect(tally.reasons, String(tally)).toBeGreaterThanOrEqual(4);
  });

  it('through the CLI: exit 0, or exit 1 with a located diagnostic, never a stack trace', async () => {
    const dir = scratch();
    const exits = [0, 0];
    const mutant = fc.oneof(
      fc.record({ fixture: fc.constantFrom(...tfjsFixtures), edits: fc.array(tfjsEdit, { maxLength: 2 }) }),
      fc.record({ safetensors: fc.array(stEdit, { maxLength: 2 }) }),
    );
    await fc.assert(
      fc.asyncProperty(mutant, async (m) => {
        let r;
        if ('fixture' in m) {
          const { json, shard } = applyTfjs(m.fixture.json, m.fixture.shard, m.edits);
          writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
          rmSync(join(dir, 'weights.bin'), { force: true });
          if (shard) writeFileSync(join(dir, 'weights.bin'), shard);
          r = await run('check', join(dir, 'model.json'));
        } else {
          writeFileSync(join(dir, 'w.safetensors'), applySafetensors(m.safetensors));
          r = await run('ir', 'examples/seed_mlp.nn', '-O', '--weights', join(dir, 'w.safetensors'));
        }
        expect([0, 1], r.stderr).toContain(r.code);
        expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
        if (r.code === 1) expect(r.stderr).toMatch(/^\S[^\n]*: error: \S/);
        exits[r.code]! += 1;
      }),
      { numRuns: 60 },
    );
    // Measured over 6 runs: 17..27 of 60 exit 0. Fewer than 4 is 5 standard deviations off.
    expect(exits[0], `exit 0: ${exits[0]}, exit 1: ${exits[1]}`).toBeGreaterThanOrEqual(4);
    expect(exits[1], `exit 0: ${exits[0]}, exit 1: ${exits[1]}`).toBeGreaterThanOrEqual(15);
  });
});
