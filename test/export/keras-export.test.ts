/**
 * `modelc export --format keras`: the archive read back (config classes,
 * weight groups where Keras 3 looks for them, values equal to modelc's
 * parameters), the refusals, and the link to the check against real Keras:
 * every spec scripts/keras/check_export.py verified must still export to the
 * same config and weights layout (its fingerprint), and Keras's own
 * model.layers order, recorded there, must be the one the exporter assumed.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exportCommand, exportFormat } from '../../src/cli/export.js';
import { ModelcError } from '../../src/diagnostics/diagnostic.js';
import { exportKeras } from '../../src/export/keras.js';
import { lowerFile, lowerFileAsync } from '../../src/frontend/load.js';
import type { Graph } from '../../src/ir/graph.js';
import { materialize } from '../../src/ops/init.js';
import { tempDir } from '../helpers/cli.js';
import { archiveLayers, kerasFingerprint, readKerasArchive, type KerasArchive } from '../helpers/keras-archive.js';

const FIXTURE = 'test/fixtures/keras/export-check.json';
const RERUN = 'rerun: npx tsc -p tsconfig.build.json && TF_CPP_MIN_LOG_LEVEL=3 /work/venv/bin/python scripts/keras/check_export.py';

interface CheckedSpec {
  readonly fingerprint: string;
  readonly ok: boolean;
  readonly layer_order: readonly string[];
  readonly layers_compared: number;
  readonly max_relative_difference: number;
}

/** The archive modelc exports for `path` (initializers sampled with `seed`), read back, and the graph it came from. */
async function exported(path: string, seed = 0): Promise<{ archive: KerasArchive; graph: Graph }> {
  const loaded = await lowerFileAsync(path);
  const graph = materialize(loaded.graph, seed);
  return { archive: await readKerasArchive(await exportKeras({ ...loaded, graph })), graph };
}

/** What check_export.py verifies: examples/ (TF.js model.json aside), test/fixtures/keras/export-*.nn and four Keras-saved models. */
function checkedSpecs(): string[] {
  const examples = readdirSync('examples')
    .filter((f) => /\.(nn|json)$/.test(f) && !readFileSync(join('examples', f), 'utf8').includes('modelTopology'))
    .map((f) => `examples/${f}`);
  const fixtures = readdirSync('test/fixtures/keras').filter((f) => /^export-.*\.nn$/.test(f)).map((f) => `test/fixtures/keras/${f}`);
  return [...examples, ...fixtures, ...['seq', 'conv', 'shared', 'nested', 'ops'].map((m) => `test/fixtures/keras/format/${m}.keras`)];
}

/** Where `layer`'s variables are: the group whose `vars` carries its name. */
function groupOf(a: KerasArchive, layer: string): string {
  const found = [...a.names].find(([path, name]) => name === layer && path.startsWith('layers/'));
  if (!found) throw new Error(`no weights group names ${layer}`);
  return found[0];
}

describe('Keras export: the archive read back', () => {
  it('mnist_cnn: Keras classes, groups named as Keras 3 loads them, variables equal to the parameters', async () => {
    const { archive, graph } = await exported('examples/mnist_cnn.nn', 3);
    expect(archiveLayers(archive).map((l) => l.class_name)).toEqual([
      'InputLayer', 'Conv2D', 'BatchNormalization', 'ReLU', 'Conv2D', 'BatchNormalization', 'ReLU',
      'MaxPooling2D', 'Flatten', 'Dense', 'BatchNormalization', 'ReLU', 'Dense',
    ]);
    // Keras 3 finds weights by class: ReLU's group is re_lu, re_lu_1, ... whatever the layer is called
    expect(groupOf(archive, 'activation_1')).toBe('layers/re_lu_1/vars');
    expect(groupOf(archive, 'conv2d_1')).toBe('layers/conv2d_1/vars');
    expect(groupOf(archive, 'batch_normalization_2')).toBe('layers/batch_normalization_2/vars');
    const bn = archive.datasets;
    // Keras's order: trainable gamma, beta, then the moving statistics
    ['gamma', 'beta', 'moving_mean', 'moving_variance'].forEach((role, i) => {
      const param = graph.params.find((p) => p.name === `batch_normalization_1/${role}`)!;
      expect(bn.get(`layers/batch_normalization_1/vars/${i}`)!.value).toEqual(param.value);
    });
    for (const p of graph.params.filter((q) => /^(conv2d|dense)/.test(q.name))) {
      const [layer, role] = p.name.split('/');
      const v = archive.datasets.get(`${groupOf(archive, layer!)}/${role === 'kernel' ? 0 : 1}`)!;
      expect(v.shape).toEqual(p.type.shape);
      expect(v.value).toEqual(p.value);
    }
    expect(archive.metadata['keras_version']).toMatch(/^3\./);
  });

  it('res_block: a functional DAG, with Add taking its inputs as one list argument', async () => {
    const { archive } = await exported('examples/res_block.nn');
    const add = archiveLayers(archive).find((l) => l.class_name === 'Add') as unknown as { inbound_nodes: { args: unknown[][] }[] };
    const history = add.inbound_nodes[0]!.args[0]!.map((t) => (t as { config: { keras_history: unknown[] } }).config.keras_history);
    expect(history).toEqual([['x', 0, 0], ['b', 0, 0]]);
    expect((archive.config['config'] as { output_layers: unknown }).output_layers).toEqual(['y', 0, 0]);
  });

  it('seed_mlp: the training block as compile_config, the optimizer state Keras builds before a step', async () => {
    const { archive } = await exported('examples/seed_mlp.nn');
    const compile = archive.config['compile_config'] as { loss: string; optimizer: { class_name: string } };
    expect(compile.loss).toBe('binary_crossentropy');
    expect(compile.optimizer.class_name).toBe('SGD');
    // SGD without momentum has no slots: iterations and learning rate; floats written as floats for Keras's type checks
    expect([...archive.datasets.keys()].filter((k) => k.startsWith('optimizer/'))).toEqual(['optimizer/vars/0', 'optimizer/vars/1']);
    expect(archive.configText).toContain('"momentum":0.0');
  });

  it('export-layers: a shared layer is one Keras layer with two inbound nodes; renorm adds three statistics', async () => {
    const { archive, graph } = await exported('test/fixtures/keras/export-layers.nn');
    const shared = archiveLayers(archive).find((l) => l.name === 'side_dense') as unknown as { inbound_nodes: unknown[] };
    expect(shared.inbound_nodes).toHaveLength(2);
    expect(archiveLayers(archive).some((l) => l.name === 'again')).toBe(false);
    const n = groupOf(archive, 'n');
    const variance = graph.params.find((p) => p.name === 'n/moving_variance')!.value!;
    const stddev = archive.datasets.get(`${n}/4`)!.value as Float32Array;
    expect(stddev[0]).toBeCloseTo(Math.sqrt(variance[0]! + 0.01), 6);
    expect(archive.datasets.get(`${n}/6`)!.value).toEqual(stddev);
  });
});

describe('Keras export: the check against Keras 3 (test/fixtures/keras/export-check.json)', () => {
  const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as { specs: Record<string, CheckedSpec> };

  it('covers every example, each verified within 1e-4 layer by layer', () => {
    const names = checkedSpecs().map((p) => basename(p));
    expect(Object.keys(fixture.specs).sort(), `the checked specs changed: ${RERUN}`).toEqual([...names].sort());
    for (const [name, r] of Object.entries(fixture.specs)) {
      expect(r.ok, name).toBe(true);
      expect(r.max_relative_difference, name).toBeLessThan(1e-4);
      expect(r.layers_compared, name).toBeGreaterThan(0);
    }
  });

  it.each(checkedSpecs())('%s exports as verified (same config and weights layout)', async (path) => {
    const { archive } = await exported(path);
    const checked = fixture.specs[basename(path)]!;
    expect(kerasFingerprint(archive), `the Keras export of ${path} changed since Keras checked it: ${RERUN}`).toBe(checked.fingerprint);
    // the weights were placed assuming this model.layers order; Keras reported it
    expect(archiveLayers(archive).map((l) => l.name)).toEqual(checked.layer_order);
  });
});

describe('Keras export: refusals and the command', () => {
  const spec = (body: string) => join(tempDir({ 'm.nn': `model m {\n  input x: [4]\n${body}\n}\n` }), 'm.nn');
  const refusal = async (body: string): Promise<ModelcError> => {
    const loaded = lowerFile(spec(body));
    const err = await exportKeras({ ...loaded, graph: materialize(loaded.graph, 0) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelcError);
    return err as ModelcError;
  };

  it('refuses, naming the layer, what Keras 3 cannot express', async () => {
    const hard = await refusal('  h = dense(3, activation: hard_sigmoid)');
    expect(hard.diagnostics[0]!.code).toBe('export');
    expect(hard.message).toMatch(/layer 'h' \(dense\).*hard_sigmoid.*relu6\(x \+ 3\) \/ 6/);
    expect((await refusal('  dense(3, activation: leaky_relu)')).message).toMatch(/'dense'.*slope 0\.2.*use a leaky_relu layer/);
    expect((await refusal('  reshape([2, 1, 2])\n  t = conv2d_transpose(4, 1, groups: 2)')).message).toMatch(/'t'.*groups 2/);
  });

  it('needs parameter values', async () => {
    const loaded = lowerFile(spec('  dense(2)'));
    await expect(exportKeras(loaded)).rejects.toThrow(/'dense\/kernel' has no value/);
  });

  it('exports a leaky_relu layer as LeakyReLU with its slope', async () => {
    const loaded = lowerFile(spec('  leaky_relu(alpha: 0.1)'));
    const archive = await readKerasArchive(await exportKeras({ ...loaded, graph: loaded.graph }));
    expect(archiveLayers(archive)[1]).toMatchObject({ class_name: 'LeakyReLU', config: { negative_slope: 0.1 } });
  });

  it('takes the format from --format, else from a .keras output, and refuses -O for Keras', async () => {
    expect(exportFormat({ output: 'm.keras' })).toBe('keras');
    expect(exportFormat({ output: 'm.KERAS' })).toBe('keras');
    expect(exportFormat({ output: 'm.onnx' })).toBe('onnx');
    expect(exportFormat({ output: 'm.bin', format: 'keras' })).toBe('keras');
    const out = join(tempDir(), 'mlp.keras');
    expect(await exportCommand('examples/seed_mlp.nn', { output: out, seed: '2' })).toBe(out);
    expect(existsSync(out)).toBe(true);
    expect(archiveLayers(await readKerasArchive(readFileSync(out))).map((l) => l.class_name)[1]).toBe('Dense');
    await expect(exportCommand('examples/seed_mlp.nn', { output: out, optimize: true })).rejects.toThrow(/before any pass/);
  });
});
