/**
 * The contract of a generated inference module, at the library level
 * (generateInferenceModule, no CLI): the exported shapes, argument checks
 * (RangeError / TypeError with what was expected), fresh result arrays,
 * scratch reuse across batch sizes, several inputs, and outputs that alias or
 * are also read later (buffer planning must keep them alive).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { generateInferenceModule } from '../../src/codegen/index.js';
import { interpret } from '../../src/interp/interpret.js';
import type { Graph } from '../../src/ir/graph.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { materialize } from '../../src/ops/init.js';
import { randomFeeds } from '../../src/passes/equivalence.js';
import { createPassManager, defaultPipeline } from '../../src/passes/pipeline.js';
import { importModule, type InferenceModule } from '../helpers/generated.js';
import { lowerJson, type JsonSpec } from '../helpers/graphs.js';

/** The graph of a JSON spec with seeded weights, optimized with the default pipeline unless told. */
function graphOf(spec: JsonSpec, optimize = true, seed = 3): Graph {
  const g = materialize(lowerJson(spec).graph, seed);
  return optimize ? createPassManager().run(g, defaultPipeline) : g;
}

async function moduleOf(graph: Graph, weightsMode: 'embed' | 'external' = 'embed') {
  const gen = await generateInferenceModule(graph, { name: graph.name, weightsMode });
  return { gen, mod: await importModule(gen.js, graph.name) };
}

/** Seeded float32 inputs for every graph input, and the same values as interpreter tensors. */
function feedsOf(graph: Graph, batch: number, seed = 11) {
  const tensors = randomFeeds(graph, batch, seed);
  const f32: Record<string, Float32Array> = {};
  const f64: Record<string, Tensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    f32[name] = Float32Array.from(t.data);
    f64[name] = { shape: t.shape, data: Float64Array.from(f32[name]) };
  }
  return { f32, f64 };
}

/** max |got - want| <= tol * max(1, max |want|). */
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5, what = 'output'): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  let scale = 1;
  let worst = 0;
  let at = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]!));
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= worst)) [worst, at] = [Number.isNaN(d) ? Infinity : d, i];
  }
  expect(worst, `${what}: worst |diff| at [${at}] (got ${got[at]}, want ${want[at]})`).toBeLessThanOrEqual(tol * scale);
}

const mustThrow = (f: () => unknown): Error => {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw');
};

// A small CNN: conv + batchnorm + relu, pool, flatten, dense + softmax (every kind of kernel the examples use).
const cnnSpec: JsonSpec = {
  name: 'small_cnn',
  inputs: [{ name: 'img', shape: [6, 6, 2] }],
  layers: [
    { type: 'conv2d', filters: 3, kernel_size: 3, padding: 'same' },
    { type: 'batchnorm' },
    { type: 'activation', activation: 'relu' },
    { type: 'max_pool2d', pool_size: 2 },
    { type: 'flatten' },
    { type: 'dense', units: 5 },
    { type: 'activation', activation: 'softmax' },
  ],
};

describe('the single-input contract (small CNN)', () => {
  let graph: Graph;
  let mod: InferenceModule;
  beforeAll(async () => {
    graph = graphOf(cnnSpec);
    ({ mod } = await moduleOf(graph));
  });

  it('exports inputs and outputs with per-example shapes', () => {
    expect(mod.inputs.map((i) => ({ name: i.name, shape: [...i.shape] }))).toEqual([{ name: 'img', shape: [6, 6, 2] }]);
    expect(mod.outputs).toHaveLength(1);
    expect([...mod.outputs[0]!.shape]).toEqual([5]);
    expect(mod.outputs[0]!.name).toBe(graph.outputs[0]);
  });

  it('predict matches the reference interpreter, and module-level predict is new Model().predict', () => {
    const { f32, f64 } = feedsOf(graph, 3);
    const want = interpret(graph, f64)[graph.outputs[0]!]!.data;
    const got = new mod.Model().predict(f32['img']!, 3);
    expectClose(got, want);
    expect(mod.predict!(f32['img']!, 3)).toEqual(got);
  });

  it('predict: a wrong input length is a RangeError naming the expected number of floats', () => {
    const m = new mod.Model();
    for (const [len, batch] of [[72 + 1, 1], [71, 1], [0, 1], [72, 2], [72 * 3, 2]] as const) {
      const err = mustThrow(() => m.predict(new Float32Array(len), batch));
      expect(err).toBeInstanceOf(RangeError);
      expect(err.message).toContain(String(72 * batch)); // what it wanted
      expect(err.message).toContain(String(len)); // what it got
      expect(err.message).toContain('img');
    }
    expect(() => mod.predict!(new Float32Array(73), 1)).toThrow(RangeError);
  });

  it.each([0, -1, 1.5, NaN, Infinity])('predict and run: batchSize %s is a RangeError', (batch) => {
    const m = new mod.Model();
    const err = mustThrow(() => m.predict(new Float32Array(72), batch));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toMatch(/batchSize must be a positive integer/);
    expect(() => m.run({ img: new Float32Array(72) }, batch)).toThrow(RangeError);
  });

  it('predict and run: an input that is not a Float32Array is a TypeError', () => {
    const m = new mod.Model();
    for (const bad of [new Float64Array(72), Array.from({ length: 72 }, () => 0), new Uint8Array(72)]) {
      const err = mustThrow(() => m.predict(bad as unknown as Float32Array, 1));
      expect(err).toBeInstanceOf(TypeError);
      expect(err.message).toContain('Float32Array');
      expect(() => m.run({ img: bad as unknown as Float32Array }, 1)).toThrow(TypeError);
    }
  });

  it('run: a missing feed or an unknown feed name is a TypeError naming it', () => {
    const m = new mod.Model();
    const missing = mustThrow(() => m.run({}, 1));
    expect(missing).toBeInstanceOf(TypeError);
    expect(missing.message).toContain('"img"');
    const unknown = mustThrow(() => m.run({ img: new Float32Array(72), imgs: new Float32Array(72) }, 1));
    expect(unknown).toBeInstanceOf(TypeError);
    expect(unknown.message).toContain('"imgs"');
    // inherited names are not feeds
    expect(() => m.run(Object.create({ img: new Float32Array(72) }) as Record<string, Float32Array>, 1)).toThrow(TypeError);
    expect(() => m.run({ img: new Float32Array(71) }, 1)).toThrow(RangeError);
  });

  it('returned arrays are fresh: distinct objects, owned by the caller, the input untouched', () => {
    const m = new mod.Model();
    const { f32 } = feedsOf(graph, 2);
    const x = f32['img']!;
    const xCopy = x.slice();
    const a = m.predict(x, 2);
    const aCopy = a.slice();
    const b = m.predict(x, 2);
    expect(b).not.toBe(a);
    expect(b.buffer).not.toBe(a.buffer);
    expect(b).toEqual(aCopy);
    a.fill(42);
    const c = m.predict(x, 2);
    expect(c).toEqual(aCopy);
    expect(b).toEqual(aCopy); // b did not change when a was written
    expect(x).toEqual(xCopy);
    expect(a.length).toBe(10); // exactly batchSize * 5, not the scratch capacity
    const r1 = m.run({ img: x }, 2);
    const r2 = m.run({ img: x }, 2);
    const name = graph.outputs[0]!;
    expect(r1[name]).not.toBe(r2[name]);
    r1[name]!.fill(-1);
    expect(m.run({ img: x }, 2)[name]).toEqual(aCopy);
    // module-level predict shares one Model, still returns fresh arrays
    const p1 = mod.predict!(x, 2);
    p1.fill(7);
    expect(mod.predict!(x, 2)).toEqual(aCopy);
  });

  it('embedded mode: new Model(bytes) takes other weights; a wrong file is an Error naming the tensor', async () => {
    const other = graphOf(cnnSpec, true, 99);
    const { gen } = await moduleOf(other, 'external');
    const { f32, f64 } = feedsOf(graph, 2);
    const withOther = new mod.Model(gen.weights!).predict(f32['img']!, 2);
    expectClose(withOther, interpret(other, f64)[other.outputs[0]!]!.data);
    expect(withOther).not.toEqual(new mod.Model().predict(f32['img']!, 2));
    const err = mustThrow(() => new mod.Model(gen.weights!.subarray(0, gen.weights!.length - 4)));
    expect(err.message).toMatch(/^weights: tensor ".*" has data_offsets/);
  });
});

// Every other kernel kind: transposed, depthwise and grouped convs, avg/global pools, concatenate, gelu, elu.
const exoticSpec: JsonSpec = {
  name: 'exotic',
  inputs: [{ name: 'x', shape: [7, 6, 3] }],
  layers: [
    { type: 'conv2d_transpose', filters: 4, kernel_size: 3, strides: 2, padding: 'same' },
    { type: 'batchnorm' },
    { type: 'activation', activation: 'elu' },
    { type: 'depthwise_conv2d', kernel_size: 3, depth_multiplier: 2, strides: 2 },
    { type: 'avg_pool2d', pool_size: 2, padding: 'same', name: 'ap' },
    { type: 'conv2d', filters: 4, kernel_size: [2, 3], groups: 2, padding: 'same', name: 'g' },
    { type: 'concatenate', inputs: ['ap', 'g'] },
    { type: 'global_max_pool2d' },
    { type: 'dense', units: 3, activation: 'gelu' },
    { type: 'batchnorm' },
    { type: 'dense', units: 4, activation: 'softmax' },
  ],
};

describe.each([
  ['small_cnn', cnnSpec],
  ['exotic', exoticSpec],
])('scratch reuse (%s)', (_, spec) => {
  it('one Model over batches 5, 2, 7, 2, 5 gives what fresh Models give, per example what batch 1 gives, and the interpreter\'s values', async () => {
    const graph = graphOf(spec);
    const { mod } = await moduleOf(graph);
    const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
    const inSize = size(mod.inputs[0]!.shape);
    const outSize = size(mod.outputs[0]!.shape);
    const shared = new mod.Model();
    for (const [k, batch] of [5, 2, 7, 2, 5].entries()) {
      const { f32, f64 } = feedsOf(graph, batch, 100 + k);
      const x = f32['x'] ?? f32['img']!;
      const got = shared.predict(x, batch);
      expect(got, `batch ${batch} (call ${k})`).toEqual(new mod.Model().predict(x, batch));
      expectClose(got, interpret(graph, f64)[graph.outputs[0]!]!.data, 1e-5, `batch ${batch} (call ${k}) against the interpreter`);
      for (let e = 0; e < batch; e++) {
        const one = new mod.Model().predict(x.slice(e * inSize, (e + 1) * inSize), 1);
        expectClose(got.subarray(e * outSize, (e + 1) * outSize), one, 1e-6, `batch ${batch}, example ${e}`);
      }
    }
  });
});

describe('a model with two inputs', () => {
  const spec: JsonSpec = {
    name: 'two_in',
    inputs: [{ name: 'a', shape: [4] }, { name: 'b', shape: [3] }],
    layers: [
      { type: 'dense', units: 4, name: 'pb', inputs: ['b'] },
      { type: 'add', inputs: ['a', 'pb'] },
      { type: 'dense', units: 2, activation: 'tanh' },
    ],
  };
  let graph: Graph;
  let mod: InferenceModule;
  beforeAll(async () => {
    graph = graphOf(spec);
    ({ mod } = await moduleOf(graph));
  });

  it('predict throws (use run); run feeds both by name', () => {
    expect(mod.inputs.map((i) => [i.name, [...i.shape]])).toEqual([['a', [4]], ['b', [3]]]);
    const m = new mod.Model();
    const err = mustThrow(() => m.predict(new Float32Array(4), 1));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toContain('run');
    expect(() => mod.predict!(new Float32Array(4), 1)).toThrow(TypeError);
    const { f32, f64 } = feedsOf(graph, 3);
    const out = m.run(f32, 3);
    expect(Object.keys(out)).toEqual(graph.outputs);
    expectClose(out[graph.outputs[0]!]!, interpret(graph, f64)[graph.outputs[0]!]!.data);
  });

  it('run checks each input: missing, wrong length (naming the input), unknown', () => {
    const m = new mod.Model();
    const a = new Float32Array(8);
    const b = new Float32Array(6);
    expect(() => m.run({ a }, 2)).toThrow(/"b"/);
    expect(() => m.run({ a }, 2)).toThrow(TypeError);
    const err = mustThrow(() => m.run({ a, b: new Float32Array(7) }, 2));
    expect(err).toBeInstanceOf(RangeError);
    expect(err.message).toContain('"b"');
    expect(err.message).toContain('6');
    expect(() => m.run({ a, b, c: b }, 2)).toThrow(TypeError);
    expect(m.run({ a, b }, 2)[graph.outputs[0]!]).toHaveLength(4);
  });
});

describe('outputs that alias or are read later', () => {
  it('an output that is a flatten/reshape of an intermediate value, with the intermediate read by later layers', async () => {
    // h is computed by a kernel; `flat` (an output) is an alias of h's buffer; h feeds a chain long enough
    // for the buffer planner to want h's slot back.
    const spec: JsonSpec = {
      name: 'alias_out',
      inputs: [{ name: 'x', shape: [2, 3] }],
      layers: [
        { type: 'dense', units: 4, name: 'h' },
        { type: 'flatten', name: 'flat' },
        { type: 'dense', units: 4, name: 'd1', inputs: ['h'], activation: 'relu' },
        { type: 'dense', units: 4, name: 'd2', activation: 'relu' },
        { type: 'dense', units: 4, name: 'd3', activation: 'relu' },
        { type: 'reshape', target_shape: [8], name: 'r' },
        { type: 'dense', units: 3, name: 'y' },
      ],
      outputs: ['flat', 'y', 'r', 'h'],
    };
    for (const optimize of [false, true]) {
      const graph = graphOf(spec, optimize);
      const { mod } = await moduleOf(graph);
      expect(mod.outputs.map((o) => [o.name, [...o.shape]])).toEqual([['flat', [8]], ['y', [3]], ['r', [8]], ['h', [2, 4]]]);
      const m = new mod.Model();
      for (const batch of [3, 1, 4]) {
        const { f32, f64 } = feedsOf(graph, batch, batch);
        const want = interpret(graph, f64);
        const got = m.run(f32, batch);
        expect(Object.keys(got)).toEqual(['flat', 'y', 'r', 'h']);
        for (const o of graph.outputs) expectClose(got[o]!, want[o]!.data, 1e-5, `${o} (optimize ${optimize}, batch ${batch})`);
        expectClose(m.predict(f32['x']!, batch), want['flat']!.data, 1e-5, 'predict');
        // flat and h are one buffer in the module; they come back as separate arrays
        expect(got['flat']).not.toBe(got['h']);
        got['flat']!.fill(12345);
        expectClose(got['h']!, want['h']!.data, 1e-5, 'h after writing flat');
      }
    }
  });

  it('an output that is a reshape of the input itself is a copy, not the caller\'s array', async () => {
    const spec: JsonSpec = {
      name: 'input_alias',
      inputs: [{ name: 'x', shape: [2, 2] }],
      layers: [{ type: 'flatten', name: 'f' }, { type: 'dense', units: 2, name: 'y' }],
      outputs: ['f', 'y'],
    };
    const graph = graphOf(spec);
    const { mod } = await moduleOf(graph);
    const x = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const f = new mod.Model().predict(x, 2);
    expect(f).toEqual(x);
    expect(f).not.toBe(x);
    f[0] = 100;
    expect(x[0]).toBe(1);
    const out = new mod.Model().run({ x }, 2);
    expect(out['f']).toEqual(x);
    expect(out['f']).not.toBe(x);
  });

  it('two outputs, one an intermediate value consumed later (residual block)', async () => {
    const spec: JsonSpec = {
      name: 'two_out',
      inputs: [{ name: 'x', shape: [5, 5, 2] }],
      layers: [
        { type: 'conv2d', filters: 2, kernel_size: 3, padding: 'same', name: 'a' },
        { type: 'batchnorm', name: 'bn_a' },
        { type: 'activation', activation: 'relu', name: 'mid' },
        { type: 'conv2d', filters: 2, kernel_size: 3, padding: 'same', name: 'b' },
        { type: 'batchnorm', name: 'bn_b' },
        { type: 'add', inputs: ['mid', 'bn_b'], name: 'sum' },
        { type: 'conv2d', filters: 2, kernel_size: 1, name: 'c' },
        { type: 'global_avg_pool2d', name: 'y' },
      ],
      outputs: ['y', 'mid'],
    };
    for (const optimize of [false, true]) {
      const graph = graphOf(spec, optimize);
      const { mod } = await moduleOf(graph);
      expect(mod.outputs.map((o) => [o.name, [...o.shape]])).toEqual([['y', [2]], ['mid', [5, 5, 2]]]);
      const m = new mod.Model();
      for (const batch of [2, 3]) {
        const { f32, f64 } = feedsOf(graph, batch, 5 + batch);
        const want = interpret(graph, f64);
        const got = m.run(f32, batch);
        expect(Object.keys(got)).toEqual(['y', 'mid']);
        for (const o of graph.outputs) expectClose(got[o]!, want[o]!.data, 1e-5, `${o} (optimize ${optimize}, batch ${batch})`);
        expectClose(m.predict(f32['x']!, batch), want['y']!.data, 1e-5, 'predict');
      }
    }
  });
});
