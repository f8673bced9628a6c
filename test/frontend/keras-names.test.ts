/**
 * Keras names in specs (frontend/keras-names.ts, ops/layer-names.ts): every
 * name the tables accept resolves to modelc's canonical one, driven from the
 * tables and pinned by known pairs (so a wrong table entry fails); `fmt`
 * prints the canonical form; names modelc lacks fail with what it supports;
 * near misses get a suggestion; no name types two layers.
 */
import Ajv from 'ajv';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { SourceFile } from '../../src/diagnostics/source.js';
import { printDsl } from '../../src/frontend/dsl/print.js';
import { parseJsonSpec, printJsonSpec } from '../../src/frontend/json.js';
import { resolveKerasNames } from '../../src/frontend/keras-names.js';
import { schemaDocument } from '../../src/frontend/spec.js';
import { parseSpecSource } from '../../src/frontend/load.js';
import { printGraph } from '../../src/ir/print.js';
import { distributionOf, initializerAliases, initializerNames } from '../../src/ops/init.js';
import { isImportable } from '../../src/ops/keras-def.js';
import { kerasLayerNames, kerasSnakeCase, layerNameTable } from '../../src/ops/layer-names.js';
import type { LayerDef } from '../../src/ops/op-def.js';
import { getLayer, layers } from '../../src/ops/registry.js';
import { lossAliases, metricAliases, optimizerNames } from '../../src/spec/training.js';
import { diagnosticOf, lowerJson, model } from '../helpers/graphs.js';

/** A JSON spec through the front end as `modelc` reads it: the validated spec, names resolved. */
function load(spec: object) {
  return parseSpecSource(new SourceFile('t.json', JSON.stringify(spec, null, 2)), 'json').spec;
}

const dense = { type: 'dense', units: 2 };
const withTraining = (training: object) => ({ ...model([4], [dense]), training });
const trained = (training: object) => load(withTraining({ optimizer: 'sgd', loss: 'mse', ...training })).training!;

describe('layer names', () => {
  it("derives Keras's snake_case names as keras.src.utils.naming.to_snake_case does", () => {
    // Pairs printed by Keras 3.15's to_snake_case.
    const keras: [string, string][] = [
      ['MaxPooling2D', 'max_pooling2d'], ['Conv2D', 'conv2d'], ['UpSampling2D', 'up_sampling2d'],
      ['BatchNormalization', 'batch_normalization'], ['ReLU', 're_lu'], ['LeakyReLU', 'leaky_re_lu'], ['ELU', 'elu'],
      ['Conv2DTranspose', 'conv2d_transpose'], ['ZeroPadding2D', 'zero_padding2d'], ['Convolution2D', 'convolution2d'],
      ['GlobalAvgPool2D', 'global_avg_pool2d'], ['SeparableConv2D', 'separable_conv2d'], ['PReLU', 'p_re_lu'],
    ];
    for (const [cls, snake] of keras) expect(kerasSnakeCase(cls), cls).toBe(snake);
  });

  const named = layers.flatMap((def) => [...(def.aliases ?? []), ...kerasLayerNames(def)].map((n) => [n, def] as const));

  it.each(named)('%s resolves to its record and a spec gets the canonical type', (name, def) => {
    expect(getLayer(name)).toBe(def);
    const { spec, locations } = parseJsonSpec(new SourceFile('t.json', JSON.stringify({ layers: [{ type: name }] })));
    expect(resolveKerasNames(spec, locations)).toEqual({ layers: [{ type: def.type }] });
  });

  it('every Keras class of an importable record is one of its names', () => {
    for (const def of layers) {
      if (!isImportable(def.kerasImport)) continue;
      for (const cls of def.kerasImport.classes) expect(getLayer(cls), cls).toBe(def);
    }
  });

  it('knows the names Keras gives its layers', () => {
    const pairs: [string, string][] = [
      ['dense', 'dense'], ['Dense', 'dense'], ['conv2d', 'conv2d'], ['Conv2D', 'conv2d'], ['convolution2d', 'conv2d'],
      ['max_pooling2d', 'max_pool2d'], ['MaxPooling2D', 'max_pool2d'], ['average_pooling2d', 'avg_pool2d'],
      ['global_average_pooling2d', 'global_avg_pool2d'], ['global_max_pooling2d', 'global_max_pool2d'],
      ['batch_normalization', 'batchnorm'], ['depthwise_conv2d', 'depthwise_conv2d'], ['conv2d_transpose', 'conv2d_transpose'],
      ['separable_conv2d', 'separable_conv2d'], ['zero_padding2d', 'zero_padding2d'], ['up_sampling2d', 'upsampling2d'],
      ['re_lu', 'relu'], ['leaky_re_lu', 'leaky_relu'], ['flatten', 'flatten'], ['concatenate', 'concatenate'],
    ];
    for (const [name, type] of pairs) expect(getLayer(name)?.type, name).toBe(type);
  });

  it('no name types two layers', () => {
    expect(layerNameTable(layers).collisions).toEqual([]);
  });

  it('reports a name two records claim, keeping the first', () => {
    const fake = (type: string, classes: string[]) => ({ ...getLayer('dense')!, type, aliases: [], kerasImport: { classes, fromConfig: () => undefined } }) as LayerDef;
    const a = fake('pool_a', ['MaxPooling2D']);
    const b = fake('pool_b', ['MaxPool2D', 'MaxPooling2D']);
    const table = layerNameTable([a, b]);
    expect(table.collisions).toEqual([
      { name: 'max_pooling2d', kept: 'pool_a', dropped: 'pool_b' },
      { name: 'MaxPooling2D', kept: 'pool_a', dropped: 'pool_b' },
    ]);
    expect(table.byName.get('max_pool2d')).toBe(b);
  });

  it('a DSL call takes positional attributes under a Keras name', () => {
    const src = 'model m {\n  input x: [8, 8, 2]\n  max_pooling2d(2) -> Conv2D(4, 3)\n}\n';
    const spec = parseSpecSource(new SourceFile('m.nn', src)).spec;
    expect(spec.layers).toEqual([{ type: 'max_pool2d', pool_size: 2 }, { type: 'conv2d', filters: 4, kernel_size: 3 }]);
  });

  it('lowers the same graph as the canonical names', () => {
    const keras = model([8, 8, 2], [{ type: 'Conv2D', filters: 3, kernel_size: 3 }, { type: 'batch_normalization' }, { type: 'max_pooling2d' }, { type: 'global_average_pooling2d' }]);
    const canonical = model([8, 8, 2], [{ type: 'conv2d', filters: 3, kernel_size: 3 }, { type: 'batchnorm' }, { type: 'max_pool2d' }, { type: 'global_avg_pool2d' }]);
    expect(printGraph(lowerJson(keras).graph)).toBe(printGraph(lowerJson(canonical).graph));
  });

  it('a near miss gets a suggestion', () => {
    expect(diagnosticOf(() => load(model([4, 4, 1], [{ type: 'max_poling2d' }]))).message).toBe("unknown layer type 'max_poling2d'; did you mean 'max_pooling2d'?");
  });
});

describe('training names', () => {
  it.each(Object.entries(lossAliases))('loss %s is %s', (alias, loss) => {
    expect(trained({ loss: alias }).loss).toBe(loss);
  });

  it('knows the Keras loss names', () => {
    const pairs: [string, string][] = [
      ['mean_squared_error', 'mse'], ['MeanSquaredError', 'mse'], ['MSE', 'mse'], ['mean_absolute_error', 'mae'], ['MAE', 'mae'],
      ['bce', 'binary_crossentropy'], ['BinaryCrossentropy', 'binary_crossentropy'], ['CategoricalCrossentropy', 'categorical_crossentropy'],
      ['SparseCategoricalCrossentropy', 'sparse_categorical_crossentropy'], ['categorical_crossentropy', 'categorical_crossentropy'],
    ];
    for (const [alias, loss] of pairs) expect(trained({ loss: alias }).loss, alias).toBe(loss);
  });

  it('a Keras loss modelc lacks names the supported ones', () => {
    const d = diagnosticOf(() => trained({ loss: 'mape' }));
    expect(d.message).toBe("Keras loss 'mape' (mean_absolute_percentage_error) is not supported: modelc computes binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy, mse (mean_squared_error), mae (mean_absolute_error)");
    expect(diagnosticOf(() => trained({ loss: 'msle' })).message).toMatch(/^Keras loss 'msle' \(mean_squared_logarithmic_error\) is not supported: modelc computes/);
    expect(diagnosticOf(() => trained({ loss: 'mean_squard_error' })).message).toMatch(/^unknown loss 'mean_squard_error'; did you mean 'mean_squared_error'\?/);
  });

  it.each(Object.entries(metricAliases))('metric %s is accuracy with its loss', (alias, { loss }) => {
    expect(trained({ loss: loss ?? 'mse', metrics: [alias] }).metrics).toEqual(['accuracy']);
  });

  it('a named accuracy must be the one the loss chooses', () => {
    expect(trained({ loss: 'categorical_crossentropy', metrics: ['acc', 'categorical_accuracy'] }).metrics).toEqual(['accuracy', 'accuracy']);
    expect(trained({ loss: 'SparseCategoricalCrossentropy', metrics: ['sparse_categorical_accuracy'] }).metrics).toEqual(['accuracy']);
    const d = diagnosticOf(() => trained({ loss: 'categorical_crossentropy', metrics: ['sparse_categorical_accuracy'] }));
    expect(d.message).toMatch(/^metric 'sparse_categorical_accuracy' is the accuracy of loss 'sparse_categorical_crossentropy', but the loss is 'categorical_crossentropy'/);
    expect(diagnosticOf(() => trained({ loss: 'mse', metrics: ['binary_accuracy'] })).message).toMatch(/but the loss is 'mse'/);
  });

  it('a Keras metric modelc lacks names accuracy', () => {
    const d = diagnosticOf(() => trained({ metrics: ['top_k_categorical_accuracy'] }));
    expect(d.message).toBe("Keras metric 'top_k_categorical_accuracy' is not supported: modelc computes 'accuracy' (Keras's binary, categorical or sparse categorical accuracy, as the loss chooses; also 'acc')");
    expect(diagnosticOf(() => trained({ metrics: ['acuracy'] })).message).toMatch(/^unknown metric 'acuracy'; did you mean 'accuracy'\?/);
  });

  it('optimizers by any case, as Keras reads them', () => {
    const pairs: [string, string][] = [['SGD', 'sgd'], ['sgd', 'sgd'], ['Adam', 'adam'], ['ADAM', 'adam'], ['AdamW', 'adamw'], ['RMSprop', 'rmsprop'], ['RMSProp', 'rmsprop']];
    for (const [name, canonical] of pairs) {
      expect(trained({ optimizer: name }).optimizer, name).toBe(canonical);
      expect(trained({ optimizer: { type: name, learning_rate: 0.5 } }).optimizer, name).toEqual({ type: canonical, learning_rate: 0.5 });
    }
    for (const n of optimizerNames) expect(trained({ optimizer: n.toUpperCase() }).optimizer).toBe(n);
    expect(diagnosticOf(() => trained({ optimizer: 'Nadam' })).message).toBe("Keras optimizer 'Nadam' is not supported: modelc has sgd, adam, adamw, rmsprop, in any case as Keras reads them");
    expect(diagnosticOf(() => trained({ optimizer: { type: 'adan' } })).message).toMatch(/^unknown optimizer 'adan'; did you mean 'adam'\?/);
  });
});

describe('initializer names', () => {
  const kernel = (init: unknown) => (load(model([4], [{ ...dense, kernel_initializer: init }])).layers[0] as Record<string, unknown>)['kernel_initializer'];

  it.each(Object.entries(initializerAliases))('%s is %s', (alias, name) => {
    expect(kernel(alias)).toBe(name);
    expect(kernel({ type: alias, seed: 3 })).toEqual({ type: name, seed: 3 });
  });

  it('knows the Keras initializer names', () => {
    const pairs: [string, string][] = [
      ['glorot_uniform', 'glorot_uniform'], ['GlorotUniform', 'glorot_uniform'], ['he_normal', 'he_normal'], ['HeNormal', 'he_normal'],
      ['zeros', 'zeros'], ['Zeros', 'zeros'], ['ones', 'ones'], ['random_normal', 'random_normal'], ['RandomNormal', 'random_normal'],
      ['normal', 'random_normal'], ['truncated_normal', 'truncated_normal'], ['TruncatedNormal', 'truncated_normal'],
      ['lecun_normal', 'lecun_normal'], ['VarianceScaling', 'lecun_normal'],
    ];
    for (const [alias, name] of pairs) expect(kernel(alias), alias).toBe(name);
    for (const n of initializerNames) expect(kernel(n)).toBe(n);
  });

  it("VarianceScaling's defaults are lecun_normal's distribution (Keras: scale 1, fan_in, truncated_normal)", () => {
    const shape = [3, 3, 4, 8];
    expect(distributionOf({ type: 'lecun_normal', args: {} }, shape)).toEqual({ kind: 'truncated_normal', mean: 0, stddev: Math.sqrt(1 / 36) / 0.87962566103423978 });
  });

  it('VarianceScaling with arguments is the glorot, he or lecun initializer it equals', () => {
    expect(kernel({ type: 'VarianceScaling', scale: 2, mode: 'fan_in', distribution: 'uniform', seed: 1 })).toEqual({ type: 'he_uniform', seed: 1 });
    expect(kernel({ type: 'variance_scaling', mode: 'fan_avg' })).toBe('glorot_normal');
    const d = diagnosticOf(() => kernel({ type: 'VarianceScaling', scale: 2, mode: 'fan_out' }));
    expect(d.message).toMatch(/^VarianceScaling\(scale=2, mode="fan_out", distribution="truncated_normal"\) has no modelc initializer/);
  });

  it('an initializer modelc lacks names the supported ones; a near miss gets a suggestion', () => {
    expect(diagnosticOf(() => kernel('Orthogonal')).message).toMatch(/^Keras initializer 'Orthogonal' is not supported: modelc has zeros, ones, .*, lecun_normal$/);
    expect(diagnosticOf(() => kernel('glorot_unifrom')).message).toMatch(/^unknown initializer 'glorot_unifrom'; did you mean 'glorot_uniform'\?/);
  });
});

describe('fmt prints the canonical names', () => {
  const nn = [
    '# Keras names',
    'model m {',
    '  input x: [8, 8, 1]',
    '  Conv2D(4, 3, kernel_initializer: HeNormal)',
    '  max_pooling2d(2)',
    '  batch_normalization',
    '  global_average_pooling2d',
    '  dense(3, bias_initializer: Zeros)',
    '  train {',
    '    loss: CategoricalCrossentropy',
    '    optimizer: Adam(learning_rate: 0.01)',
    '    metrics: [acc]',
    '  }',
    '}',
    '',
  ].join('\n');
  const canonical = nn
    .replace('Conv2D(4, 3, kernel_initializer: HeNormal)', 'conv2d(4, 3, kernel_initializer: he_normal)')
    .replace('max_pooling2d', 'max_pool2d')
    .replace('batch_normalization', 'batchnorm')
    .replace('global_average_pooling2d', 'global_avg_pool2d')
    .replace('Zeros', 'zeros')
    .replace('CategoricalCrossentropy', 'categorical_crossentropy')
    .replace('Adam(', 'adam(')
    .replace('[acc]', '[accuracy]');

  it('in a .nn file, comments kept', () => {
    const loaded = parseSpecSource(new SourceFile('m.nn', nn));
    expect(printDsl(loaded.spec, loaded.comments)).toBe(canonical);
  });

  it('in a JSON file', () => {
    const spec = { ...model([4], [{ type: 'Dense', units: 2, kernel_initializer: { type: 'RandomNormal', stddev: 0.1 } }]), training: { loss: 'mean_squared_error', optimizer: 'SGD' } };
    const text = printJsonSpec(load(spec));
    expect(JSON.parse(text)).toEqual({
      ...model([4], [{ type: 'dense', units: 2, kernel_initializer: { type: 'random_normal', stddev: 0.1 } }]),
      training: { loss: 'mse', optimizer: 'sgd' },
    });
  });

  it('modelc fmt --check fails on Keras names and fmt --write fixes them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelc-keras-names-'));
    const path = join(dir, 'm.nn');
    writeFileSync(path, nn);
    const err: string[] = [];
    const io = { stdout: () => undefined, stderr: (t: string) => void err.push(t), color: false };
    expect(await main(['node', 'modelc', 'fmt', '--check', path], io)).toBe(1);
    expect(await main(['node', 'modelc', 'fmt', '--write', path], io)).toBe(0);
    const out: string[] = [];
    expect(await main(['node', 'modelc', 'fmt', path], { ...io, stdout: (t: string) => void out.push(t) })).toBe(0);
    expect(out.join('')).toBe(canonical);
  });
});

describe('activation names', () => {
  it("an activation attribute takes Keras's spellings", () => {
    const spec = load(model([4], [{ type: 'dense', units: 2, activation: 'silu' }, { type: 'activation', activation: 'hard_silu' }, { type: 'Activation', activation: 'hardSigmoid' }]));
    expect(spec.layers).toEqual([{ type: 'dense', units: 2, activation: 'swish' }, { type: 'activation', activation: 'hard_swish' }, { type: 'activation', activation: 'hard_sigmoid' }]);
  });

  it('a spelling that fixes attributes is refused naming the activations', () => {
    expect(diagnosticOf(() => load(model([4], [{ type: 'dense', units: 2, activation: 'gelu_new' }]))).message).toMatch(/^dense attribute 'activation': expected one of 'relu', /);
  });
});

describe('the JSON Schema editors see', () => {
  const validate = new Ajv.default({ strict: false }).compile(JSON.parse(JSON.stringify(schemaDocument())) as object);

  it('accepts the Keras names modelc resolves', () => {
    const spec = {
      ...model([8, 8, 1], [{ type: 'Conv2D', filters: 2, kernel_size: 3, kernel_initializer: 'HeNormal' }, { type: 'max_pooling2d' }, { type: 'global_average_pooling2d' }, { type: 'dense', units: 2, bias_initializer: { type: 'RandomNormal', stddev: 0.1 } }]),
      training: { loss: 'mean_squared_error', optimizer: 'sgd', metrics: ['acc'] },
    };
    expect(validate(spec)).toBe(true);
    expect(() => load(spec)).not.toThrow();
  });

  it('still refuses names nobody resolves', () => {
    expect(validate(model([4], [{ type: 'max_poling2d' }]))).toBe(false);
    expect(validate(withTraining({ loss: 'mape', optimizer: 'sgd' }))).toBe(false);
    expect(validate(model([4], [{ ...dense, kernel_initializer: 'Orthogonal' }]))).toBe(false);
  });

  it('a loss that is not a name is left to the schema', () => {
    expect(diagnosticOf(() => trained({ loss: 3 })).message).toMatch(/^'training\.loss': expected one of 'binary_crossentropy', /);
  });
});
