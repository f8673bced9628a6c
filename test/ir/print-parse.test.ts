/**
 * The textual IR round-trips: canonical text parses and prints back to itself,
 * and any graph prints to text that parses back to the same graph. The printer
 * and parser are syntax only (ops are not checked here; see verify.test.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ModelcError, type Diagnostic } from '../../src/diagnostics/diagnostic.js';
import type { Graph } from '../../src/ir/graph.js';
import { parseGraph } from '../../src/ir/parse.js';
import { printGraph } from '../../src/ir/print.js';
import { arbGraph, arbSpec, lowerGenerated, lowerJson, model } from '../helpers/graphs.js';

/** Canonical IR text: lines joined with '\n', ending in a newline, as printGraph writes it. */
const ir = (...lines: string[]) => lines.join('\n') + '\n';

const seedMlp = ir(
  'graph seed_mlp(%x: f32[N,16]) {',
  '  param %dense/kernel: f32[16,64] = random_uniform(minval=-0.05, maxval=0.05, seed=42)',
  '  param %dense/bias: f32[64] = zeros',
  '  param %batch_normalization/moving_mean: f32[64] = zeros {trainable=false}',
  '  %dense/linear: f32[N,64] = dense(%x, %dense/kernel, %dense/bias) @dense',
  '  %dense: f32[N,64] = relu(%dense/linear)',
  '  %dropout: f32[N,64] = dropout(%dense) {rate=0.5, seed=null}',
  '  return %dropout',
  '}',
);

// String.raw: the backslashes below are IR text (JSON string escapes), not JS escapes.
const quotedNames = ir(
  String.raw`graph "my model"(%"input x": f32[N,3], %"δ→ß": f32[N,3]) {`,
  String.raw`  param %"my \"layer\"/kernel": f32[3,3] = glorot_uniform`,
  String.raw`  %"my \"layer\"": f32[N,3] = dense(%"input x", %"my \"layer\"/kernel") @"layer \\ one"`,
  String.raw`  %"😀 tab\there": f32[N,3] = add(%"my \"layer\"", %"δ→ß") @"漢字"`,
  String.raw`  %"": f32[N,3] = relu(%"😀 tab\there") @"new\nline \u0007"`,
  String.raw`  return %""`,
  '}',
);

const numbersAndAttrs = ir(
  'graph numbers(%x: f32[N,2,2,4]) {',
  '  param %bn/gamma: f32[4] = constant(value=-0.5)',
  '  param %bn/moving_variance: f32[4] = random_normal(mean=1e-7, stddev=1.5e+300) {trainable=false}',
  '  %bn: f32[N,2,2,4] = batchnorm(%x, %bn/gamma, %bn/moving_variance) {axis=3, epsilon=1e-7, center=false, scale=true, renorm_clipping={rmax=null, rmin=0.3333333333333333, dmax=2.5}}',
  '  %act: f32[N,2,2,4] = leaky_relu(%bn) {alpha=-0}',
  String.raw`  %"weird attrs": f32[N,2,2,4] = relu(%act) {"key with space"=[], "q\"k"={}, nested={a={b=[1,[2,-3.25e-8],{c="d", e=true}]}, "x=y"=null}, big=123456789012345680000, tiny=5e-324, s="multi\nline \"quoted\" ✓"}`,
  String.raw`  return %"weird attrs"`,
  '}',
);

const multipleInputsOutputs = ir(
  'graph two(%a: f32[N,4], %b: f32[N,4]) {',
  '  %sum: f32[N,4] = add(%a, %b)',
  '  %cat: f32[N,8] = concatenate(%a, %b) {axis=1}',
  '  return %sum, %cat, %a',
  '}',
);

const keywordNames = ir(
  'graph graph(%param: f32[N,1]) {',
  '  param %return: f32[1] = ones',
  '  %N: f32[N,1] = relu(%param) @f32',
  '  %true: f32[N,1] = relu(%N) @null',
  '  return %true, %return',
  '}',
);

const noInputs = ir('graph consts() {', '  param %w: f32[2] = ones', '  return %w', '}');

describe('canonical IR text round-trips', () => {
  it.each([
    ['params, init arguments, trainable=false and @layer', seedMlp],
    ['quoted names: spaces, quotes, backslashes, unicode, control characters, empty', quotedNames],
    ['numbers (exponents, negatives, -0) and nested attribute data', numbersAndAttrs],
    ['several inputs and outputs', multipleInputsOutputs],
    ['names that are IR keywords', keywordNames],
    ['a graph without inputs', noInputs],
  ])('%s', (_title, text) => {
    expect(printGraph(parseGraph(text))).toBe(text);
  });

  it('parses the structure of an MLP', () => {
    const g = parseGraph(seedMlp);
    expect(g.name).toBe('seed_mlp');
    expect(g.inputs).toEqual([{ name: 'x', type: { dtype: 'f32', shape: ['N', 16] } }]);
    expect(g.params).toEqual([
      { name: 'dense/kernel', type: { dtype: 'f32', shape: [16, 64] }, trainable: true, init: { type: 'random_uniform', args: { minval: -0.05, maxval: 0.05, seed: 42 } } },
      { name: 'dense/bias', type: { dtype: 'f32', shape: [64] }, trainable: true, init: { type: 'zeros', args: {} } },
      { name: 'batch_normalization/moving_mean', type: { dtype: 'f32', shape: [64] }, trainable: false, init: { type: 'zeros', args: {} } },
    ]);
    expect(g.nodes).toEqual([
      { op: 'dense', result: 'dense/linear', type: { dtype: 'f32', shape: ['N', 64] }, operands: ['x', 'dense/kernel', 'dense/bias'], attrs: {}, layer: 'dense' },
      // Without '@', a node implements the layer of its own name.
      { op: 'relu', result: 'dense', type: { dtype: 'f32', shape: ['N', 64] }, operands: ['dense/linear'], attrs: {}, layer: 'dense' },
      { op: 'dropout', result: 'dropout', type: { dtype: 'f32', shape: ['N', 64] }, operands: ['dense'], attrs: { rate: 0.5, seed: null }, layer: 'dropout' },
    ]);
    expect(g.outputs).toEqual(['dropout']);
  });

  it('decodes quoted names', () => {
    const g = parseGraph(quotedNames);
    expect(g.name).toBe('my model');
    expect(g.inputs.map((i) => i.name)).toEqual(['input x', 'δ→ß']);
    expect(g.params.map((p) => p.name)).toEqual(['my "layer"/kernel']);
    expect(g.nodes.map((n) => [n.result, n.operands, n.layer])).toEqual([
      ['my "layer"', ['input x', 'my "layer"/kernel'], 'layer \\ one'],
      ['😀 tab\there', ['my "layer"', 'δ→ß'], '漢字'],
      ['', ['😀 tab\there'], 'new\nline \u0007'],
    ]);
    expect(g.outputs).toEqual(['']);
  });

  it('decodes numbers and nested attributes', () => {
    const g = parseGraph(numbersAndAttrs);
    expect(g.params.map((p) => p.init)).toEqual([
      { type: 'constant', args: { value: -0.5 } },
      { type: 'random_normal', args: { mean: 1e-7, stddev: 1.5e300 } },
    ]);
    const [bn, act, weird] = g.nodes;
    expect(bn!.attrs).toEqual({ axis: 3, epsilon: 1e-7, center: false, scale: true, renorm_clipping: { rmax: null, rmin: 1 / 3, dmax: 2.5 } });
    expect(Object.is(act!.attrs['alpha'], -0)).toBe(true);
    expect(weird!.attrs).toEqual({
      'key with space': [],
      'q"k': {},
      nested: { a: { b: [1, [2, -3.25e-8], { c: 'd', e: true }] }, 'x=y': null },
      big: 123456789012345680000,
      tiny: 5e-324,
      s: 'multi\nline "quoted" ✓',
    });
  });

  it('keeps the order of inputs, outputs and attributes', () => {
    const g = parseGraph(multipleInputsOutputs);
    expect(g.inputs.map((i) => i.name)).toEqual(['a', 'b']);
    expect(g.outputs).toEqual(['sum', 'cat', 'a']);
    expect(Object.keys(parseGraph(numbersAndAttrs).nodes[0]!.attrs)).toEqual(['axis', 'epsilon', 'center', 'scale', 'renorm_clipping']);
  });

  it('prints non-canonical spellings canonically', () => {
    const text = [
      '# comments and spacing are not kept',
      'graph   g ( %"x" : f32[ N , 4 ] ) {',
      '  param %"w": f32[4] = zeros {trainable=true}  # the default flag',
      '  %y: f32[N,4] = leaky_relu(%"x") {alpha=1E-7, "beta"=2.50, gamma=1., delta=.5} @"y"',
      '  %1x: f32[N,4] = relu(%y) @2d_block  # digit-first names, as printed before they were quoted',
      '  return %1x',
      '}',
    ].join('\n');
    expect(printGraph(parseGraph(text))).toBe(
      ir(
        'graph g(%x: f32[N,4]) {',
        '  param %w: f32[4] = zeros',
        '  %y: f32[N,4] = leaky_relu(%x) {alpha=1e-7, beta=2.5, gamma=1, delta=0.5}',
        '  %"1x": f32[N,4] = relu(%y) @"2d_block"',
        '  return %"1x"',
        '}',
      ),
    );
  });
});

/**
 * A name that is also a number (`1`, `-1`, `1e5`) would tokenize as a number
 * where the parser expects a graph name, an `@layer` or an attribute key, so
 * only names starting with a letter or `_` print bare (print.ts).
 */
describe('names that look like numbers', () => {
  it.each([
    ['as a graph name', ir('graph "2"(%x: f32[N,1]) {', '  return %x', '}')],
    ['as values and an @layer', ir('graph g(%"0": f32[N,1]) {', '  %"1/linear": f32[N,1] = relu(%"0") @"1"', '  return %"1/linear"', '}')],
    ['as an @layer with an exponent', ir('graph g(%x: f32[N,1]) {', '  %y: f32[N,1] = relu(%x) @"1e5"', '  return %y', '}')],
    ['as attribute keys', ir('graph g(%x: f32[N,1]) {', '  %y: f32[N,1] = relu(%x) {"0"=1, "-1"=2, ".5"={"-0"=3}}', '  return %y', '}')],
  ])('print quoted %s', (_title, text) => {
    expect(printGraph(parseGraph(text))).toBe(text);
  });

  it.each(['0', '7', '-1', '-0', '1e5', '2.5e-3', '.5', '1.', '-', '.', '/'])('%j round-trips in every name position', (name) => {
    const type = { dtype: 'f32' as const, shape: ['N' as const, 1] };
    const g: Graph = {
      name,
      inputs: [{ name, type }],
      params: [{ name: `${name}/w`, type: { dtype: 'f32', shape: [1] }, trainable: true, init: { type: 'zeros', args: {} } }],
      nodes: [{ op: 'relu', result: `${name}/linear`, type, operands: [name], attrs: { [name]: { [name]: name } }, layer: name }],
      outputs: [`${name}/linear`],
    };
    const text = printGraph(g);
    expect(parseGraph(text)).toStrictEqual(g);
    expect(printGraph(parseGraph(text))).toBe(text);
  });

  it('a spec layer named "1" with an activation round-trips', () => {
    const { graph } = lowerJson(model([4], [{ type: 'dense', name: '1', units: 2, activation: 'relu' }]));
    expect(graph.nodes.map((n) => [n.result, n.layer])).toEqual([
      ['1/linear', '1'],
      ['1', '1'],
    ]);
    expect(parseGraph(printGraph(graph))).toStrictEqual(graph);
  });
});

describe('round-trip properties', () => {
  const roundTrips = (g: Graph) => {
    const text = printGraph(g);
    const parsed = parseGraph(text);
    expect(printGraph(parsed)).toBe(text);
    expect(parsed).toStrictEqual(g);
  };

  it('any graph: parse(print(g)) equals g and prints the same text', () => {
    fc.assert(fc.property(arbGraph, roundTrips), { numRuns: 500 });
  });

  it('graphs lowered from random specs: parse(print(g)) equals g and prints the same text', () => {
    fc.assert(
      fc.property(arbSpec, (spec) => {
        const lowered = lowerGenerated(spec);
        fc.pre(lowered !== undefined);
        roundTrips(lowered.graph);
      }),
      { numRuns: 300 },
    );
  });
});

describe('parse errors', () => {
  function parseError(text: string): Diagnostic {
    try {
      parseGraph(text, 'bad.ir');
    } catch (err) {
      if (err instanceof ModelcError && err.diagnostics.length === 1) return err.diagnostics[0]!;
      throw err;
    }
    throw new Error('expected a parse error');
  }

  it.each<[string, string, string, number, number]>([
    ["missing ')'", 'graph g(%x: f32[N,4] {\n  return %x\n}\n', "expected ')', found '{'", 1, 22],
    ['dtype f64', 'graph g(%x: f64[N]) {\n  return %x\n}\n', "expected the dtype 'f32', found 'f64'", 1, 13],
    ['negative dimension', 'graph g(%x: f32[N,-1]) {\n  return %x\n}\n', "expected a dimension (a size or 'N'), found '-1'", 1, 19],
    ['fractional dimension', 'graph g(%x: f32[N,1.5]) {\n  return %x\n}\n', "expected a dimension (a size or 'N'), found '1.5'", 1, 19],
    ['unexpected character', 'graph g(%x: f32[N,4]) {\n  %y: f32[N,4] = relu(%x) $\n  return %y\n}\n', 'unexpected character "$"', 2, 27],
    ['missing return', 'graph g(%x: f32[N,4]) {\n  %y: f32[N,4] = relu(%x)\n}\n', "expected a node, 'param' or 'return', found '}'", 3, 1],
    ['missing return at the end of input', 'graph g(%x: f32[N,4]) {\n  %y: f32[N,4] = relu(%x)\n', "expected a node, 'param' or 'return', found end of input", 3, 1],
    ['trailing comma in operands', 'graph g(%x: f32[N,4]) {\n  %y: f32[N,4] = add(%x, %x,)\n  return %y\n}\n', "expected a value like '%x', found ')'", 2, 29],
    ["operand without '%'", 'graph g(%x: f32[N,4]) {\n  %y: f32[N,4] = relu(x)\n  return %y\n}\n', "expected a value like '%x', found 'x'", 2, 23],
    ['invalid string escape', 'graph g(%"a\\q": f32[N,4]) {\n  return %"a\\q"\n}\n', 'invalid string escape', 1, 9],
    ['parameter flag other than trainable', 'graph g() {\n  param %w: f32[2] = zeros {trainable=false, frozen=true}\n  return %w\n}\n', "a parameter takes only {trainable=false}, found '}'", 2, 57],
    ['text after the graph', 'graph g(%x: f32[N,1]) {\n  return %x\n}\n}\n', "expected the end of input, found '}'", 4, 1],
    ["missing 'graph'", 'grahp g(%x: f32[N,1]) {\n  return %x\n}\n', "expected 'graph', found 'grahp'", 1, 1],
  ])('%s', (_title, text, message, line, col) => {
    const d = parseError(text);
    expect(d.code).toBe('irSyntax');
    expect(d.message).toBe(message);
    expect(d.span!.file.path).toBe('bad.ir');
    expect(d.span!.file.position(d.span!.start)).toEqual({ line, col });
  });
});
