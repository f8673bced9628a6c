/**
 * `modelc init`: seeded initial weights as safetensors, with Keras names and
 * layouts; the same weights `compile`/`verify` sample with `--seed`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readSafetensors } from '../../src/formats/safetensors.js';
import { lowerFile } from '../../src/frontend/load.js';
import { run, tempDir } from '../helpers/cli.js';

const mnist = 'examples/mnist_cnn.nn';

describe('modelc init', () => {
  it('writes every parameter with its Keras name and shape, and prints the path', async () => {
    const dir = tempDir();
    const out = join(dir, 'w.safetensors');
    const r = await run('init', mnist, '--seed', '3', '-o', out);
    expect(r).toEqual({ code: 0, stdout: `${out}\n`, stderr: '' });
    const { tensors, metadata } = readSafetensors(readFileSync(out));
    const params = lowerFile(mnist).graph.params;
    expect([...tensors.keys()].sort()).toEqual(params.map((p) => p.name).sort());
    for (const p of params) expect(tensors.get(p.name)!.shape).toEqual(p.type.shape);
    expect(metadata).toEqual({ 'modelc.model': 'mnist_cnn', 'modelc.seed': '3' });
    // Keras BN initial state: gamma ones, moving_variance ones, beta and moving_mean zeros.
    expect([...tensors.get('batch_normalization/gamma')!.data].every((v) => v === 1)).toBe(true);
    expect([...tensors.get('batch_normalization/moving_mean')!.data].every((v) => v === 0)).toBe(true);
    // glorot_uniform for a 3x3x1x32 kernel: limit sqrt(6 / (9 + 288)).
    const limit = Math.sqrt(6 / (9 * 1 + 9 * 32));
    const kernel = [...tensors.get('conv2d/kernel')!.data];
    expect(Math.max(...kernel.map(Math.abs))).toBeLessThanOrEqual(limit);
    expect(new Set(kernel).size).toBeGreaterThan(200);
  });

  it('is deterministic per seed, and the seed matters', async () => {
    const dir = tempDir();
    const paths = ['a', 'b', 'c'].map((n) => join(dir, `${n}.safetensors`));
    await run('init', mnist, '--seed', '1', '-o', paths[0]!);
    await run('init', mnist, '--seed', '1', '-o', paths[1]!);
    await run('init', mnist, '--seed', '2', '-o', paths[2]!);
    const [a, b, c] = paths.map((p) => readFileSync(p));
    expect(a!.equals(b!)).toBe(true);
    expect(a!.equals(c!)).toBe(false);
  });

  it('gives the weights compile samples with the same seed: identical modules', async () => {
    const dir = tempDir();
    const w = join(dir, 'w.safetensors');
    await run('init', mnist, '--seed', '5', '-o', w);
    expect((await run('compile', mnist, '--seed', '5', '-o', join(dir, 'seeded'))).code).toBe(0);
    expect((await run('compile', mnist, '--weights', w, '-o', join(dir, 'loaded'))).code).toBe(0);
    expect(readFileSync(join(dir, 'loaded', 'mnist_cnn.ts'), 'utf8')).toBe(readFileSync(join(dir, 'seeded', 'mnist_cnn.ts'), 'utf8'));
  });

  it('errors: a bad seed, a bad spec, a missing -o', async () => {
    const dir = tempDir({ 'bad.nn': 'model m {\n  input x: [3]\n  dens(2)\n}\n' });
    const seed = await run('init', mnist, '--seed', 'x', '-o', join(dir, 'w.safetensors'));
    expect(seed.code).toBe(2);
    expect(seed.stderr).toContain("option '--seed <n>' argument 'x' is invalid");
    const bad = await run('init', join(dir, 'bad.nn'), '-o', join(dir, 'w.safetensors'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/bad\.nn:3:3: error: unknown layer type 'dens'/);
    expect((await run('init', mnist)).code).toBe(2);
  });
});
