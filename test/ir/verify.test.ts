/**
 * The verifier: valid graphs check clean, and each invariant, broken once,
 * gives its own diagnostic. Each mutation is one textual edit of a valid base
 * graph, so the case shows exactly what broke.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelcError } from '../../src/diagnostics/diagnostic.js';
import type { Graph } from '../../src/ir/graph.js';
import { parseGraph } from '../../src/ir/parse.js';
import { printGraph } from '../../src/ir/print.js';
import { checkGraph as checkGraphWith, type OpSignatures } from '../../src/ir/verify.js';
import { ShapeError, type TensorType } from '../../src/ir/types.js';
import { checkGraph, verifyGraph } from '../../src/ops/verify.js';
import { arbSpec, lowerGenerated, lowerJson, model, nodeNamed } from '../helpers/graphs.js';

const base = [
  'graph g(%x: f32[N,4]) {',
  '  param %w: f32[4,3] = glorot_uniform',
  '  param %b: f32[3] = zeros',
  '  param %bn/gamma: f32[3] = ones',
  '  param %bn/mean: f32[3] = zeros {trainable=false}',
  '  param %bn/var: f32[3] = ones {trainable=false}',
  '  %h: f32[N,3] = dense(%x, %w, %b) @fc',
  '  %bn: f32[N,3] = batchnorm(%h, %bn/gamma, %bn/mean, %bn/var) {axis=1, epsilon=0.001, momentum=0.99, center=false, scale=true, renorm=false, renorm_clipping={rmax=null, rmin=0, dmax=null}, renorm_momentum=0.99}',
  '  %d: f32[N,3] = dropout(%bn) {rate=0.5, seed=null}',
  '  %y: f32[N,3] = softmax(%d) {axis=1}',
  '  return %y',
  '}',
].join('\n');

/** The base graph with one edit; the edit must apply. */
function edited(from: string, to: string): Graph {
  expect(base.split(from)).toHaveLength(2);
  return parseGraph(base.replace(from, to));
}

const invalid = (message: string) => ({ code: 'verify', message: `invalid IR in graph g: ${message}` });

/** A model using most layer kinds: residual add, concatenate, shared weights, BN, pools, activations. */
const richSpec = {
  name: 'rich',
  inputs: [
    { name: 'image', shape: [12, 12, 3] },
    { name: 'aux', shape: [10] },
    { name: 'aux2', shape: [10] },
  ],
  layers: [
    { type: 'conv2d', name: 'stem', filters: 8, kernel_size: 3, padding: 'same', activation: 'relu', inputs: ['image'] },
    { type: 'batchnorm' },
    { type: 'depthwise_conv2d', kernel_size: 3, padding: 'same', depth_multiplier: 1 },
    { type: 'add', name: 'residual', inputs: ['stem', 'depthwise_conv2d'] },
    { type: 'conv2d', filters: 8, kernel_size: 3, groups: 2, strides: 2 },
    { type: 'conv2d_transpose', filters: 4, kernel_size: 3, strides: 2, padding: 'same', output_padding: 1 },
    { type: 'max_pool2d', padding: 'same' },
    { type: 'avg_pool2d', pool_size: 1 },
    { type: 'global_avg_pool2d', name: 'gap', keepdims: true },
    { type: 'flatten', name: 'features' },
    { type: 'dense', name: 'enc', units: 4, activation: 'tanh', inputs: ['aux'] },
    { reuse: 'enc', name: 'enc2', inputs: ['aux2'] },
    { type: 'concatenate', name: 'joined', inputs: ['features', 'enc', 'enc2'] },
    { type: 'reshape', target_shape: [-1, 3] },
    { type: 'leaky_relu', alpha: 0.1 },
    { type: 'flatten' },
    { type: 'dropout', rate: 0.25, seed: 7 },
    { type: 'dense', units: 3, use_bias: false },
    { type: 'softmax' },
  ],
};

describe('valid graphs', () => {
  it('the base graph of the mutations below checks clean', () => {
    const g = parseGraph(base);
    expect(checkGraph(g)).toEqual([]);
    expect(verifyGraph(g)).toBe(g);
  });

  it('a graph lowered from a spec with most layer kinds checks clean, before and after a print/parse round trip', () => {
    const { graph } = lowerJson(richSpec);
    // The spec exercises what it claims to.
    expect(new Set(graph.nodes.map((n) => n.op))).toEqual(
      new Set(['conv2d', 'relu', 'batchnorm', 'depthwise_conv2d', 'add', 'conv2d_transpose', 'max_pool2d', 'avg_pool2d', 'global_avg_pool2d', 'reshape', 'dense', 'tanh', 'concatenate', 'leaky_relu', 'dropout', 'softmax']),
    );
    expect(checkGraph(graph)).toEqual([]);
    expect(checkGraph(parseGraph(printGraph(graph)))).toEqual([]);
  });

  it('the seed_mlp example checks clean', () => {
    const spec = JSON.parse(readFileSync(new URL('../../examples/seed_mlp.json', import.meta.url), 'utf8')) as Record<string, unknown>;
    const { graph } = lowerJson(spec);
    expect(graph.nodes).toHaveLength(11);
    expect(checkGraph(graph)).toEqual([]);
  });

  it('a conv2d_transpose with output_padding 0 (Keras accepts 0 <= output_padding < strides) checks clean', () => {
    // 7x7, k3, s2, same, output_padding 0: (7-1)*2 + 3 - 2*1 + 0 = 13
    const { graph } = lowerJson(model([7, 7, 8], [{ type: 'conv2d_transpose', filters: 4, kernel_size: 3, strides: 2, padding: 'same', output_padding: 0 }]));
    expect(graph.nodes[0]!.type.shape).toEqual(['N', 13, 13, 4]);
    expect(checkGraph(graph)).toEqual([]);
  });

  it('every graph lowered from a random spec checks clean', () => {
    fc.assert(
      fc.property(arbSpec, (spec) => {
        const lowered = lowerGenerated(spec);
        fc.pre(lowered !== undefined);
        expect(checkGraph(lowered.graph)).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });
});

describe('one broken invariant, one diagnostic', () => {
  it.each<[string, string, string, string]>([
    // every value is defined once
    ['a node redefines a node value', '  return %y', '  %h: f32[N,3] = relu(%y)\n  return %y', 'value %h is defined more than once'],
    ['a node redefines an input', '  return %y', '  %x: f32[N,3] = relu(%y)\n  return %y', 'value %x is defined more than once'],
    ['a param is declared twice', '  param %b: f32[3] = zeros\n', '  param %b: f32[3] = zeros\n  param %b: f32[3] = ones\n', 'param %b is defined more than once'],
    ['an input is declared twice', 'graph g(%x: f32[N,4])', 'graph g(%x: f32[N,4], %x: f32[N,4])', 'input %x is defined more than once'],
    // operands are defined before use
    [
      'an operand used before its definition',
      '  %d: f32[N,3] = dropout(%bn) {rate=0.5, seed=null}\n  %y: f32[N,3] = softmax(%d) {axis=1}',
      '  %y: f32[N,3] = softmax(%d) {axis=1}\n  %d: f32[N,3] = dropout(%bn) {rate=0.5, seed=null}',
      '%y = softmax: operand %d is not defined before this node',
    ],
    ['an operand never defined', 'dropout(%bn)', 'dropout(%bm)', '%d = dropout: operand %bm is not defined before this node'],
    ['a node using its own result', 'dropout(%bn)', 'dropout(%d)', '%d = dropout: operand %d is not defined before this node'],
    // ops are registered
    ['an unknown op', 'softmax(%d)', 'softmaxx(%d)', '%y = softmaxx: unknown op'],
    // operand counts follow the op's roles
    ['too few operands', 'dense(%x, %w, %b)', 'dense(%x)', '%h = dense: expects operands (x, kernel, bias?), got 1'],
    ['too many operands', 'dense(%x, %w, %b)', 'dense(%x, %w, %b, %b)', '%h = dense: expects operands (x, kernel, bias?), got 4'],
    ['an operand too many for a unary op', 'softmax(%d)', 'softmax(%d, %d)', '%y = softmax: expects operands (x), got 2'],
    ['batchnorm operands that do not match center=true', 'center=false', 'center=true', '%bn = batchnorm: expects operands (x, gamma, beta, moving_mean, moving_variance), got 4'],
    // attributes are exactly the schema's
    ['a missing attribute', '{rate=0.5, seed=null}', '{rate=0.5}', '%d = dropout: attribute seed: expected required property'],
    ['an extra attribute', '{rate=0.5, seed=null}', '{rate=0.5, seed=null, training=true}', '%d = dropout: attribute training: unexpected property'],
    ['an attribute on an op that takes none', 'dense(%x, %w, %b) @fc', 'dense(%x, %w, %b) {units=3} @fc', '%h = dense: attribute units: unexpected property'],
    ['a wrong-typed attribute', 'rate=0.5', 'rate="0.5"', '%d = dropout: attribute rate: expected number'],
    ['an attribute out of range', 'rate=0.5', 'rate=1', '%d = dropout: attribute rate: expected number to be less than 1'],
    ['a wrong-typed nested attribute', 'rmin=0', 'rmin=null', '%bn = batchnorm: attribute renorm_clipping/rmin: expected number'],
    ['an extra nested attribute', 'rmin=0,', 'rmin=0, junk=1,', '%bn = batchnorm: attribute renorm_clipping/junk: unexpected property'],
    ['an unresolved (negative) softmax axis', '{axis=1}', '{axis=-1}', '%y = softmax: attribute axis: expected integer to be greater or equal to 1'],
    // declared types are the inferred ones
    ['a declared type that differs from the inferred one', '%y: f32[N,3]', '%y: f32[N,5]', '%y = softmax: declared type f32[N,5] but the op gives f32[N,3]'],
    ['a declared rank that differs from the inferred one', '%y: f32[N,3]', '%y: f32[N,3,1]', '%y = softmax: declared type f32[N,3,1] but the op gives f32[N,3]'],
    ['operands the type rule rejects', 'param %w: f32[4,3]', 'param %w: f32[5,3]', '%h = dense: dense kernel expects 5 input features, got 4'],
    ['statistics of the wrong size', 'param %bn/var: f32[3]', 'param %bn/var: f32[4]', '%bn = batchnorm: batchnorm statistics must have shape [3], got [4]'],
    // inputs are batched, params static
    ['a param with a symbolic N', '  param %b: f32[3] = zeros\n', '  param %b: f32[3] = zeros\n  param %extra: f32[N,3] = zeros\n', 'param %extra must have a static shape'],
    ['an input without a leading N', 'graph g(%x: f32[N,4])', 'graph g(%x: f32[N,4], %z: f32[4])', 'input %z must have the batch dimension N first and only there'],
    ['an input with N later too', 'graph g(%x: f32[N,4])', 'graph g(%x: f32[N,4], %z: f32[N,N])', 'input %z must have the batch dimension N first and only there'],
    // outputs are defined
    ['an undefined output', 'return %y', 'return %y, %nope', 'output %nope is not defined'],
    ['an undefined output with a quoted name', 'return %y', 'return %y, %"no such value"', 'output %"no such value" is not defined'],
  ])('%s', (_title, from, to, message) => {
    expect(checkGraph(edited(from, to))).toEqual([invalid(message)]);
  });

  it('a graph without outputs', () => {
    expect(checkGraph({ ...parseGraph(base), outputs: [] })).toEqual([invalid('the graph has no outputs')]);
  });

  it('a lowered conv2d whose strides are edited no longer has its declared type', () => {
    // 28x28, k3, valid: stride 1 gives 26 (declared); stride 2 gives floor(25/2)+1 = 13
    const { graph } = lowerJson(model([28, 28, 1], [{ type: 'conv2d', filters: 32, kernel_size: 3 }]));
    const conv = nodeNamed(graph, 'conv2d');
    const broken: Graph = { ...graph, nodes: [{ ...conv, attrs: { ...conv.attrs, strides: [2, 2] } }] };
    expect(checkGraph(broken)).toEqual([
      { code: 'verify', message: 'invalid IR in graph t: %conv2d = conv2d: declared type f32[N,26,26,32] but the op gives f32[N,13,13,32]' },
    ]);
  });
});

describe('verifyGraph', () => {
  it('reports every problem, in graph order, in one ModelcError', () => {
    const g = parseGraph(base.replace('softmax(%d)', 'softmaxx(%d)').replace('return %y', 'return %y, %nope').replace('graph g(%x: f32[N,4])', 'graph g(%x: f32[N,4], %z: f32[4])'));
    const expected = [
      invalid('input %z must have the batch dimension N first and only there'),
      invalid('%y = softmaxx: unknown op'),
      invalid('output %nope is not defined'),
    ];
    expect(checkGraph(g)).toEqual(expected);
    let caught: unknown;
    try {
      verifyGraph(g);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ModelcError);
    expect((caught as ModelcError).diagnostics).toEqual(expected);
    expect((caught as ModelcError).message).toBe(expected.map((d) => d.message).join('\n'));
  });
});

describe('epilogue attributes are exactly those of their activation', () => {
  const dense = (epilogue: string) =>
    ['graph g(%x: f32[N,2]) {', '  param %w: f32[2,2] = ones', `  %y: f32[N,2] = dense(%x, %w) {epilogue=${epilogue}}`, '  return %y', '}', ''].join('\n');
  it.each([
    ['{op="relu"}', true],
    ['{op="leaky_relu", alpha=0.1}', true],
    ['{op="gelu", approximate=true}', true],
    ['{op="leaky_relu"}', false], // alpha is required
    ['{op="relu", alpha=1}', false], // relu takes no alpha
    ['{op="softmax", axis=1}', true], // a per-row epilogue
    ['{op="softmax"}', false], // its axis is required
    ['{op="linear"}', false], // the identity is removed, never fused
  ])('%s valid: %s', (epilogue, valid) => {
    expect(checkGraph(parseGraph(dense(epilogue))).length === 0).toBe(valid);
  });
});

describe('the op table is a parameter of the IR verifier', () => {
  // One made-up op: `halve` keeps its operand's type and rejects a last axis of 3.
  const table: OpSignatures = (name) =>
    name !== 'halve'
      ? undefined
      : {
          attrs: {},
          operands: () => ['x'],
          infer: ([x]: readonly TensorType[]) => {
            if (x!.shape.at(-1) === 3) throw new ShapeError('halve refuses 3 features');
            if (x!.shape.at(-1) === 5) throw new RangeError('a bug in the type rule');
            return x!;
          },
        };
  const graph = (features: number, op = 'halve') =>
    parseGraph([`graph g(%x: f32[N,${features}]) {`, `  %y: f32[N,${features}] = ${op}(%x)`, '  return %y', '}', ''].join('\n'));

  it('checks ops from the table it is given, not from the registry', () => {
    expect(checkGraphWith(graph(4), table)).toEqual([]);
    expect(checkGraphWith(graph(4, 'relu'), table)).toEqual([invalid('%y = relu: unknown op')]);
    expect(checkGraph(graph(4))).toEqual([invalid('%y = halve: unknown op')]);
  });

  it("reports a type rule's ShapeError as a problem of the graph and lets any other error through", () => {
    expect(checkGraphWith(graph(3), table)).toEqual([invalid('%y = halve: halve refuses 3 features')]);
    expect(() => checkGraphWith(graph(5), table)).toThrow(RangeError);
  });
});
