/**
 * `modelc export` end to end through the CLI: the ONNX file it writes runs in
 * onnxruntime and agrees with the reference interpreter on the same weights;
 * `-o x.keras` writes a Keras archive (its contents: test/export/keras-export.test.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { lowerFile } from '../../src/frontend/load.js';
import { interpret } from '../../src/interp/interpret.js';
import { materialize } from '../../src/ops/init.js';
import { randomFeeds } from '../../src/passes/equivalence.js';
import { run, tempDir } from '../helpers/cli.js';

describe('modelc export', () => {
  it.each([[[] as string[]], [['-O']]])('mnist_cnn %j: prints the path; onnxruntime matches the interpreter within 1e-4', async (flags) => {
    const out = join(tempDir(), 'mnist_cnn.onnx');
    const r = await run('export', 'examples/mnist_cnn.nn', '--seed', '4', ...flags, '-o', out);
    expect(r).toEqual({ code: 0, stdout: `${out}\n`, stderr: '' });
    const graph = materialize(lowerFile('examples/mnist_cnn.nn').graph, 4);
    const feeds = randomFeeds(graph, 2, 9);
    const want = interpret(graph, feeds)['dense_1']!;
    const session = await ort.InferenceSession.create(readFileSync(out));
    const result = await session.run({ image: new ort.Tensor('float32', Float32Array.from(feeds['image']!.data), [2, 28, 28, 1]) });
    const got = result['dense_1']!.data as Float32Array;
    expect(got.length).toBe(20);
    const worst = Math.max(...[...got].map((v, i) => Math.abs(v - want.data[i]!)));
    expect(worst).toBeLessThanOrEqual(1e-4);
  });

  it('a bad spec: exit 1, a located error, no file', async () => {
    const dir = tempDir({ 'bad.nn': 'model m {\n  input x: [3]\n  dens(2)\n}\n' });
    const r = await run('export', join(dir, 'bad.nn'), '-o', join(dir, 'm.onnx'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.nn:3:3: error: unknown layer type 'dens'/);
    expect(() => readFileSync(join(dir, 'm.onnx'))).toThrow();
  });

  it('-o model.keras writes a Keras archive; what Keras cannot express is a located error and no file', async () => {
    const dir = tempDir({ 'hs.nn': 'model m {\n  input x: [3]\n  dense(2, activation: hard_sigmoid)\n}\n' });
    const out = join(dir, 'mlp.keras');
    expect(await run('export', 'examples/seed_mlp.nn', '-o', out)).toEqual({ code: 0, stdout: `${out}\n`, stderr: '' });
    expect([...readFileSync(out).subarray(0, 2)]).toEqual([0x50, 0x4b]); // a zip
    const r = await run('export', join(dir, 'hs.nn'), '--format', 'keras', '-o', join(dir, 'hs.bin'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/hs\.nn:3:3: error: layer 'dense' \(dense\) cannot be a Keras layer: activation 'hard_sigmoid'/);
    expect(() => readFileSync(join(dir, 'hs.bin'))).toThrow();
  });
});
