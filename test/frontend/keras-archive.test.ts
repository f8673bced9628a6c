/**
 * Keras files as modelc reads them: `.keras` archives and legacy `.h5` files
 * saved by Keras 3 (test/fixtures/keras/format/, written by
 * scripts/keras/make_format_fixtures.py with Keras's predictions on a fixed
 * input), imported with their weights and run by the reference interpreter
 * and the generated module (`compile({ path })`, optimized), within 1e-4 of
 * Keras relative to the output scale. Also: format detection by content, a
 * bare Keras config as JSON, where Keras 3 puts each layer's variables, and
 * the order they map onto modelc's parameters.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile/index.js';
import { ModelcError } from '../../src/diagnostics/diagnostic.js';
import { SourceFile } from '../../src/diagnostics/source.js';
import { kerasFileKind, readKerasFile, snakeCase, structuralKeys } from '../../src/frontend/keras/archive.js';
import { kerasVariableOrder } from '../../src/frontend/keras/weights.js';
import { detectFormat, loadSpec, loadSpecAsync, lowerFile, lowerFileAsync } from '../../src/frontend/load.js';
import type { Graph, ParamDecl } from '../../src/ir/graph.js';
import { fromF32 } from '../../src/ir/tensor.js';
import { interpret } from '../../src/interp/interpret.js';
import type { LayerDef } from '../../src/ops/op-def.js';
import { tempDir } from '../helpers/cli.js';
import { importModule } from '../helpers/generated.js';

const dir = 'test/fixtures/keras/format';
interface Tensor {
  shape: number[];
  data: number[];
}
const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Record<string, { input: Tensor; output: Tensor }>;

/** max |got - want| <= 1e-4 * max(1, max |want|), and the output is not constant (so weights matter). */
function expectClose(got: ArrayLike<number>, want: Tensor, what: string): void {
  expect(got.length, `${what}: size`).toBe(want.data.length);
  const scale = Math.max(1, ...want.data.map(Math.abs));
  let worst = 0;
  for (let i = 0; i < want.data.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want.data[i]!) || (Number.isNaN(got[i]) ? Infinity : 0));
  expect(worst, `${what}: worst |diff|`).toBeLessThanOrEqual(1e-4 * scale);
}

function interpreted(graph: Graph, input: Tensor): ArrayLike<number> {
  const out = interpret(graph, { [graph.inputs[0]!.name]: fromF32(input.shape, Float32Array.from(input.data)) });
  return out[graph.outputs[0]!]!.data;
}

describe.each(['seq', 'conv', 'shared', 'nested', 'ops'])('%s', (model) => {
  const { input, output } = expected[model]!;
  it.each(['keras', 'h5'])('.%s: imported with its weights, the interpreter predicts what Keras does', async (ext) => {
    const loaded = await lowerFileAsync(join(dir, `${model}.${ext}`));
    expect(loaded.format).toBe('keras');
    expect(loaded.graph.params.every((p) => p.value !== undefined)).toBe(true);
    expectClose(interpreted(loaded.graph, input), output, `${model}.${ext} interpreter`);
  });

  it.each(['keras', 'h5'])('.%s: compile({ path }) -O, the generated module predicts what Keras does', async (ext) => {
    const result = await compile({ path: join(dir, `${model}.${ext}`) }, { emit: 'js', optimize: true });
    expect(result.passes.length).toBeGreaterThan(0);
    const mod = await importModule(result.files.find((f) => f.path.endsWith('.js'))!.contents as string, model);
    const m = new mod.Model();
    expectClose(m.predict(Float32Array.from(input.data), input.shape[0]!), output, `${model}.${ext} generated`);
  });
});

describe('reading Keras files', () => {
  it('tells the formats apart by their bytes, not their names', async () => {
    expect(kerasFileKind(readFileSync(join(dir, 'seq.keras')))).toBe('keras');
    expect(kerasFileKind(readFileSync(join(dir, 'seq.h5')))).toBe('h5');
    expect(kerasFileKind(readFileSync('examples/seed_mlp.json'))).toBeUndefined();
    // a .keras archive under another name still loads as one
    const renamed = join(tempDir(), 'model.bin');
    writeFileSync(renamed, readFileSync(join(dir, 'seq.keras')));
    expect((await loadSpecAsync(renamed)).format).toBe('keras');
  });

  it('names the config inside the archive in its diagnostics', async () => {
    const { file } = await loadSpecAsync(join(dir, 'conv.keras'));
    expect(file.path).toBe(`${join(dir, 'conv.keras')}:config.json`);
    expect((await loadSpecAsync(join(dir, 'conv.h5'))).file.path).toBe(`${join(dir, 'conv.h5')}:model_config`);
  });

  it('a bare Keras model config (config.json taken out, model.to_json()) imports without weights; modelc JSON specs stay specs', async () => {
    const config = unzipSync(readFileSync(join(dir, 'conv.keras')))['config.json']!;
    const path = join(tempDir(), 'config.json');
    writeFileSync(path, config);
    const loaded = lowerFile(path);
    expect(loaded.format).toBe('keras');
    expect(loaded.graph.params.length).toBe(10);
    expect(loaded.graph.params.every((p) => p.value === undefined)).toBe(true);
    for (const spec of ['seed_mlp', 'mnist_cnn', 'res_block']) {
      expect(detectFormat(new SourceFile(`examples/${spec}.json`, readFileSync(`examples/${spec}.json`, 'utf8')))).toBe('json');
    }
  });

  it('the synchronous loaders refuse a .keras file and point to the asynchronous ones', () => {
    for (const load of [loadSpec, lowerFile]) {
      let error: unknown;
      try {
        load(join(dir, 'seq.keras'));
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ModelcError);
      expect((error as ModelcError).message).toMatch(/loadSpecAsync/);
    }
  });

  it("finds each layer's variables where Keras 3 puts them: the config's structure agrees with the names Keras writes", async () => {
    for (const model of ['seq', 'conv', 'shared', 'nested', 'ops']) {
      const path = join(dir, `${model}.keras`);
      const k = await readKerasFile(path, readFileSync(path));
      const keys = structuralKeys(k.config.text);
      expect(k.weights.groups.length).toBeGreaterThan(1);
      for (const g of k.weights.groups) expect(keys.get(g.where.replace(/\/vars$/, ''))?.at(-1), g.where).toBe(g.owner);
    }
  });

  it("snake-cases class names as Keras's to_snake_case does", () => {
    expect(['Dense', 'BatchNormalization', 'ReLU', 'Conv2D', 'GlobalAveragePooling2D', 'InputLayer', 'PReLU'].map(snakeCase)).toEqual([
      'dense', 'batch_normalization', 're_lu', 'conv2d', 'global_average_pooling2d', 'input_layer', 'p_re_lu',
    ]);
  });
});

describe('the order of saved variables', () => {
  const param = (name: string, trainable: boolean): ParamDecl => ({ name, trainable, type: { dtype: 'f32', shape: [1] }, init: { type: 'zeros' } } as unknown as ParamDecl);
  const bn = [param('bn/gamma', true), param('bn/moving_mean', false), param('bn/beta', true), param('bn/moving_variance', false)];

  it('is trainable first, then the rest, each in declaration order, without a kerasVariables rule', () => {
    expect(kerasVariableOrder(undefined, 'bn', bn).map((p) => p?.name)).toEqual(['bn/gamma', 'bn/beta', 'bn/moving_mean', 'bn/moving_variance']);
  });

  it("follows a layer's kerasVariables rule, skipping the variables it marks null", () => {
    const def = { type: 'normalization', kerasVariables: (roles: readonly string[]) => [...roles, null] } as unknown as LayerDef;
    const order = kerasVariableOrder(def, 'norm', [param('norm/mean', false), param('norm/variance', false)]);
    expect(order.map((p) => p?.name ?? null)).toEqual(['norm/mean', 'norm/variance', null]);
  });
});
