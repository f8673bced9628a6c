/**
 * `modelc train` end to end: seed_mlp on a small CSV made here writes every
 * output (weights, history, chart, folded inference module) and the folded
 * module agrees with the Trainer; Ctrl-C (a real SIGINT to a real process)
 * stops after the current batch and leaves loadable partial weights; data
 * errors are located and leave nothing behind; the demo's claim holds.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ts } from 'ts-morph';
import { describe, expect, it } from 'vitest';
import { readSafetensors } from '../../src/formats/safetensors.js';
import { lowerFile } from '../../src/frontend/load.js';
import { attachWeights } from '../../src/weights/attach.js';
import { run, tempDir } from '../helpers/cli.js';
import { importModule } from '../helpers/generated.js';
import { rng } from '../helpers/tensors.js';

const mlp = 'examples/seed_mlp.nn';

/** `rows` examples of 16 features in [-1, 1) and a label: whether the first four sum above zero. */
function csv(rows: number, seed = 1): string {
  const next = rng(seed);
  const header = [...Array.from({ length: 16 }, (_, i) => `f${i}`), 'y'].join(',');
  const lines = Array.from({ length: rows }, () => {
    const f = Array.from({ length: 16 }, () => next() * 2 - 1);
    return [...f.map((v) => v.toFixed(4)), f[0]! + f[1]! + f[2]! + f[3]! > 0 ? 1 : 0].join(',');
  });
  return [header, ...lines].join('\n') + '\n';
}

describe('modelc train', () => {
  it('trains seed_mlp on a CSV and writes weights, history, chart and the folded module, which agrees with the Trainer', async () => {
    const dir = tempDir({ 'data.csv': csv(240) });
    const out = join(dir, 'out');
    const r = await run('train', mlp, '--data', join(dir, 'data.csv'), '--label', 'y', '--epochs', '3', '--batch-size', '16', '--validation-split', '0.25', '--seed', '4', '-o', out);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['history.json', 'seed_mlp.js', 'seed_mlp.safetensors', 'seed_mlp.svg', 'seed_mlp.ts']);
    expect(r.stdout.split('\n').filter((l) => l.startsWith(out)).sort()).toEqual(readdirSync(out).sort().map((f) => join(out, f)));
    // One line per epoch without a terminal (seed_mlp, like seed 000's Keras model, has no accuracy metric).
    expect(r.stderr.match(/^epoch \d\/3: loss \d+\.\d+ - val_loss \d+\.\d+ \(\d+\.\d s\)$/gm)).toHaveLength(3);

    const record = JSON.parse(readFileSync(join(out, 'history.json'), 'utf8'));
    expect(record).toMatchObject({ model: 'seed_mlp', partial: false, epochs: 3, batch_size: 16, seed: 4 });
    expect(Object.keys(record.history).sort()).toEqual(['loss', 'val_loss']);
    for (const series of Object.values(record.history) as number[][]) expect(series).toHaveLength(3);
    // Validation split: the last 60 of 240 rows are checked before and after folding.
    expect(record.test).toMatchObject({ data: 'validation', examples: 60 });
    expect(record.test.accuracy_after_folding).toBe(record.test.accuracy_before_folding);
    expect(r.stdout).toMatch(/validation accuracy \(60 examples\): (\d+\.\d\d)% before folding, \1% after folding \(equal\)/);

    // The weights load into the spec's graph, and the metadata says they are complete.
    const weights = readSafetensors(readFileSync(join(out, 'seed_mlp.safetensors')));
    expect(weights.metadata).toMatchObject({ 'modelc.model': 'seed_mlp', 'modelc.epochs': '3', 'modelc.partial': 'false', 'modelc.steps': String(3 * Math.ceil(180 / 16)) });
    attachWeights(lowerFile(mlp).graph, weights.tensors);
    // The folded module is an optimized module with those weights: batchnorm is gone from its code.
    const ts = readFileSync(join(out, 'seed_mlp.ts'), 'utf8');
    expect(ts).not.toMatch(/function batchnorm/);
    const svg = readFileSync(join(out, 'seed_mlp.svg'), 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('seed_mlp');
  }, 60_000);

  it('writes the same files byte for byte when run twice with the same seed', async () => {
    const dir = tempDir({ 'data.csv': csv(64, 2) });
    const outputs = [join(dir, 'a'), join(dir, 'b')];
    for (const out of outputs) {
      const r = await run('train', mlp, '--data', join(dir, 'data.csv'), '--label', 'y', '--epochs', '2', '-o', out);
      expect(r.code, r.stderr).toBe(0);
    }
    for (const file of ['seed_mlp.safetensors', 'seed_mlp.ts', 'seed_mlp.js', 'seed_mlp.svg', 'history.json']) {
      expect(readFileSync(join(outputs[0]!, file)).equals(readFileSync(join(outputs[1]!, file))), file).toBe(true);
    }
  }, 60_000);

  it('--no-simd trains with the TypeScript kernels: the same curves within float32 rounding, not the same bytes', async () => {
    const dir = tempDir({ 'data.csv': csv(64, 2) });
    const [simd, plain] = [join(dir, 'simd'), join(dir, 'plain')];
    for (const [out, extra] of [[simd, []], [plain, ['--no-simd']]] as const) {
      const r = await run('train', mlp, '--data', join(dir, 'data.csv'), '--label', 'y', '--epochs', '2', '-o', out, ...extra);
      expect(r.code, r.stderr).toBe(0);
    }
    const history = (out: string) => (JSON.parse(readFileSync(join(out, 'history.json'), 'utf8')) as { history: Record<string, number[]> }).history;
    const [a, b] = [history(simd), history(plain)];
    expect(a['loss']).toHaveLength(2);
    a['loss']!.forEach((l, i) => expect(Math.abs(l - b['loss']![i]!)).toBeLessThan(1e-4 * Math.max(1, Math.abs(l))));
    // float32 sums (SIMD) against float64 sums (TypeScript): the weights differ in their last bits.
    expect(readFileSync(join(simd, 'seed_mlp.safetensors')).equals(readFileSync(join(plain, 'seed_mlp.safetensors')))).toBe(false);
  }, 60_000);

  it('--threads 2 trains on two threads: the curves of one thread within float rounding; with --no-simd a warning says why not', async () => {
    const dir = tempDir({ 'data.csv': csv(64, 2) });
    const [one, two, plain] = [join(dir, 'one'), join(dir, 'two'), join(dir, 'plain')];
    const runs = await Promise.all(([[one, []], [two, ['--threads', '2']], [plain, ['--threads', '2', '--no-simd']]] as const).map(([out, extra]) => run('train', mlp, '--data', join(dir, 'data.csv'), '--label', 'y', '--epochs', '2', '-o', out, ...extra)));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    expect(runs[0]!.stderr).not.toMatch(/threads/);
    expect(runs[1]!.stderr).toMatch(/the SIMD kernels run on 2 threads/);
    expect(runs[2]!.stderr).toMatch(/warning: --threads 2: training on 1 thread: .*--no-simd/);
    const history = (out: string) => (JSON.parse(readFileSync(join(out, 'history.json'), 'utf8')) as { history: Record<string, number[]> }).history;
    const [a, b] = [history(one), history(two)];
    a['loss']!.forEach((l, i) => expect(Math.abs(l - b['loss']![i]!)).toBeLessThan(1e-4 * Math.max(1, Math.abs(l))));
    const bad = await run('train', mlp, '--data', join(dir, 'data.csv'), '--label', 'y', '--threads', '0', '-o', join(dir, 'bad'));
    expect(bad.code).toBe(2);
  }, 60_000);

  it('--validate-on-test needs data with a held-out test split, and is not combined with --validation-split', async () => {
    const dir = tempDir({ 'data.csv': csv(64, 2) });
    const out = join(dir, 'out');
    const r = await run('train', mlp, '--data', join(dir, 'data.csv'), '--label', 'y', '--validate-on-test', '-o', out);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--validate-on-test: .*data\.csv has no held-out test split/);
    expect(existsSync(out)).toBe(false);
    const both = await run('train', mlp, '--validate-on-test', '--validation-split', '0.2', '-o', out);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/use one/);
  });

  it('a SIGINT stops after the current batch and leaves loadable weights and history, marked partial', async () => {
    const dir = tempDir({ 'data.csv': csv(400, 3) });
    const out = join(dir, 'out');
    const child = spawn(process.execPath, ['bin/modelc.js', 'train', mlp, '--data', join(dir, 'data.csv'), '--label', 'y', '--epochs', '100000', '--batch-size', '8', '-o', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    let interrupted = false;
    child.stdout.on('data', (d) => (stdout += d));
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on('data', (d) => {
        stderr += d;
        // Interrupt once (a second SIGINT quits without saving), in the middle of later epochs' batches.
        if (/epoch 1\/100000/.test(stderr) && !interrupted) {
          interrupted = true;
          setTimeout(() => child.kill('SIGINT'), 50);
        }
      });
      // 'close', not 'exit': the exit can come before the last stderr output has been read.
      child.on('close', (c) => resolve(c));
    });
    expect(code, stderr).toBe(130);
    expect(stderr).toContain('stopping after the current batch');
    expect(stderr).toMatch(/interrupted: \d+ of 100000 epochs completed/);
    expect(stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
    // Everything written is complete: no temp files, the weights parse and fit the model.
    expect(readdirSync(out).sort()).toEqual(['history.json', 'seed_mlp.safetensors', 'seed_mlp.svg']);
    const record = JSON.parse(readFileSync(join(out, 'history.json'), 'utf8'));
    expect(record.partial).toBe(true);
    expect(record.epochs).toBeGreaterThanOrEqual(1);
    expect(record.history.loss).toHaveLength(record.epochs);
    const weights = readSafetensors(readFileSync(join(out, 'seed_mlp.safetensors')));
    expect(weights.metadata['modelc.partial']).toBe('true');
    expect(Number(weights.metadata['modelc.steps'])).toBeGreaterThan(record.epochs * 50); // mid-epoch: more steps than whole epochs
    attachWeights(lowerFile(mlp).graph, weights.tensors);
    // The partial weights compile into an inference module.
    const c = await run('compile', mlp, '--weights', join(out, 'seed_mlp.safetensors'), '-o', join(dir, 'compiled'));
    expect(c.code, c.stderr).toBe(0);
    expect(stdout).toContain(join(out, 'seed_mlp.safetensors'));
  }, 60_000);

  it('bad data: a located error, exit 1 (a bad --data value: exit 2), and no output directory', async () => {
    const good = csv(8);
    const lines = good.split('\n');
    lines[5] = lines[5]!.replace(/^[^,]+/, 'abc');
    const dir = tempDir({ 'bad.csv': lines.join('\n') });
    const bad = await run('train', mlp, '--data', join(dir, 'bad.csv'), '--label', 'y', '-o', join(dir, 'out'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(new RegExp(`^${join(dir, 'bad.csv').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:1: error: .*abc`, 'm'));
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const missing = await run('train', mlp, '--data', join(dir, 'bad.csv'), '--label', 'label', '-o', join(dir, 'out'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/label/);
    const noLabel = await run('train', mlp, '--data', join(dir, 'bad.csv'), '-o', join(dir, 'out'));
    expect(noLabel.code).toBe(2); // usage errors: bad option values
    expect(noLabel.stderr).toMatch(/needs --label/);
    const unknown = await run('train', mlp, '--data', join(dir, 'x.parquet'), '-o', join(dir, 'out'));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown data source/);
    expect(existsSync(join(dir, 'out'))).toBe(false);
    const usage = await run('train', mlp, '--epochs', '0', '-o', join(dir, 'out'));
    expect(usage.code).toBe(2);
  });

  it('a spec without a training block is refused with a clear error', async () => {
    const dir = tempDir({ 'm.nn': 'model m {\n  input x: [4]\n  dense(2)\n}\n', 'd.csv': 'a,b,c,d,y\n1,2,3,4,0\n' });
    const r = await run('train', join(dir, 'm.nn'), '--data', join(dir, 'd.csv'), '--label', 'y', '-o', join(dir, 'out'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no training block/);
  });
});

describe('npm run demo', () => {
  // The demo's default is seed 002's CNN (a few minutes); the test runs its dense version for one epoch.
  it('one epoch per run: the BN run is ahead after epoch 1 in training loss and held-out accuracy, and folding keeps its test accuracy', async () => {
    const out = tempDir();
    const r = spawnSync(process.execPath, ['scripts/demo.js', '--model', 'examples/mnist_mlp.nn', '--epochs', '1', '--output', out], { encoding: 'utf8' });
    expect(r.status, r.stderr + r.stdout).toBe(0);
    // | 1 | loss | acc | test loss | test acc | (x3 runs)
    const row = r.stdout.split('\n').find((l) => /^\|\s+1 \|/.test(l))!;
    const cells = row.split('|').map((c) => c.trim()).filter((c) => c !== '').slice(1).map(Number);
    expect(cells).toHaveLength(12);
    const [bn, noBn, noBnSlow] = [0, 4, 8].map((at) => ({ loss: cells[at]!, testAccuracy: cells[at + 3]! }));
    expect(bn.loss).toBeLessThan(noBn.loss);
    expect(bn.loss).toBeLessThan(noBnSlow.loss);
    expect(bn.testAccuracy).toBeGreaterThan(noBn.testAccuracy);
    expect(bn.testAccuracy).toBeGreaterThan(noBnSlow.testAccuracy);
    expect(r.stdout).toMatch(/test accuracy (\d+\.\d\d)% \(before folding \1%: equal\)/);
    const chart = readFileSync(join(out, 'curves.svg'), 'utf8');
    expect(chart).toContain('no BN, lr 0.001');
    expect(chart).toContain('validation');
    // The BN run's spec carries the demo's momentum; the folded BN module runs: probabilities over 10 digits.
    expect(JSON.parse(readFileSync(join(out, 'mnist_mlp.json'), 'utf8')).layers.filter((l: { type: string }) => l.type === 'batchnorm').map((l: { momentum: number }) => l.momentum)).toContain(0.9);
    const source = readFileSync(join(out, 'bn_lr0.01', 'mnist_mlp.ts'), 'utf8');
    const mod = await importModule(ts.transpileModule(source, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText);
    const p = new mod.Model().predict(new Float32Array(784 * 2).fill(0.5), 2);
    expect(p).toHaveLength(20);
    expect(p.slice(0, 10).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  }, 180_000);
});
