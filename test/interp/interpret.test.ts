/**
 * The interpreter end to end: graphs lowered from JSON specs (the examples, a
 * hand-computed one, random ones) evaluated with parameter values, and the
 * diagnostics for missing or misshapen inputs and parameters.
 */
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Graph } from '../../src/ir/graph.js';
import { interpret, interpretAll } from '../../src/interp/interpret.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { arbSpec, diagnosticOf, lowerGenerated, lowerJson, model, type JsonSpec } from '../helpers/graphs.js';
import { arbSeed, expectClose, randomTensor, t, withRandomParams } from '../helpers/tensors.js';

const example = (name: string) => JSON.parse(readFileSync(new URL(`../../examples/${name}.json`, import.meta.url), 'utf8')) as JsonSpec;

/** The graph's declared shape of a value, with N = batch. */
function shapeOf(g: Graph, name: string, batch: number): number[] {
  const type = [...g.inputs, ...g.params].find((v) => v.name === name)?.type ?? g.nodes.find((n) => n.result === name)!.type;
  return type.shape.map((d) => (d === 'N' ? batch : d));
}

/** Random feeds of batch `batch` for every input of the graph. */
function feedsFor(g: Graph, batch: number, seed: number): Record<string, Tensor> {
  return Object.fromEntries(g.inputs.map((i, j) => [i.name, randomTensor(shapeOf(g, i.name, batch), seed + j, 'float')]));
}

/** Each row of a [batch, classes] tensor sums to 1. */
function expectRowsSumToOne(y: Tensor): void {
  const [rows, cols] = y.shape as [number, number];
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += y.data[r * cols + c]!;
    expect(Math.abs(sum - 1)).toBeLessThan(1e-12);
  }
}

describe('examples', () => {
  for (const [name, softmaxOutput] of [['seed_mlp', true], ['mnist_cnn', true], ['res_block', false]] as const) {
    it(`${name}: every value has its declared shape${softmaxOutput ? ', softmax rows sum to 1' : ''}`, () => {
      const g = withRandomParams(lowerJson(example(name)).graph, 7);
      const values = interpretAll(g, feedsFor(g, 3, 11));
      expect([...values.keys()]).toEqual([...g.inputs.map((i) => i.name), ...g.params.map((p) => p.name), ...g.nodes.map((n) => n.result)]);
      for (const [value, tensor] of values) {
        expect(tensor.shape, value).toEqual(shapeOf(g, value, 3));
        expect(tensor.data.every(Number.isFinite), value).toBe(true);
      }
      const outputs = interpret(g, feedsFor(g, 3, 11));
      expect(Object.keys(outputs)).toEqual(g.outputs);
      for (const o of g.outputs) expect(outputs[o]).toEqual(values.get(o));
      if (softmaxOutput) expectRowsSumToOne(outputs[g.outputs[0]!]!);
    });
  }
});

describe('a hand-computed graph', () => {
  // x [N,2] -> dense(2, relu) -> batchnorm -> add with x
  const spec = {
    name: 'h',
    inputs: [{ name: 'x', shape: [2] }],
    layers: [
      { type: 'dense', units: 2, activation: 'relu', name: 'd' },
      { type: 'batchnorm', epsilon: 0.25, name: 'bn' },
      { type: 'add', inputs: ['x', 'bn'], name: 'sum' },
    ],
  };
  const values: Record<string, number[]> = {
    'd/kernel': [1, -1, 2, 1], // [[1,-1],[2,1]]
    'd/bias': [0, 1],
    'bn/gamma': [2, 1],
    'bn/beta': [0, 10],
    'bn/moving_mean': [1, 0],
    'bn/moving_variance': [0.75, 3.75], // sqrt(0.75 + 0.25) = 1, sqrt(3.75 + 0.25) = 2
  };
  const g0 = lowerJson(spec).graph;
  const g = { ...g0, params: g0.params.map((p) => ({ ...p, value: Float32Array.from(values[p.name]!) })) };

  it('computes relu(x·W + b), then batchnorm, then the residual sum', () => {
    // x = [1, 2]:  x·W + b = [1*1 + 2*2 + 0, 1*-1 + 2*1 + 1] = [5, 2]; relu = [5, 2]
    //   batchnorm: [2*(5-1)/1 + 0, 1*(2-0)/2 + 10] = [8, 11]; + x = [9, 13]
    // x = [3, -4]: x·W + b = [3 - 8, -3 - 4 + 1] = [-5, -6]; relu = [0, 0]
    //   batchnorm: [2*(0-1)/1, 0/2 + 10] = [-2, 10]; + x = [1, 6]
    const { sum } = interpret(g, { x: t([2, 2], [1, 2, 3, -4]) });
    expectClose(sum!, t([2, 2], [9, 13, 1, 6]));
    const all = interpretAll(g, { x: t([2, 2], [1, 2, 3, -4]) });
    expectClose(all.get('d/linear')!, t([2, 2], [5, 2, -5, -6]));
    expectClose(all.get('bn')!, t([2, 2], [8, 11, -2, 10]));
  });

  it('takes parameter values from options.params before ParamDecl.value', () => {
    // moving_mean [0, 0] instead of [1, 0]: x = [1, 2] gives batchnorm [2*5, 11] = [10, 11], + x = [11, 13]
    const { sum } = interpret(g, { x: t([1, 2], [1, 2]) }, { params: { 'bn/moving_mean': t([2], [0, 0]) } });
    expectClose(sum!, t([1, 2], [11, 13]));
  });

  it('names a parameter without a value', () => {
    const d = diagnosticOf(() => interpret(g0, { x: t([1, 2], [1, 2]) }));
    expect(d.code).toBe('interp');
    expect(d.message).toBe("parameter %d/kernel: f32[2,2] has no value (load weights or initialize the graph first)");
  });

  it('names a parameter whose value has the wrong size', () => {
    const bad = { ...g, params: g.params.map((p) => (p.name === 'd/bias' ? { ...p, value: new Float32Array(3) } : p)) };
    expect(diagnosticOf(() => interpret(bad, { x: t([1, 2], [1, 2]) })).message).toBe('parameter %d/bias is f32[2] (2 elements), but its value has 3');
    const override = { params: { 'd/bias': t([3], [0, 0, 0]) } };
    expect(diagnosticOf(() => interpret(g, { x: t([1, 2], [1, 2]) }, override)).message).toBe(
      'parameter %d/bias is f32[2], but the value given has shape [3] and 3 values',
    );
    expect(diagnosticOf(() => interpret(g, { x: t([1, 2], [1, 2]) }, { params: { nope: t([1], [0]) } })).message).toBe(
      'a value is given for %nope, which is not a parameter of graph h',
    );
  });

  it('names a missing, unknown or misshapen input', () => {
    const cases: [Record<string, Tensor>, string][] = [
      [{}, 'no value is fed for input %x: f32[N,2]'],
      [{ x: t([1, 3], [1, 2, 3]) }, 'input %x is f32[N,2], but the value fed has shape [1,3]'],
      [{ x: t([2], [1, 2]) }, 'input %x is f32[N,2], but the value fed has shape [2]'],
      [{ x: { shape: [1, 2], data: new Float64Array(3) } }, 'the value fed for input %x has shape [1,2] (2 elements) but 3 values'],
      [{ x: t([1, 2], [1, 2]), y: t([1, 2], [1, 2]) }, '%y is fed but is not an input of graph h'],
    ];
    for (const [feeds, message] of cases) {
      const d = diagnosticOf(() => interpret(g, feeds));
      expect(d.code).toBe('interp');
      expect(d.message).toBe(message);
    }
  });
});

describe('inputs', () => {
  it('take one batch size', () => {
    const g = withRandomParams(lowerJson({ name: 'two', inputs: [{ name: 'a', shape: [2] }, { name: 'b', shape: [2] }], layers: [{ type: 'add', inputs: ['a', 'b'] }] }).graph, 1);
    expect(interpret(g, { a: t([1, 2], [1, 2]), b: t([1, 2], [3, 4]) })['add']!.data).toEqual(Float64Array.from([4, 6]));
    expect(diagnosticOf(() => interpret(g, { a: t([1, 2], [1, 2]), b: t([2, 2], [1, 2, 3, 4]) })).message).toBe(
      'input %b is fed a batch of 2, but %a a batch of 1',
    );
  });
});

describe('kernel errors', () => {
  it('name the node they happened at', () => {
    const g0 = withRandomParams(lowerJson(model([2], [{ type: 'relu' }])).graph, 1);
    const g = { ...g0, nodes: g0.nodes.map((n) => ({ ...n, op: 'leaky_relu', attrs: {} })) };
    // the verifier would refuse the missing alpha; without it, the kernel does
    expect(diagnosticOf(() => interpret(g, { x: t([1, 2], [1, 2]) }, { verify: false })).message).toBe('%activation = leaky_relu: leaky_relu needs its alpha attribute');
    expect(diagnosticOf(() => interpret(g, { x: t([1, 2], [1, 2]) })).code).toBe('verify');
  });
});

describe('random specs', () => {
  it('every value of a random lowered spec has its declared shape', () => {
    fc.assert(
      fc.property(arbSpec, arbSeed, fc.integer({ min: 1, max: 3 }), (spec, seed, batch) => {
        const lowered = lowerGenerated(spec);
        fc.pre(lowered !== undefined);
        const g = withRandomParams(lowered!.graph, seed);
        // interpretAll checks each kernel's result against the node's type; check it here too
        for (const [name, value] of interpretAll(g, feedsFor(g, batch, seed))) expect(value.shape).toEqual(shapeOf(g, name, batch));
      }),
      { numRuns: 150 },
    );
  });
});
