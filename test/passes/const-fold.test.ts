/** const-fold golden IR, and compile-time checks of the typed rewriting API. */
import { describe, expect, it } from 'vitest';
import type { Node } from '../../src/ir/graph.js';
import { GraphEditor } from '../../src/rewrite/editor.js';
import { op } from '../../src/rewrite/pattern.js';
import { expectPasses, ir } from './helpers.js';

describe('const-fold', () => {
  it('evaluates a parameter-only node once into a new parameter with its value', () => {
    const before = ir(
      'graph g(%x: f32[N,2]) {',
      '  param %a: f32[2] = ones',
      '  param %b: f32[2] = ones',
      '  %s: f32[2] = add(%a, %b)',
      '  %y: f32[N,2] = affine(%x, %s, %b) {axis=1}',
      '  return %y',
      '}',
    );
    const { after } = expectPasses(
      ['const-fold', 'dce'],
      before,
      ir('graph g(%x: f32[N,2]) {', '  param %b: f32[2] = ones', '  param %s: f32[2] = data {trainable=false}', '  %y: f32[N,2] = affine(%x, %s, %b) {axis=1}', '  return %y', '}'),
      { a: [1, 2], b: [10, 20] },
    );
    expect([...after.params.find((p) => p.name === 's')!.value!]).toEqual([11, 22]);
  });
});

describe('the rewriting API is typed', () => {
  it('narrows attributes by op kind and rejects unknown kinds at compile time', () => {
    const node: Node = { op: 'conv2d', result: 'c', type: { dtype: 'f32', shape: ['N', 1, 1, 1] }, operands: [], attrs: { strides: [2, 2] }, layer: 'c' };
    const ed = new GraphEditor({ name: 'g', inputs: [], params: [], nodes: [node], outputs: ['c'] });
    if (ed.is(node, 'conv2d')) {
      const strides: number[] = node.attrs.strides; // typed: number[]
      expect(strides).toEqual([2, 2]);
      // @ts-expect-error conv2d has no attribute 'stride'
      expect(node.attrs.stride).toBeUndefined();
    }
    // @ts-expect-error 'conv3d' is not an op kind
    expect(() => op('conv3d')).not.toThrow();
  });
});
