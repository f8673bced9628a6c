/**
 * `modelc compile` end to end: the files it writes and prints, naming,
 * determinism, weights (seeded, from a file, external), the optimizer's mark
 * on the code, kernel sharing, the golden `--emit-test` artifact under
 * `node --test` (and that it can fail), and errors that leave nothing behind.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from '../../src/formats/safetensors.js';
import { lowerFile } from '../../src/frontend/load.js';
import { interpret } from '../../src/interp/interpret.js';
import type { Graph } from '../../src/ir/graph.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { materialize } from '../../src/ops/init.js';
import { randomFeeds } from '../../src/passes/equivalence.js';
import { extractWeights } from '../../src/weights/attach.js';
import { run, tempDir } from '../helpers/cli.js';
import { importModule, type InferenceModule } from '../helpers/generated.js';

const mnist = 'examples/mnist_cnn.nn';
const mlp = 'examples/seed_mlp.nn';
const resBlock = 'examples/res_block.nn';

/** Runs `modelc compile` and expects success; returns the printed paths. */
async function compile(...args: string[]): Promise<string[]> {
  const r = await run('compile', ...args);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return r.stdout.split('\n').filter((l) => l !== '');
}

const load = (file: string) => importModule(readFileSync(file, 'utf8'));
const sorted = (dir: string) => readdirSync(dir).sort();

/** The module text without the embedded weights literal. */
const code = (text: string) => text.replace(/const WEIGHTS = "[^"]*";/, 'const WEIGHTS = "";');

/** Seeded float32 inputs (and the same values for the interpreter). */
function feedsOf(graph: Graph, batch: number, seed = 5) {
  const f32: Record<string, Float32Array> = {};
  const f64: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(randomFeeds(graph, batch, seed))) {
    f32[name] = Float32Array.from(t.data);
    f64[name] = { shape: t.shape, data: Float64Array.from(f32[name]) };
  }
  return { f32, f64 };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst;
}

const mustThrow = (f: () => unknown, what = 'the call'): Error => {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error(`expected ${what} to throw`);
};

describe('compile mnist_cnn (the acceptance case)', () => {
  let dir: string;
  let printed: string[];
  let mod: InferenceModule;
  let ts: string;
  beforeAll(async () => {
    dir = tempDir();
    printed = await compile(mnist, '-o', dir, '--emit', 'both');
    ts = readFileSync(join(dir, 'mnist_cnn.ts'), 'utf8');
    mod = await load(join(dir, 'mnist_cnn.js'));
  });

  it('prints exactly the two paths written, .ts then .js', () => {
    expect(printed).toEqual([join(dir, 'mnist_cnn.ts'), join(dir, 'mnist_cnn.js')]);
    expect(sorted(dir)).toEqual(['mnist_cnn.js', 'mnist_cnn.ts']);
  });

  it('predict on 28*28 floats returns 10 probabilities summing to 1; module predict = new Model().predict', () => {
    const x = Float32Array.from({ length: 28 * 28 }, (_, i) => ((i * 7919) % 256) / 255);
    const y = mod.predict!(x, 1);
    expect(y).toBeInstanceOf(Float32Array);
    expect(y).toHaveLength(10);
    for (const p of y) {
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThanOrEqual(1);
    }
    expect(Math.abs(y.reduce((s, p) => s + p, 0) - 1)).toBeLessThanOrEqual(1e-5);
    expect(new mod.Model().predict(x, 1)).toEqual(y);
    expect(mod.inputs.map((i) => [i.name, [...i.shape]])).toEqual([['image', [28, 28, 1]]]);
    expect(mod.outputs.map((o) => [...o.shape])).toEqual([[10]]);
  });

  it('the optimized module shows the folds and fusions; -O and --no-optimize agree within 1e-5', async () => {
    expect(ts).toContain('// conv2d + batch_normalization (folded) + activation (relu, fused)');
    expect(ts).toMatch(/\/\*\*\n \* conv2d [^\n]*\n \* Implements: conv2d \+ batch_normalization \(folded\) \+ activation \(relu, fused\)\n \* Shaped by: fold-bn, fuse-activation\n \*\/\nfunction conv2d_/);
    expect(ts).not.toMatch(/function batchnorm_/);
    expect(ts).toContain(' * Passes:  remove-dropout, remove-identity, cse, fold-bn, fuse-activation, const-fold, dce');

    const plain = tempDir();
    expect(await compile(mnist, '-o', plain, '--no-optimize', '--emit', 'both')).toHaveLength(2);
    const plainTs = readFileSync(join(plain, 'mnist_cnn.ts'), 'utf8');
    expect(plainTs).toMatch(/function batchnorm_/);
    expect(plainTs).not.toContain('(folded)');
    expect(plainTs).not.toContain('Shaped by:');
    expect(plainTs).toContain(' * Passes:  none');

    const unopt = await load(join(plain, 'mnist_cnn.js'));
    const graph = lowerFile(mnist).graph;
    const x = feedsOf(graph, 3).f32['image']!;
    const a = mod.predict!(x, 3);
    const b = unopt.predict!(x, 3);
    expect(maxAbsDiff(a, b)).toBeLessThanOrEqual(1e-5);
  });

  it('is deterministic: compiling again into a fresh directory gives byte-identical files', async () => {
    const again = tempDir();
    await compile(mnist, '-o', again, '--emit', 'both');
    expect(sorted(again)).toEqual(sorted(dir));
    for (const f of sorted(dir)) expect(readFileSync(join(again, f)).equals(readFileSync(join(dir, f))), f).toBe(true);
  });
});

describe('files and names', () => {
  it('--emit ts (the default) writes only the .ts; --emit js only the .js', async () => {
    const a = tempDir();
    expect(await compile(mlp, '-o', a)).toEqual([join(a, 'seed_mlp.ts')]);
    expect(sorted(a)).toEqual(['seed_mlp.ts']);
    const b = tempDir();
    expect(await compile(mlp, '-o', b, '--emit', 'ts')).toEqual([join(b, 'seed_mlp.ts')]);
    const c = tempDir();
    expect(await compile(mlp, '-o', c, '--emit', 'js')).toEqual([join(c, 'seed_mlp.js')]);
    expect(sorted(c)).toEqual(['seed_mlp.js']);
    expect(readFileSync(join(b, 'seed_mlp.ts'), 'utf8')).toBe(readFileSync(join(a, 'seed_mlp.ts'), 'utf8'));
  });

  it('-o creates missing directories', async () => {
    const out = join(tempDir(), 'a', 'b');
    expect(await compile(mlp, '-o', out)).toEqual([join(out, 'seed_mlp.ts')]);
  });

  it('--name foo names the files foo.*', async () => {
    const dir = tempDir();
    expect(await compile(mlp, '-o', dir, '--name', 'foo', '--emit', 'both', '--emit-test')).toEqual(
      ['foo.ts', 'foo.js', 'foo.test.ts', 'foo.test.js'].map((f) => join(dir, f)),
    );
    expect(readFileSync(join(dir, 'foo.ts'), 'utf8')).toMatch(/^\/\*\*\n \* foo: inference module generated by modelc/);
    expect(readFileSync(join(dir, 'foo.test.js'), 'utf8')).toContain('"./foo.js"');
  });

  it.each(['../x', 'a/b', '.hidden', '', 'x y'])('a bad --name %j is a usage error (exit 2) and writes nothing', async (name) => {
    const parent = tempDir();
    const out = join(parent, 'out');
    const r = await run('compile', mlp, '-o', out, '--name', name);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('--name');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync(out)).toBe(false);
    expect(sorted(parent)).toEqual([]);
  });

  it('the default name is the model name, not the file name', async () => {
    const src = tempDir({ 'spec.nn': 'model tiny_net {\n  input x: [3]\n  dense(2)\n}\n' });
    const out = join(src, 'out');
    expect(await compile(join(src, 'spec.nn'), '-o', out)).toEqual([join(out, 'tiny_net.ts')]);
  });

  it('--explain reports the folds on stderr; stdout still lists only the files', async () => {
    const dir = tempDir();
    const r = await run('compile', mlp, '-o', dir, '--explain');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(join(dir, 'seed_mlp.ts') + '\n');
    expect(r.stderr).toMatch(/^fold-bn: /m);
    expect(r.stderr).toMatch(/^fuse-activation: /m);
  });
});

describe('weights', () => {
  it('a different --seed changes the weights and nothing else', async () => {
    const a = tempDir();
    const b = tempDir();
    const c = tempDir();
    await compile(mlp, '-o', a, '--emit', 'both');
    await compile(mlp, '-o', b, '--emit', 'both', '--seed', '0');
    await compile(mlp, '-o', c, '--emit', 'both', '--seed', '1');
    for (const f of ['seed_mlp.ts', 'seed_mlp.js']) {
      const ta = readFileSync(join(a, f), 'utf8');
      const tc = readFileSync(join(c, f), 'utf8');
      expect(readFileSync(join(b, f), 'utf8')).toBe(ta); // --seed 0 is the default
      expect(tc).not.toBe(ta);
      expect(tc.length).toBe(ta.length); // same number of floats, same code
      expect(code(tc)).toBe(code(ta));
    }
    const x = Float32Array.from({ length: 16 * 2 }, (_, i) => Math.sin(i));
    expect((await load(join(c, 'seed_mlp.js'))).predict!(x, 2)).not.toEqual((await load(join(a, 'seed_mlp.js'))).predict!(x, 2));
  });

  it('--weights w.safetensors: the module computes what the interpreter does with those weights', async () => {
    const graph = materialize(lowerFile(mlp).graph, 1234);
    const dir = tempDir();
    const file = join(dir, 'w.safetensors');
    writeFileSync(file, writeSafetensors(extractWeights(graph)));
    const out = join(dir, 'out');
    await compile(mlp, '-o', out, '--weights', file, '--emit', 'js');
    const mod = await load(join(out, 'seed_mlp.js'));
    const { f32, f64 } = feedsOf(graph, 4);
    const want = interpret(graph, f64)[graph.outputs[0]!]!.data;
    expect(maxAbsDiff(mod.predict!(f32['x']!, 4), want)).toBeLessThanOrEqual(1e-5);
    // and not the seeded initializers
    const seeded = materialize(lowerFile(mlp).graph, 0);
    expect(maxAbsDiff(interpret(seeded, f64)[graph.outputs[0]!]!.data, want)).toBeGreaterThan(1e-3);
  });

  it('--weights with a tensor missing fails with exit 1 naming it, and writes nothing', async () => {
    const tensors = extractWeights(materialize(lowerFile(mlp).graph, 1));
    tensors.delete('dense_1/bias');
    const dir = tempDir();
    const file = join(dir, 'w.safetensors');
    writeFileSync(file, writeSafetensors(tensors));
    const r = await run('compile', mlp, '-o', join(dir, 'out'), '--weights', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("'dense_1/bias'");
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });
});

describe('kernel sharing', () => {
  it('two layers with the same shape signature share one kernel function, called twice', async () => {
    const src = tempDir({ 'twin.nn': 'model twin {\n  input x: [8]\n  dense(8, activation: relu)\n  dense(8, activation: relu)\n}\n' });
    const opt = join(src, 'opt');
    const plain = join(src, 'plain');
    // The TypeScript kernels (--no-simd; with SIMD each layer also has a call of the one shared SIMD kernel, checked below).
    await compile(join(src, 'twin.nn'), '-o', opt, '--emit', 'both', '--no-simd');
    await compile(join(src, 'twin.nn'), '-o', plain, '--no-optimize', '--no-simd');
    const simd = join(src, 'simd');
    await compile(join(src, 'twin.nn'), '-o', simd);
    const simdTs = readFileSync(join(simd, 'twin.ts'), 'utf8');
    expect(simdTs.match(/simd\.kernels\.(\w+)\(/g)).toHaveLength(2);
    expect(new Set(simdTs.match(/simd\.kernels\.(\w+)\(/g)).size).toBe(1);
    const ts = readFileSync(join(opt, 'twin.ts'), 'utf8');
    expect(ts.match(/^function dense_/gm)).toHaveLength(1);
    const name = /^function (dense_\w+)\(/m.exec(ts)![1]!;
    expect(ts.match(new RegExp(`\\b${name}\\(n, `, 'g'))).toHaveLength(2);
    expect(ts).toMatch(/ \* Implements: dense\b.*; dense_1\b/);
    const plainTs = readFileSync(join(plain, 'twin.ts'), 'utf8');
    expect(plainTs.match(/^function dense_/gm)).toHaveLength(1);
    expect(plainTs.match(/^function relu_/gm)).toHaveLength(1);

    // sharing is only of code: each layer keeps its own weights
    const graph = materialize(lowerFile(join(src, 'twin.nn')).graph, 0);
    const { f32, f64 } = feedsOf(graph, 3);
    const mod = await load(join(opt, 'twin.js'));
    expect(maxAbsDiff(mod.predict!(f32['x']!, 3), interpret(graph, f64)[graph.outputs[0]!]!.data)).toBeLessThanOrEqual(1e-5);
  });
});

/** A safetensors file with the given header entries (offsets filled in) and raw data per tensor. */
function rawSafetensors(tensors: [name: string, dtype: string, shape: number[], data: Uint8Array][]): Uint8Array {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, dtype, shape, data] of tensors) {
    header[name] = { dtype, shape, data_offsets: [offset, offset + data.length] };
    offset += data.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = Buffer.alloc(8 + padded + offset, 0x20);
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, 8);
  let at = 8 + padded;
  for (const [, , , data] of tensors) {
    out.set(data, at);
    at += data.length;
  }
  return new Uint8Array(out);
}

const f32Bytes = (data: Float32Array) => new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
const f64Bytes = (data: Float32Array) => new Uint8Array(Float64Array.from(data).buffer);

describe('--weights-mode external', () => {
  let dir: string;
  let embedded: InferenceModule;
  let external: InferenceModule;
  let bytes: Uint8Array;
  let tensors: Map<string, { shape: number[]; data: Float32Array }>;
  let x: Float32Array;
  beforeAll(async () => {
    dir = tempDir();
    const emb = tempDir();
    expect(await compile(resBlock, '-o', dir, '--weights-mode', 'external', '--emit', 'both')).toEqual(
      ['res_block.ts', 'res_block.js', 'res_block.safetensors'].map((f) => join(dir, f)),
    );
    await compile(resBlock, '-o', emb, '--emit', 'js');
    external = await load(join(dir, 'res_block.js'));
    embedded = await load(join(emb, 'res_block.js'));
    bytes = new Uint8Array(readFileSync(join(dir, 'res_block.safetensors')));
    tensors = new Map([...readSafetensors(bytes).tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data }]));
    x = feedsOf(lowerFile(resBlock).graph, 2).f32['x']!;
  });

  it('writes the weights next to the module and does not embed them', () => {
    expect(sorted(dir)).toEqual(['res_block.js', 'res_block.safetensors', 'res_block.ts']);
    const ts = readFileSync(join(dir, 'res_block.ts'), 'utf8');
    expect(ts).not.toContain('const WEIGHTS');
    expect(ts).not.toMatch(/^export function predict/m);
    expect(external.predict).toBeUndefined();
    // the optimized parameters (batchnorm folded away)
    expect([...tensors.keys()].some((k) => k.includes('batch_normalization'))).toBe(false);
    expect(tensors.size).toBeGreaterThan(0);
  });

  it('new Model() is a TypeError; new Model(bytes) reproduces the embedded module exactly', () => {
    const err = mustThrow(() => new external.Model());
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toContain('safetensors');
    const got = new external.Model(bytes).predict(x, 2);
    expect(got).toEqual(embedded.predict!(x, 2));
    // an embedded-weights module takes the same bytes as an override
    expect(new embedded.Model(bytes).predict(x, 2)).toEqual(got);
    // a Buffer (a Uint8Array) works, as does a view into a larger buffer
    expect(new external.Model(readFileSync(join(dir, 'res_block.safetensors'))).predict(x, 2)).toEqual(got);
    const padded = new Uint8Array(bytes.length + 13);
    padded.set(bytes, 5);
    expect(new external.Model(padded.subarray(5, 5 + bytes.length)).predict(x, 2)).toEqual(got);
  });

  it('bad weights are an Error naming the tensor and the problem', () => {
    const names = [...tensors.keys()];
    const first = names[0]!;
    const last = names.at(-1)!;
    const t = tensors.get(first)!;
    const kernel = names.find((n) => tensors.get(n)!.shape.length > 1)!;
    const k = tensors.get(kernel)!;
    const without = new Map(tensors);
    without.delete(first);
    const bad: [string, Uint8Array, RegExp][] = [
      ['missing', writeSafetensors(without), new RegExp(`^weights: missing tensor "${first}" of shape \\[${t.shape.join(', ')}\\]`)],
      ['extra', writeSafetensors(new Map([...tensors, ['extra/kernel', { shape: [2], data: new Float32Array(2) }]])), /^weights: unexpected tensor "extra\/kernel"/],
      [
        'wrong shape (same size)',
        writeSafetensors(new Map([...tensors, [kernel, { shape: [k.data.length], data: k.data }]])),
        new RegExp(`^weights: tensor "${kernel}" has shape \\[${k.data.length}\\]; expected \\[${k.shape.join(', ')}\\]`),
      ],
      [
        'wrong shape (other size)',
        writeSafetensors(new Map([...tensors, [first, { shape: [t.data.length + 1], data: new Float32Array(t.data.length + 1) }]])),
        new RegExp(`^weights: tensor "${first}" has shape \\[${t.data.length + 1}\\]; expected \\[${t.shape.join(', ')}\\]`),
      ],
      [
        'wrong dtype (F64)',
        rawSafetensors(names.map((n) => [n, n === first ? 'F64' : 'F32', tensors.get(n)!.shape, (n === first ? f64Bytes : f32Bytes)(tensors.get(n)!.data)])),
        new RegExp(`^weights: tensor "${first}" has dtype "F64"; expected F32`),
      ],
      ['truncated data', bytes.subarray(0, bytes.length - 1), new RegExp(`^weights: tensor "${last}" has data_offsets`)],
      ['truncated header', bytes.subarray(0, 20), /^weights: header length \d+ runs past the end of the file \(20 bytes\)/],
      ['shorter than 8 bytes', bytes.subarray(0, 5), /^weights: not a safetensors file: 5 bytes/],
      ['empty', new Uint8Array(0), /^weights: not a safetensors file: 0 bytes/],
    ];
    const corrupt = bytes.slice();
    corrupt[9] = 0x7b; // '{' inside the JSON header
    bad.push(['corrupt header', corrupt, /^weights: the header is not valid JSON/]);
    for (const [what, data, message] of bad) {
      for (const mod of [external, embedded]) {
        const err = mustThrow(() => new mod.Model(data), `new Model(${what} bytes) in the ${mod === external ? 'external' : 'embedded'} module`);
        expect(err, what).toBeInstanceOf(Error);
        expect(err.message, what).toMatch(message);
      }
    }
    for (const notBytes of ['weights', new ArrayBuffer(16), [1, 2, 3]]) {
      expect(() => new external.Model(notBytes as unknown as Uint8Array)).toThrow(TypeError);
    }
  });
});

describe('--emit-test', () => {
  const nodeTest = (file: string) => spawnSync(process.execPath, ['--test', file], { encoding: 'utf8', timeout: 20_000 });

  it.each([
    ['embedded', [] as string[]],
    ['external', ['--weights-mode', 'external']],
  ])('%s weights: the golden test passes with node --test, and fails against a module with other weights', async (_, mode) => {
    const dir = tempDir();
    const files = await compile(mlp, '-o', dir, '--emit', 'both', '--emit-test', ...mode);
    expect(files.map((f) => f.slice(dir.length + 1))).toEqual(
      ['seed_mlp.ts', 'seed_mlp.js', ...(mode.length > 0 ? ['seed_mlp.safetensors'] : []), 'seed_mlp.test.ts', 'seed_mlp.test.js'],
    );
    const ok = nodeTest(join(dir, 'seed_mlp.test.js'));
    expect(ok.stdout + ok.stderr).toMatch(/^# pass 3$/m);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);

    const other = tempDir();
    await compile(mlp, '-o', other, '--emit', 'js', '--seed', '1', ...mode);
    copyFileSync(join(dir, 'seed_mlp.test.js'), join(other, 'seed_mlp.test.js'));
    const bad = nodeTest(join(other, 'seed_mlp.test.js'));
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toMatch(/^# fail 1$/m);
    expect(bad.stdout).toMatch(/not ok \d+ - run reproduces the golden outputs/);
    expect(bad.stdout).toContain('|got - want|');
  });

  it('the test imports the module by its --name', async () => {
    const dir = tempDir();
    await compile(resBlock, '-o', dir, '--emit', 'both', '--emit-test', '--name', 'block', '--weights-mode', 'external');
    const r = nodeTest(join(dir, 'block.test.js'));
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });
});

describe('errors', () => {
  it('a syntax error: exit 1, a located message, no stack trace, no files', async () => {
    const src = tempDir({ 'bad.nn': 'model m {\n  input x: [4]\n  dense(8,\n}\n' });
    const fresh = join(src, 'out');
    const existing = join(src, 'existing');
    mkdirSync(existing);
    for (const out of [fresh, existing]) {
      const r = await run('compile', join(src, 'bad.nn'), '-o', out, '--emit', 'both', '--emit-test');
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(new RegExp(`^${join(src, 'bad.nn').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4:1: error: `));
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
    }
    expect(sorted(src)).toEqual(['bad.nn', 'existing']);
  });

  it('a shape error is located too', async () => {
    const src = tempDir({ 'm.nn': 'model m {\n  input x: [4]\n  conv2d(4, 3)\n}\n' });
    const r = await run('compile', join(src, 'm.nn'), '-o', join(src, 'out'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/m\.nn:3:\d+: error: /);
    expect(existsSync(join(src, 'out'))).toBe(false);
  });

  it('missing -o is a usage error (exit 2)', async () => {
    const r = await run('compile', mlp);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--output');
  });

  it('bad option values are usage errors (exit 2)', async () => {
    const dir = tempDir();
    expect((await run('compile', mlp, '-o', dir, '--emit', 'wasm')).code).toBe(2);
    expect((await run('compile', mlp, '-o', dir, '--weights-mode', 'lazy')).code).toBe(2);
    expect(sorted(dir)).toEqual([]);
  });

  it('an unknown pass in --passes: a usage error (exit 2) naming it, no files', async () => {
    const dir = tempDir();
    const r = await run('compile', mlp, '-o', join(dir, 'out'), '--passes', 'fold-bn,fold-nb');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown pass 'fold-nb'; did you mean 'fold-bn'\?/);
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('-o naming a file (exit 1), or a bad --seed (a usage error, exit 2): nothing written', async () => {
    const dir = tempDir({ file: 'x' });
    const r = await run('compile', mlp, '-o', join(dir, 'file'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot create the output directory');
    const s = await run('compile', mlp, '-o', join(dir, 'out'), '--seed', 'abc');
    expect(s.code).toBe(2);
    expect(s.stderr).toContain("option '--seed <n>' argument 'abc' is invalid. expected an integer");
    expect(sorted(dir)).toEqual(['file']);
  });

  // The files are written all or nothing: when a later one cannot be renamed into place, the
  // earlier ones are removed again.
  it('a write that fails part-way leaves none of the files behind', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'seed_mlp.js')); // the second file cannot be written
    const r = await run('compile', mlp, '-o', dir, '--emit', 'both');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('seed_mlp.js: error: cannot write file');
    expect(sorted(dir)).toEqual(['seed_mlp.js']);
  });

  it('a missing spec file: exit 1, no stack trace', async () => {
    const dir = tempDir();
    const r = await run('compile', join(dir, 'nope.nn'), '-o', join(dir, 'out'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nope.nn');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
