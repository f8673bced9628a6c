/** Golden before/after IR for the structural passes. */
import { describe, expect, it } from 'vitest';
import { compareOnRandomInputs } from '../../src/passes/equivalence.js';
import { expectPasses, ir } from './helpers.js';

describe('remove-dropout', () => {
  it('makes consumers use the dropout input', () => {
    expectPasses(
      ['remove-dropout'],
      ir('graph g(%x: f32[N,4]) {', '  %d: f32[N,4] = dropout(%x) {rate=0.5, seed=null}', '  %y: f32[N,4] = relu(%d)', '  return %y', '}'),
      ir('graph g(%x: f32[N,4]) {', '  %y: f32[N,4] = relu(%x)', '  return %y', '}'),
    );
  });

  it('keeps the output name when the dropout is the output (its producer takes the name)', () => {
    expectPasses(
      ['remove-dropout'],
      ir('graph g(%x: f32[N,4]) {', '  %h: f32[N,4] = tanh(%x)', '  %d: f32[N,4] = dropout(%h) {rate=0.5, seed=null}', '  return %d', '}'),
      ir('graph g(%x: f32[N,4]) {', '  %d: f32[N,4] = tanh(%x) @h', '  return %d', '}'),
    );
  });

  it('refuses, and says why, when the output dropout reads a value used elsewhere', () => {
    const text = ir('graph g(%x: f32[N,4]) {', '  %h: f32[N,4] = tanh(%x)', '  %d: f32[N,4] = dropout(%h) {rate=0.5, seed=null}', '  return %d, %h', '}');
    const { explain } = expectPasses(['remove-dropout'], text, text);
    expect(explain.format()).toBe('remove-dropout: skipped: d not removed: d is a graph output and its input h is used elsewhere');
  });
});

describe('remove-identity', () => {
  it('removes linear activations and same-shape reshapes, keeps real reshapes', () => {
    expectPasses(
      ['remove-identity'],
      ir(
        'graph g(%x: f32[N,2,3]) {',
        '  %a: f32[N,2,3] = linear(%x)',
        '  %r: f32[N,2,3] = reshape(%a) {shape=[2,3]}',
        '  %f: f32[N,6] = reshape(%r) {shape=[6]}',
        '  return %f',
        '}',
      ),
      ir('graph g(%x: f32[N,2,3]) {', '  %f: f32[N,6] = reshape(%x) {shape=[6]}', '  return %f', '}'),
    );
  });
});

describe('dce', () => {
  it('removes dead chains and unused parameters', () => {
    expectPasses(
      ['dce'],
      ir(
        'graph g(%x: f32[N,2]) {',
        '  param %w: f32[2,2] = ones',
        '  %a: f32[N,2] = dense(%x, %w)',
        '  %b: f32[N,2] = relu(%a)',
        '  %y: f32[N,2] = tanh(%x)',
        '  return %y',
        '}',
      ),
      ir('graph g(%x: f32[N,2]) {', '  %y: f32[N,2] = tanh(%x)', '  return %y', '}'),
    );
  });
});

describe('cse', () => {
  it('merges identical nodes; a duplicate that is an output stays', () => {
    expectPasses(
      ['cse', 'dce'],
      ir(
        'graph g(%x: f32[N,2]) {',
        '  %a: f32[N,2] = relu(%x)',
        '  %b: f32[N,2] = relu(%x)',
        '  %c: f32[N,2] = add(%a, %b)',
        '  %d: f32[N,2] = relu(%x)',
        '  return %c, %d',
        '}',
      ),
      ir('graph g(%x: f32[N,2]) {', '  %a: f32[N,2] = relu(%x)', '  %c: f32[N,2] = add(%a, %a)', '  %d: f32[N,2] = relu(%x)', '  return %c, %d', '}'),
    );
  });

  it('does not merge nodes with different attributes', () => {
    const text = ir('graph g(%x: f32[N,2]) {', '  %a: f32[N,2] = leaky_relu(%x) {alpha=0.1}', '  %b: f32[N,2] = leaky_relu(%x) {alpha=0.2}', '  return %a, %b', '}');
    expectPasses(['cse'], text, text);
  });
});

describe('fuse-activation', () => {
  it('fuses an activation into conv2d and relu into add', () => {
    expectPasses(
      ['fuse-activation'],
      ir(
        'graph g(%x: f32[N,4,4,2]) {',
        '  param %k: f32[1,1,2,2] = ones',
        '  %c: f32[N,4,4,2] = conv2d(%x, %k) {strides=[1,1], padding="valid", dilation_rate=[1,1], groups=1}',
        '  %r: f32[N,4,4,2] = leaky_relu(%c) {alpha=0.2}',
        '  %s: f32[N,4,4,2] = add(%r, %x)',
        '  %y: f32[N,4,4,2] = relu(%s)',
        '  return %y',
        '}',
      ),
      ir(
        'graph g(%x: f32[N,4,4,2]) {',
        '  param %k: f32[1,1,2,2] = ones',
        '  %r: f32[N,4,4,2] = conv2d(%x, %k) {strides=[1,1], padding="valid", dilation_rate=[1,1], groups=1, epilogue={op="leaky_relu", alpha=0.2}} @"c + r (leaky_relu, fused)"',
        '  %y: f32[N,4,4,2] = add(%r, %x) {epilogue={op="relu"}} @"s + y (relu, fused)"',
        '  return %y',
        '}',
      ),
    );
  });

  it('does not fuse into a producer with another consumer, nor softmax, nor tanh after add', () => {
    const text = ir(
      'graph g(%x: f32[N,2]) {',
      '  param %w: f32[2,2] = ones',
      '  %h: f32[N,2] = dense(%x, %w)',
      '  %a: f32[N,2] = relu(%h)',
      '  %b: f32[N,2] = softmax(%h) {axis=1}',
      '  %s: f32[N,2] = add(%a, %b)',
      '  %t: f32[N,2] = tanh(%s)',
      '  return %t',
      '}',
    );
    const { explain } = expectPasses(['fuse-activation'], text, text);
    expect(explain.format()).toContain('a not rewritten by act(linear(x)) -> linear(x) {epilogue=act}: h has 2 consumers');
  });
});

describe('fuse-activation with softmax', () => {
  it('fuses softmax over the last axis, not over another axis', () => {
    const { before, after, explain } = expectPasses(
      ['fuse-activation'],
      ir(
        'graph g(%x: f32[N,3,2]) {',
        '  param %w: f32[2,2] = ones',
        '  %h: f32[N,3,2] = dense(%x, %w)',
        '  %s: f32[N,3,2] = softmax(%h) {axis=2}',
        '  %k: f32[N,3,2] = dense(%s, %w)',
        '  %t: f32[N,3,2] = softmax(%k) {axis=1}',
        '  return %t',
        '}',
      ),
      ir(
        'graph g(%x: f32[N,3,2]) {',
        '  param %w: f32[2,2] = ones',
        '  %s: f32[N,3,2] = dense(%x, %w) {epilogue={op="softmax", axis=2}} @"h + s (softmax, fused)"',
        '  %k: f32[N,3,2] = dense(%s, %w)',
        '  %t: f32[N,3,2] = softmax(%k) {axis=1}',
        '  return %t',
        '}',
      ),
    );
    expect(explain.format()).toContain('t normalizes axis 1, not the last axis 2');
    // The fused softmax computes what the separate node did.
    for (const d of compareOnRandomInputs(before, after, { batch: 2 })) expect(d.maxRel).toBeLessThan(1e-12);
  });
});
