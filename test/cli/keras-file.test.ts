/**
 * Every command that takes a spec takes a Keras `.keras` or `.h5` file
 * (fixtures from scripts/keras/make_format_fixtures.py), with the weights it
 * saved; and broken Keras files (a truncated zip, an archive without
 * config.json, a weights-only HDF5 file, a missing layer, a float16
 * variable, a truncated HDF5 file) are each one located diagnostic, exit
 * code 1, never a stack trace, also from the installed launcher.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync, zipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { readSafetensors } from '../../src/formats/safetensors.js';
import { lowerFileAsync } from '../../src/frontend/load.js';
import { run, tempDir } from '../helpers/cli.js';

const dir = 'test/fixtures/keras/format';
const seq = join(dir, 'seq.keras');

describe('commands on a .keras file', () => {
  it('check prints the summary of the Keras model', async () => {
    const r = await run('check', seq);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/d1.*Dense/);
    // dense 4*3+3, BN 4*3 (6 non-trainable), dense 3*2+2
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('Total params: 35 (trainable: 29, non-trainable: 6)');
  });

  it('ir and convert read it; fmt says it is not a spec', async () => {
    const ir = await run('ir', join(dir, 'conv.h5'));
    expect(ir.code).toBe(0);
    expect(ir.stdout).toMatch(/conv2d/);
    const nn = await run('convert', seq, '--to', 'nn');
    expect(nn.code).toBe(0);
    expect(nn.stdout).toMatch(/^model seq/m);
    const fmt = await run('fmt', seq);
    expect(fmt.code).toBe(1);
    expect(fmt.stderr).toMatch(/a Keras model is not a spec: `modelc import` converts it to one/);
  });

  it('import -o writes the canonical spec and the saved weights, which load back to the same values', async () => {
    const out = tempDir();
    const r = await run('import', join(dir, 'shared.keras'), '-o', out);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([join(out, 'shared.json'), join(out, 'shared.safetensors')]);
    const tensors = readSafetensors(readFileSync(join(out, 'shared.safetensors'))).tensors;
    const { graph } = await lowerFileAsync(join(dir, 'shared.keras'));
    expect([...tensors.keys()].sort()).toEqual(graph.params.map((p) => p.name).sort());
    for (const p of graph.params) expect(tensors.get(p.name)!.data).toEqual(p.value);
    expect((await run('check', join(out, 'shared.json'))).code).toBe(0);
  });

  it('compile -o writes a module with the weights; verify, init and export run', async () => {
    const out = tempDir();
    const c = await run('compile', join(dir, 'conv.keras'), '-o', out, '--emit', 'js');
    expect(c.code).toBe(0);
    expect(c.stdout.trim()).toBe(join(out, 'conv.js'));
    expect((await run('verify', join(dir, 'conv.keras'))).code).toBe(0);
    const init = await run('init', seq, '-o', join(out, 'init.safetensors'));
    expect(init.code).toBe(0);
    // init samples fresh values: the saved ones are not what it writes
    const sampled = readSafetensors(readFileSync(join(out, 'init.safetensors'))).tensors.get('bn/moving_variance')!.data;
    expect(Array.from(sampled)).toEqual([1, 1, 1]);
    const e = await run('export', seq, '-o', join(out, 'seq.onnx'));
    expect(e.stderr).toBe('');
    expect(e.code).toBe(0);
  });

  it('train loads it (and asks for a training block, which this model has none of)', async () => {
    const r = await run('train', seq, '-o', tempDir());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/has no training block/);
  });
});

describe('import warnings', () => {
  // a Keras 3 config whose Conv2D initializer modelc cannot name and whose Dropout has a noise_shape
  const config = 'test/fixtures/keras/config/training_only.json';
  const lines = (text: string) => text.split('\n').filter((l) => / warning: /.test(l));

  it('are printed on stderr, located in the config, and the command succeeds', async () => {
    const r = await run('check', config);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Total params/);
    const warnings = lines(r.stderr);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(new RegExp(`^${config}:\\d+:\\d+: warning: layer 'conv' \\(Conv2D\\): 'kernel_initializer': VarianceScaling`));
    expect(warnings[1]).toMatch(/: warning: layer 'drop' \(Dropout\): noise_shape \[null,1,1,1\] is not kept/);
    expect(r.stderr).not.toMatch(/error/);
  });

  it('compile and import print them too, and still write their files', async () => {
    const out = tempDir();
    const compiled = await run('compile', config, '-o', out);
    expect(compiled.code).toBe(0);
    expect(lines(compiled.stderr)).toHaveLength(2);
    expect(compiled.stdout).toMatch(/training_only\.ts/);
    const imported = await run('import', config, '-o', tempDir());
    expect(imported.code).toBe(0);
    expect(lines(imported.stderr)).toHaveLength(2);
  });
});

describe('broken Keras files', () => {
  const bytes = readFileSync(seq);
  const broken = (name: string, data: Uint8Array) => {
    const path = join(tempDir(), name);
    writeFileSync(path, data);
    return path;
  };
  const cases: [string, () => string, RegExp][] = [
    ['a truncated .keras zip', () => broken('cut.keras', bytes.subarray(0, bytes.length >> 1)), /cut\.keras: error: not a readable \.keras archive \(a damaged or truncated zip/],
    ['a zip without config.json', () => broken('noconfig.keras', zipSync({ 'metadata.json': unzipSync(bytes)['metadata.json']! })), /noconfig\.keras: error: the \.keras archive has no config\.json/],
    ['an HDF5 file of weights only', () => join(dir, 'weights-only.h5'), /weights-only\.h5: error: this HDF5 file is not a Keras model: it holds weights only \(model\.save_weights\)/],
    ['a .keras whose weights miss a layer', () => join(dir, 'missing-layer.keras'), /missing-layer\.keras:model\.weights\.h5: error: layer 'd2' \(Dense\) has no saved variables in the file \(modelc expects 2: kernel, bias\)/],
    ['a float16 variable', () => join(dir, 'float16.keras'), /float16\.keras:model\.weights\.h5: error: layer 'd1' \(Dense\): variable 'layers\/dense\/vars\/1' is float16; only float32 weights can be imported/],
    ['a truncated .h5', () => broken('cut.h5', readFileSync(join(dir, 'seq.h5')).subarray(0, 3000)), /cut\.h5: error: not a readable HDF5 file: truncated file/],
  ];
  it.each(cases)('%s: one diagnostic naming the file, exit 1', async (_, file, message) => {
    const r = await run('check', file());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toMatch(/\n\s+at |HDF5-DIAG/);
  });

  it('--weights with a Keras file says to give it as the spec', async () => {
    const r = await run('compile', 'examples/seed_mlp.nn', '--weights', seq, '-o', tempDir());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/seq\.keras: error: this is a Keras \.keras\/\.h5 file, not safetensors: give it as the spec itself/);
  });

  it('an unsupported layer class is located in the config inside the archive', async () => {
    const entries = unzipSync(bytes);
    const config = new TextDecoder().decode(entries['config.json']).replace('"class_name": "BatchNormalization"', '"class_name": "NoSuchLayer"');
    const path = broken('unknown.keras', zipSync({ ...entries, 'config.json': new TextEncoder().encode(config) }));
    const r = await run('check', path);
    expect(r.code).toBe(1);
    const column = config.indexOf('"NoSuchLayer"') + 1;
    expect(r.stderr).toMatch(new RegExp(`unknown\\.keras:config\\.json:1:${column}: error: .*'NoSuchLayer'`));
  });

  it('the launcher prints the diagnostic and exits 1, no stack trace, and checks a good file', () => {
    const good = execFileSync(process.execPath, ['bin/modelc.js', 'check', seq], { encoding: 'utf8' });
    expect(good).toMatch(/Total params: 35/);
    let status = 0;
    let stderr = '';
    try {
      execFileSync(process.execPath, ['bin/modelc.js', 'check', join(dir, 'float16.keras')], { encoding: 'utf8', stdio: 'pipe' });
    } catch (err) {
      ({ status, stderr } = err as { status: number; stderr: string });
    }
    expect(status).toBe(1);
    expect(stderr).toMatch(/is float16; only float32 weights can be imported/);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});
