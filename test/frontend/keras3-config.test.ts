/**
 * Keras 3's config dialect through `importKerasConfig`: configs written by
 * Keras 3.15 itself (scripts/keras/dump_configs.py, test/fixtures/keras/config)
 * import to the expected spec entries, and the weightless ones (operators,
 * activation strings) compute what Keras computed, through the reference
 * interpreter. Refusals are located at the offending key of the config, by
 * line and column; what only training could tell apart is a warning.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SourceFile } from '../../src/diagnostics/source.js';
import { lowerSpec } from '../../src/frontend/lower.js';
import { importKerasConfig, importTfjs } from '../../src/frontend/tfjs.js';
import { validateSpec } from '../../src/frontend/validate.js';
import { interpret } from '../../src/interp/interpret.js';
import { diagnosticOf } from '../helpers/graphs.js';

const DIR = join(import.meta.dirname, '..', 'fixtures', 'keras', 'config');
const source = (name: string) => new SourceFile(`${name}.json`, readFileSync(join(DIR, `${name}.json`), 'utf8'));
const imported = (name: string) => importKerasConfig(source(name));

/** The 1-based line and column of the first occurrence of `needle` at or after the line holding `after`. */
function position(file: SourceFile, needle: string, after?: string): { line: number; col: number } {
  const from = after === undefined ? 0 : file.text.indexOf(after);
  const at = file.text.indexOf(needle, from);
  if (from < 0 || at < 0) throw new Error(`${needle} not in ${file.path}`);
  return file.position(at);
}

function located(name: string): { message: string; code: string; line: number; col: number; file: SourceFile } {
  const file = source(name);
  const d = diagnosticOf(() => importKerasConfig(file));
  return { message: d.message, code: d.code, ...file.position(d.span!.start), file };
}

/** Runs an imported weightless model on the fixture's inputs and compares every output with Keras's. */
function expectKerasOutputs(name: string): void {
  const { spec, locations } = imported(name);
  const io = JSON.parse(readFileSync(join(DIR, `${name}.io.json`), 'utf8')) as { inputs: number[][][]; outputs: number[][][] };
  const { graph } = lowerSpec(validateSpec(spec, locations), locations);
  const feeds = Object.fromEntries(graph.inputs.map((input, i) => {
    const rows = io.inputs[i]!;
    return [input.name, { shape: [rows.length, rows[0]!.length], data: Float64Array.from(rows.flat()) }];
  }));
  const out = interpret(graph, feeds);
  graph.outputs.forEach((o, j) => {
    const want = io.outputs[j]!.flat();
    const got = [...out[o]!.data];
    expect(got.length, o).toBe(want.length);
    got.forEach((v, i) => expect(Math.abs(v - want[i]!), `${o}[${i}]: ${v} vs Keras ${want[i]}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(want[i]!))));
  });
}

describe('Keras 3 operator layers', () => {
  it('import with a constant as rescaling and between two tensors as the merge layer of the same Keras class', () => {
    const { spec, warnings } = imported('operators');
    expect(warnings).toEqual([]);
    const entries = spec.layers.map((l) => ({ ...l, name: undefined, inputs: undefined }));
    expect(entries).toEqual([
      { type: 'rescaling', scale: 1, offset: 3 }, // x + 3
      { type: 'rescaling', scale: 1, offset: 3 }, // 3 + x
      { type: 'rescaling', scale: 1, offset: -2 }, // x - 2
      { type: 'rescaling', scale: -1, offset: 3 }, // 3 - x
      { type: 'rescaling', scale: 1 / 6 }, // x * (1 / 6)
      { type: 'rescaling', scale: 1 / 6 }, // x / 6
      { type: 'rescaling', scale: -1 }, // -x
      { type: 'multiply' },
      { type: 'add' },
      { type: 'subtract' },
    ].map((e) => ({ ...e, name: undefined, inputs: undefined })));
    expect(spec.layers.slice(7).map((l) => ('inputs' in l ? l.inputs : undefined))).toEqual([['x', 'y'], ['x', 'y'], ['x', 'y']]);
  });

  it('compute what Keras computed', () => expectKerasOutputs('operators'));

  it('read the second operand from a keyword argument (the TF.js converter form {"y": 3})', () => {
    const topology = {
      class_name: 'Functional',
      config: {
        name: 'm',
        layers: [
          { class_name: 'InputLayer', name: 'x', config: { batch_input_shape: [null, 3], name: 'x' }, inbound_nodes: [] },
          { class_name: 'Subtract', name: 'sub', config: { name: 'sub' }, inbound_nodes: [[['x', 0, 0, { y: 4 }]]] },
        ],
        input_layers: [['x', 0, 0]],
        output_layers: [['sub', 0, 0]],
      },
    };
    const file = new SourceFile('model.json', JSON.stringify({ modelTopology: topology }));
    expect(importTfjs(file).spec.layers).toEqual([{ type: 'rescaling', scale: 1, offset: -4, name: 'sub' }]);
  });

  it('refuse an operator without an import as an unsupported class, at its class name', () => {
    const d = located('refuse_sqrt');
    expect(d.code).toBe('unknownLayer');
    expect(d.message).toMatch(/^layer 'sqrt': the Keras 3 operator 'Sqrt' is not supported \(modelc imports x \+ c/);
    expect(d.message).not.toMatch(/call arguments/);
    expect(d).toMatchObject(position(d.file, '"Sqrt"'));
  });

  it('refuse a division of two tensors, at its class name', () => {
    const d = located('refuse_divide_tensors');
    expect(d.message).toMatch(/the Keras 3 operator 'TrueDivide' between two tensors is not supported/);
    expect(d).toMatchObject(position(d.file, '"TrueDivide"'));
  });
});

describe('Keras 3 activation strings', () => {
  it("import with Keras 3's meaning: hard_sigmoid x/6 + 0.5, leaky_relu slope 0.2, gelu exact", () => {
    const { spec } = imported('activations');
    const byName = Object.fromEntries(spec.layers.map((l) => [l.name, { ...l, name: undefined, inputs: undefined }]));
    expect(byName['act_hard_sigmoid']).toMatchObject({ type: 'hard_sigmoid', alpha: 1 / 6 });
    expect(byName['act_leaky_relu']).toMatchObject({ type: 'leaky_relu', alpha: 0.2 });
    expect(byName['act_gelu']).toMatchObject({ type: 'activation', activation: 'gelu' });
    expect(byName['act_hard_silu']).toMatchObject({ type: 'activation', activation: 'hard_swish' });
    expect(byName['relu6_layer']).toMatchObject({ type: 'relu6' });
    expect(byName['leaky_layer']).toMatchObject({ type: 'leaky_relu' });
  });

  it('compute what Keras computed (MobileNetV3 hard sigmoid spelled with operators included)', () => expectKerasOutputs('activations'));

  it('refuse a Keras 3 string with attributes as a Dense activation, saying what it means, at the key', () => {
    const d = located('refuse_dense_hard_sigmoid');
    expect(d.message).toBe(
      `layer 'dense' (Dense): activation 'hard_sigmoid' (Keras 3's 'hard_sigmoid': hard_sigmoid with {"alpha":${1 / 6}}) inside a layer is not supported (as an Activation layer it is)`,
    );
    expect(d).toMatchObject(position(d.file, '"hard_sigmoid"'));
  });

  it('keep the Keras 2 meaning of hard_sigmoid in a TF.js model.json', () => {
    const topology = {
      class_name: 'Sequential',
      config: { name: 's', layers: [{ class_name: 'Activation', config: { name: 'a', activation: 'hard_sigmoid', batch_input_shape: [null, 2] } }] },
    };
    const spec = importTfjs(new SourceFile('model.json', JSON.stringify({ modelTopology: topology }))).spec;
    expect(spec.layers).toEqual([{ type: 'activation', activation: 'hard_sigmoid', name: 'a' }]);
  });
});

describe('Keras 3 model structure', () => {
  it('inlines nested Sequential and Functional models, renaming an inner layer whose name the outer model takes', () => {
    const { spec, kerasPaths } = imported('nested');
    expect(spec.layers.map((l) => ({ name: l.name, type: 'type' in l ? l.type : undefined, inputs: 'inputs' in l ? l.inputs : undefined }))).toEqual([
      { name: 'seq_dense', type: 'dense', inputs: undefined },
      { name: 'seq_relu', type: 'relu', inputs: undefined },
      { name: 'block_fn_head', type: 'dense', inputs: undefined },
      // the inner functional's `Dense(fi) + fi`: its input is the Sequential's output
      { name: expect.stringMatching(/^add/), type: 'add', inputs: ['block_fn_head', 'seq_relu'] },
      { name: 'head', type: 'dense', inputs: undefined },
    ]);
    expect(Object.fromEntries(kerasPaths)).toEqual({
      seq_dense: ['block_seq', 'seq_dense'],
      seq_relu: ['block_seq', 'seq_relu'],
      block_fn_head: ['block_fn', 'head'],
      [spec.layers[3]!.name!]: ['block_fn', spec.layers[3]!.name!],
    });
    expect(spec.inputs).toEqual([{ name: 'x', shape: [6] }]);
  });

  it('inlines a Sequential inside a Sequential, with its layers\' Keras paths', () => {
    const { spec, kerasPaths } = imported('nested_sequential');
    expect(spec.layers).toEqual([
      { type: 'dense', units: 5, activation: 'relu', name: 'first' },
      { type: 'dense', units: 3, name: 'inner_dense' },
      { type: 'hard_sigmoid', alpha: 1 / 6, name: 'inner_act' },
      { type: 'dense', units: 2, name: 'last' },
    ]);
    expect(Object.fromEntries(kerasPaths)).toEqual({ inner_dense: ['inner', 'inner_dense'], inner_act: ['inner', 'inner_act'] });
  });

  it('refuses a mixed precision dtype policy at its key', () => {
    const d = located('refuse_mixed_precision');
    expect(d.message).toBe(`layer 'dense' (Dense): dtype "mixed_float16" is not supported (modelc computes in float32; mixed precision and other dtype policies are refused)`);
    const dtypeLine = position(d.file, '"dtype"', '"name": "dense"');
    expect(d.line).toBe(dtypeLine.line);
  });

  it('refuses a call with training=True at the keyword, with its own message', () => {
    const d = located('refuse_training_true');
    expect(d.message).toBe("layer 'drop': training=true (the layer runs in training mode at inference) is not supported");
    expect(d.line).toBe(position(d.file, '"training": true').line);
  });

  it('refuses a mask passed to a layer as a mask, not as a layer class', () => {
    const file = source('training_only');
    const text = file.text.replace('"kwargs": {\n       "training": false\n      }', '"kwargs": {"mask": {"class_name": "__keras_tensor__", "config": {"keras_history": ["x", 0, 0]}}}');
    expect(text).not.toBe(file.text);
    const d = diagnosticOf(() => importKerasConfig(new SourceFile('m.json', text)));
    expect(d.message).toMatch(/^layer 'bn': masks are not supported \(the call passes mask /);
  });
});

describe('Keras 3 options that only training can tell apart', () => {
  it('import with warnings located at their keys: an initializer modelc cannot express, Dropout noise_shape', () => {
    const file = source('training_only');
    const { spec, warnings } = importKerasConfig(file);
    expect(spec.layers.map((l) => ({ ...l, inputs: undefined }))).toEqual([
      { type: 'conv2d', filters: 4, kernel_size: 3, padding: 'same', name: 'conv', inputs: undefined },
      { type: 'batchnorm', name: 'bn', inputs: undefined },
      { type: 'dropout', rate: 0.2, name: 'drop', inputs: undefined },
      { type: 'global_avg_pool2d', name: 'pool', inputs: undefined },
      // an initializer modelc has is kept, seed and all
      { type: 'dense', units: 3, kernel_initializer: { type: 'he_normal', seed: 3 }, name: 'dense', inputs: undefined },
    ]);
    expect(warnings.map((w) => w.message)).toEqual([
      `layer 'conv' (Conv2D): 'kernel_initializer': VarianceScaling(scale=2, mode="fan_out", distribution="truncated_normal") has no modelc name (glorot, he and lecun have one); the layer keeps modelc's default initializer (inference and imported weights are unaffected)`,
      "layer 'drop' (Dropout): noise_shape [null,1,1,1] is not kept: training drops each element independently (inference is unaffected)",
    ]);
    expect(warnings.map((w) => file.position(w.span!.start).line)).toEqual([
      position(file, '"kernel_initializer"').line,
      position(file, '"noise_shape"').line,
    ]);
  });
});
