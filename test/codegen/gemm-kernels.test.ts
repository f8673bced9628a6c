/**
 * The register-blocked GEMM kernel paths (src/ops/gemm.ts and their users)
 * against the reference kernels: conv2d and its gradients through im2col +
 * GEMM and through the direct loops (both sides of the cost rule, forced on
 * the same shapes), over random geometries (strides, dilation, same padding
 * with odd and even windows, groups, bias, fused activation) and batches
 * large enough to cross panel chunks; dense and its gradients over row and
 * column counts that leave partial register blocks, the one-row (GEMV) path
 * and column tiles; training batchnorm and channel reductions channels-last.
 */
import { describe, expect, it } from 'vitest';
import type { Tensor } from '../../src/ir/tensor.js';
import { tensor } from '../../src/ir/types.js';
import { forwardGeometry } from '../../src/ops/conv/window.js';
import type { ConvSizes } from '../../src/ops/conv/geometry.js';
import { chunkRows } from '../../src/ops/conv/im2col.js';
import { conv2dKernel, convGradInputKernel, convGradKernelKernel, convPlan, gradInputPlan, gradKernelPlan, type ConvCostShape } from '../../src/ops/conv/path.js';
import { columnTile } from '../../src/ops/gemm.js';
import { getOp } from '../../src/ops/registry.js';
import { randomValues } from '../helpers/gradcheck.js';
import { runEmitted, runKernel } from '../helpers/kernel.js';
import { reference, rng } from '../helpers/tensors.js';

/** Every element within tol * max(1, |want|). */
function expectNear(got: Tensor, want: Tensor, tol = 2e-5): void {
  expect(got.shape).toEqual(want.shape);
  let worst = 0;
  let at = -1;
  want.data.forEach((w, i) => {
    const d = Math.abs(got.data[i]! - w) / Math.max(1, Math.abs(w));
    if (!(d <= worst)) [worst, at] = [Number.isNaN(d) ? Infinity : d, i];
  });
  expect(worst, `worst at [${at}]: ${got.data[at]} vs ${want.data[at]}`).toBeLessThanOrEqual(tol);
}

interface ConvCase {
  readonly name: string;
  readonly batch: number;
  readonly x: readonly [number, number, number];
  readonly kernel: readonly [number, number, number, number];
  readonly strides: [number, number];
  readonly dilation: [number, number];
  readonly padding: 'valid' | 'same';
  readonly groups: number;
}

/** Seeded random conv geometries (strides and dilation not both above 1, as Keras requires). */
function randomConvCases(count: number, seed: number): ConvCase[] {
  const next = rng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const cases: ConvCase[] = [];
  while (cases.length < count) {
    const groups = [1, 1, 2, 3][int(0, 3)]!;
    const cg = int(1, 5);
    const fg = int(1, 7);
    const kh = int(1, 4);
    const kw = int(1, 4);
    const strided = next() < 0.3;
    const strides: [number, number] = strided ? [int(1, 3), int(1, 3)] : [1, 1];
    const dilation: [number, number] = !strided && next() < 0.3 ? [int(1, 3), int(1, 2)] : [1, 1];
    const padding = next() < 0.5 ? 'same' : 'valid';
    const h = int(kh * dilation[0], 10);
    const w = int(kw * dilation[1], 10);
    const name = `${h}x${w}x${cg * groups} k${kh}x${kw} f${fg * groups} g${groups} s${strides.join('x')} d${dilation.join('x')} ${padding}`;
    cases.push({ name, batch: int(1, 3), x: [h, w, cg * groups], kernel: [kh, kw, cg, fg * groups], strides, dilation, padding, groups });
  }
  return cases;
}

const fixedCases: ConvCase[] = [
  // Larger than one panel chunk (chunkRows(18) rows): chunk boundaries inside and across examples.
  { name: 'chunks: 3 x 40x40x2 k3 f8 same', batch: 3, x: [40, 40, 2], kernel: [3, 3, 2, 8], strides: [1, 1], dilation: [1, 1], padding: 'same', groups: 1 },
  { name: 'mnist conv2 shape, batch 2', batch: 2, x: [26, 26, 32], kernel: [3, 3, 32, 64], strides: [1, 1], dilation: [1, 1], padding: 'valid', groups: 1 },
  { name: 'even window, same, stride 2', batch: 2, x: [9, 8, 4], kernel: [4, 2, 4, 6], strides: [2, 2], dilation: [1, 1], padding: 'same', groups: 1 },
  { name: 'dilation 2x3, same, groups 2', batch: 2, x: [9, 11, 4], kernel: [3, 3, 2, 8], strides: [1, 1], dilation: [2, 3], padding: 'same', groups: 2 },
];

const convCases = [...fixedCases, ...randomConvCases(24, 7)];
const attrsOf = (c: ConvCase) => ({ strides: c.strides, padding: c.padding, dilation_rate: c.dilation, groups: c.groups });

describe('conv2d: im2col + GEMM and the direct loops equal the reference', () => {
  it('the panel chunk really is crossed by the first case', () => {
    const c = fixedCases[0]!;
    expect(c.batch * c.x[0] * c.x[1]).toBeGreaterThan(chunkRows(c.kernel[0] * c.kernel[1] * c.kernel[2]));
  });
  it.each(convCases)('$name', (c) => {
    const a = attrsOf(c);
    const x = randomValues([c.batch, ...c.x], 1);
    const k = randomValues(c.kernel, 2);
    const b = randomValues([c.kernel[3]], 3);
    const xt = tensor(['N', ...c.x]);
    const kt = tensor([...c.kernel]);
    const result = getOp('conv2d')!.infer([xt, kt, tensor([c.kernel[3]])], a as never);
    const shape = result.shape.map((d) => (d === 'N' ? c.batch : (d as number)));
    for (const epilogue of [undefined, { op: 'relu' }] as const) {
      const want = reference('conv2d', epilogue ? [x, k, b] : [x, k], { ...a, epilogue });
      for (const path of ['im2col-gemm', 'direct'] as const) {
        const emitted = conv2dKernel(xt, kt, epilogue !== undefined, result, c.groups, forwardGeometry(xt, kt, a), epilogue, path);
        expectNear(runEmitted(emitted, epilogue ? [x, k, b] : [x, k], shape, c.batch), want);
      }
    }
  });
});

/** The gradient ops' view of a case. */
function gradShape(c: ConvCase, out: readonly number[]): ConvSizes {
  const xt = tensor(['N', ...c.x]);
  const kt = tensor([...c.kernel]);
  return { input: c.x, output: out.slice(1) as [number, number, number], kernel: c.kernel, groups: c.groups, window: forwardGeometry(xt, kt, attrsOf(c)) };
}

describe('conv2d gradients: im2col + GEMM and the direct loops equal the reference', () => {
  it.each(convCases)('$name', (c) => {
    const a = attrsOf(c);
    const x = randomValues([c.batch, ...c.x], 4);
    const k = randomValues(c.kernel, 5);
    const out = reference('conv2d', [x, k], a).shape;
    const dy = randomValues(out, 6);
    const s = gradShape(c, out);
    const dxWant = reference('conv2d_grad_input', [dy, k], { ...a, input_shape: c.x });
    const dkWant = reference('conv2d_grad_kernel', [x, dy], { ...a, kernel_size: c.kernel.slice(0, 2) });
    const stride1 = c.strides.every((v) => v === 1);
    for (const path of stride1 ? (['im2col-gemm', 'direct'] as const) : (['direct'] as const)) {
      expectNear(runEmitted(convGradInputKernel('conv2d_grad_input', s, path), [dy, k], dxWant.shape, c.batch), dxWant);
    }
    for (const path of ['im2col-gemm', 'direct'] as const) {
      expectNear(runEmitted(convGradKernelKernel('conv2d_grad_kernel', s, path), [x, dy], dkWant.shape, c.batch), dkWant, 1e-4);
    }
  });
  it('the im2col input gradient refuses strides (the cost rule never picks it there)', () => {
    const c = fixedCases[2]!;
    const s = gradShape(c, [c.batch, 5, 4, 6]);
    expect(gradInputPlan(s).path).toBe('direct');
    expect(() => convGradInputKernel('conv2d_grad_input', s, 'im2col-gemm')).toThrow(/stride 1/);
  });
});

describe('the cost rule', () => {
  const path = (s: ConvCostShape) => convPlan(s).path;
  it('takes the GEMM for the mnist_cnn convolutions and their gradients', () => {
    expect(path({ kind: 'forward', depth: 9, cols: 32 })).toBe('im2col-gemm');
    expect(path({ kind: 'forward', depth: 288, cols: 64 })).toBe('im2col-gemm');
    const mnist = gradShape(fixedCases[1]!, [2, 24, 24, 64]);
    expect(gradInputPlan(mnist).path).toBe('im2col-gemm');
    expect(gradKernelPlan(mnist).path).toBe('im2col-gemm');
  });
  it('keeps the direct loops for 1 or 4 filters, short sums and strided input gradients, and says why', () => {
    expect(convPlan({ kind: 'forward', depth: 72, cols: 4 })).toEqual({ path: 'direct', reason: '4 columns per group: one full block of the direct loops' });
    expect(convPlan({ kind: 'forward', depth: 72, cols: 1 })).toEqual({ path: 'direct', reason: '1 column per group: no register block to gain' });
    expect(path({ kind: 'forward', depth: 72, cols: 3 })).toBe('im2col-gemm');
    expect(convPlan({ kind: 'grad_kernel', depth: 4, cols: 16 })).toEqual({ path: 'direct', reason: 'sums of 4 terms: packing costs what the GEMM saves' });
    expect(path({ kind: 'grad_input', depth: 72, cols: 2 })).toBe('direct');
    expect(convPlan({ kind: 'grad_input', depth: 72, cols: 16, strided: true }).reason).toMatch(/^strided/);
    expect(path({ kind: 'grad_input', depth: 4, cols: 4 })).toBe('im2col-gemm');
  });
  it('the emitted kernel records the path it took as its plan, and its summary says the same', () => {
    const xt = tensor(['N', 8, 8, 4]);
    const a = { strides: [1, 1], padding: 'valid', dilation_rate: [1, 1], groups: 1 };
    const emit = (k: number[], out: number[]) => {
      const emitted = getOp('conv2d')!.emit({ operands: [xt, tensor(k)], result: tensor(['N', ...out]), attrs: a as never });
      if (emitted.kind !== 'kernel') throw new Error('conv2d emitted an alias');
      return emitted;
    };
    // A 3x2 kernel: 3x3 ones take Winograd (test/codegen/winograd.test.ts).
    const wide = emit([3, 2, 4, 8], [6, 7, 8]);
    const narrow = emit([3, 2, 4, 4], [6, 7, 4]);
    const square = emit([3, 3, 4, 8], [6, 6, 8]);
    expect([wide.plan.path, narrow.plan.path, square.plan.path]).toEqual(['im2col-gemm', 'direct', 'winograd']);
    expect(wide.plan.reason).toBe('sums of 24 terms into 8 columns per group');
    expect(wide.summary).toMatch(/im2col \+ GEMM/);
    expect(square.summary).toMatch(/Winograd/);
  });
  it('a forced path is recorded as forced', () => {
    const c = fixedCases[1]!;
    const s = gradShape(c, [2, 24, 24, 64]);
    expect(convGradKernelKernel('conv2d_grad_kernel', s, 'direct').plan).toEqual({ path: 'direct', reason: 'forced by the caller' });
    expect(convGradInputKernel('conv2d_grad_input', s).plan).toEqual(gradInputPlan(s));
  });
});

describe('dense and its gradients in register blocks', () => {
  // [rows, in, units]: partial row blocks (1, 2, 4, 7 rows), partial column blocks, one-row GEMV (8 wide), column tiles.
  const shapes: [number, number, number][] = [[1, 5, 3], [1, 16, 64], [1, 7, 13], [2, 9, 4], [4, 6, 11], [7, 10, 9], [3, 600, 500]];
  it('the last shape is cut in column tiles, with a partial tile', () => {
    const tile = columnTile(600, 500)!;
    expect(tile).toBeGreaterThan(0);
    expect(500 % tile).not.toBe(0);
  });
  it.each(shapes)('%i rows, %i -> %i', (rows, inDim, units) => {
    const x = randomValues([rows, inDim], 1);
    const w = randomValues([inDim, units], 2);
    const b = randomValues([units], 3);
    const dy = randomValues([rows, units], 4);
    const ep = { epilogue: { op: 'tanh' } };
    expectNear(runKernel('dense', [x, w, b], {}, [true, false, false]), reference('dense', [x, w, b], {}));
    expectNear(runKernel('dense', [x, w], ep, [true, false]), reference('dense', [x, w], ep), 1e-6);
    expectNear(runKernel('dense_grad_input', [dy, w], {}, [true, false]), reference('dense_grad_input', [dy, w], {}));
    expectNear(runKernel('dense_grad_kernel', [x, dy], {}, [true, true]), reference('dense_grad_kernel', [x, dy], {}));
  });
});

describe('channels-last batch statistics, row by row', () => {
  const noClip = { rmax: null, rmin: 0, dmax: null };
  const base = { axis: 3, epsilon: 0.001, center: true, scale: true, renorm: false, renorm_clipping: noClip };
  const x = randomValues([3, 2, 3, 5], 1, 3);
  const dy = randomValues([3, 2, 3, 5], 2);
  const g = randomValues([5], 3);
  const b = randomValues([5], 4);
  const mm = randomValues([5], 5);
  const mv = { shape: [5], data: Float64Array.from([0.5, 1, 2, 0.7, 1.3]) };
  const renorm = { ...base, renorm: true, renorm_clipping: { rmax: 1.2, rmin: 0.9, dmax: 0.1 } };
  const bare = { ...base, center: false, scale: false };
  const cases: [string, string, Tensor[], object][] = [
    ['forward', 'batchnorm_train', [x, g, b], base],
    ['forward, no gamma, no beta', 'batchnorm_train', [x], bare],
    ['forward, renorm without gamma', 'batchnorm_train', [x, b, mm, mv], { ...renorm, scale: false }],
    ['forward, renorm without beta', 'batchnorm_train', [x, g, mm, mv], { ...renorm, center: false }],
    ['dx', 'batchnorm_train_grad_input', [dy, x, g], base],
    ['dx, no gamma', 'batchnorm_train_grad_input', [dy, x], bare],
    ['dx, renorm', 'batchnorm_train_grad_input', [dy, x, g, mm, mv], renorm],
    ['dx, renorm without gamma', 'batchnorm_train_grad_input', [dy, x, mm, mv], { ...renorm, scale: false }],
    ['dgamma', 'batchnorm_train_grad_gamma', [dy, x], base],
    ['dgamma, renorm', 'batchnorm_train_grad_gamma', [dy, x, mm, mv], renorm],
    ['channel_sum', 'channel_sum', [x], { axis: 3 }],
    ['channel_mean', 'channel_mean', [x], { axis: 3 }],
    ['channel_variance', 'channel_variance', [x], { axis: 3 }],
  ];
  it.each(cases)('%s', (_name, op, operands, attrs) => {
    const batched = operands.map((t) => t.shape.length > 1);
    expectNear(runKernel(op, operands, attrs as never, batched), reference(op, operands, attrs), 1e-5);
  });
});
