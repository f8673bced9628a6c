/**
 * fold-bn: golden IR for each rule, the weight algebra against the reference
 * interpreter, exactness and refusal of forward folds across 'same' padding,
 * the sharing guards, and the numeric guards.
 */
import { describe, expect, it } from 'vitest';
import type { Graph } from '../../src/ir/graph.js';
import { printGraph } from '../../src/ir/print.js';
import { compareOnRandomInputs } from '../../src/passes/equivalence.js';
import { expectPasses, ir, runPasses } from './helpers.js';

const bnAttrs = 'axis=1, epsilon=0.001, momentum=0.99, center=true, scale=true, renorm=false, renorm_clipping={rmax=null, rmin=0, dmax=null}, renorm_momentum=0.99';
const bnParams = (p: string, c: number) => [
  `  param %${p}/gamma: f32[${c}] = ones`,
  `  param %${p}/beta: f32[${c}] = zeros`,
  `  param %${p}/moving_mean: f32[${c}] = zeros {trainable=false}`,
  `  param %${p}/moving_variance: f32[${c}] = ones {trainable=false}`,
];
const bnOperands = (p: string) => `%${p}/gamma, %${p}/beta, %${p}/moving_mean, %${p}/moving_variance`;

/** The optimized graph computes what the original does (random inputs, reference interpreter). */
function expectSameFunction(before: Graph, after: Graph) {
  for (const d of compareOnRandomInputs(before, after, { batch: 3 })) expect(d.maxRel, d.name).toBeLessThan(1e-6);
}

describe('fold-bn golden IR', () => {
  it('folds a batchnorm after dense into its kernel and bias, keeping the batchnorm name', () => {
    const { before, after } = expectPasses(
      ['fold-bn', 'dce'],
      ir('graph g(%x: f32[N,3]) {', '  param %d/kernel: f32[3,2] = ones', '  param %d/bias: f32[2] = zeros', ...bnParams('bn', 2), '  %d: f32[N,2] = dense(%x, %d/kernel, %d/bias)', `  %bn: f32[N,2] = batchnorm(%d, ${bnOperands('bn')}) {${bnAttrs}}`, '  return %bn', '}'),
      ir('graph g(%x: f32[N,3]) {', '  param %d/kernel: f32[3,2] = data', '  param %d/bias: f32[2] = data', '  %bn: f32[N,2] = dense(%x, %d/kernel, %d/bias) @"d + bn (folded)"', '  return %bn', '}'),
    );
    expectSameFunction(before, after);
  });

  it('creates the bias when the layer has none (use_bias false)', () => {
    const { before, after } = expectPasses(
      ['fold-bn', 'dce'],
      ir('graph g(%x: f32[N,3]) {', '  param %d/kernel: f32[3,2] = ones', ...bnParams('bn', 2), '  %d: f32[N,2] = dense(%x, %d/kernel)', `  %bn: f32[N,2] = batchnorm(%d, ${bnOperands('bn')}) {${bnAttrs}}`, '  return %bn', '}'),
      ir('graph g(%x: f32[N,3]) {', '  param %d/kernel: f32[3,2] = data', '  param %d/bias: f32[2] = data', '  %bn: f32[N,2] = dense(%x, %d/kernel, %d/bias) @"d + bn (folded)"', '  return %bn', '}'),
    );
    expectSameFunction(before, after);
  });

  it('folds forward into a following dense when the batchnorm has no linear producer', () => {
    const { before, after } = expectPasses(
      ['fold-bn', 'dce'],
      ir('graph g(%x: f32[N,2]) {', ...bnParams('bn', 2), '  param %d/kernel: f32[2,3] = ones', '  param %d/bias: f32[3] = zeros', `  %bn: f32[N,2] = batchnorm(%x, ${bnOperands('bn')}) {${bnAttrs}}`, '  %d: f32[N,3] = dense(%bn, %d/kernel, %d/bias)', '  return %d', '}'),
      ir('graph g(%x: f32[N,2]) {', '  param %d/kernel: f32[2,3] = data', '  param %d/bias: f32[3] = data', '  %d: f32[N,3] = dense(%x, %d/kernel, %d/bias) @"bn (folded) + d"', '  return %d', '}'),
    );
    expectSameFunction(before, after);
  });

  it('turns a batchnorm with no linear neighbour into an affine', () => {
    const { before, after } = expectPasses(
      ['fold-bn', 'dce'],
      ir('graph g(%x: f32[N,2]) {', ...bnParams('bn', 2), `  %bn: f32[N,2] = batchnorm(%x, ${bnOperands('bn')}) {${bnAttrs}}`, '  %y: f32[N,2] = tanh(%bn)', '  return %y', '}'),
      ir('graph g(%x: f32[N,2]) {', '  param %bn/scale: f32[2] = data {trainable=false}', '  param %bn/shift: f32[2] = data {trainable=false}', '  %bn: f32[N,2] = affine(%x, %bn/scale, %bn/shift) {axis=1}', '  %y: f32[N,2] = tanh(%bn)', '  return %y', '}'),
    );
    expectSameFunction(before, after);
  });
});

/** conv2d(bn(x)) on a 5x5x2 input, with the given padding and kernel size. */
const forwardIntoConv = (padding: string, k: number) =>
  ir(
    'graph g(%x: f32[N,5,5,2]) {',
    ...bnParams('bn', 2).map((l) => l.replace('axis=1', 'axis=3')),
    `  param %c/kernel: f32[${k},${k},2,3] = ones`,
    '  param %c/bias: f32[3] = zeros',
    `  %bn: f32[N,5,5,2] = batchnorm(%x, ${bnOperands('bn')}) {${bnAttrs.replace('axis=1', 'axis=3')}}`,
    `  %c: f32[N,${padding === 'same' ? 5 : 5 - k + 1},${padding === 'same' ? 5 : 5 - k + 1},3] = conv2d(%bn, %c/kernel, %c/bias) {strides=[1,1], padding="${padding}", dilation_rate=[1,1], groups=1}`,
    '  return %c',
    '}',
  );

describe('forward folds into convolutions', () => {
  it("is exact for 'valid' padding", () => {
    const { before, after, explain } = runPasses(forwardIntoConv('valid', 3), ['fold-bn', 'dce']);
    expect(after.nodes.map((n) => n.op)).toEqual(['conv2d']);
    expect(explain.format()).toContain('fold-bn: bn folded forward into c');
    expectSameFunction(before, after);
  });

  it("refuses 'same' padding with a 3x3 kernel (the zero padding would miss the shift) and says so", () => {
    const { before, after, explain } = runPasses(forwardIntoConv('same', 3), ['fold-bn', 'dce']);
    expect(after.nodes.map((n) => n.op)).toEqual(['affine', 'conv2d']);
    expect(explain.format()).toContain("bn not folded forward into c: c has 'same' padding, which would not receive the batchnorm shift");
    expectSameFunction(before, after);
  });

  it("folds through 'same' padding when the kernel never reaches the padding (1x1)", () => {
    const { before, after } = runPasses(forwardIntoConv('same', 1), ['fold-bn', 'dce']);
    expect(after.nodes.map((n) => n.op)).toEqual(['conv2d']);
    expectSameFunction(before, after);
  });

  it("folds through 'same' padding when the shift is zero (beta = mean * scale)", () => {
    const { before, after } = runPasses(forwardIntoConv('same', 3), ['fold-bn', 'dce'], { 'bn/beta': [0, 0], 'bn/moving_mean': [0, 0] });
    expect(after.nodes.map((n) => n.op)).toEqual(['conv2d']);
    expectSameFunction(before, after);
  });

  it('the naive fold across same padding would be wrong (the refusal is needed)', () => {
    // Apply the forward algebra anyway by pretending the padding is 'valid' for the fold, then
    // restore 'same': the border outputs differ from the original.
    const { before } = runPasses(forwardIntoConv('same', 3), []);
    const valid = runPasses(forwardIntoConv('valid', 3), ['fold-bn', 'dce']).after;
    const naive: Graph = { ...before, params: valid.params, nodes: [{ ...valid.nodes[0]!, operands: ['x', 'c/kernel', 'c/bias'], type: before.nodes[1]!.type, attrs: { ...valid.nodes[0]!.attrs, padding: 'same' } }] };
    const [d] = compareOnRandomInputs(before, naive, { batch: 2 });
    expect(d!.maxRel).toBeGreaterThan(1e-3);
  });
});

describe('sharing guards', () => {
  it('does not fold into a producer with other consumers, and explains', () => {
    const text = ir('graph g(%x: f32[N,3]) {', '  param %d/kernel: f32[3,2] = ones', ...bnParams('bn', 2), '  %d: f32[N,2] = dense(%x, %d/kernel)', `  %bn: f32[N,2] = batchnorm(%d, ${bnOperands('bn')}) {${bnAttrs}}`, '  %s: f32[N,2] = add(%bn, %d)', '  return %s', '}');
    const { before, after, explain } = runPasses(text, ['fold-bn']);
    expect(explain.format()).toContain('bn not folded into d: d has 2 consumers');
    expect(after.nodes.map((n) => n.op)).toEqual(['dense', 'affine', 'add']);
    expectSameFunction(before, after);
  });

  it('does not fold into a layer whose weights are shared with another application', () => {
    const text = ir(
      'graph g(%x: f32[N,3], %z: f32[N,3]) {',
      '  param %d/kernel: f32[3,2] = ones',
      ...bnParams('bn', 2),
      '  %d: f32[N,2] = dense(%x, %d/kernel)',
      `  %bn: f32[N,2] = batchnorm(%d, ${bnOperands('bn')}) {${bnAttrs}}`,
      '  %d_1: f32[N,2] = dense(%z, %d/kernel) @d',
      '  %s: f32[N,2] = add(%bn, %d_1)',
      '  return %s',
      '}',
    );
    const { before, after, explain } = runPasses(text, ['fold-bn']);
    expect(explain.format()).toContain("bn not folded into d: d's weights are shared with d_1");
    expectSameFunction(before, after);
  });
});

describe('numeric guards', () => {
  const dense = (overrides: Record<string, number[]>) =>
    runPasses(
      ir('graph g(%x: f32[N,3]) {', '  param %d/kernel: f32[3,2] = ones', ...bnParams('bn', 2), '  %d: f32[N,2] = dense(%x, %d/kernel)', `  %bn: f32[N,2] = batchnorm(%d, ${bnOperands('bn')}) {${bnAttrs.replace('epsilon=0.001', 'epsilon=1e-12')}}`, '  return %bn', '}'),
      ['fold-bn', 'dce'],
      overrides,
    );

  it('reports zero and negative gamma and stays exact', () => {
    const { before, after, explain } = dense({ 'bn/gamma': [0, -2] });
    expect(explain.format()).toContain('bn: 1 channel(s) with gamma = 0 become constant (beta)');
    expect(explain.format()).toContain('bn: 1 channel(s) with negative gamma flip sign (the fold stays exact)');
    expectSameFunction(before, after);
  });

  it('refuses a variance that makes batchnorm undefined', () => {
    const { after, explain } = dense({ 'bn/moving_variance': [1, -1] });
    expect(explain.format()).toContain('bn not folded into d: moving_variance + epsilon is -0.999999999999 in channel 1');
    expect(after.nodes.map((n) => n.op)).toEqual(['dense', 'batchnorm']);
  });

  it('folds a variance near zero, and reports it', () => {
    const { before, after, explain } = dense({ 'bn/moving_variance': [1e-10, 1], 'bn/gamma': [1, 1] });
    // 1 / sqrt(1e-10 + 1e-12) = 99503.7
    expect(explain.format()).toContain('bn: 1 channel(s) with moving_variance + epsilon < 1e-6 scale their weights by up to 9.95e+4');
    expectSameFunction(before, after);
  });

  it('refuses a fold whose weights overflow f32', () => {
    const { after, explain } = dense({ 'd/kernel': [3e38, 1, 1, 1, 1, 1], 'bn/moving_variance': [1e-6, 1] });
    expect(explain.format()).toContain('bn not folded into d: the folded kernel of d would overflow f32');
    // Not folded, the batchnorm still becomes an affine (its own scale and shift are finite).
    expect(after.nodes.map((n) => n.op)).toEqual(['dense', 'affine']);
  });

  it('flushes subnormal results to zero and says how many', () => {
    const { explain } = dense({ 'd/kernel': [1e-37, 1, 1, 1, 1, 1], 'bn/gamma': [0.01, 1] });
    expect(explain.format()).toContain('d: 1 folded weight(s) flushed to zero (subnormal in f32)');
  });
});

describe('the -O pipeline on a whole model', () => {
  it('leaves no batchnorm or dropout in printed IR', () => {
    const text = ir('graph g(%x: f32[N,3]) {', '  param %d/kernel: f32[3,2] = ones', ...bnParams('bn', 2), '  %d: f32[N,2] = dense(%x, %d/kernel)', `  %bn: f32[N,2] = batchnorm(%d, ${bnOperands('bn')}) {${bnAttrs}}`, '  %r: f32[N,2] = relu(%bn)', '  %o: f32[N,2] = dropout(%r) {rate=0.5, seed=null}', '  return %o', '}');
    const { before, after } = runPasses(text, ['remove-dropout', 'remove-identity', 'cse', 'fold-bn', 'fuse-activation', 'const-fold', 'dce']);
    expect(printGraph(after)).toBe(ir('graph g(%x: f32[N,3]) {', '  param %d/kernel: f32[3,2] = data', '  param %d/bias: f32[2] = data', '  %o: f32[N,2] = dense(%x, %d/kernel, %d/bias) {epilogue={op="relu"}} @"d + bn (folded) + r (relu, fused)"', '  return %o', '}'));
    expectSameFunction(before, after);
  });
});
