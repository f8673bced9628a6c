/**
 * Sizes, limits and bad numbers (issue 16): sizes that cannot exist, JSON
 * nested too deep, numbers out of float64's range, NaN and infinite weights
 * and out-of-range initializer arguments all end in a located diagnostic
 * (exit 1), or a usage error (exit 2) for a bad option, never in "internal
 * error". Layer counts are near-linear; the timing is measured, not tested
 * (see the issue's closing note), but the lowering's own work per layer is.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ModelcError } from '../../src/diagnostics/diagnostic.js';
import { writeSafetensors } from '../../src/formats/safetensors.js';
import { lowerFile } from '../../src/frontend/load.js';
import { MAX_JSON_DEPTH } from '../../src/frontend/json.js';
import type { Graph } from '../../src/ir/graph.js';
import { activationSizes, batchProblem, formatCount, maxBatch, tensorSizeProblem } from '../../src/ir/limits.js';
import { verifyGraph } from '../../src/ops/verify.js';
import { initializerProblem, materialize } from '../../src/ops/init.js';
import { attachWeights, nonfinite } from '../../src/weights/attach.js';
import { run, tempDir } from '../helpers/cli.js';

/** Runs the CLI on a spec written to a temp dir; the result plus the spec's path. */
async function runOn(name: string, text: string, ...args: string[]) {
  const dir = tempDir({ [name]: text });
  const path = join(dir, name);
  return { ...(await run(...args.map((a) => (a === '$SPEC' ? path : a.replace('$DIR', dir))))), path, dir };
}

/** A clean located error: exit 1, `path:line:col: error:` and these words, no internal error or stack. */
function expectLocated(r: { code: number; stderr: string; path: string }, ...words: (string | RegExp)[]) {
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).toMatch(new RegExp(`^${r.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: error: `));
  for (const w of words) expect(r.stderr).toMatch(w);
  expect(r.stderr).not.toMatch(/internal error|    at /);
}

const nn = (input: string, ...layers: string[]) => `model m {\n  input x: ${input}\n${layers.map((l) => `  ${l}\n`).join('')}}\n`;

describe('sizes that cannot exist are located errors before anything is allocated', () => {
  it.each([
    ['dense(1e12)', nn('[784]', 'dense(1e12)'), 'check', ['3:3', "layer 'dense' would need a kernel of 784 x 1000000000000 = 7.8e14 elements", 'at most 2^31 - 1']],
    ['an input of [1e15]', nn('[1e15]', 'dense(10)'), 'check', ['2:12', "input 'x' would need a tensor of 1000000000000000 = 1e15 elements per example"]],
    ['an input of [1e5, 1e5, 1e5, 1e5] (compile)', nn('[1e5, 1e5, 1e5, 1e5]', 'relu'), 'compile', ['100000 x 100000 x 100000 x 100000 = 1e20 elements per example']],
    ['an input of [1e5, 1e5, 1e5, 1e5] (export)', nn('[1e5, 1e5, 1e5, 1e5]', 'relu'), 'export', ['= 1e20 elements per example']],
    ['a [100000, 100000, 3] conv input', nn('[100000, 100000, 3]', 'conv2d(8, 3)'), 'compile', ['100000 x 100000 x 3 = 3e10 elements per example']],
    ['a conv output too large for its small input', nn('[40000, 40000, 1]', 'conv2d(64, 3, padding: same)'), 'check', ["layer 'conv2d' would need an output of 40000 x 40000 x 64 = 1e11 elements per example"]],
    ['an upsampling output', nn('[1000, 1000, 3]', 'upsampling2d(size: 100)'), 'check', ["layer 'up_sampling2d' would need an output of 100000 x 100000 x 3 = 3e10 elements per example"]],
  ])('%s', async (_, text, command, words) => {
    const args = command === 'compile' ? ['compile', '$SPEC', '-o', '$DIR/out'] : command === 'export' ? ['export', '$SPEC', '-o', '$DIR/m.onnx'] : ['check', '$SPEC'];
    const r = await runOn('m.nn', text, ...args);
    expectLocated(r, ...(words as string[]));
    expect(r.stdout).toBe('');
  });

  it('the whole model is capped at 2^32 elements, located at the layer that crosses it', async () => {
    // each kernel is 46340 x 46340 = 2.1e9 elements (under 2^31); the second layer's bias crosses 2^32
    const r = await runOn('m.nn', nn('[46340]', 'dense(46340)', 'dense(46340)', 'dense(46340)'), 'check', '$SPEC');
    expectLocated(r, /m\.nn:4:3: error: at layer 'dense_1' the model needs 4\.3e9 elements/, 'a model holds at most 2^32');
  });

  it('the same checks apply to a JSON spec and a TF.js model.json', async () => {
    const json = JSON.stringify({ name: 'm', inputs: [{ name: 'x', shape: [784] }], layers: [{ type: 'dense', units: 1e12 }] }, null, 2);
    expectLocated(await runOn('m.json', json, 'check', '$SPEC'), /m\.json:12:5: error: layer 'dense' would need a kernel/);
    const dense = { class_name: 'Dense', config: { name: 'd', units: 1e12, batch_input_shape: [null, 784] } };
    const modelJson = JSON.stringify({ format: 'layers-model', modelTopology: { class_name: 'Sequential', config: { name: 'm', layers: [dense] } } });
    expectLocated(await runOn('model.json', modelJson, 'check', '$SPEC'), "layer 'd' would need a kernel of 784 x 1000000000000");
  });

  it('the IR verifier refuses a graph with a tensor beyond the limit (graphs from code or IR text)', () => {
    const g: Graph = {
      name: 'g',
      inputs: [{ name: 'x', type: { dtype: 'f32', shape: ['N', 100000, 100000] } }],
      params: [],
      nodes: [{ op: 'relu', result: 'y', type: { dtype: 'f32', shape: ['N', 100000, 100000] }, operands: ['x'], attrs: {}, layer: 'y' }],
      outputs: ['y'],
    };
    const err = (() => {
      try {
        verifyGraph(g);
      } catch (e) {
        return e as ModelcError;
      }
      return undefined;
    })();
    expect(err?.diagnostics.map((d) => d.code)).toEqual(['limit', 'limit']);
    expect(err?.diagnostics[0]!.message).toMatch(/100000 x 100000 = 1e10 elements per example/);
  });

  it('limits.ts says what it checks', () => {
    expect(tensorSizeProblem([2147483647], 'a')).toBeUndefined();
    expect(tensorSizeProblem([2147483648], 'a')).toMatch(/= 2\.1e9 elements; a tensor holds at most 2\^31 - 1 \(2,147,483,647\)$/);
    expect(tensorSizeProblem([3, 0], 'a')).toMatch(/dimension 0 is not a positive integer/);
    expect(tensorSizeProblem([2 ** 60, 1.5], 'a')).toMatch(/dimension 1152921504606847000 is not a positive integer/);
    expect(formatCount(999999)).toBe('999999');
    expect(formatCount(7.84e14)).toBe('7.8e14');
    expect(maxBatch({ largest: 64, total: 534 })).toBe(Math.floor(2 ** 28 / 534));
    expect(batchProblem(4, { largest: 64, total: 534 })).toBeUndefined();
  });
});

describe('batch sizes', () => {
  it('verify --batch 1e9 is a usage error with the numbers', async () => {
    const r = await run('verify', 'examples/seed_mlp.nn', '--batch', '1e9');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--batch 1e9: a batch of 1000000000 would need 1000000000 x 64 = 6\.4e10 elements for its largest tensor; a tensor holds at most 2\^31 - 1, so the batch can be at most 502688/);
    expect(r.stderr).not.toMatch(/internal error|Invalid typed array/);
  });

  it("verify --batch whose activations together exceed 2^28 elements is refused before the interpreter runs", async () => {
    const r = await run('verify', 'examples/seed_mlp.nn', '--batch', '30000000');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/30000000 x 534 = 1\.6e10 elements of activations \(534 per example\); a batch holds at most 2\^28/);
  });

  it('train refuses a batch whose activations cannot be held, before the first step', async () => {
    const dir = tempDir({
      'm.nn': nn('[1]', 'dense(300000)', 'dense(1)', 'train { loss: mse, optimizer: sgd }'),
      'd.csv': 'a,y\n' + Array.from({ length: 1000 }, (_, i) => `${i},${i % 2}`).join('\n') + '\n',
    });
    const r = await run('train', join(dir, 'm.nn'), '--data', join(dir, 'd.csv'), '--label', 'y', '--batch-size', '5000', '-o', join(dir, 'out'));
    expect(r.code, r.stderr).toBe(1);
    // the batch is min(5000, 1000 examples)
    expect(r.stderr).toMatch(/error: --batch-size 5000: a batch of 1000 would need 1000 x 300002 = 3e8 elements of activations \(300002 per example\); a batch holds at most 2\^28/);
    expect(r.stderr).not.toMatch(/epoch 1|internal error/);
    const sizes = activationSizes(lowerFile(join(dir, 'm.nn')).graph);
    expect(sizes).toEqual({ largest: 300000, total: 300002 });
  });
});

describe('JSON nesting depth and numbers', () => {
  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);

  it('a JSON spec nested 100,000 levels', async () => {
    const text = `{"name": "m", "inputs": [{"name": "x", "shape": [4]}], "layers": [{"type": "dense", "units": ${deep(100000)}}]}`;
    const r = await runOn('m.json', text, 'check', '$SPEC');
    expectLocated(r, `JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
    expect(r.stderr).not.toMatch(/Maximum call stack/);
  });

  it('a TF.js model.json and a Keras config nested 100,000 levels', async () => {
    const modelJson = `{"format": "layers-model", "modelTopology": ${'{"a":'.repeat(100000)}1${'}'.repeat(100000)}}`;
    expectLocated(await runOn('model.json', modelJson, 'check', '$SPEC'), 'JSON nested deeper than 256 levels');
    expectLocated(await runOn('model.json', modelJson, 'import', '$SPEC', '-o', '$DIR/out'), 'JSON nested deeper than 256 levels');
    const config = `{"class_name": "Sequential", "config": ${deep(100000)}}`;
    expectLocated(await runOn('config.json', config, 'check', '$SPEC'), 'JSON nested deeper than 256 levels');
  });

  it('nesting up to the limit is fine; brackets inside strings do not count', async () => {
    const name = '['.repeat(1000);
    const text = JSON.stringify({ name: 'm', inputs: [{ name: 'x', shape: [4] }], layers: [{ type: 'dense', units: 2, name }] });
    const r = await runOn('m.json', text, 'check', '$SPEC');
    expect(r.code, r.stderr).toBe(0);
    const at = await runOn('m.json', `{"name": "m", "inputs": [{"name": "x", "shape": [4]}], "layers": [{"type": "dense", "units": ${deep(MAX_JSON_DEPTH - 3)}}]}`, 'check', '$SPEC');
    expectLocated(at, "dense attribute 'units'");
  });

  it.each([
    ['1e309', '1e309'],
    ['-1e309', '-1e309'],
  ])('JSON %s is a number out of range for a float64, not "null"', async (_, number) => {
    const text = `{"name": "m", "inputs": [{"name": "x", "shape": [4]}], "layers": [{"type": "dense", "units": ${number}}]}`;
    const r = await runOn('m.json', text, 'check', '$SPEC');
    expectLocated(r, `m.json:1:${text.indexOf(number) + 1}: error: number ${number} is out of range for a float64`);
    expect(r.stderr).not.toMatch(/got null/);
  });

  it('in a model.json too', async () => {
    const r = await runOn('model.json', '{"format": "layers-model", "modelTopology": {"class_name": "Sequential", "config": {"layers": [], "x": 1e400}}}', 'check', '$SPEC');
    expectLocated(r, 'number 1e400 is out of range for a float64');
  });
});

/** A one-layer spec, and weights for it with these kernel values. */
function nanCase(kernel: number[], bias = [0, 0]) {
  const dir = tempDir({ 'm.nn': nn('[3]', 'dense(2)') });
  const tensors = new Map([
    ['dense/kernel', { shape: [3, 2], data: new Float32Array(kernel) }],
    ['dense/bias', { shape: [2], data: new Float32Array(bias) }],
  ]);
  writeFileSync(join(dir, 'w.safetensors'), writeSafetensors(tensors));
  return { dir, spec: join(dir, 'm.nn'), weights: join(dir, 'w.safetensors'), tensors };
}

/** A TF.js model.json with one Dense layer (3 -> 2) and its shard. */
function tfjsCase(values: number[]) {
  const dir = tempDir();
  const layer = { class_name: 'Dense', config: { name: 'd', units: 2, batch_input_shape: [null, 3] } };
  const manifest = [{ paths: ['w.bin'], weights: [{ name: 'd/kernel', shape: [3, 2], dtype: 'float32' }, { name: 'd/bias', shape: [2], dtype: 'float32' }] }];
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: { class_name: 'Sequential', config: { name: 'm', layers: [layer] } }, weightsManifest: manifest }));
  writeFileSync(join(dir, 'w.bin'), new Uint8Array(new Float32Array(values).buffer));
  return { dir, path: join(dir, 'model.json') };
}

describe('NaN and infinite weights', () => {
  it('a safetensors file: the tensor, the first bad flat and multi-index, the count', async () => {
    const c = nanCase([0.5, 0.5, NaN, 0.5, 0.5, NaN], [1, -Infinity]);
    for (const args of [
      ['compile', c.spec, '--weights', c.weights, '-o', join(c.dir, 'out')],
      ['verify', c.spec, '--weights', c.weights],
      ['export', c.spec, '--weights', c.weights, '-o', join(c.dir, 'm.onnx')],
      ['ir', c.spec, '-O', '--weights', c.weights],
    ]) {
      const r = await run(...args);
      expect(r.code, args[0]).toBe(1);
      expect(r.stderr).toContain(`${c.weights}: error: tensor 'dense/kernel' holds NaN at index 2 [1, 0] (2 non-finite values in all); weights must be finite numbers (--allow-nonfinite`);
      expect(r.stderr).toContain("tensor 'dense/bias' holds -Infinity at index 1 [1];");
      expect(r.stderr).not.toMatch(/internal error/);
    }
  });

  it('--allow-nonfinite lets them through', async () => {
    const c = nanCase([0.5, Infinity, 0.5, 0.5, 0.5, 0.5]);
    const r = await run('compile', c.spec, '--weights', c.weights, '-o', join(c.dir, 'out'), '--allow-nonfinite');
    expect(r.code, r.stderr).toBe(0);
    expect((await run('verify', c.spec, '--weights', c.weights, '--allow-nonfinite')).stderr).not.toMatch(/non-finite|finite numbers/);
  });

  it('a TF.js shard: check, compile and import refuse it; --allow-nonfinite accepts it', async () => {
    const c = tfjsCase([1, 2, 3, 4, 5, NaN, 0, 0]);
    for (const args of [['check', c.path], ['compile', c.path, '-o', join(c.dir, 'out')], ['import', c.path, '-o', join(c.dir, 'imp')]]) {
      const r = await run(...args);
      expect(r.code, args[0]).toBe(1);
      expect(r.stderr).toContain("error: tensor 'd/kernel' holds NaN at index 5 [2, 1]");
    }
    expect((await run('check', c.path, '--allow-nonfinite')).code).toBe(0);
    expect((await run('import', c.path, '-o', join(c.dir, 'imp'), '--allow-nonfinite')).code).toBe(0);
  });

  it('the API: attachWeights and lowerFile take allowNonfinite', () => {
    const c = nanCase([0, 0, 0, 0, 0, 0], [NaN, 0]);
    const { graph } = lowerFile(c.spec);
    expect(() => attachWeights(graph, c.tensors, 'w')).toThrow(/holds NaN at index 0 \[0\]/);
    expect(attachWeights(graph, c.tensors, 'w', { allowNonfinite: true }).params[1]!.value![0]).toBeNaN();
    expect(() => lowerFile(tfjsCase([0, 0, 0, 0, 0, 0, Infinity, 0]).path)).toThrow(/'d\/bias' holds Infinity at index 0/);
    expect(lowerFile(tfjsCase([0, 0, 0, 0, 0, 0, Infinity, 0]).path, { allowNonfinite: true }).graph.params.length).toBe(2);
    expect(nonfinite('t', [2, 3, 4], Float32Array.from({ length: 24 }, (_, i) => (i === 23 ? -Infinity : i)))).toMatch(/-Infinity at index 23 \[1, 2, 3\]/);
  });
});

describe('initializer arguments are validated by their schema', () => {
  it.each([
    ['random_normal(stddev: -1)', "random_normal argument 'stddev' (dense attribute 'kernel_initializer'): expected a number > 0 and <= 1e18, got -1"],
    ['truncated_normal(stddev: 0)', "truncated_normal argument 'stddev'"],
    ['constant(value: 1e38)', "constant argument 'value' (dense attribute 'kernel_initializer'): expected a number >= -1e18 and <= 1e18, got 1e+38"],
    ['random_uniform(minval: -1e30)', "random_uniform argument 'minval'"],
    ['glorot_uniform(seed: 1.5)', "glorot_uniform argument 'seed'"],
    ['he_normal(stddev: 2)', "unknown argument 'stddev' of he_normal (dense attribute 'kernel_initializer'); he_normal takes 'seed'"],
    ['random_normal(stdev: 0.1)', "unknown argument 'stdev' of random_normal (dense attribute 'kernel_initializer'); random_normal takes 'mean', 'stddev', 'seed'; did you mean 'stddev'?"],
    ['RandomNormal(stddev: -2)', "random_normal argument 'stddev'"],
  ])('%s', async (init, message) => {
    const r = await runOn('m.nn', nn('[4]', `dense(2, kernel_initializer: ${init})`), 'check', '$SPEC');
    expectLocated(r, message);
  });

  it('valid arguments pass', async () => {
    const r = await runOn('m.nn', nn('[4]', 'dense(2, kernel_initializer: random_normal(mean: 1, stddev: 1e-3, seed: 3), bias_initializer: constant(value: -2))'), 'check', '$SPEC');
    expect(r.code, r.stderr).toBe(0);
  });

  it('a JSON spec: located at the argument', async () => {
    const text = '{"name": "m", "inputs": [{"name": "x", "shape": [4]}],\n "layers": [{"type": "dense", "units": 2, "kernel_initializer": {"type": "random_normal", "stddev": -1}}]}';
    expectLocated(await runOn('m.json', text, 'check', '$SPEC'), /m\.json:2:101: error: random_normal argument 'stddev'/);
  });

  it('an IR graph (not validated as a spec) is refused when sampled', () => {
    expect(initializerProblem({ type: 'random_normal', args: { stddev: 1.5e300 } })).toMatch(/random_normal argument 'stddev' = 1\.5e\+300/);
    expect(initializerProblem({ type: 'glorot_uniform', args: { seed: 3 } })).toBeUndefined();
    const g: Graph = { name: 'g', inputs: [], params: [{ name: 'p', type: { dtype: 'f32', shape: [2] }, trainable: true, init: { type: 'constant', args: { value: -1e38 } } }], nodes: [], outputs: ['p'] };
    expect(() => materialize(g, 0)).toThrow(/cannot initialize parameter 'p': constant argument 'value'/);
  });

  it('an imported initializer modelc refuses is a warning, and the layer keeps its default', async () => {
    const init = { class_name: 'RandomNormal', config: { mean: 0, stddev: 0 } };
    const layer = { class_name: 'Dense', config: { name: 'd', units: 2, batch_input_shape: [null, 3], kernel_initializer: init } };
    const r = await runOn('model.json', JSON.stringify({ format: 'layers-model', modelTopology: { class_name: 'Sequential', config: { name: 'm', layers: [layer] } } }), 'check', '$SPEC');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: layer 'd' \(Dense\): 'kernel_initializer': random_normal argument 'stddev' = 0: .*; the layer keeps modelc's default initializer/);
  });
});

describe('layer count', () => {
  it('a chain of 20,000 layers lowers (the timing is in the issue note, not a test)', () => {
    const dir = tempDir({ 'chain.nn': nn('[4]', ...Array.from({ length: 20000 }, () => 'dense(4)')) });
    const lowered = lowerFile(join(dir, 'chain.nn'));
    expect(lowered.layers.length).toBe(20000);
    expect(lowered.layers[19999]!.name).toBe('dense_19999');
  });
});
