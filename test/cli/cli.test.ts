/**
 * The CLI end to end on the examples: summaries and parameter counts, golden
 * IR, exact DSL <-> JSON conversion, canonical formatting, and the launcher.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run, tempDir } from '../helpers/cli.js';

const examples = ['seed_mlp', 'mnist_cnn', 'res_block'];

/** Keras parameter counts, worked out by hand from the layer shapes. */
const totals: Record<string, string> = {
  // dense 16*64+64, BN 4*64, dense 64*64+64, BN 4*64, dense 64*2+2, BN 4*2; BN moving stats non-trainable
  seed_mlp: 'Total params: 5,898 (trainable: 5,638, non-trainable: 260)',
  // conv 3*3*1*32+32, BN 4*32, conv 3*3*32*64+64, BN 4*64, dense 9216*64+64, BN 4*64, dense 64*10+10
  mnist_cnn: 'Total params: 609,994 (trainable: 609,674, non-trainable: 320)',
  // conv 3*3*16*16+16, BN 4*16, twice
  res_block: 'Total params: 4,768 (trainable: 4,704, non-trainable: 64)',
};

describe.each(examples)('%s', (name) => {
  const nn = `examples/${name}.nn`;
  const json = `examples/${name}.json`;

  it('check ends with the Keras parameter totals, for .nn and .json alike', async () => {
    const a = await run('check', nn);
    const b = await run('check', json);
    expect(a.code).toBe(0);
    expect(a.stderr).toBe('');
    expect(a.stdout.trimEnd().split('\n').at(-1)).toBe(totals[name]);
    expect(b.stdout).toBe(a.stdout);
  });

  it('ir matches the golden file, for .nn and .json alike', async () => {
    const a = await run('ir', nn);
    expect(a.code).toBe(0);
    await expect(a.stdout).toMatchFileSnapshot(`../golden/${name}.ir`);
    expect((await run('ir', json)).stdout).toBe(a.stdout);
  });

  it('the .json example is the conversion of the .nn example, and back', async () => {
    const dir = tempDir();
    expect((await run('convert', nn, '-o', join(dir, 'a.json'))).code).toBe(0);
    expect(readFileSync(join(dir, 'a.json'), 'utf8')).toBe(readFileSync(json, 'utf8'));
    expect((await run('convert', json, '-o', join(dir, 'b.nn'))).code).toBe(0);
    const nnText = readFileSync(join(dir, 'b.nn'), 'utf8');
    // Conversion drops comments; otherwise the examples are in canonical form.
    const withoutComments = readFileSync(nn, 'utf8').replace(/^\s*#.*\n/gm, '');
    expect(nnText).toBe(withoutComments);
    expect((await run('convert', join(dir, 'b.nn'), '--to', 'json')).stdout).toBe(readFileSync(json, 'utf8'));
  });

  it('the examples are in canonical form (fmt --check)', async () => {
    const r = await run('fmt', '--check', nn, json);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});

describe('fmt', () => {
  it('rewrites a non-canonical file in place, keeping comments, and --check notices', async () => {
    const dir = tempDir({
      'm.nn': '# top\nmodel m{input x:[4]\n  # the hidden layer\n  dense( 8 ,activation:relu)->dense(2)}\n',
    });
    const path = join(dir, 'm.nn');
    const check = await run('fmt', '--check', path);
    expect(check.code).toBe(1);
    expect(check.stderr).toContain('not in canonical form');
    expect((await run('fmt', '--write', path)).code).toBe(0);
    expect(readFileSync(path, 'utf8')).toBe(
      '# top\nmodel m {\n  input x: [4]\n  # the hidden layer\n  dense(8, activation: relu)\n  dense(2)\n}\n',
    );
    expect((await run('fmt', '--check', path)).code).toBe(0);
  });

  it('leaves a file alone when it has an error', async () => {
    const text = 'model m {\n  input x: [4]\n  dense(\n}\n';
    const dir = tempDir({ 'm.nn': text });
    const r = await run('fmt', '--write', join(dir, 'm.nn'));
    expect(r.code).toBe(1);
    expect(readFileSync(join(dir, 'm.nn'), 'utf8')).toBe(text);
  });
});

describe('shared layers', () => {
  it('a reused layer shares its parameters and counts them once', async () => {
    const dir = tempDir({
      'siamese.nn': [
        'model siamese {',
        '  input left: [8]',
        '  input right: [8]',
        '  enc = dense(left, 4)',
        '  enc_r = reuse enc(right)',
        '  d = add(enc, enc_r)',
        '}',
        '',
      ].join('\n'),
    });
    const ir = await run('ir', join(dir, 'siamese.nn'));
    expect(ir.stderr).toBe('');
    expect(ir.stdout).toContain('%enc: f32[N,4] = dense(%left, %enc/kernel, %enc/bias)');
    expect(ir.stdout).toContain('%enc_r: f32[N,4] = dense(%right, %enc/kernel, %enc/bias)');
    expect(ir.stdout.match(/param %enc\/kernel/g)).toHaveLength(1);
    const check = await run('check', join(dir, 'siamese.nn'));
    expect(check.stdout).toContain('enc_r (Dense, reuses enc)');
    expect(check.stdout.trimEnd().split('\n').at(-1)).toBe('Total params: 36 (trainable: 36, non-trainable: 0)');
  });
});

describe('the installed launcher', () => {
  it('runs `modelc --help` and `modelc check` from bin/', () => {
    const help = execFileSync(process.execPath, ['bin/modelc.js', '--help'], { encoding: 'utf8' });
    expect(help).toContain('Usage: modelc');
    expect(help).toMatch(/check .*<spec>/);
    const out = execFileSync(process.execPath, ['bin/modelc.js', 'check', 'examples/seed_mlp.nn'], { encoding: 'utf8' });
    expect(out.trimEnd().split('\n').at(-1)).toBe(totals['seed_mlp']);
  });

  it('exits 1 with a diagnostic and no stack trace on bad input', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'bad.nn'), 'model m {\n  input x: [4]\n  dens(3)\n}\n');
    let status = 0;
    let stderr = '';
    try {
      execFileSync(process.execPath, ['bin/modelc.js', 'check', join(dir, 'bad.nn')], { encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      status = (err as { status: number }).status;
      stderr = (err as { stderr: string }).stderr;
    }
    expect(status).toBe(1);
    expect(stderr.split('\n')[0]).toBe(`${join(dir, 'bad.nn')}:3:3: error: unknown layer type 'dens'; did you mean 'dense'?`);
    expect(stderr).not.toMatch(/\bat .*\.js:\d+/);
  });
});
