/**
 * `modelc predict` end to end, on every kind of data: MNIST (a nearest-centroid
 * classifier whose weights are made here), CSV with and without a label
 * column, .npy with and without labels. Predictions are checked against the
 * float64 reference interpreter on the same weights, or against sums computed
 * by hand; accuracy against a count made here; the .npy and .csv outputs are
 * read back. Bad data is a located error (exit 1), bad flags a usage error
 * (exit 2), and neither leaves an output file.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadMnist } from '../../src/data/mnist.js';
import { npyValues, parseNpy } from '../../src/data/npy.js';
import { readSafetensors, writeSafetensors } from '../../src/formats/safetensors.js';
import { lowerFile } from '../../src/frontend/load.js';
import type { Graph } from '../../src/ir/graph.js';
import { interpret } from '../../src/interp/interpret.js';
import { attachWeights, type Weight } from '../../src/weights/attach.js';
import { run, tempDir } from '../helpers/cli.js';
import { rng } from '../helpers/tensors.js';

/** .npy bytes made by hand (version 1.0, C order), independent of modelc's writer. */
function npy(descr: '<f8' | '<i4', shape: readonly number[], values: readonly number[]): Buffer {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const header = dict + ' '.repeat(63 - ((10 + dict.length) % 64)) + '\n';
  const data = descr === '<f8' ? Buffer.from(Float64Array.from(values).buffer) : Buffer.from(Int32Array.from(values).buffer);
  return Buffer.concat([Buffer.from('\x93NUMPY\x01\x00', 'latin1'), Buffer.from([header.length & 255, header.length >> 8]), Buffer.from(header, 'latin1'), data]);
}

/** A .npy file read back: its shape and float32 values. */
function readPredictions(path: string): { shape: readonly number[]; values: Float32Array } {
  const a = parseNpy(readFileSync(path), path);
  expect(a.descr).toBe('<f4');
  return { shape: a.shape, values: npyValues(a, new Float32Array(a.shape.reduce((x, y) => x * y, 1))) };
}

/** The reference interpreter's output for `x` (count examples), as float64. */
function reference(graph: Graph, x: ArrayLike<number>, count: number): Float64Array {
  const input = graph.inputs[0]!;
  const shape = [count, ...(input.type.shape.slice(1) as number[])];
  return interpret(graph, { [input.name]: { shape, data: Float64Array.from(x, Math.fround) } })[graph.outputs[0]!]!.data;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let j = 1; j < row.length; j++) if (row[j]! > row[best]!) best = j;
  return best;
}

/** A regression model whose output is the sum of its three inputs (kernel ones, bias zeros). */
const sumSpec = 'model sum {\n  input x: [3]\n  dense(1, kernel_initializer: ones, bias_initializer: zeros)\n}\n';
/** The same with a train block whose loss is mae: predict scores with the spec's loss. */
const sumMaeSpec = 'model sum_mae {\n  input x: [3]\n  dense(1, kernel_initializer: ones, bias_initializer: zeros)\n  train {\n    loss: mae\n    optimizer: sgd(learning_rate: 0.1)\n  }\n}\n';
const seedMlp = 'examples/seed_mlp.nn';
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('modelc predict', () => {
  it('MNIST: a nearest-centroid classifier from --weights; predictions match the interpreter, accuracy matches a count', async () => {
    const spec = 'model centroid {\n  input image: [28, 28, 1]\n  flatten\n  dense(10, activation: softmax)\n}\n';
    const dir = tempDir({ 'centroid.nn': spec });
    // kernel[:, d] = the mean training image m_d, bias[d] = -|m_d|^2 / 2: the largest score is the nearest centroid.
    const mnist = loadMnist({ inputShape: [784], outputSize: 10, loss: 'sparse_categorical_crossentropy' });
    const kernel = new Float32Array(784 * 10);
    const counts = new Float64Array(10);
    for (let i = 0; i < mnist.train.count; i++) {
      const d = mnist.train.y[i]!;
      counts[d]!++;
      for (let p = 0; p < 784; p++) kernel[p * 10 + d]! += mnist.train.x[i * 784 + p]!;
    }
    for (let p = 0; p < 784; p++) for (let d = 0; d < 10; d++) kernel[p * 10 + d]! /= counts[d]!;
    const bias = Float32Array.from({ length: 10 }, (_, d) => {
      let s = 0;
      for (let p = 0; p < 784; p++) s += kernel[p * 10 + d]! ** 2;
      return -s / 2;
    });
    const graph = lowerFile(join(dir, 'centroid.nn')).graph;
    const weights = new Map<string, Weight>(graph.params.map((p) => [p.name, p.type.shape.length === 2 ? { shape: [784, 10], data: kernel } : { shape: [10], data: bias }]));
    writeFileSync(join(dir, 'w.safetensors'), writeSafetensors(weights));

    const r = await run('predict', join(dir, 'centroid.nn'), '--data', 'mnist', '--weights', join(dir, 'w.safetensors'), '-o', join(dir, 'preds.npy'));
    expect(r.code, r.stderr).toBe(0);
    const { shape, values } = readPredictions(join(dir, 'preds.npy'));
    const test = mnist.test!;
    expect(shape).toEqual([test.count, 10]);
    expect(maxAbsDiff(values, reference(attachWeights(graph, weights), test.x, test.count))).toBeLessThan(1e-5);
    let hits = 0;
    for (let i = 0; i < test.count; i++) if (argmax(values.subarray(i * 10, (i + 1) * 10)) === test.y[i]) hits++;
    expect(hits / test.count).toBeGreaterThan(0.7); // the weights were used: a centroid classifier, not chance
    expect(r.stdout).toContain(`accuracy: ${((hits / test.count) * 100).toFixed(2)}% (${hits} of ${test.count} examples, categorical accuracy)`);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe(join(dir, 'preds.npy'));
  });

  it('CSV with a label column: seed_mlp (batchnorm folded) matches the interpreter batch by batch; -o preds.csv reads back', async () => {
    const next = rng(5);
    const rows = Array.from({ length: 10 }, () => Array.from({ length: 16 }, () => Math.round((next() * 4 - 2) * 1000) / 1000));
    const labels = rows.map((f) => (f[0]! + f[1]! > 0 ? 1 : 0));
    const csv = [[...Array.from({ length: 16 }, (_, i) => `f${i}`), 'y'].join(','), ...rows.map((f, i) => [...f, labels[i]].join(','))].join('\n') + '\n';
    const dir = tempDir({ 'd.csv': csv });
    const init = await run('init', seedMlp, '--seed', '2', '-o', join(dir, 'w.safetensors'));
    expect(init.code, init.stderr).toBe(0);
    const r = await run('predict', seedMlp, '--data', join(dir, 'd.csv'), '--label', 'y', '--weights', join(dir, 'w.safetensors'), '--batch-size', '3', '-o', join(dir, 'preds.csv'));
    expect(r.code, r.stderr).toBe(0);

    const graph = attachWeights(lowerFile(seedMlp).graph, readSafetensors(readFileSync(join(dir, 'w.safetensors'))).tensors);
    const want = reference(graph, rows.flat(), rows.length);
    const [header, ...lines] = readFileSync(join(dir, 'preds.csv'), 'utf8').trimEnd().split('\n');
    expect(header).toBe('p0,p1,class');
    expect(lines).toHaveLength(10);
    const got = lines.flatMap((l) => l.split(',').slice(0, 2).map(Number));
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-5);
    lines.forEach((l, i) => expect(Number(l.split(',')[2])).toBe(argmax(want.subarray(i * 2, i * 2 + 2))));
    // seed_mlp trains with binary_crossentropy: Keras's binary accuracy, over every output against the one-hot label.
    let hits = 0;
    for (let i = 0; i < 10; i++) for (let j = 0; j < 2; j++) if ((got[i * 2 + j]! > 0.5 ? 1 : 0) === (labels[i] === j ? 1 : 0)) hits++;
    expect(r.stdout).toContain(`accuracy: ${((hits / 20) * 100).toFixed(2)}% (${hits} of 20 outputs, binary accuracy)`);
  });

  it('CSV without a label column: every column is an input; the .npy output holds the sums', async () => {
    const dir = tempDir({ 'sum.nn': sumSpec, 'x.csv': 'a,b,c\n1,2,3\n0.5,-4,10\n1e-3,0,0\n' });
    const r = await run('predict', join(dir, 'sum.nn'), '--data', join(dir, 'x.csv'), '--seed', '0', '-o', join(dir, 'p.npy'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('predicted 3 examples: output');
    expect(r.stdout).toContain('of shape [1] each, predictions [3, 1]');
    const { shape, values } = readPredictions(join(dir, 'p.npy'));
    expect(shape).toEqual([3, 1]);
    expect([...values]).toEqual([6, 6.5, Math.fround(1e-3)]);
    // The header as NumPy writes it: version 1.0, data aligned to 64 bytes.
    const bytes = readFileSync(join(dir, 'p.npy'));
    const length = bytes.readUInt16LE(8);
    expect(bytes.subarray(0, 8).toString('latin1')).toBe('\x93NUMPY\x01\x00');
    expect((10 + length) % 64).toBe(0);
    expect(bytes.subarray(10, 10 + length).toString('latin1')).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(3, 1\), \} *\n$/);
  });

  it('.npy with labels: regression scored by mse (no train block) or by the spec loss (mae), both counted by hand', async () => {
    const x = [1, 2, 3, -1, 0.5, 0.25, 4, 4, 4];
    const y = [5, 0, 13];
    const dir = tempDir({ 'sum.nn': sumSpec, 'mae.nn': sumMaeSpec });
    writeFileSync(join(dir, 'x.npy'), npy('<f8', [3, 3], x));
    writeFileSync(join(dir, 'y.npy'), npy('<f8', [3], y));
    const sums = [6, -0.25, 12];
    const mse = sums.reduce((s, v, i) => s + (v - y[i]!) ** 2, 0) / 3;
    const mae = sums.reduce((s, v, i) => s + Math.abs(v - y[i]!), 0) / 3;
    const r = await run('predict', join(dir, 'sum.nn'), '--data', join(dir, 'x.npy'), '--labels', join(dir, 'y.npy'), '--seed', '0');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`loss (mse): ${mse.toPrecision(6)} (3 examples)\n`);
    const m = await run('predict', join(dir, 'mae.nn'), '--data', join(dir, 'x.npy'), '--labels', join(dir, 'y.npy'), '--seed', '0');
    expect(m.code, m.stderr).toBe(0);
    expect(m.stdout).toBe(`loss (mae): ${mae.toPrecision(6)} (3 examples)\n`);
  });

  it('.npy without labels: a TF.js model with its own weights (no --seed), -o preds.csv against the interpreter', async () => {
    const model = 'test/fixtures/tfjs/sequential/model.json';
    const next = rng(9);
    const x = Array.from({ length: 4 * 5 }, () => next() * 2 - 1);
    const dir = tempDir();
    writeFileSync(join(dir, 'x.npy'), npy('<f8', [4, 5], x));
    const r = await run('predict', model, '--data', join(dir, 'x.npy'), '-o', join(dir, 'p.csv'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^predicted 4 examples: output '.+' of shape \[2\] each, predictions \[4, 2\]\n/);
    const [header, ...lines] = readFileSync(join(dir, 'p.csv'), 'utf8').trimEnd().split('\n');
    expect(header).toBe('p0,p1'); // a linear output: regression, no class column
    const got = lines.flatMap((l) => l.split(',').map(Number));
    expect(maxAbsDiff(got, reference(lowerFile(model).graph, x, 4))).toBeLessThan(1e-5);
    // The CSV cells read back as exactly the float32 values the .npy output holds.
    const again = await run('predict', model, '--data', join(dir, 'x.npy'), '-o', join(dir, 'p.npy'));
    expect(again.code, again.stderr).toBe(0);
    expect(got.map(Math.fround)).toEqual([...readPredictions(join(dir, 'p.npy')).values]);
  });

  it("from train's weights, predicts what train's folded module predicts; that module's .js runs with node as it is", async () => {
    const next = rng(11);
    const rows = Array.from({ length: 40 }, () => Array.from({ length: 16 }, () => Math.round((next() * 2 - 1) * 1000) / 1000));
    const csv = [[...Array.from({ length: 16 }, (_, i) => `f${i}`), 'y'].join(','), ...rows.map((f) => [...f, f[0]! > 0 ? 1 : 0].join(','))].join('\n') + '\n';
    const dir = tempDir({ 'd.csv': csv });
    const out = join(dir, 'out');
    const t = await run('train', seedMlp, '--data', join(dir, 'd.csv'), '--label', 'y', '--epochs', '1', '-o', out);
    expect(t.code, t.stderr).toBe(0);
    const ran = spawnSync(process.execPath, [join(out, 'seed_mlp.js')], { encoding: 'utf8' });
    expect(ran.status, ran.stderr).toBe(0);
    const r = await run('predict', seedMlp, '--data', join(dir, 'd.csv'), '--label', 'y', '--weights', join(out, 'seed_mlp.safetensors'), '-o', join(dir, 'p.npy'));
    expect(r.code, r.stderr).toBe(0);
    const mod = (await import(pathToFileURL(join(out, 'seed_mlp.js')).href)) as { predict: (x: Float32Array, n: number) => Float32Array };
    expect([...readPredictions(join(dir, 'p.npy')).values]).toEqual([...mod.predict(Float32Array.from(rows.flat()), 40)]);
  });

  it('bad data: located errors with both sizes, exit 1, and no output file', async () => {
    const dir = tempDir({
      'sum.nn': sumSpec,
      'cells.csv': 'a,b,c\n1,2,3\n4,5,6,7\n',
      'word.csv': 'a,b,c\n1,2,3\n4,five,6\n',
      'narrow.csv': 'a,b\n1,2\n',
      'nolabel.csv': 'a,b,c\n1,2,3\n',
    });
    writeFileSync(join(dir, 'wide.npy'), npy('<f8', [2, 4], [1, 2, 3, 4, 5, 6, 7, 8]));
    writeFileSync(join(dir, 'x.npy'), npy('<f8', [3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]));
    writeFileSync(join(dir, 'y2.npy'), npy('<i4', [2], [0, 1]));
    const spec = join(dir, 'sum.nn');
    const out = join(dir, 'p.npy');
    const cases: [string[], RegExp][] = [
      [['--data', join(dir, 'cells.csv')], new RegExp(`^${escape(join(dir, 'cells.csv'))}:3:1: error: this row has 4 cells, but the header has 3`, 'm')],
      [['--data', join(dir, 'word.csv')], new RegExp(`^${escape(join(dir, 'word.csv'))}:3:3: error: row 2, column 'b': 'five' is not a number`, 'm')],
      [['--data', join(dir, 'narrow.csv')], new RegExp(`^${escape(join(dir, 'narrow.csv'))}:1:1: error: the CSV has 2 feature columns \\(every column is an input.*\\), but the model takes 3 inputs per example \\(shape \\[3\\]\\)`, 'm')],
      [['--data', join(dir, 'nolabel.csv'), '--label', 'y'], new RegExp(`^${escape(join(dir, 'nolabel.csv'))}:1:1: error: no label column 'y'`, 'm')],
      [['--data', join(dir, 'wide.npy')], new RegExp(`^${escape(join(dir, 'wide.npy'))}: error: x has shape \\(2, 4\\), but the model takes \\[3\\] per example`, 'm')],
      [['--data', join(dir, 'x.npy'), '--labels', join(dir, 'y2.npy')], new RegExp(`^${escape(join(dir, 'y2.npy'))}: error: x has 3 examples \\(shape \\(3, 3\\)\\) but y has 2`, 'm')],
      [['--data', 'mnist'], /MNIST images are 28x28x1 \(784 floats\) and the model takes \[3\] \(3 floats\)/],
    ];
    for (const [args, message] of cases) {
      const r = await run('predict', spec, ...args, '--seed', '0', '-o', out);
      expect(r.code, args.join(' ') + '\n' + r.stderr).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(r.stdout).toBe('');
      expect(existsSync(out)).toBe(false);
    }
    // A bare spec without --weights or --seed: refused, saying how to give weights.
    const bare = await run('predict', spec, '--data', join(dir, 'x.npy'), '-o', out);
    expect(bare.code).toBe(1);
    expect(bare.stderr).toMatch(/the model has no weights of its own: give --weights w\.safetensors .*or --seed N/);
    expect(existsSync(out)).toBe(false);
  });

  it('bad flags are usage errors (exit 2) before anything is read', async () => {
    const dir = tempDir({ 'sum.nn': sumSpec, 'x.csv': 'a,b,c\n1,2,3\n' });
    const spec = join(dir, 'sum.nn');
    const x = join(dir, 'x.csv');
    const cases: [string[], RegExp][] = [
      [['--data', x, '-o', join(dir, 'p.txt')], /cannot tell the output format of '.*p\.txt': use a \.npy or \.csv name/],
      [['--data', join(dir, 'x.parquet')], /unknown data source/],
      [['--data', x, '--labels', join(dir, 'y.npy')], /--labels goes with an \.npy file/],
      [['--data', 'mnist', '--label', 'y'], /--label names a column of a CSV file/],
      [['--data', x, '--weights', join(dir, 'w.safetensors')], /--weights and --seed exclude each other/],
      [['--data', x, '--batch-size', '0'], /--batch-size/],
      [[], /required option '--data <source>'/],
    ];
    for (const [args, message] of cases) {
      const r = await run('predict', spec, ...args, ...(args.includes('--weights') ? ['--seed', '1'] : []));
      expect(r.code, args.join(' ') + '\n' + r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect(existsSync(join(dir, 'p.txt'))).toBe(false);
  });
});
