/**
 * Gradient rules of conv2d, conv2d_transpose and depthwise_conv2d, checked
 * against float64 central differences of the reference kernels over a table
 * of geometries, and the gradient ops' emitted kernels against their
 * reference kernels.
 */
import { describe, expect, it } from 'vitest';
import type { Tensor } from '../../src/ir/tensor.js';
import type { Attrs } from '../../src/ir/types.js';
import { expectGradientsMatch, randomValues, ruleGradients } from '../helpers/gradcheck.js';
import { runKernel } from '../helpers/kernel.js';
import { reference } from '../helpers/tensors.js';

type Pair = [number, number];
type Shape4 = [number, number, number, number];

interface Case {
  readonly name: string;
  readonly x: Shape4;
  readonly kernel: Shape4;
  readonly attrs: Attrs;
}

const window = (padding: 'valid' | 'same', strides: Pair = [1, 1], dilation_rate: Pair = [1, 1]) => ({ strides, padding, dilation_rate });

const conv2dCases: Case[] = [
  { name: 'valid, stride 1', x: [2, 5, 4, 3], kernel: [3, 2, 3, 4], attrs: { ...window('valid'), groups: 1 } },
  { name: 'same, stride 1, odd kernel', x: [2, 5, 5, 2], kernel: [3, 3, 2, 3], attrs: { ...window('same'), groups: 1 } },
  { name: 'same, stride 1, even kernel (padding at the end)', x: [1, 4, 5, 2], kernel: [2, 4, 2, 2], attrs: { ...window('same'), groups: 1 } },
  { name: 'valid, stride 2, odd sizes', x: [2, 7, 6, 2], kernel: [3, 2, 2, 3], attrs: { ...window('valid', [2, 2]), groups: 1 } },
  { name: 'same, stride 2, odd sizes', x: [1, 7, 5, 2], kernel: [3, 3, 2, 5], attrs: { ...window('same', [2, 2]), groups: 1 } },
  { name: 'same, strides [2, 1], even kernel', x: [1, 6, 5, 2], kernel: [2, 3, 2, 2], attrs: { ...window('same', [2, 1]), groups: 1 } },
  { name: 'valid, dilation 2', x: [1, 7, 6, 2], kernel: [3, 2, 2, 2], attrs: { ...window('valid', [1, 1], [2, 2]), groups: 1 } },
  { name: 'same, dilation 2', x: [2, 5, 6, 2], kernel: [3, 3, 2, 2], attrs: { ...window('same', [1, 1], [2, 2]), groups: 1 } },
  { name: 'groups 2, same, stride 2', x: [2, 5, 5, 4], kernel: [3, 3, 2, 6], attrs: { ...window('same', [2, 2]), groups: 2 } },
  { name: 'groups 2, valid, dilation [1, 2]', x: [1, 6, 7, 4], kernel: [2, 3, 2, 4], attrs: { ...window('valid', [1, 1], [1, 2]), groups: 2 } },
  { name: 'groups 2, one channel per group', x: [1, 4, 4, 2], kernel: [3, 3, 1, 4], attrs: { ...window('same'), groups: 2 } },
];

const depthwiseCases: Case[] = [
  { name: 'valid, stride 1', x: [2, 5, 4, 3], kernel: [3, 2, 3, 1], attrs: window('valid') },
  { name: 'same, multiplier 2', x: [2, 5, 5, 2], kernel: [3, 3, 2, 2], attrs: window('same') },
  { name: 'same, stride 2, odd sizes, multiplier 2', x: [1, 7, 6, 3], kernel: [3, 3, 3, 2], attrs: window('same', [2, 2]) },
  { name: 'valid, stride 2, even kernel', x: [1, 7, 7, 2], kernel: [2, 3, 2, 1], attrs: window('valid', [2, 2]) },
  { name: 'same, dilation 2, multiplier 2', x: [1, 6, 5, 2], kernel: [3, 2, 2, 2], attrs: window('same', [1, 1], [2, 2]) },
  { name: 'valid, dilation 2', x: [2, 6, 6, 2], kernel: [2, 2, 2, 1], attrs: window('valid', [1, 1], [2, 2]) },
];

const transpose = (padding: 'valid' | 'same', strides: Pair, output_padding: Pair | null = null, groups = 1, dilation: Pair = [1, 1]) => ({
  ...window(padding, strides, dilation),
  groups,
  output_padding,
});

// conv2d_transpose kernels are [kh, kw, filters/groups, in].
const transposeCases: Case[] = [
  { name: 'valid, stride 1', x: [2, 3, 4, 3], kernel: [3, 2, 2, 3], attrs: transpose('valid', [1, 1]) },
  { name: 'same, stride 1', x: [1, 4, 3, 2], kernel: [3, 3, 3, 2], attrs: transpose('same', [1, 1]) },
  { name: 'valid, stride 2', x: [1, 3, 3, 2], kernel: [3, 3, 2, 2], attrs: transpose('valid', [2, 2]) },
  { name: 'same, stride 2', x: [2, 3, 4, 2], kernel: [3, 3, 3, 2], attrs: transpose('same', [2, 2]) },
  { name: 'same, stride 2, even kernel', x: [1, 3, 3, 2], kernel: [2, 4, 2, 2], attrs: transpose('same', [2, 2]) },
  { name: 'valid, stride 2, kernel smaller than the stride', x: [1, 3, 3, 2], kernel: [1, 1, 2, 2], attrs: transpose('valid', [2, 2]) },
  { name: 'valid, stride 2, output_padding [1, 0]', x: [1, 3, 3, 2], kernel: [3, 3, 2, 2], attrs: transpose('valid', [2, 2], [1, 0]) },
  { name: 'same, stride 2, output_padding [1, 1]', x: [1, 3, 2, 2], kernel: [3, 3, 2, 2], attrs: transpose('same', [2, 2], [1, 1]) },
  { name: 'same, stride 2, even kernel, output_padding [1, 1]', x: [1, 3, 3, 2], kernel: [2, 2, 2, 2], attrs: transpose('same', [2, 2], [1, 1]) },
  { name: 'groups 2, same, stride 2', x: [1, 3, 3, 4], kernel: [3, 3, 1, 4], attrs: transpose('same', [2, 2], null, 2) },
  { name: 'valid, dilation 2', x: [1, 3, 3, 2], kernel: [2, 2, 3, 2], attrs: transpose('valid', [1, 1], null, 1, [2, 2]) },
];

/** The bias length of each op: filters for conv2d, in * multiplier for depthwise, filters/groups * groups for the transpose. */
function biasSize(op: string, c: Case): number {
  const [, , k2, k3] = c.kernel;
  if (op === 'conv2d') return k3;
  if (op === 'depthwise_conv2d') return k2 * k3;
  return k2 * (c.attrs['groups'] as number);
}

function checkAllOperands(op: string, c: Case, seed: number): void {
  expectGradientsMatch(
    op,
    [
      { value: randomValues(c.x, seed) },
      { value: randomValues(c.kernel, seed + 1), batched: false },
      { value: randomValues([biasSize(op, c)], seed + 2) },
    ],
    c.attrs,
    { seed: seed + 3 },
  );
}

describe('conv2d gradient', () => {
  it.each(conv2dCases)('x, kernel and bias: $name', (c) => checkAllOperands('conv2d', c, 10));
  it('without a bias', () => {
    const c = conv2dCases[4]!;
    expectGradientsMatch('conv2d', [{ value: randomValues(c.x, 1) }, { value: randomValues(c.kernel, 2), batched: false }], c.attrs);
  });
  it('is exact by hand: y[i] = x[i] k0 + x[i+1] k1', () => {
    const attrs = { ...window('valid'), groups: 1 };
    const dy = { shape: [1, 2, 1, 1], data: Float64Array.from([1, 10]) };
    const k = { shape: [2, 1, 1, 1], data: Float64Array.from([2, 3]) };
    expect([...reference('conv2d_grad_input', [dy, k], { ...attrs, input_shape: [3, 1, 1] }).data]).toEqual([2, 3 + 20, 30]);
    const x = { shape: [1, 3, 1, 1], data: Float64Array.from([1, 2, 4]) };
    expect([...reference('conv2d_grad_kernel', [x, dy], { ...attrs, kernel_size: [2, 1] }).data]).toEqual([1 + 20, 2 + 40]);
  });
  it('refuses a fused activation', () => {
    const c = conv2dCases[0]!;
    const operands = [{ value: randomValues(c.x, 1) }, { value: randomValues(c.kernel, 2), batched: false }];
    const w = randomValues([2, 3, 3, 4], 3);
    expect(() => ruleGradients('conv2d', operands, { ...c.attrs, epilogue: { op: 'relu' } }, w)).toThrow(/fuse-activation/);
  });
});

describe('depthwise_conv2d gradient', () => {
  it.each(depthwiseCases)('x, kernel and bias: $name', (c) => checkAllOperands('depthwise_conv2d', c, 20));
});

describe('conv2d_transpose gradient', () => {
  it.each(transposeCases)('x, kernel and bias: $name', (c) => checkAllOperands('conv2d_transpose', c, 30));
  it('same padding, an even window and output_padding 0 (no conv2d it transposes; TF rejects it) has no gradient', () => {
    const x = randomValues([1, 3, 3, 2], 1);
    const k = randomValues([2, 2, 2, 2], 2);
    const attrs = transpose('same', [2, 2], [0, 0]);
    const w = reference('conv2d_transpose', [x, k], attrs);
    expect(() => ruleGradients('conv2d_transpose', [{ value: x }, { value: k, batched: false }], attrs, w)).toThrow(/has no gradient/);
  });
});

/** The window attributes of a case without groups and output_padding. */
function windowOf(attrs: Attrs): Attrs {
  return { strides: attrs['strides']!, padding: attrs['padding']!, dilation_rate: attrs['dilation_rate']! };
}

/** [op, operands, attrs, batched] of each gradient op on random data, from the geometry tables. */
function kernelCases(): [string, Tensor[], Attrs, boolean[]][] {
  const out: [string, Tensor[], Attrs, boolean[]][] = [];
  const add = (forward: string, c: Case, grads: [string, string], forwardAttrs: Attrs, attrs: Attrs) => {
    const x = randomValues(c.x, 1);
    const k = randomValues(c.kernel, 2);
    const dy = randomValues(reference(forward, [x, k], forwardAttrs).shape, 3);
    out.push([`${grads[0]} (${forward}: ${c.name})`, [dy, k], { ...attrs, input_shape: c.x.slice(1) }, [true, false]]);
    out.push([`${grads[1]} (${forward}: ${c.name})`, [x, dy], { ...attrs, kernel_size: c.kernel.slice(0, 2) }, [true, true]]);
  };
  for (const c of conv2dCases) add('conv2d', c, ['conv2d_grad_input', 'conv2d_grad_kernel'], c.attrs, { ...windowOf(c.attrs), groups: c.attrs['groups']! });
  for (const c of depthwiseCases) add('depthwise_conv2d', c, ['depthwise_conv2d_grad_input', 'depthwise_conv2d_grad_kernel'], c.attrs, windowOf(c.attrs));
  // The transposed conv's kernel gradient is conv2d_grad_kernel(dy, x) in the adjoint conv's geometry.
  for (const c of transposeCases) {
    const x = randomValues(c.x, 1);
    const dy = randomValues(reference('conv2d_transpose', [x, randomValues(c.kernel, 2)], c.attrs).shape, 3);
    const attrs = { ...windowOf(c.attrs), groups: c.attrs['groups']!, kernel_size: c.kernel.slice(0, 2) };
    out.push([`conv2d_grad_kernel (conv2d_transpose: ${c.name})`, [dy, x], attrs, [true, true]]);
  }
  return out;
}

describe('emitted kernels equal the reference kernels', () => {
  it.each(kernelCases())('%s', (name, operands, attrs, batched) => {
    const op = name.split(' ')[0]!;
    const got = runKernel(op, operands, attrs, batched);
    const want = reference(op, operands, attrs);
    expect(got.shape).toEqual(want.shape);
    got.data.forEach((v, i) => expect(v).toBeCloseTo(want.data[i]!, 5));
  });
});
