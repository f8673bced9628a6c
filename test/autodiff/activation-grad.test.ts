/**
 * Gradient rules of the activations (every elementwise function, softmax on
 * any axis) checked against float64 central differences of the reference
 * kernels (test data kept off the kinks), which value each rule reads, the
 * conventions at the kinks, and the emitted `activation_grad` and
 * `softmax_grad` kernels against their reference kernels.
 */
import { describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../src/autodiff/builder.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { batched, type Attrs } from '../../src/ir/types.js';
import { getOp } from '../../src/ops/registry.js';
import { expectGradientsMatch, randomValues } from '../helpers/gradcheck.js';
import { runKernel } from '../helpers/kernel.js';
import { reference } from '../helpers/tensors.js';

/** [op, attrs, kinks, scale of the random inputs, the value the rule reads (undefined: dy itself)] */
const fns: [string, Attrs, number[], number, 'output' | 'input' | undefined][] = [
  ['relu', {}, [0], 3, 'output'],
  ['relu6', {}, [0, 6], 8, 'output'],
  ['leaky_relu', { alpha: 0.3 }, [0], 3, 'output'],
  ['leaky_relu', { alpha: -0.2 }, [0], 3, 'input'],
  ['elu', { alpha: 1 }, [0], 3, 'output'],
  ['elu', { alpha: 0.5 }, [0], 3, 'output'],
  ['elu', { alpha: -0.5 }, [0], 3, 'input'],
  ['selu', {}, [0], 3, 'output'],
  ['gelu', { approximate: false }, [], 5, 'input'],
  ['gelu', { approximate: true }, [], 5, 'input'],
  ['swish', {}, [], 5, 'input'],
  ['tanh', {}, [], 3, 'output'],
  ['sigmoid', {}, [], 5, 'output'],
  ['hard_sigmoid', { alpha: 0.2 }, [-2.5, 2.5], 4, 'output'],
  ['hard_sigmoid', { alpha: 1 / 6 }, [-3, 3], 4, 'output'],
  ['hard_swish', {}, [-3, 3], 5, 'input'],
  ['softplus', {}, [], 5, 'input'],
  ['linear', {}, [], 3, undefined],
];

/** Random values at least 0.05 away from every kink. */
function offKinks(t: Tensor, kinks: readonly number[]): Tensor {
  const data = t.data.map((v) => {
    for (const k of kinks) if (Math.abs(v - k) < 0.05) return v < k ? k - 0.1 : k + 0.1;
    return v;
  });
  return { shape: t.shape, data };
}

/** The same values as float32 (what an emitted kernel sees), in float64. */
const f32 = (t: Tensor): Tensor => ({ shape: t.shape, data: t.data.map(Math.fround) });

/** The operands of the node the rule emits for `op(x)`, named 'x', 'y' (the result) or 'dy'. */
function ruleReads(op: string, attrs: Attrs, shape: readonly number[]): { op: string; reads: string[] } | 'dy' {
  const b = new GraphBuilder({ inputs: [], params: [], nodes: [] });
  const x = b.addInput('x', batched(shape));
  const y = b.op(op, [x], attrs, 'y');
  const dy = b.addInput('dy', b.typeOf(y));
  const def = getOp(op)!;
  if (def.grad === undefined || def.grad === 'none') throw new Error(`${op} has no gradient rule`);
  const grad = def.grad(b, { ...b.nodes[b.nodes.length - 1]!, attrs } as never, dy)[0]!();
  if (grad === dy) return 'dy';
  const node = b.nodes.find((n) => n.result === grad)!;
  return { op: node.op, reads: node.operands.map((o) => (o === x ? 'x' : o === y ? 'y' : o === dy ? 'dy' : o)) };
}

describe('elementwise activation gradients', () => {
  it.each(fns)('%s %j matches central differences', (op, attrs, kinks, scale) => {
    const x = offKinks(randomValues([3, 8], 11, scale), kinks);
    expectGradientsMatch(op, [{ value: x }], attrs);
  });

  it.each(fns)('%s %j reads its %s', (op, attrs, _kinks, _scale, from) => {
    const got = ruleReads(op, attrs, [4]);
    if (from === undefined) return expect(got).toBe('dy');
    expect(got).toEqual({ op: 'activation_grad', reads: ['dy', from === 'output' ? 'y' : 'x'] });
  });

  it('kinks follow TF.js: relu\'(0) = 0, leaky_relu\'(0) = alpha, elu\'(0) = 1, selu\'(0) = scale * alpha', () => {
    const at0 = (op: string, attrs: Attrs, from = 'output') =>
      reference('activation_grad', [{ shape: [1, 1], data: Float64Array.of(1) }, { shape: [1, 1], data: Float64Array.of(0) }], { fn: { op, ...attrs }, from }).data[0];
    expect(at0('relu', {})).toBe(0);
    expect(at0('leaky_relu', { alpha: 0.3 })).toBe(0.3);
    expect(at0('leaky_relu', { alpha: -0.2 }, 'input')).toBe(-0.2);
    expect(at0('elu', { alpha: 0.5 })).toBe(1);
    expect(at0('selu', {})).toBeCloseTo(1.0507009873554805 * 1.6732632423543772, 15);
  });

  it("hard_swish's bends follow TF's relu6 gradient (1 only strictly inside (0, 6)): 0 at -3, 1 at 3", () => {
    const at = (x: number) =>
      reference('activation_grad', [{ shape: [1, 1], data: Float64Array.of(1) }, { shape: [1, 1], data: Float64Array.of(x) }], { fn: { op: 'hard_swish' }, from: 'input' }).data[0];
    expect([at(-3.5), at(-3), at(0), at(3), at(3.5)]).toEqual([0, 0, 0.5, 1, 1]);
  });

  it('activation_grad refuses a source its function cannot use', () => {
    const types = [batched([4]), batched([4])];
    expect(() => getOp('activation_grad')!.infer(types, { fn: { op: 'gelu', approximate: false }, from: 'output' } as never)).toThrow(/reads its input/);
    expect(() => getOp('activation_grad')!.infer(types, { fn: { op: 'tanh' }, from: 'input' } as never)).toThrow(/reads its output/);
  });
});

describe('softmax gradient', () => {
  it('over the last axis', () => {
    expectGradientsMatch('softmax', [{ value: randomValues([3, 5], 1, 2) }], { axis: 1 });
  });
  it('over a middle axis', () => {
    expectGradientsMatch('softmax', [{ value: randomValues([2, 3, 4], 2, 2) }], { axis: 1 });
    expectGradientsMatch('softmax', [{ value: randomValues([2, 2, 3, 2], 3, 2) }], { axis: 2 });
  });
  it('reads its result', () => {
    expect(ruleReads('softmax', { axis: 2 }, [3, 4])).toEqual({ op: 'softmax_grad', reads: ['dy', 'y'] });
  });
});

describe('emitted gradient kernels equal the reference kernels', () => {
  // Random values plus the kinks, both signed zeros, and large magnitudes (overflow guards).
  const special = [0, -0, 6, -2.5, 2.5, 30, -30, 1e-8, -1e-8];
  it.each(fns.filter(([, , , , from]) => from !== undefined))('activation_grad of %s %j', (op, attrs, _kinks, scale, from) => {
    const random = randomValues([3, 8], 5, scale);
    const x: Tensor = { shape: [3, 11], data: Float64Array.from([...random.data, ...special]) };
    const v = f32(from === 'output' ? reference(op, [f32(x)], attrs) : x);
    const dy = f32(randomValues([3, 11], 6));
    const a = { fn: { op, ...attrs }, from: from! };
    const got = runKernel('activation_grad', [dy, v], a);
    const want = reference('activation_grad', [dy, v], a);
    expect(got.shape).toEqual(want.shape);
    got.data.forEach((g, i) => expect(g).toBeCloseTo(want.data[i]!, 6));
  });

  it.each([
    [[4, 6], 1],
    [[2, 3, 4], 1],
    [[2, 3, 4, 2], 2],
  ])('softmax_grad of %j along axis %i', (shape, axis) => {
    const y = f32(reference('softmax', [randomValues(shape, 1, 2)], { axis }));
    const dy = f32(randomValues(shape, 2));
    const got = runKernel('softmax_grad', [dy, y], { axis });
    const want = reference('softmax_grad', [dy, y], { axis });
    got.data.forEach((g, i) => expect(g).toBeCloseTo(want.data[i]!, 6));
  });
});
