/**
 * `modelc insert-bn` end to end: on a small model with initialized weights
 * and a tiny CSV it writes the spec (batchnorm before the activation, the
 * train block kept) and all the weights; the new model predicts what the
 * original does, unfolded and folded by `modelc compile`; `modelc train`
 * fine-tunes it from those weights and `modelc compile` folds the result
 * into a module that predicts what the trained Trainer does. JSON and .npy
 * inputs give a .json spec; usage errors exit 2 and data errors 1, with
 * nothing written.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeNpy } from '../../src/data/npy.js';
import { readSafetensors } from '../../src/formats/safetensors.js';
import { loadSpec } from '../../src/frontend/load.js';
import { fromF32 } from '../../src/ir/tensor.js';
import { run, tempDir } from '../helpers/cli.js';
import { importModule, type InferenceModule } from '../helpers/generated.js';
import { expectClose, rng } from '../helpers/tensors.js';
import type { TrainerInstance } from '../helpers/trainer.js';

const spec = `# a small classifier
model tiny {
  input x: [6]
  dense(8, activation: relu)  # hidden
  dense(2, activation: softmax)
  train {
    loss: categorical_crossentropy
    optimizer: sgd(learning_rate: 0.05)
    metrics: [accuracy]
    batch_size: 16
    epochs: 3
  }
}
`;

const ROWS = 96;

/** `ROWS` examples of 6 off-centre features and a label: whether the first two sum above 2. */
function data(): { csv: string; x: Float32Array } {
  const next = rng(5);
  const x = Float32Array.from({ length: ROWS * 6 }, () => Math.fround(Number((0.5 + 1.5 * next()).toFixed(4))));
  const lines = Array.from({ length: ROWS }, (_, r) => {
    const f = Array.from(x.subarray(r * 6, r * 6 + 6));
    return [...f.map((v) => v.toFixed(4)), f[0]! + f[1]! > 2 ? 1 : 0].join(',');
  });
  return { csv: ['a,b,c,d,e,f,y', ...lines].join('\n') + '\n', x };
}

async function ok(...args: string[]) {
  const r = await run(...args);
  expect(r.code, r.stderr).toBe(0);
  return r;
}

/** The inference module `modelc compile` writes for `specPath` with `weights`, imported. */
async function compiled(specPath: string, weights: string, out: string, ...flags: string[]): Promise<InferenceModule & { source: string }> {
  await ok('compile', specPath, '--weights', weights, '--emit', 'js', '-o', out, ...flags);
  const source = readFileSync(join(out, 'tiny.js'), 'utf8');
  return { ...(await importModule(source)), source };
}

describe('modelc insert-bn', () => {
  it('inserts before the activation, keeps the function, and the result fine-tunes and folds back', async () => {
    const { csv, x } = data();
    const dir = tempDir({ 'tiny.nn': spec, 'd.csv': csv });
    const at = (f: string) => join(dir, f);
    await ok('init', at('tiny.nn'), '--seed', '3', '-o', at('w.safetensors'));
    const r = await ok('insert-bn', at('tiny.nn'), '--weights', at('w.safetensors'), '--data', at('d.csv'), '--label', 'y', '--samples', '80', '-o', at('out'));
    expect(r.stdout).toBe(`${at('out/tiny.nn')}\n${at('out/tiny.safetensors')}\n`);
    expect(r.stderr).toContain(`CSV ${at('d.csv')}: 96 examples, 6 features, label column 'y' not used; calibrating on the first 80\n`);
    expect(r.stderr).toContain('inserted batch_normalization after dense (8 channels), its activation moved to activation\n');

    // The layer, then the batchnorm, then its activation; comments and the train block as they were.
    const text = readFileSync(at('out/tiny.nn'), 'utf8');
    expect(text).toContain('# a small classifier\nmodel tiny {\n  input x: [6]\n  dense(8)  # hidden\n  batchnorm\n  activation(activation: relu)\n  dense(2, activation: softmax)\n');
    expect(loadSpec(at('out/tiny.nn')).spec.training).toEqual(loadSpec(at('tiny.nn')).spec.training);
    const weights = readSafetensors(readFileSync(at('out/tiny.safetensors'))).tensors;
    expect([...weights.keys()].sort()).toEqual([
      'batch_normalization/beta', 'batch_normalization/gamma', 'batch_normalization/moving_mean', 'batch_normalization/moving_variance',
      'dense/bias', 'dense/kernel', 'dense_1/bias', 'dense_1/kernel',
    ]);

    // Inference: the original, the new model with batchnorm as written, and folded by `modelc compile`.
    const shape = [ROWS, 2];
    const original = (await compiled(at('tiny.nn'), at('w.safetensors'), at('gen0'))).predict!(x, ROWS);
    const unfolded = await compiled(at('out/tiny.nn'), at('out/tiny.safetensors'), at('gen1'), '--no-optimize');
    expect(unfolded.source).toMatch(/batchnorm/);
    expectClose(fromF32(shape, unfolded.predict!(x, ROWS)), fromF32(shape, original), 1e-5);
    const folded = await compiled(at('out/tiny.nn'), at('out/tiny.safetensors'), at('gen2'));
    expect(folded.source).not.toMatch(/function batchnorm/);
    expectClose(fromF32(shape, folded.predict!(x, ROWS)), fromF32(shape, original), 1e-5);

    // Fine-tune from those weights; fold the trained model and compare it with the trained Trainer.
    const t = await ok('train', at('out/tiny.nn'), '--weights', at('out/tiny.safetensors'), '--data', at('d.csv'), '--label', 'y', '--epochs', '1', '-o', at('trained'));
    expect(t.stdout).toMatch(/training accuracy \(96 examples\): (\d+\.\d\d)% before folding, \1% after folding \(equal\)/);
    const trained = readFileSync(at('trained/tiny.safetensors'));
    const deployed = await compiled(at('out/tiny.nn'), at('trained/tiny.safetensors'), at('gen3'));
    expect(deployed.source).not.toMatch(/function batchnorm/);
    await ok('compile', at('out/tiny.nn'), '--target', 'training', '--emit', 'js', '-o', at('gen4'));
    const { Trainer } = await importModule<{ Trainer: new (o: { weights: Uint8Array }) => TrainerInstance }>(readFileSync(at('gen4/tiny.train.js'), 'utf8'));
    const trainer = new Trainer({ weights: new Uint8Array(trained) });
    // Training moved the batchnorm away from the identity (its weights are not what insert-bn wrote).
    expect(trainer.getWeights()['batch_normalization/beta']).not.toEqual(weights.get('batch_normalization/beta')!.data);
    expectClose(fromF32(shape, deployed.predict!(x, ROWS)), fromF32(shape, trainer.predict(x, ROWS)), 1e-5);
  });

  it('a JSON spec gives a JSON spec; an .npy file of inputs needs no labels', async () => {
    const { x } = data();
    const dir = tempDir({ 'tiny.nn': spec });
    const at = (f: string) => join(dir, f);
    await ok('convert', at('tiny.nn'), '-o', at('tiny.json'));
    writeFileSync(at('x.npy'), writeNpy([ROWS, 6], x));
    const r = await ok('insert-bn', at('tiny.json'), '--seed', '1', '--data', at('x.npy'), '--layers', 'dense', '--name', 'tuned', '-o', at('out'));
    expect(r.stdout).toBe(`${at('out/tuned.json')}\n${at('out/tuned.safetensors')}\n`);
    const layers = JSON.parse(readFileSync(at('out/tuned.json'), 'utf8')).layers as { type: string }[];
    expect(layers.map((l) => l.type)).toEqual(['dense', 'batchnorm', 'activation', 'dense']);
  });

  it('usage errors exit 2 and name the candidates; data and model errors exit 1; nothing is written', async () => {
    const dir = tempDir({ 'tiny.nn': spec, 'd.csv': 'a,b,c,d,e,f,y\n1,2,3,4,5,6,0\n1,2,x,4,5,6,1\n' });
    const at = (f: string) => join(dir, f);
    const fails = async (code: number, message: string | RegExp, ...args: string[]) => {
      const r = await run('insert-bn', at('tiny.nn'), '-o', at('out'), ...args);
      expect(r.code, r.stderr).toBe(code);
      expect(r.stderr).toMatch(message);
      expect(existsSync(at('out'))).toBe(false);
    };
    await fails(2, "error: --layers: no layer 'dense_7' in 'tiny'; the layers that can take one: 'dense', 'dense_1'", '--seed', '1', '--layers', 'dense,dense_7');
    await fails(2, /--samples <n>' argument '0' is invalid/, '--seed', '1', '--samples', '0');
    await fails(2, "error: unknown data source 'x.txt'", '--seed', '1', '--data', 'x.txt');
    await fails(2, 'error: --label names a column of a CSV file', '--seed', '1', '--label', 'y');
    await fails(1, /d\.csv:3:5: error: row 2, column 'c': 'x' is not a number/, '--seed', '1', '--data', at('d.csv'), '--label', 'y');
    await fails(1, 'the model has no weights of its own', '--data', at('d.csv'), '--label', 'y');
    const mlp = await run('insert-bn', 'examples/mnist_mlp.nn', '--seed', '0', '-o', at('out'));
    expect(mlp.code).toBe(1);
    expect(mlp.stderr).toContain("no layer of 'mnist_mlp' to insert a batchnorm after: only model outputs are eligible ('dense_2')");
    expect(existsSync(at('out'))).toBe(false);
  });
});
