/**
 * Keras export and import as inverses: a spec exported to `.keras` and read
 * back by the Keras importer (`lowerFileAsync`) is the same model with the
 * same weights, so the reference interpreter gives the same outputs; and a
 * model Keras saved, imported and exported again, still predicts what Keras
 * predicted (test/fixtures/keras/format, written by Keras 3).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportCommand } from '../../src/cli/export.js';
import { exportKeras } from '../../src/export/keras.js';
import { lowerFile, lowerFileAsync } from '../../src/frontend/load.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { interpret } from '../../src/interp/interpret.js';
import { materialize } from '../../src/ops/init.js';
import { tempDir } from '../helpers/cli.js';

/** Two examples per input, values that differ everywhere (sin of the index). */
function feedsFor(inputs: readonly { name: string; type: { shape: readonly (number | string)[] } }[]): Record<string, Tensor> {
  return Object.fromEntries(inputs.map((i) => {
    const shape = [2, ...(i.type.shape.slice(1) as number[])];
    return [i.name, { shape, data: new Float64Array(shape.reduce((a, d) => a * d, 1)).map((_, k) => Math.sin(k)) }];
  }));
}

describe('Keras export, then Keras import', () => {
  it.each(['examples/seed_mlp.nn', 'examples/mnist_cnn.nn', 'examples/res_block.nn'])('%s comes back predicting the same', async (spec) => {
    const loaded = lowerFile(spec);
    const graph = materialize(loaded.graph, 5);
    const file = join(tempDir(), 'model.keras');
    writeFileSync(file, await exportKeras({ ...loaded, graph }));
    const back = await lowerFileAsync(file);
    expect(back.graph.params.map((p) => p.name).sort()).toEqual(graph.params.map((p) => p.name).sort());
    const feeds = feedsFor(graph.inputs);
    const want = interpret(graph, feeds);
    const got = interpret(back.graph, feeds);
    expect(back.graph.outputs).toEqual(graph.outputs);
    for (const o of graph.outputs) expect(Array.from(got[o]!.data)).toEqual(Array.from(want[o]!.data));
  });

  const keras = JSON.parse(readFileSync('test/fixtures/keras/format/expected.json', 'utf8')) as Record<string, Record<'input' | 'output', { shape: number[]; data: number[] }>>;
  it.each(Object.keys(keras))('a Keras-saved %s.keras, exported again by modelc, predicts what Keras predicted', async (name) => {
    const out = join(tempDir(), `${name}.keras`);
    await exportCommand(`test/fixtures/keras/format/${name}.keras`, { output: out });
    const back = await lowerFileAsync(out);
    const { input, output } = keras[name]!;
    const got = interpret(back.graph, { [back.graph.inputs[0]!.name]: { shape: input.shape, data: Float64Array.from(input.data) } });
    const y = got[back.graph.outputs[0]!]!;
    expect(y.shape).toEqual(output.shape);
    const scale = Math.max(1, ...output.data.map(Math.abs));
    y.data.forEach((v, k) => expect(Math.abs(v - output.data[k]!) / scale).toBeLessThan(1e-5));
  });
});
