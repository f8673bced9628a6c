/**
 * Initializers: fans, distributions (Keras formulas and defaults), sample
 * statistics over large tensors, known answers, and the determinism contract
 * of `materialize`.
 */
import { describe, expect, it } from 'vitest';
import type { Graph, InitSpec } from '../../src/ir/graph.js';
import { computeFans, distributionOf, initializerNames, materialize, sampleInit } from '../../src/ops/init.js';
import { paramStream } from '../../src/util/prng.js';
import { diagnosticOf, lowerJson, model } from '../helpers/graphs.js';

const init = (type: string, args: Record<string, number> = {}): InitSpec => ({ type, args });
const f32 = Math.fround;

describe('computeFans', () => {
  it.each([
    ['a scalar', [], 1, 1],
    ['a bias', [64], 64, 64],
    ['a dense kernel [in, out]', [784, 128], 784, 128],
    ['a conv2d kernel [kh, kw, in, out]', [3, 3, 16, 32], 144, 288],
    ['a depthwise kernel [kh, kw, in, multiplier]', [5, 5, 8, 2], 200, 50],
    ['a rank-5 kernel', [5, 7, 2, 3, 4], 210, 280],
  ])('%s %j', (_, shape, fanIn, fanOut) => {
    expect(computeFans(shape)).toEqual({ fanIn, fanOut });
  });
});

describe('distributionOf', () => {
  const conv = [3, 3, 16, 32]; // fan_in 144, fan_out 288
  const c = 0.87962566103423978;
  it.each([
    ['zeros', {}, { kind: 'constant', value: 0 }],
    ['ones', {}, { kind: 'constant', value: 1 }],
    ['constant', {}, { kind: 'constant', value: 0 }],
    ['constant', { value: 0.25 }, { kind: 'constant', value: 0.25 }],
    ['uniform', {}, { kind: 'uniform', minval: -0.05, maxval: 0.05 }],
    ['random_uniform', {}, { kind: 'uniform', minval: -0.05, maxval: 0.05 }],
    ['random_uniform', { minval: 1, maxval: 3 }, { kind: 'uniform', minval: 1, maxval: 3 }],
    ['random_normal', {}, { kind: 'normal', mean: 0, stddev: 0.05 }],
    ['random_normal', { mean: 2, stddev: 0.5 }, { kind: 'normal', mean: 2, stddev: 0.5 }],
    ['truncated_normal', {}, { kind: 'truncated_normal', mean: 0, stddev: 0.05 }],
    ['glorot_uniform', {}, { kind: 'uniform', minval: -Math.sqrt(6 / 432), maxval: Math.sqrt(6 / 432) }],
    ['glorot_normal', {}, { kind: 'truncated_normal', mean: 0, stddev: Math.sqrt(2 / 432) / c }],
    ['he_uniform', {}, { kind: 'uniform', minval: -Math.sqrt(6 / 144), maxval: Math.sqrt(6 / 144) }],
    ['he_normal', {}, { kind: 'truncated_normal', mean: 0, stddev: Math.sqrt(2 / 144) / c }],
    ['lecun_uniform', {}, { kind: 'uniform', minval: -Math.sqrt(3 / 144), maxval: Math.sqrt(3 / 144) }],
    ['lecun_normal', {}, { kind: 'truncated_normal', mean: 0, stddev: Math.sqrt(1 / 144) / c }],
  ])('%s %j of a conv kernel', (type, args, expected) => {
    const d = distributionOf(init(type, args), conv) as unknown as Record<string, unknown>;
    expect(Object.keys(d)).toEqual(Object.keys(expected));
    for (const [k, v] of Object.entries(expected)) {
      if (typeof v === 'number') expect(d[k]).toBeCloseTo(v, 15);
      else expect(d[k]).toBe(v);
    }
  });

  it('divides by at least 1 (Keras: scale / max(1, fan)), so empty tensors do not divide by zero', () => {
    expect(distributionOf(init('he_uniform'), [0, 4])).toEqual({ kind: 'uniform', minval: -Math.sqrt(6), maxval: Math.sqrt(6) });
  });

  it('reports an unknown initializer', () => {
    expect(diagnosticOf(() => distributionOf(init('glorot_unifrom'), [2]))).toEqual({
      code: 'weights',
      message: "unknown initializer 'glorot_unifrom'; did you mean 'glorot_uniform'?",
    });
  });
});

/** Sample mean and (population) variance. */
function moments(xs: Float32Array): { mean: number; variance: number; min: number; max: number } {
  let sum = 0;
  for (const x of xs) sum += x;
  const mean = sum / xs.length;
  let ss = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const x of xs) {
    ss += (x - mean) ** 2;
    min = Math.min(min, x);
    max = Math.max(max, x);
  }
  return { mean, variance: ss / xs.length, min, max };
}

describe('sample statistics', () => {
  // 73,728 values; fan_in = 576, fan_out = 1152.
  const shape = [3, 3, 64, 128];
  const n = 3 * 3 * 64 * 128;
  const trunc = 0.87962566103423978 ** 2; // variance of a standard normal truncated to (-2, 2)
  const u = (limit: number) => ({ mean: 0, variance: limit ** 2 / 3, bound: limit });
  const cases: [string, Record<string, number>, { mean: number; variance: number; bound?: number }][] = [
    ['uniform', {}, u(0.05)],
    ['random_uniform', { minval: 1, maxval: 3 }, { mean: 2, variance: 4 / 12 }],
    ['random_normal', { mean: 1, stddev: 2 }, { mean: 1, variance: 4 }],
    ['truncated_normal', { mean: -1, stddev: 0.5 }, { mean: -1, variance: 0.25 * trunc }],
    ['glorot_uniform', {}, u(Math.sqrt(6 / 1728))],
    ['glorot_normal', {}, { mean: 0, variance: 2 / 1728 }],
    ['he_uniform', {}, u(Math.sqrt(6 / 576))],
    ['he_normal', {}, { mean: 0, variance: 2 / 576 }],
    ['lecun_uniform', {}, u(Math.sqrt(3 / 576))],
    ['lecun_normal', {}, { mean: 0, variance: 1 / 576 }],
  ];
  it.each(cases)('%s %j', (type, args, expected) => {
    const values = sampleInit(init(type, args), shape, paramStream(123, 'conv2d/kernel'));
    expect(values).toHaveLength(n);
    const m = moments(values);
    // Tolerances: 5 standard errors. The mean's is sqrt(var / n); the variance's is at most
    // var * sqrt(2 / n) (normal kurtosis 3: var * sqrt((kurtosis - 1) / n); uniform and truncated are flatter).
    expect(Math.abs(m.mean - expected.mean)).toBeLessThan(5 * Math.sqrt(expected.variance / n));
    expect(Math.abs(m.variance - expected.variance)).toBeLessThan(5 * expected.variance * Math.sqrt(2 / n));
  });

  it.each([
    ['random_uniform', { minval: 1, maxval: 3 }, 1, 3],
    ['glorot_uniform', {}, -Math.sqrt(6 / 1728), Math.sqrt(6 / 1728)],
    ['truncated_normal', { mean: -1, stddev: 0.5 }, -2, 0],
    ['he_normal', {}, -2 * (Math.sqrt(2 / 576) / 0.87962566103423978), 2 * (Math.sqrt(2 / 576) / 0.87962566103423978)],
  ])('%s %j stays within [%d, %d] and comes near both ends', (type, args, lo, hi) => {
    const m = moments(sampleInit(init(type, args), shape, paramStream(9, 'k')));
    expect(m.min).toBeGreaterThanOrEqual(f32(lo));
    expect(m.max).toBeLessThanOrEqual(f32(hi));
    expect(m.min).toBeLessThan(lo + 0.01 * (hi - lo));
    expect(m.max).toBeGreaterThan(hi - 0.01 * (hi - lo));
  });

  it('untruncated normals do go past 2 stddev', () => {
    const m = moments(sampleInit(init('random_normal', { stddev: 1 }), [n], paramStream(9, 'k')));
    expect(Math.max(-m.min, m.max)).toBeGreaterThan(3);
  });

  it.each([
    ['zeros', {}, 0],
    ['ones', {}, 1],
    ['constant', { value: -0.5 }, -0.5],
  ])('%s %j fills the tensor and draws nothing', (type, args, value) => {
    const stream = paramStream(1, 'k');
    expect(Array.from(sampleInit(init(type, args), [2, 3], stream))).toEqual([value, value, value, value, value, value]);
    expect(stream.nextU32()).toBe(paramStream(1, 'k').nextU32());
  });
});

describe('known answers', () => {
  // Computed by the Python script of prng.test.ts, rounded to f32 with struct.pack('<f', x):
  //   glorot_uniform: limit = sqrt(6 / (2 + 3)); value = -limit + 2 * limit * float()
  //   he_normal [3, 3, 2, 4]: stddev = sqrt(2 / 18) / 0.87962566103423978; z = normal() redrawn while |z| > 2
  it('glorot_uniform [2, 3] of dense/kernel, seed 42', () => {
    const v = sampleInit(init('glorot_uniform'), [2, 3], paramStream(42, 'dense/kernel'));
    expect(Array.from(v)).toEqual([
      0.9202690124511719, -0.16319645941257477, -0.5667039155960083, 0.6657546758651733, -0.18341584503650665,
      -0.8384692668914795,
    ]);
  });

  it('he_normal [3, 3, 2, 4] of conv2d/kernel, seed 42 (first 5 values)', () => {
    const v = sampleInit(init('he_normal'), [3, 3, 2, 4], paramStream(42, 'conv2d/kernel'));
    const expected = [0.04980042204260826, -0.02725965343415737, 0.10945073515176773, -0.14672420918941498, -0.013264920562505722];
    expected.forEach((x, i) => expect(v[i]).toBeCloseTo(x, 7));
  });
});

describe('materialize', () => {
  const mlp = (extra: object[] = []) =>
    lowerJson(
      model([8], [
        { type: 'dense', units: 16, name: 'fc1' },
        ...extra,
        { type: 'batchnorm', name: 'bn' },
        { type: 'dense', units: 4, name: 'fc2', kernel_initializer: { type: 'random_normal', seed: 5 } },
      ]),
    ).graph;
  const values = (g: Graph) => new Map(g.params.map((p) => [p.name, Array.from(p.value!)]));

  it('gives every parameter a value of its size, following its initializer', () => {
    const g = materialize(mlp(), 1);
    for (const p of g.params) expect(p.value).toHaveLength(p.type.shape.reduce<number>((a, d) => a * (d as number), 1));
    const v = values(g);
    expect(v.get('fc1/bias')).toEqual(new Array(16).fill(0));
    expect(v.get('bn/gamma')).toEqual(new Array(16).fill(1));
    expect(v.get('bn/moving_variance')).toEqual(new Array(16).fill(1));
    expect(new Set(v.get('fc1/kernel')).size).toBe(128);
  });

  it('is deterministic: the same seed gives the same bytes', () => {
    expect(values(materialize(mlp(), 1))).toEqual(values(materialize(mlp(), 1)));
  });

  it('another seed gives other values, except where the initializer has its own seed', () => {
    const a = values(materialize(mlp(), 1));
    const b = values(materialize(mlp(), 2));
    expect(a.get('fc1/kernel')).not.toEqual(b.get('fc1/kernel'));
    expect(a.get('fc2/kernel')).toEqual(b.get('fc2/kernel'));
    expect(a.get('fc2/kernel')).toEqual(Array.from(sampleInit(init('random_normal', { seed: 5 }), [16, 4], paramStream(5, 'fc2/kernel'))));
  });

  it("adding a layer keeps the other layers' values", () => {
    const before = values(materialize(mlp(), 3));
    const after = values(materialize(mlp([{ type: 'dense', units: 16, name: 'fc_new' }]), 3));
    expect(after.get('fc_new/kernel')).toBeDefined();
    for (const [name, v] of before) expect(after.get(name)).toEqual(v);
  });

  it('keeps existing values', () => {
    const g = mlp();
    const kept = new Float32Array(128).fill(7);
    const withValue: Graph = { ...g, params: g.params.map((p) => (p.name === 'fc1/kernel' ? { ...p, value: kept } : p)) };
    expect(materialize(withValue, 1).params.find((p) => p.name === 'fc1/kernel')!.value).toBe(kept);
  });

  it('reports a parameter it cannot initialize, and a bad seed', () => {
    const g = mlp();
    const data: Graph = { ...g, params: g.params.map((p) => (p.name === 'bn/beta' ? { ...p, init: init('data') } : p)) };
    expect(diagnosticOf(() => materialize(data, 1))).toEqual({
      code: 'weights',
      message: "cannot initialize parameter 'bn/beta': its values are computed ('data'), not initialized",
    });
    const odd: Graph = { ...g, params: g.params.map((p) => (p.name === 'bn/beta' ? { ...p, init: init('orthogonal') } : p)) };
    expect(diagnosticOf(() => materialize(odd, 1)).message).toBe("cannot initialize parameter 'bn/beta': unknown initializer 'orthogonal'");
    expect(diagnosticOf(() => materialize(g, 0.5)).message).toBe('the seed must be an integer, got 0.5');
    const bigSeed: Graph = { ...g, params: g.params.map((p) => (p.name === 'fc1/kernel' ? { ...p, init: init('he_normal', { seed: 2 ** 60 }) } : p)) };
    expect(diagnosticOf(() => materialize(bigSeed, 1)).message).toBe(
      "the initializer seed of parameter 'fc1/kernel' must be an integer, got 1152921504606847000",
    );
  });

  it('covers every initializer name', () => {
    for (const name of initializerNames) expect(sampleInit(init(name), [2, 2], paramStream(0, 'p'))).toHaveLength(4);
  });
});
