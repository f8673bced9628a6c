/**
 * TF.js LayersModel import: models built with `tf.layers` (Sequential and
 * functional, every importable class, a shared layer, activations inside
 * Dense/Conv), saved through TF.js's own save path and written as its file
 * handler does (model.json + weights.bin, or a manifest over 2 shards), then
 * loaded by modelc (`lowerFile`, `modelc import / check / compile`) and
 * run: the reference interpreter (plain and `-O`) and the generated module
 * against TF.js `predict`, within 1e-4 of the output scale. Errors (an LSTM,
 * channels_first, a missing or truncated shard, a quantized weight) are
 * diagnostics naming the layer and class, or the file and the weight.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors } from '../../src/formats/safetensors.js';
import { lowerFile, loadSpec } from '../../src/frontend/load.js';
import type { Graph } from '../../src/ir/graph.js';
import { fromF32, size } from '../../src/ir/tensor.js';
import { interpret } from '../../src/interp/interpret.js';
import { createPassManager, defaultPipeline } from '../../src/passes/pipeline.js';
import { extractWeights } from '../../src/weights/attach.js';
import { run, tempDir } from '../helpers/cli.js';
import { importModule, type InferenceModule } from '../helpers/generated.js';
import { rng } from '../helpers/tensors.js';
import { BATCH, expectMatches, interpretOutputs, randomizeModel, tf, type Output, type Prepared } from '../helpers/tfjs.js';

const L = tf.layers;

/** What TF.js's file:// handler writes: model.json and the weight data, in one shard or split over several. */
async function saveModel(model: tf.LayersModel, dir: string, shards = 1): Promise<string> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const a = artifacts!;
  const data = new Uint8Array(tf.io.CompositeArrayBuffer.join(a.weightData!));
  const paths = shards === 1 ? ['weights.bin'] : Array.from({ length: shards }, (_, i) => `group1-shard${i + 1}of${shards}`);
  // split at byte offsets that cut through weights, as the converter's shards do
  const cut = (i: number) => Math.round((data.length * i) / shards) + (i > 0 && i < shards ? 3 : 0);
  paths.forEach((p, i) => writeFileSync(join(dir, p), data.subarray(cut(i), cut(i + 1))));
  const modelJson = {
    modelTopology: a.modelTopology,
    format: a.format,
    generatedBy: a.generatedBy,
    convertedBy: a.convertedBy,
    weightsManifest: [{ paths, weights: a.weightSpecs }],
  };
  const file = join(dir, 'model.json');
  writeFileSync(file, JSON.stringify(modelJson));
  return file;
}

interface Saved {
  readonly model: tf.LayersModel;
  readonly file: string;
  readonly dir: string;
  /** The TF.js outputs on `feeds` (graph input names). */
  readonly p: Prepared;
}

/** Random weights (BN statistics included), saved; the imported graph and TF.js's outputs on a seeded batch. */
async function prepareModel(name: string, build: () => tf.LayersModel, seed: number, shards = 1): Promise<Saved> {
  const model = build();
  const next = rng(seed);
  randomizeModel(model, next);
  const dir = tempDir();
  const file = await saveModel(model, dir, shards);
  const graph = lowerFile(file).graph;
  const feeds: Record<string, Float32Array> = {};
  const inputs = graph.inputs.map((i) => {
    const shape = [BATCH, ...i.type.shape.slice(1).map((d) => d as number)];
    const data = Float32Array.from({ length: size(shape) }, () => 2 * next() - 1);
    feeds[i.name] = data;
    return tf.tensor(data, shape);
  });
  const out = model.predict(inputs);
  const outs = Array.isArray(out) ? out : [out];
  const expected = outs.map((t) => ({ shape: [...t.shape], data: Float32Array.from(t.dataSync()) }));
  tf.dispose([...inputs, ...outs]);
  const optimized = createPassManager().run(graph, defaultPipeline);
  return { model, file, dir, p: { name, graph, optimized, feeds, expected } };
}

/** A Sequential CNN: every conv kind, BN (4-D and 2-D), pooling, ReLU, activations inside and outside layers, reshape. */
function sequentialCnn(): tf.LayersModel {
  return tf.sequential({
    layers: [
      L.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }),
      L.batchNormalization(),
      L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, padding: 'same', activation: 'tanh' }),
      L.conv2dTranspose({ filters: 3, kernelSize: 2, strides: 2 }),
      L.reLU(),
      L.maxPooling2d({ poolSize: 2 }),
      L.averagePooling2d({ poolSize: 3, strides: 1, padding: 'same' }),
      L.activation({ activation: 'sigmoid' }),
      L.dropout({ rate: 0.25 }),
      L.flatten(),
      L.dense({ units: 12, activation: 'relu' }),
      L.batchNormalization(),
      L.reshape({ targetShape: [3, 4] }),
      L.dense({ units: 5, activation: 'softmax' }),
    ],
  });
}

/** A functional model: two inputs, a Dense shared by two applications, Add, Concatenate, global pooling, ReLU(6), two outputs. */
function functionalModel(): tf.LayersModel {
  const img = tf.input({ name: 'img', shape: [6, 6, 2] });
  const vec = tf.input({ name: 'vec', shape: [5] });
  const apply = (l: tf.layers.Layer, ...xs: tf.SymbolicTensor[]) => l.apply(xs.length === 1 ? xs[0]! : xs) as tf.SymbolicTensor;
  const c1 = apply(L.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'c1' }), img);
  const gap = apply(L.globalAveragePooling2d({}), c1);
  const gmp = apply(L.globalMaxPooling2d({}), c1);
  const enc = L.dense({ units: 5, activation: 'tanh', name: 'enc' });
  const e1 = apply(enc, vec);
  const e2 = apply(enc, e1);
  const r6 = apply(L.reLU({ maxValue: 6 }), apply(L.add({}), e1, e2));
  const cat = apply(L.concatenate({}), gap, gmp, r6);
  const bn = apply(L.batchNormalization({ name: 'bn' }), cat);
  const out = apply(L.dense({ units: 3, kernelInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 1 }), name: 'out' }), bn);
  const probs = apply(L.activation({ activation: 'softmax', name: 'probs' }), e2);
  return tf.model({ inputs: [img, vec], outputs: [out, probs] });
}

/** A small Sequential model that starts with an InputLayer (saved over 2 shards). */
function withInputLayer(): tf.LayersModel {
  return tf.sequential({
    layers: [L.inputLayer({ inputShape: [4], name: 'inp' }), L.dense({ units: 8, activation: 'relu', name: 'h' }), L.dense({ units: 2, name: 'y' })],
  });
}

/** The outputs of a generated module's Model, in the graph's output order. */
function moduleOutputs(mod: InferenceModule, graph: Graph, p: Prepared): Output[] {
  const out = new mod.Model().run({ ...p.feeds }, BATCH);
  return graph.outputs.map((o) => ({ data: out[o]! }));
}

const noStack = (text: string) => expect(text).not.toMatch(/\n\s+at .+:\d+:\d+/);

let cnn: Saved;
let fn: Saved;
let small: Saved;
const dirs: string[] = [];

beforeAll(async () => {
  cnn = await prepareModel('tfjs_cnn', sequentialCnn, 11);
  fn = await prepareModel('tfjs_functional', functionalModel, 12);
  small = await prepareModel('tfjs_shards', withInputLayer, 13, 2);
  dirs.push(cnn.dir, fn.dir, small.dir);
});

afterAll(() => {
  for (const m of [cnn, fn, small]) m?.model.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('TF.js model.json -> spec', () => {
  it('maps a Sequential model layer by layer, with Keras names, activations inside layers and no defaults', () => {
    const { spec } = loadSpec(cnn.file);
    const types = spec.layers.map((l) => ('type' in l ? l.type : 'reuse'));
    expect(types).toEqual([
      'conv2d', 'batchnorm', 'depthwise_conv2d', 'conv2d_transpose', 'relu', 'max_pool2d', 'avg_pool2d', 'activation',
      'dropout', 'flatten', 'dense', 'batchnorm', 'reshape', 'dense',
    ]);
    const [conv, , dw] = spec.layers as Record<string, unknown>[];
    // TF.js's default kernel initializer is glorot_normal (VarianceScaling fan_avg, normal)
    expect(conv).toEqual({ type: 'conv2d', name: cnn.model.layers[0]!.name, filters: 4, kernel_size: 3, padding: 'same', activation: 'relu', kernel_initializer: 'glorot_normal' });
    expect(dw).toMatchObject({ type: 'depthwise_conv2d', kernel_size: 3, depth_multiplier: 2, activation: 'tanh' });
    expect(spec.inputs).toEqual([{ name: `${cnn.model.layers[0]!.name}_input`, shape: [8, 8, 3] }]);
    expect(spec.outputs).toBeUndefined();
  });

  it('maps a functional model: inputs, a shared layer as reuse entries, merges, several outputs', () => {
    const { spec } = loadSpec(fn.file);
    expect(spec.inputs).toEqual([{ name: 'img', shape: [6, 6, 2] }, { name: 'vec', shape: [5] }]);
    const enc1 = spec.layers.find((l) => 'reuse' in l);
    expect(enc1).toEqual({ reuse: 'enc', name: 'enc_1' });
    expect(spec.layers.find((l) => l.name === 'out')).toMatchObject({ kernel_initializer: { type: 'random_normal', mean: 0, stddev: 0.1, seed: 1 } });
    expect(spec.layers.find((l) => 'type' in l && l.type === 'relu6')).toBeDefined();
    expect(spec.outputs).toEqual(['out', 'probs']);
    // the shared Dense has one kernel, used by both applications
    const graph = fn.p.graph;
    expect(graph.params.filter((p) => p.name.startsWith('enc/')).map((p) => p.name)).toEqual(['enc/kernel', 'enc/bias']);
    expect(graph.nodes.filter((n) => n.operands.includes('enc/kernel'))).toHaveLength(2);
  });

  it('carries the weights: lowerFile attaches them, BN statistics included', () => {
    const weights = extractWeights(cnn.p.graph);
    expect(weights.size).toBe(cnn.p.graph.params.length);
    const bn = cnn.model.layers[1]!;
    const mv = weights.get(`${bn.name}/moving_variance`)!;
    expect([...mv.data]).toEqual([...(bn.getWeights()[3]!.dataSync() as Float32Array)]);
  });
});

describe('a model.json from tensorflowjs_converter (Keras 2)', () => {
  it('reads the model_config wrapper, InputLayer, Keras initializer classes and plain weight names', () => {
    const dir = tempDir();
    dirs.push(dir);
    const modelJson = {
      format: 'layers-model',
      generatedBy: 'keras v2.13.1',
      convertedBy: 'TensorFlow.js Converter v4.22.0',
      modelTopology: {
        keras_version: '2.13.1',
        backend: 'tensorflow',
        model_config: {
          class_name: 'Functional',
          config: {
            name: 'keras-model',
            layers: [
              { class_name: 'InputLayer', config: { batch_input_shape: [null, 2], dtype: 'float32', sparse: false, ragged: false, name: 'input_1' }, name: 'input_1', inbound_nodes: [] },
              {
                class_name: 'Dense',
                config: {
                  name: 'dense', trainable: true, dtype: 'float32', units: 2, activation: 'relu', use_bias: true,
                  kernel_initializer: { class_name: 'GlorotUniform', config: { seed: null } },
                  bias_initializer: { class_name: 'Zeros', config: {} },
                  kernel_regularizer: null, bias_regularizer: null, activity_regularizer: null, kernel_constraint: null, bias_constraint: null,
                },
                name: 'dense',
                inbound_nodes: [[['input_1', 0, 0, {}]]],
              },
            ],
            input_layers: [['input_1', 0, 0]],
            output_layers: [['dense', 0, 0]],
          },
        },
        training_config: { loss: 'mse', optimizer_config: { class_name: 'SGD', config: {} } },
      },
      weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: [{ name: 'dense/kernel', shape: [2, 2], dtype: 'float32' }, { name: 'dense/bias', shape: [2], dtype: 'float32' }] }],
    };
    writeFileSync(join(dir, 'model.json'), JSON.stringify(modelJson, null, 2));
    writeFileSync(join(dir, 'group1-shard1of1.bin'), new Uint8Array(Float32Array.from([1, 2, 3, 4, 0.5, -1]).buffer));
    const { spec, graph } = lowerFile(join(dir, 'model.json'));
    expect(spec).toEqual({
      name: 'keras_model',
      inputs: [{ name: 'input_1', shape: [2] }],
      layers: [{ type: 'dense', name: 'dense', units: 2, activation: 'relu' }],
    });
    const y = interpret(graph, { input_1: fromF32([2, 2], Float32Array.from([1, 1, 1, -1])) })['dense']!;
    expect([...y.data]).toEqual([4.5, 5, 0, 0]);
  });
});

describe('imported models compute what TF.js computes', () => {
  for (const key of ['cnn', 'functional', 'shards'] as const) {
    it(`${key}: the reference interpreter, plain and -O`, () => {
      const { p } = key === 'cnn' ? cnn : key === 'functional' ? fn : small;
      expectMatches('interpreter', interpretOutputs(p.graph, p), p);
      expectMatches('interpreter -O', interpretOutputs(p.optimized, p), p);
    });
  }

  it('modelc compile model.json: the generated module uses the imported weights', async () => {
    for (const m of [cnn, fn]) {
      const out = tempDir();
      dirs.push(out);
      const r = await run('compile', m.file, '-o', out, '--emit', 'js', '--name', 'net');
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const mod = await importModule(readFileSync(join(out, 'net.js'), 'utf8'), m.p.name);
      expectMatches('generated', moduleOutputs(mod, m.p.graph, m.p), m.p);
      if (m === cnn) expectMatches('generated predict', [{ data: mod.predict!(cnn.p.feeds[cnn.p.graph.inputs[0]!.name]!, BATCH) }], cnn.p);
    }
  });

  it('modelc verify takes the imported weights; modelc init samples fresh ones', async () => {
    const v = await run('verify', fn.file);
    expect(v.stderr).toBe('');
    expect(v.code).toBe(0);
    const out = tempDir();
    dirs.push(out);
    const i = await run('init', small.file, '-o', join(out, 'w.safetensors'));
    expect(i.code).toBe(0);
    const seeded = readSafetensors(readFileSync(join(out, 'w.safetensors'))).tensors.get('h/kernel')!;
    expect([...seeded.data]).not.toEqual([...extractWeights(small.p.graph).get('h/kernel')!.data]);
  });

  it('modelc check model.json prints the summary with TF.js parameter counts', async () => {
    const r = await run('check', fn.file);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Total params: ${fn.model.countParams().toLocaleString('en-US')}`);
    expect(r.stdout).toMatch(/enc_1 .*reuse/);
  });
});

describe('modelc import', () => {
  it('writes the canonical spec and the safetensors weights, and prints them', async () => {
    const out = tempDir();
    dirs.push(out);
    const r = await run('import', fn.file, '-o', out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const spec = join(out, `${fn.p.graph.name}.json`);
    const weights = spec.replace(/\.json$/, '.safetensors');
    expect(r.stdout).toBe(`${spec}\n${weights}\n`);
    expect((await run('fmt', '--check', spec)).code).toBe(0);
    const { tensors } = readSafetensors(readFileSync(weights));
    const want = extractWeights(fn.p.graph);
    expect([...tensors.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [name, t] of want) expect([...tensors.get(name)!.data], name).toEqual([...t.data]);

    // the import compiles with its weights file to the same model
    const gen = tempDir();
    dirs.push(gen);
    const c = await run('compile', spec, '--weights', weights, '-o', gen, '--emit', 'js', '--name', 'again');
    expect(c.stderr).toBe('');
    const mod = await importModule(readFileSync(join(gen, 'again.js'), 'utf8'), 'again');
    expectMatches('imported spec + safetensors', moduleOutputs(mod, fn.p.graph, fn.p), fn.p);
  });

  it('takes --name, and reads a manifest split over two shards', async () => {
    const out = tempDir();
    dirs.push(out);
    const r = await run('import', small.file, '-o', out, '--name', 'tiny');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${join(out, 'tiny.json')}\n${join(out, 'tiny.safetensors')}\n`);
    expect(readSafetensors(readFileSync(join(out, 'tiny.safetensors'))).tensors.get('h/kernel')!.shape).toEqual([4, 8]);
  });

  it('refuses what is not a model.json', async () => {
    const r = await run('import', 'examples/seed_mlp.json', '-o', tempDir());
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('not a TF.js model.json');
  });
});

describe('import errors', () => {
  /** Saves `model` (or rewrites a saved model.json) into a fresh directory; runs `modelc import` on it. */
  async function importError(file: string): Promise<string> {
    const out = tempDir();
    dirs.push(out);
    const r = await run('import', file, '-o', out);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toBe('');
    noStack(r.stderr);
    expect(readdirSync(out)).toEqual([]);
    return r.stderr;
  }

  /** model.json as the edits see it: they reach into TF.js's JSON freely. */
  type Json = any;

  /** A copy of a saved model (model.json and shards) with model.json edited. */
  function edited(m: Saved, edit: (json: Json) => void): string {
    const dir = tempDir();
    dirs.push(dir);
    const json = JSON.parse(readFileSync(m.file, 'utf8')) as Json;
    for (const p of json.weightsManifest[0].paths) writeFileSync(join(dir, p), readFileSync(join(m.dir, p)));
    edit(json);
    writeFileSync(join(dir, 'model.json'), JSON.stringify(json));
    return join(dir, 'model.json');
  }

  it('an unsupported layer class names the layer, the class and model.json', async () => {
    const model = tf.sequential({ layers: [L.lstm({ units: 2, inputShape: [3, 4] }), L.dense({ units: 1 })] });
    const dir = tempDir();
    dirs.push(dir);
    const file = await saveModel(model, dir);
    model.dispose();
    const err = await importError(file);
    expect(err).toMatch(/model\.json:1:\d+: error: layer 'lstm_LSTM\d+' \(LSTM\): layer class 'LSTM' is not supported/);
    // the one-line model.json is shown around the error, not whole
    expect(err.split('\n')[1]!.length).toBeLessThan(140);
  });

  it('channels_first is refused, naming the layer', async () => {
    const file = edited(cnn, (j) => (j.modelTopology.config.layers[0].config.data_format = 'channels_first'));
    expect(await importError(file)).toMatch(new RegExp(`layer '${cnn.model.layers[0]!.name}' \\(Conv2D\\): data_format 'channels_first' is not supported`));
  });

  it('a missing shard names the file and a weight it holds', async () => {
    const file = edited(small, () => {});
    rmSync(join(file, '..', 'group1-shard2of2'));
    const err = await importError(file);
    expect(err).toMatch(/group1-shard2of2: error: cannot read weight shard 'group1-shard2of2' .*\(needed for weight 'h\/kernel'\): no such file or directory/);
  });

  it('a truncated shard names the file and the weight that does not fit', async () => {
    const file = edited(cnn, () => {});
    const bin = join(file, '..', 'weights.bin');
    writeFileSync(bin, readFileSync(bin).subarray(0, -6));
    const err = await importError(file);
    const last = cnn.model.weights[cnn.model.weights.length - 1]!.originalName;
    expect(err).toContain('weights.bin: error: ');
    expect(err).toContain(`weight '${last}' does not fit`);
    expect(err).toContain('truncated');
  });

  it('quantized weights, Keras options without a modelc form and unknown weights are diagnostics', async () => {
    const quantized = edited(small, (j) => (j.weightsManifest[0].weights[0].quantization = { dtype: 'uint8', scale: 0.1, min: 0 }));
    expect(await importError(quantized)).toContain("weight 'h/kernel' is quantized");
    const regularized = edited(small, (j) => (j.modelTopology.config.layers[1].config.kernel_regularizer = { class_name: 'L1L2', config: { l1: 0, l2: 0.01 } }));
    expect(await importError(regularized)).toContain("layer 'h' (Dense): kernel_regularizer is not supported");
    const softsign = edited(small, (j) => (j.modelTopology.config.layers[2].config.activation = 'softsign'));
    expect(await importError(softsign)).toContain("layer 'y' (Dense): activation 'softsign' is not supported");
    const stray = edited(small, (j) => (j.weightsManifest[0].weights[0].name = 'nowhere/kernel'));
    expect(await importError(stray)).toContain("weight 'nowhere/kernel' belongs to no layer of the model");
  });

  it('a manifest weight without a dtype, or with a shape no shard can hold, is located in model.json', async () => {
    const untyped = edited(small, (j) => delete j.weightsManifest[0].weights[0].dtype);
    expect(await importError(untyped)).toMatch(/model\.json:1:\d+: error: weight 'h\/kernel' has no "dtype"; only float32 weights can be imported/);
    const huge = edited(small, (j) => (j.weightsManifest[0].weights[0].shape = [1e200, 1e200]));
    expect(await importError(huge)).toMatch(/model\.json:1:\d+: error: weight 'h\/kernel': shape \[1e\+200,1e\+200\] has more than 1\.8e308 elements; a tensor holds at most 2\^31 - 1/);
  });

  it('other commands report the same errors, and fmt refuses a model.json', async () => {
    const file = edited(cnn, (j) => (j.modelTopology.config.layers[0].config.data_format = 'channels_first'));
    const r = await run('check', file);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('channels_first');
    const f = await run('fmt', cnn.file);
    expect(f.code).toBe(1);
    expect(f.stderr).toContain('modelc import');
  });
});
