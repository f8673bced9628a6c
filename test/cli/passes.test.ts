/** The optimizer from the command line: -O, --passes, printing between passes, --explain, verify, and its errors. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeSafetensors } from '../../src/formats/safetensors.js';
import { run, tempDir } from '../helpers/cli.js';

describe('modelc ir -O', () => {
  it('mnist_cnn: no batchnorm, no dropout, each conv and dense carries its activation as an epilogue', async () => {
    const r = await run('ir', 'examples/mnist_cnn.nn', '-O');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/= (batchnorm|dropout|affine|relu|softmax)\(/);
    const linear = r.stdout.split('\n').filter((l) => /= (conv2d|dense)\(/.test(l));
    expect(linear).toHaveLength(4);
    expect(linear.slice(0, 3).every((l) => l.includes('epilogue={op="relu"}'))).toBe(true);
    expect(linear[3]).toContain('epilogue={op="softmax", axis=1}'); // softmax over the last axis, per row
    expect(r.stdout).toContain('@"conv2d + batch_normalization (folded) + activation (relu, fused)"');
  });

  it('--passes runs exactly the named passes', async () => {
    const r = await run('ir', 'examples/seed_mlp.nn', '--passes', 'remove-dropout,dce');
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('dropout(');
    expect(r.stdout).toContain('= batchnorm(');
  });

  it('--print-after-all and --print-after show the IR between passes on stderr', async () => {
    const all = await run('ir', 'examples/res_block.nn', '-O', '--print-after-all');
    const headers = all.stderr.match(/^\/\/ -----\/\/ IR after (\S+) \/\/----- \/\/$/gm) ?? [];
    expect(headers.map((h) => h.split(' ')[4])).toEqual(['remove-dropout', 'remove-identity', 'cse', 'fold-bn', 'fuse-activation', 'const-fold', 'dce']);
    const one = await run('ir', 'examples/res_block.nn', '-O', '--print-after', 'fold-bn');
    expect(one.stderr.match(/IR after/g)).toHaveLength(1);
    expect(one.stderr).toContain('IR after fold-bn');
    expect(one.stderr).toContain('= relu(%batch_normalization)'); // not fused yet after fold-bn
  });

  it('--explain lists folds, fusions and refusals with reasons', async () => {
    const dir = tempDir({
      'm.nn': 'model m {\n  input x: [4]\n  h = dense(4)\n  bn = batchnorm\n  s = add(h, bn)\n}\n',
    });
    const r = await run('ir', join(dir, 'm.nn'), '-O', '--explain');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('fold-bn: skipped: bn not folded into h: h has 2 consumers');
    expect(r.stderr).toContain('fold-bn: bn became affine');
  });

  it('an unknown pass name is a usage error (exit 2) naming it, before anything runs', async () => {
    const r = await run('ir', 'examples/seed_mlp.nn', '--passes', 'fold-bn,fold-nb');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: option '--passes <list>' argument 'fold-bn,fold-nb' is invalid\. unknown pass 'fold-nb'; did you mean 'fold-bn'\? \(known: remove-dropout, /);
  });
});

describe('modelc verify', () => {
  it.each(['seed_mlp', 'res_block', 'mnist_cnn'])('passes on %s and proves each fold exactly', async (name) => {
    const r = await run('verify', `examples/${name}.nn`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok: \d+ fold\(s\) proved exactly$/m);
    expect(r.stdout).toMatch(/folded into .* \(exact\): max abs diff .* ok/);
  }, 120_000);

  it('fails (exit 1) when the optimized graph differs beyond the tolerance', async () => {
    const r = await run('verify', 'examples/seed_mlp.nn', '--tolerance', '0');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAIL (tolerance 0)');
  });

  it('a weights file that does not match the graph names the tensor, exit 1', async () => {
    const dir = tempDir();
    const path = join(dir, 'w.safetensors');
    writeFileSync(path, writeSafetensors(new Map([['dense/kernel', { shape: [3, 64], data: new Float32Array(192) }]])));
    const r = await run('verify', 'examples/seed_mlp.nn', '--weights', path);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${path}: error: tensor 'dense/kernel' has shape [3, 64], but the graph's parameter has shape [16, 64]`);
    expect(r.stderr).toContain(`${path}: error: parameter 'dense/bias' (shape [64]) is missing from the weights`);
  });
});
