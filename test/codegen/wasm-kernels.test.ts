/**
 * The WebAssembly SIMD kernels (src/codegen/wasm/kernels.ts, depthwise.ts),
 * run in Node against the ops' float64 reference kernels (dense, conv2d,
 * depthwise_conv2d): shapes with column tails (units not a multiple of 4 or
 * of the panel), row tails (rows not a multiple of the row block), `same`
 * padding borders, strides, every epilogue; then a fast-check property over
 * random shapes and tiles.
 *
 * Every output is within 1e-5 of the reference relative to the magnitude of
 * its terms (|b| + sum |x||w|: float32 accumulation), and the kernels touch
 * nothing but y: guard bytes around every operand and past the end of y, and
 * x, w and b themselves, are unchanged.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SimdKernelLayout } from '../../src/codegen/wasm/kernel-common.js';
import { buildSimdModule, packWeights, padBias } from '../../src/codegen/wasm/module.js';
import { simdRequestFor } from '../../src/codegen/wasm/select.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { tensor, type Dim } from '../../src/ir/types.js';
import type { SimdKernelRequest } from '../../src/ops/simd-def.js';
import { getOp, ops } from '../../src/ops/registry.js';
import { reference, rng } from '../helpers/tensors.js';
import { wasm } from '../helpers/wasm.js';


const RTOL = 1e-5;
/** The in-register tanh and sigmoid: within 2e-7 (1 + |y|) of the float64 functions (test/codegen/wasm-smooth.test.ts). */
const SMOOTH_ATOL = 2e-7;
const GUARD = 16; // floats around every operand
const SENTINEL = -12345.25;

function randomFloats(n: number, next: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => next() * 2 - 1);
}

/** Operands of a request: x for n examples, the kernel in Keras layout, the bias. */
function operands(layout: SimdKernelLayout, n: number, seed: number) {
  const next = rng(seed);
  return {
    x: randomFloats(n * layout.inputFloats, next),
    kernel: randomFloats(layout.pack.k * layout.pack.units, next),
    bias: randomFloats(layout.pack.units, next),
  };
}

/**
 * Runs `layout`'s kernel of `mod` on n examples in a fresh memory, operands
 * separated by guard floats (at `misalign` bytes past 16-byte alignment).
 * Checks the guards and operands afterwards; returns y.
 */
function runWasm(bytes: Uint8Array, layout: SimdKernelLayout, n: number, ops: ReturnType<typeof operands>, misalign = 0): Float32Array {
  const w = packWeights(layout, ops.kernel);
  const b = padBias(layout, ops.bias);
  const yFloats = n * layout.outputFloats;
  const parts = [ops.x, w, b, new Float32Array(yFloats).fill(NaN)];
  const total = parts.reduce((s, p) => s + p.length + GUARD, GUARD) * 4 + misalign + 64;
  const memory = new wasm.Memory({ initial: Math.ceil(total / 65536) });
  const { exports } = new wasm.Instance(new wasm.Module(bytes), { env: { memory } });
  const bytesView = new Uint8Array(memory.buffer);
  const all = new Float32Array(memory.buffer, misalign, Math.floor((memory.buffer.byteLength - misalign) / 4));
  all.fill(SENTINEL);
  const at: number[] = [];
  let p = GUARD;
  for (const part of parts) {
    at.push(p);
    all.set(part, p);
    p += part.length + GUARD;
  }
  const fn = exports[layout.name] as (n: number, x: number, w: number, b: number, y: number) => void;
  fn(n, ...(at.map((f) => misalign + f * 4) as [number, number, number, number]));
  // Operands unchanged, guards intact.
  expect(bytesView.slice(0, misalign).every((v) => v === 0)).toBe(true);
  let q = 0;
  parts.forEach((part, i) => {
    for (; q < at[i]!; q++) if (all[q] !== SENTINEL) throw new Error(`${layout.name}: guard float ${q} before operand ${i} written`);
    if (i < 3) for (let j = 0; j < part.length; j++) if (!Object.is(all[q + j], part[j])) throw new Error(`${layout.name}: operand ${i} changed at ${j}`);
    q += part.length;
  });
  for (let j = q; j < q + GUARD; j++) if (all[j] !== SENTINEL) throw new Error(`${layout.name}: wrote past the end of y`);
  return all.slice(at[3]!, at[3]! + yFloats);
}

const abs = (t: Tensor): Tensor => ({ shape: t.shape, data: t.data.map(Math.abs) });
const tensorOf = (shape: number[], data: Float32Array): Tensor => ({ shape, data: Float64Array.from(data) });

/** The op reference of a request (values, and the magnitudes of the summed terms). */
function expected(req: SimdKernelRequest, n: number, ops: ReturnType<typeof operands>): { y: Float64Array; scale: Float64Array } {
  const epilogue = req.epilogue ? { op: req.epilogue } : undefined;
  let op: string;
  let x: Tensor;
  let k: Tensor;
  let attrs: object;
  if (req.kind === 'dense') {
    op = 'dense';
    x = tensorOf([n, req.rowsPerExample ?? 1, req.inDim], ops.x);
    k = tensorOf([req.inDim, req.units], ops.kernel);
    attrs = {};
  } else {
    const window = { strides: req.strides ?? [1, 1], padding: req.padding ?? 'valid', dilation_rate: [1, 1] };
    x = tensorOf([n, ...req.input], ops.x);
    if (req.kind === 'conv2d') {
      op = 'conv2d';
      k = tensorOf([...req.kernel, req.input[2], req.filters], ops.kernel);
      attrs = { ...window, groups: 1 };
    } else {
      op = 'depthwise_conv2d';
      k = tensorOf([...req.kernel, req.input[2], 1], ops.kernel);
      attrs = window;
    }
  }
  const b = req.bias ? tensorOf([ops.bias.length], ops.bias) : undefined;
  const operandsOf = (xs: Tensor, ks: Tensor, bs: Tensor | undefined) => (bs ? [xs, ks, bs] : [xs, ks]);
  const y = reference(op, operandsOf(x, k, b), { ...attrs, ...(epilogue ? { epilogue } : {}) });
  const scale = reference(op, operandsOf(abs(x), abs(k), b && abs(b)), attrs);
  return { y: y.data, scale: scale.data };
}

/** Builds the request's module, checks it validates, runs it on each batch size and compares. */
function check(req: SimdKernelRequest, batches: readonly number[], seed = 1, misalign = 0): void {
  const mod = buildSimdModule([req]);
  expect(wasm.validate(mod.bytes)).toBe(true);
  const layout = mod.layouts[0]!;
  for (const n of batches) {
    const ops = operands(layout, n, seed + n);
    const y = runWasm(mod.bytes, layout, n, ops, misalign);
    const want = expected(req, n, ops);
    expect(y.length).toBe(want.y.length);
    for (let i = 0; i < y.length; i++) {
      const err = Math.abs(y[i]! - want.y[i]!);
      // tanh and sigmoid add their own error (and a float32 rounding) where the terms are small.
      const own = req.epilogue === 'tanh' || req.epilogue === 'sigmoid' ? SMOOTH_ATOL * (1 + Math.abs(want.y[i]!)) : 0;
      if (!(err <= RTOL * want.scale[i]! + own + 1e-30)) {
        throw new Error(`${layout.name} n=${n}: y[${i}] = ${y[i]}, expected ${want.y[i]} (terms ${want.scale[i]})`);
      }
    }
  }
}

describe('dense (GEMM)', () => {
  it('matches the reference with column and row tails', () => {
    // units: below one vector, one vector, a panel and a partial vector, panels and a partial panel.
    for (const units of [1, 3, 4, 8, 10, 13, 33]) {
      for (const inDim of [1, 2, 7, 64]) check({ kind: 'dense', inDim, units, bias: true }, [1, 3, 4, 6]);
    }
  });

  it('applies tanh and sigmoid in registers, with and without a bias, tails included', () => {
    for (const epilogue of ['tanh', 'sigmoid'] as const) {
      check({ kind: 'dense', inDim: 9, units: 11, bias: true, epilogue }, [5]);
      check({ kind: 'dense', inDim: 9, units: 11, bias: false, epilogue }, [5]);
      check({ kind: 'dense', inDim: 16, units: 64, bias: true, epilogue }, [1, 7]);
      check({ kind: 'dense', inDim: 12, units: 8, bias: true, epilogue, rowMajor: true }, [3]);
    }
  });

  it('applies relu and relu6, with and without a bias', () => {
    for (const epilogue of ['relu', 'relu6'] as const) {
      check({ kind: 'dense', inDim: 9, units: 11, bias: true, epilogue }, [5]);
      check({ kind: 'dense', inDim: 9, units: 11, bias: false, epilogue }, [5]);
    }
    check({ kind: 'dense', inDim: 17, units: 6, bias: false }, [2, 7]);
  });

  it('handles rows per example (dense over a rank-3 input)', () => {
    check({ kind: 'dense', inDim: 5, units: 7, bias: true, rowsPerExample: 3 }, [1, 2, 3]);
  });

  it('is correct for every register tile, unroll and at misaligned operands', () => {
    for (const [rows, vecs] of [[1, 1], [2, 3], [3, 3], [4, 2], [5, 1], [2, 4]] as const) {
      for (const unroll of [1, 2, 3]) check({ kind: 'dense', inDim: 7, units: 21, bias: true, tile: { rows, vecs }, unroll }, [1, 7]);
    }
    check({ kind: 'dense', inDim: 6, units: 10, bias: true }, [5], 3, 4);
  });

  it('writes nothing for a batch of 0', () => {
    const mod = buildSimdModule([{ kind: 'dense', inDim: 3, units: 5, bias: true }]);
    const layout = mod.layouts[0]!;
    expect(runWasm(mod.bytes, layout, 0, operands(layout, 0, 1)).length).toBe(0);
  });

  it('computes a bigger GEMM: 300 x 257 x 130', () => {
    check({ kind: 'dense', inDim: 257, units: 130, bias: true, epilogue: 'relu' }, [300]);
  });
});

describe('conv2d', () => {
  it("matches the reference: 'valid' and 'same', strides, filter tails", () => {
    for (const padding of ['valid', 'same'] as const) {
      for (const strides of [[1, 1], [2, 2], [1, 3]] as const) {
        for (const filters of [1, 5, 16, 21]) {
          check({ kind: 'conv2d', input: [7, 8, 3], kernel: [3, 3], filters, strides, padding, bias: true }, [1, 2]);
        }
      }
    }
  });

  it('handles kernels as wide as the input, even kernels, 1x1 and non-square kernels', () => {
    check({ kind: 'conv2d', input: [5, 4, 2], kernel: [5, 4], filters: 6, bias: true }, [2]);
    check({ kind: 'conv2d', input: [5, 4, 2], kernel: [5, 4], filters: 6, bias: true, padding: 'same' }, [2]);
    check({ kind: 'conv2d', input: [6, 6, 3], kernel: [2, 2], filters: 9, bias: true, padding: 'same', strides: [2, 2] }, [2]);
    check({ kind: 'conv2d', input: [4, 5, 7], kernel: [1, 1], filters: 10, bias: false }, [3]);
    check({ kind: 'conv2d', input: [9, 3, 2], kernel: [4, 1], filters: 4, bias: true, padding: 'same', epilogue: 'relu6' }, [2]);
    check({ kind: 'conv2d', input: [9, 3, 2], kernel: [4, 1], filters: 6, bias: true, padding: 'same', epilogue: 'tanh' }, [2]);
    check({ kind: 'conv2d', input: [7, 5, 3], kernel: [3, 3], filters: 5, bias: false, strides: [2, 1], padding: 'same', epilogue: 'sigmoid' }, [2]);
    check({ kind: 'conv2d', input: [1, 1, 4], kernel: [3, 3], filters: 5, bias: true, padding: 'same' }, [3]);
  });

  it("runs mnist_cnn's conv layers (relu fused)", () => {
    check({ kind: 'conv2d', input: [28, 28, 1], kernel: [3, 3], filters: 32, bias: true, epilogue: 'relu' }, [2]);
    check({ kind: 'conv2d', input: [26, 26, 32], kernel: [3, 3], filters: 64, bias: true, epilogue: 'relu' }, [1]);
  });

  it('is correct for every register tile (pixel blocks with a remainder)', () => {
    for (const [rows, vecs] of [[1, 1], [3, 1], [4, 2], [2, 4], [5, 3]] as const) {
      check({ kind: 'conv2d', input: [6, 11, 3], kernel: [3, 2], filters: 14, bias: true, padding: 'same', tile: { rows, vecs } }, [2]);
    }
  });
});

describe('depthwise_conv2d', () => {
  it("matches the reference: 'valid' and 'same', strides, channel tails", () => {
    for (const padding of ['valid', 'same'] as const) {
      for (const strides of [[1, 1], [2, 2], [2, 1]] as const) {
        for (const c of [1, 2, 3, 4, 7, 37]) {
          check({ kind: 'depthwise_conv2d', input: [6, 7, c], kernel: [3, 3], strides, padding, bias: true }, [1, 2]);
        }
      }
    }
  });

  it('applies the epilogues, without a bias, in chunks of channel vectors', () => {
    check({ kind: 'depthwise_conv2d', input: [5, 5, 10], kernel: [2, 3], bias: false, padding: 'same', epilogue: 'relu' }, [3]);
    check({ kind: 'depthwise_conv2d', input: [5, 5, 45], kernel: [3, 3], bias: true, epilogue: 'relu6', tile: { rows: 1, vecs: 3 } }, [2]);
    check({ kind: 'depthwise_conv2d', input: [5, 5, 10], kernel: [2, 3], bias: true, padding: 'same', epilogue: 'tanh' }, [3]);
    check({ kind: 'depthwise_conv2d', input: [5, 5, 45], kernel: [3, 3], bias: false, epilogue: 'sigmoid', tile: { rows: 1, vecs: 3 } }, [2]);
  });
});

describe('simdRequestFor', () => {
  /** The EmitRequest the code generator would give op's template. */
  const emitRequest = (op: string, shapes: Dim[][], attrs: Record<string, unknown>) => {
    const operands = shapes.map((s) => tensor(s));
    return { operands, result: getOp(op)!.infer(operands, attrs as never), attrs };
  };
  const conv = { strides: [1, 1], padding: 'valid', dilation_rate: [1, 1], groups: 1 };

  it('maps dense, conv2d and depthwise_conv2d nodes to kernels that compute them', () => {
    const dense = simdRequestFor('dense', emitRequest('dense', [['N', 3, 9], [9, 6], [6]], { epilogue: { op: 'relu' } }));
    expect(dense).toEqual({ request: { kind: 'dense', inDim: 9, units: 6, rowsPerExample: 3, bias: true, epilogue: 'relu' } });
    check(dense!.request as SimdKernelRequest, [2]);
    const c = simdRequestFor('conv2d', emitRequest('conv2d', [['N', 7, 6, 3], [3, 2, 3, 5]], { ...conv, strides: [2, 1], padding: 'same', epilogue: { op: 'relu6' } }));
    expect(c).toEqual({ request: { kind: 'conv2d', input: [7, 6, 3], kernel: [3, 2], filters: 5, strides: [2, 1], padding: 'same', bias: false, epilogue: 'relu6' } });
    check(c!.request as SimdKernelRequest, [2]);
    const d = simdRequestFor('depthwise_conv2d', emitRequest('depthwise_conv2d', [['N', 6, 6, 5], [3, 3, 5, 1], [5]], { strides: [1, 1], padding: 'same', dilation_rate: [1, 1] }));
    expect(d).toEqual({ request: { kind: 'depthwise_conv2d', input: [6, 6, 5], kernel: [3, 3], strides: [1, 1], padding: 'same', bias: true } });
    check(d!.request as SimdKernelRequest, [2]);
  });

  it('leaves other epilogues to the caller', () => {
    const softmax = { op: 'softmax', axis: 1 };
    expect(simdRequestFor('dense', emitRequest('dense', [['N', 64], [64, 10], [10]], { epilogue: softmax }))).toEqual({
      request: { kind: 'dense', inDim: 64, units: 10, bias: true },
      remaining: softmax,
    });
    expect(simdRequestFor('conv2d', emitRequest('conv2d', [['N', 5, 5, 2], [3, 3, 2, 4]], { ...conv, epilogue: { op: 'softplus' } }))?.remaining).toEqual({ op: 'softplus' });
  });

  it('declines what the kernels do not cover', () => {
    expect(simdRequestFor('conv2d', emitRequest('conv2d', [['N', 5, 5, 4], [3, 3, 2, 4]], { ...conv, groups: 2 }))).toBeUndefined();
    expect(simdRequestFor('conv2d', emitRequest('conv2d', [['N', 9, 9, 2], [3, 3, 2, 4]], { ...conv, dilation_rate: [2, 2] }))).toBeUndefined();
    expect(simdRequestFor('depthwise_conv2d', emitRequest('depthwise_conv2d', [['N', 6, 6, 3], [3, 3, 3, 2]], { strides: [1, 1], padding: 'valid', dilation_rate: [1, 1] }))).toBeUndefined();
    expect(simdRequestFor('max_pool2d', { operands: [tensor(['N', 4, 4, 1])], result: tensor(['N', 2, 2, 1]), attrs: {} })).toBeUndefined();
    expect(simdRequestFor('dense', { operands: [tensor([3, 4]), tensor([4, 2])], result: tensor([3, 2]), attrs: {} })).toBeUndefined();
  });

  it("asks each op's record: the Trainer gets row-major dense kernels, the dense gradients and convolutions as GEMMs over their windows, inference the rest", () => {
    const training = (op: string, shapes: Dim[][], attrs: Record<string, unknown>) => simdRequestFor(op, emitRequest(op, shapes, attrs), 'training');
    expect(training('dense', [['N', 3, 9], [9, 8], [8]], {})).toEqual({ request: { kind: 'dense', inDim: 9, units: 8, rowsPerExample: 3, bias: true, rowMajor: true } });
    // Row-major kernels are read in whole vectors of units; an unfused epilogue has no pass of its own in the Trainer.
    expect(training('dense', [['N', 9], [9, 6]], {})).toBeUndefined();
    expect(training('dense', [['N', 9], [9, 8]], { epilogue: { op: 'softplus' } })).toBeUndefined();
    // tanh and sigmoid are fused in registers (their records' simdEpilogue), in the Trainer too.
    expect(training('dense', [['N', 9], [9, 8]], { epilogue: { op: 'tanh' } })).toEqual({ request: { kind: 'dense', inDim: 9, units: 8, bias: false, epilogue: 'tanh', rowMajor: true } });
    expect(training('dense_grad_input', [['N', 8], [9, 8]], {})).toEqual({ request: { kind: 'dense_grad_input', inDim: 9, units: 8 } });
    expect(training('dense_grad_kernel', [['N', 2, 9], ['N', 2, 8]], {})).toEqual({ request: { kind: 'dense_grad_kernel', inDim: 9, units: 8, rowsPerExample: 2 } });
    expect(training('dense_grad_input', [['N', 6], [9, 6]], {})).toBeUndefined();
    expect(simdRequestFor('dense_grad_input', emitRequest('dense_grad_input', [['N', 8], [9, 8]], {}), 'inference')).toBeUndefined();
    // conv2d in the Trainer: the row-major GEMM over its windows, which im2col copies out first.
    const window = { input: [7, 6, 3], output: [4, 6], kernel: [3, 2], strides: [2, 1], dilation: [1, 1], before: [1, 0] };
    expect(training('conv2d', [['N', 7, 6, 3], [3, 2, 3, 8], [8]], { ...conv, strides: [2, 1], padding: 'same' })).toEqual({
      request: { kind: 'dense', inDim: 18, units: 8, rowsPerExample: 24, bias: true, rowMajor: true },
      columns: { kind: 'im2col', window },
    });
    // Its gradients: dx sums dy · kernelᵀ back into the windows (col2im), dk reads the windows of x.
    const gradAttrs = { strides: [2, 1], padding: 'same', dilation_rate: [1, 1], groups: 1 };
    expect(training('conv2d_grad_input', [['N', 4, 6, 8], [3, 2, 3, 8]], { ...gradAttrs, input_shape: [7, 6, 3] })).toEqual({
      request: { kind: 'dense_grad_input', inDim: 18, units: 8, rowsPerExample: 24 },
      columns: { kind: 'col2im', window },
    });
    expect(training('conv2d_grad_kernel', [['N', 7, 6, 3], ['N', 4, 6, 8]], { ...gradAttrs, kernel_size: [3, 2] })).toEqual({
      request: { kind: 'dense_grad_kernel', inDim: 18, units: 8, rowsPerExample: 24 },
      columns: { kind: 'im2col', window },
    });
    // Training batchnorm, channels last in whole vectors, no renorm: the Trainer's kernels; others stay TypeScript.
    const bn = { axis: 3, epsilon: 0.001, center: true, scale: false, renorm: false, renorm_clipping: { rmax: null, rmin: 0, dmax: null } };
    expect(training('batchnorm_train', [['N', 5, 5, 8], [8]], bn)).toEqual({
      request: { kind: 'batchnorm_train', channels: 8, epsilon: 0.001, rowsPerExample: 25, gamma: false, beta: true },
    });
    expect(training('batchnorm_train_grad_input', [['N', 8], ['N', 8]], { ...bn, axis: 1 })).toEqual({
      request: { kind: 'batchnorm_train_grad_input', channels: 8, epsilon: 0.001, gamma: false },
    });
    expect(training('batchnorm_train', [['N', 5, 5, 6], [6]], bn)).toBeUndefined();
    expect(training('batchnorm_train', [['N', 8, 5, 5], [8]], { ...bn, axis: 1 })).toBeUndefined();
    expect(simdRequestFor('batchnorm_train', emitRequest('batchnorm_train', [['N', 5, 5, 8], [8]], bn), 'inference')).toBeUndefined();
    // A 1x1 conv with stride 1 and no padding is a dense layer over the pixels: no copy.
    expect(training('conv2d', [['N', 5, 5, 6], [1, 1, 6, 4]], conv)).toEqual({
      request: { kind: 'dense', inDim: 6, units: 4, rowsPerExample: 25, bias: false, rowMajor: true },
    });
    // Filters that are not whole vectors, groups and depthwise convs keep their TypeScript kernels in the Trainer.
    expect(training('conv2d', [['N', 7, 6, 3], [3, 2, 3, 6]], conv)).toBeUndefined();
    expect(training('conv2d', [['N', 7, 6, 4], [3, 2, 2, 8]], { ...conv, groups: 2 })).toBeUndefined();
    expect(training('conv2d_grad_kernel', [['N', 7, 6, 4], ['N', 5, 5, 8]], { ...conv, groups: 2, kernel_size: [3, 2] })).toBeUndefined();
    expect(training('depthwise_conv2d', [['N', 6, 6, 4], [3, 3, 4, 1]], conv)).toBeUndefined();
    const gradInputAttrs = { ...gradAttrs, input_shape: [7, 6, 3] };
    expect(simdRequestFor('conv2d_grad_input', emitRequest('conv2d_grad_input', [['N', 4, 6, 8], [3, 2, 3, 8]], gradInputAttrs), 'inference')).toBeUndefined();
    // Max pooling and its gradient in whole vectors of channels; relu, relu6 and their gradients.
    const pool = { pool_size: [2, 2], strides: [2, 2], padding: 'same' };
    const poolWindow = { input: [5, 4, 8], output: [3, 2], pool: [2, 2], strides: [2, 2], before: [0, 0] };
    expect(training('max_pool2d', [['N', 5, 4, 8]], pool)).toEqual({ request: { kind: 'max_pool2d', window: poolWindow } });
    expect(training('max_pool2d', [['N', 5, 4, 6]], pool)).toBeUndefined();
    expect(training('avg_pool2d', [['N', 5, 4, 8]], pool)).toBeUndefined();
    expect(simdRequestFor('max_pool2d', emitRequest('max_pool2d', [['N', 5, 4, 8]], pool), 'inference')).toBeUndefined();
    expect(training('relu', [['N', 3, 7]], {})).toEqual({ request: { kind: 'relu', fn: 'relu', size: 21 } });
    expect(training('tanh', [['N', 8]], {})).toBeUndefined();
    expect(training('max_pool2d_grad', [['N', 3, 2, 8], ['N', 5, 4, 8]], pool)).toEqual({ request: { kind: 'max_pool2d_grad', window: poolWindow } });
    expect(training('max_pool2d_grad', [['N', 3, 2, 6], ['N', 5, 4, 6]], pool)).toBeUndefined();
    expect(simdRequestFor('max_pool2d_grad', emitRequest('max_pool2d_grad', [['N', 3, 2, 8], ['N', 5, 4, 8]], pool), 'inference')).toBeUndefined();
    expect(training('activation_grad', [['N', 3, 7], ['N', 3, 7]], { fn: { op: 'relu6' }, from: 'output' })).toEqual({ request: { kind: 'relu_grad', fn: 'relu6', size: 21 } });
    expect(training('activation_grad', [['N', 8], ['N', 8]], { fn: { op: 'sigmoid' }, from: 'output' })).toBeUndefined();
    // The op records that have a rule are exactly the SIMD ops.
    expect(ops.filter((o) => o.simd !== undefined).map((o) => o.name).sort()).toEqual([
      'activation_grad',
      'batchnorm_train',
      'batchnorm_train_grad_gamma',
      'batchnorm_train_grad_input',
      'channel_mean',
      'channel_sum',
      'channel_variance',
      'conv2d',
      'conv2d_grad_input',
      'conv2d_grad_kernel',
      'dense',
      'dense_grad_input',
      'dense_grad_kernel',
      'depthwise_conv2d',
      'max_pool2d',
      'max_pool2d_grad',
      'relu',
      'relu6',
    ]);
  });
});

describe('buildSimdModule', () => {
  it('exports one function per distinct kernel and rejects clashing names', () => {
    const a = { kind: 'dense', inDim: 3, units: 5, bias: true } as const;
    const mod = buildSimdModule([a, { ...a }, { kind: 'conv2d', input: [5, 5, 2], kernel: [3, 3], filters: 4, bias: false }]);
    expect(mod.exports).toEqual(['dense_3x5', 'conv2d_5x5x2_k3x3_f4_nobias']);
    expect(wasm.validate(mod.bytes)).toBe(true);
    expect(() => buildSimdModule([a, { ...a, name: 'dense_3x5', units: 6 }])).toThrow(/two different/);
    expect(() => buildSimdModule([{ ...a, name: 'not-an-identifier' }])).toThrow(/identifier/);
    expect(() => buildSimdModule([{ kind: 'conv2d', input: [2, 2, 1], kernel: [3, 3], filters: 1, bias: true }])).toThrow(/does not fit/);
  });

  it('lays out packed weights in column panels', () => {
    const layout = buildSimdModule([{ kind: 'dense', inDim: 2, units: 10, bias: true, tile: { rows: 1, vecs: 2 } }]).layouts[0]!;
    expect(layout.pack).toEqual({ k: 2, units: 10, panel: 8 });
    expect(layout.weightFloats).toBe(2 * 8 + 2 * 4);
    expect(layout.biasFloats).toBe(12);
    const kernel = Float32Array.from({ length: 20 }, (_, i) => i + 1);
    expect([...packWeights(layout, kernel)]).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 14, 15, 16, 17, 18, // panel 0: rows 0, 1
      9, 10, 0, 0, 19, 20, 0, 0, // panel 1 (2 columns, padded to 4): rows 0, 1
    ]);
    expect(() => packWeights(layout, new Float32Array(3))).toThrow(RangeError);
  });
});

describe('property: random shapes and tiles', () => {
  const tile = fc.option(fc.record({ rows: fc.integer({ min: 1, max: 5 }), vecs: fc.integer({ min: 1, max: 4 }) }), { nil: undefined });
  const epilogue = fc.constantFrom(undefined, 'relu' as const, 'relu6' as const, 'tanh' as const, 'sigmoid' as const);

  it('dense', () => {
    fc.assert(fc.property(
      fc.record({
        inDim: fc.integer({ min: 1, max: 40 }),
        units: fc.integer({ min: 1, max: 40 }),
        rowsPerExample: fc.integer({ min: 1, max: 3 }),
        bias: fc.boolean(),
        epilogue,
        tile,
        unroll: fc.integer({ min: 1, max: 3 }),
      }),
      fc.integer({ min: 1, max: 9 }),
      fc.integer(),
      (r, n, seed) => check({ kind: 'dense', ...r }, [n], seed),
    ), { numRuns: 60 });
  });

  it('conv2d and depthwise_conv2d', () => {
    fc.assert(fc.property(
      fc.record({
        h: fc.integer({ min: 1, max: 9 }),
        w: fc.integer({ min: 1, max: 9 }),
        c: fc.integer({ min: 1, max: 6 }),
        kh: fc.integer({ min: 1, max: 4 }),
        kw: fc.integer({ min: 1, max: 4 }),
        filters: fc.integer({ min: 1, max: 13 }),
        sh: fc.integer({ min: 1, max: 3 }),
        sw: fc.integer({ min: 1, max: 3 }),
        padding: fc.constantFrom('valid' as const, 'same' as const),
        bias: fc.boolean(),
        epilogue,
        tile,
        depthwise: fc.boolean(),
      }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer(),
      (r, n, seed) => {
        const kernel: [number, number] = r.padding === 'valid' ? [Math.min(r.kh, r.h), Math.min(r.kw, r.w)] : [r.kh, r.kw];
        const common = { input: [r.h, r.w, r.c] as const, kernel, strides: [r.sh, r.sw] as const, padding: r.padding, bias: r.bias, epilogue: r.epilogue, tile: r.tile };
        check(r.depthwise ? { kind: 'depthwise_conv2d', ...common } : { kind: 'conv2d', ...common, filters: r.filters }, [n], seed);
      },
    ), { numRuns: 80 });
  });
});
