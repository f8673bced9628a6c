/**
 * conv2d as Winograd F(2x2, 3x3) (src/ops/conv/winograd.ts) against the
 * float64 reference conv: valid and same padding, odd and even output sizes
 * (partial last tile row and column), channel and filter counts that leave
 * partial GEMM register blocks, batches that cross tile chunks inside and
 * across examples, with and without bias, fused relu and softmax, and random
 * small shapes. Inputs, kernels and biases are uniform reals in [-1, 1), so a
 * wrong transform constant or sign cannot cancel out (a mutated kernel must
 * fail the same check). Then the cost rule's choice (the kernels' recorded
 * plans), and a generated module with Winograd layers against the
 * interpreter, type-checked strictly.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateInferenceModule } from '../../src/codegen/index.js';
import { interpret } from '../../src/interp/interpret.js';
import type { Tensor } from '../../src/ir/tensor.js';
import { fromF32 } from '../../src/ir/tensor.js';
import { tensor } from '../../src/ir/types.js';
import type { Epilogue } from '../../src/ops/activation.js';
import { forwardGeometry } from '../../src/ops/conv/window.js';
import { conv2dKernel, convPlan, winogradPays, type ConvPath } from '../../src/ops/conv/path.js';
import { winogradChunkTiles } from '../../src/ops/conv/winograd.js';
import type { KernelCode } from '../../src/ops/emit.js';
import { getOp } from '../../src/ops/registry.js';
import { randomFeeds } from '../../src/passes/equivalence.js';
import { randomValues } from '../helpers/gradcheck.js';
import { importModule, strictTypecheck } from '../helpers/generated.js';
import { lowerJson, model } from '../helpers/graphs.js';
import { runEmitted } from '../helpers/kernel.js';
import { randomParams } from '../helpers/random-models.js';
import { reference } from '../helpers/tensors.js';

/** The output scale: the largest |value| of the reference (at least 1e-3, so an all-zero output still has a bound). */
function scaleOf(t: Tensor): number {
  return Math.max(1e-3, ...Array.from(t.data, Math.abs));
}

/** The worst |got - want| relative to the output scale, and where. */
function worstRelative(got: Tensor, want: Tensor): { worst: number; at: number } {
  const scale = scaleOf(want);
  let worst = 0;
  let at = -1;
  want.data.forEach((w, i) => {
    const d = Math.abs(got.data[i]! - w) / scale;
    if (!(d <= worst)) [worst, at] = [Number.isNaN(d) ? Infinity : d, i];
  });
  return { worst, at };
}

/** Every element within tol of the output scale. */
function expectNear(got: Tensor, want: Tensor, tol = 1e-5): void {
  expect(got.shape).toEqual(want.shape);
  const { worst, at } = worstRelative(got, want);
  expect(worst, `worst at [${at}]: ${got.data[at]} vs ${want.data[at]}`).toBeLessThanOrEqual(tol);
}

interface Case {
  readonly batch: number;
  readonly x: readonly [number, number, number];
  readonly filters: number;
  readonly padding: 'valid' | 'same';
}

const attrsOf = (c: Case) => ({ strides: [1, 1], padding: c.padding, dilation_rate: [1, 1], groups: 1 });

/** The conv2d of a case through `path` (default: the cost rule) with optional bias and epilogue. */
function emit(c: Case, bias: boolean, epilogue: Epilogue | undefined, path?: ConvPath): { emitted: KernelCode; shape: number[] } {
  const a = attrsOf(c);
  const xt = tensor(['N', ...c.x]);
  const kt = tensor([3, 3, c.x[2], c.filters]);
  const result = getOp('conv2d')!.infer([xt, kt], a as never);
  const shape = result.shape.map((d) => (d === 'N' ? c.batch : (d as number)));
  return { emitted: conv2dKernel(xt, kt, bias, result, 1, forwardGeometry(xt, kt, a as never), epilogue, path), shape };
}

/** Runs a case through Winograd and the reference; returns both (seeded operands). */
function compare(c: Case, bias: boolean, epilogue: Epilogue | undefined, seed = 1, mutate = (body: string) => body): { got: Tensor; want: Tensor } {
  const x = randomValues([c.batch, ...c.x], seed);
  const k = randomValues([3, 3, c.x[2], c.filters], seed + 1);
  const b = randomValues([c.filters], seed + 2);
  const operands = bias ? [x, k, b] : [x, k];
  const want = reference('conv2d', operands, { ...attrsOf(c), epilogue });
  const { emitted, shape } = emit(c, bias, epilogue, 'winograd');
  const got = runEmitted({ ...emitted, body: mutate(emitted.body) }, operands, shape, c.batch);
  return { got, want };
}

// Odd and even output sizes for both paddings (5x5 valid -> 3x3, 6x6 -> 4x4, 7x9 -> 5x7; same keeps
// the size), with channel / filter pairs that leave partial register blocks (3 rows x 4 columns).
const sizes: [number, number][] = [[5, 5], [6, 6], [7, 9]];
const widths: [number, number][] = [[1, 1], [3, 2], [5, 5], [7, 1], [1, 5], [7, 2]];
const fixed: (Case & { name: string })[] = (['valid', 'same'] as const).flatMap((padding) =>
  sizes.flatMap(([h, w]) =>
    widths.map(([c, f], i) => ({ name: `${h}x${w}x${c} -> ${f} filters, ${padding}, batch ${i % 2 ? 3 : 1}`, batch: i % 2 ? 3 : 1, x: [h, w, c] as const, filters: f, padding })),
  ),
);

describe('Winograd F(2x2, 3x3) equals the reference conv2d', () => {
  it.each(fixed)('$name', (c) => {
    for (const [bias, epilogue] of [[false, undefined], [true, undefined], [true, { op: 'relu' }]] as const) {
      const { got, want } = compare(c, bias, epilogue);
      expectNear(got, want);
    }
  });

  // Chunks of tiles: 3 x 20x20 tiles per example against chunks of a few hundred (boundaries inside and
  // across examples, partial tiles at the odd edge), and the mnist_cnn conv2 shape.
  const large: (Case & { name: string })[] = [
    { name: 'chunks: 3 x 39x39x2 -> 8, same (odd)', batch: 3, x: [39, 39, 2], filters: 8, padding: 'same' },
    { name: 'mnist conv2: 2 x 26x26x32 -> 64, valid', batch: 2, x: [26, 26, 32], filters: 64, padding: 'valid' },
  ];
  it('the first large case really crosses chunks, inside and across examples', () => {
    const tilesPerExample = 20 * 20;
    const chunk = winogradChunkTiles(2, 8);
    expect(tilesPerExample % chunk).not.toBe(0);
    expect(3 * tilesPerExample).toBeGreaterThan(2 * chunk);
    expect(chunk).not.toBeGreaterThan(tilesPerExample);
  });
  it.each(large)('$name', (c) => {
    const { got, want } = compare(c, true, { op: 'relu' });
    expectNear(got, want);
  });

  it('with a fused softmax over the filters', () => {
    const c: Case = { batch: 2, x: [6, 7, 3], filters: 5, padding: 'same' };
    const { got, want } = compare(c, true, { op: 'softmax', axis: 3 });
    expectNear(got, want);
  });

  it('random small shapes (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.record({
          h: fc.integer({ min: 1, max: 9 }),
          w: fc.integer({ min: 1, max: 9 }),
          c: fc.integer({ min: 1, max: 6 }),
          f: fc.integer({ min: 1, max: 6 }),
          batch: fc.integer({ min: 1, max: 3 }),
          same: fc.boolean(),
          bias: fc.boolean(),
          relu: fc.boolean(),
          seed: fc.integer({ min: 1, max: 1000 }),
        }),
        ({ h, w, c, f, batch, same, bias, relu, seed }) => {
          // valid padding needs the 3x3 window inside the image
          const padding = same || (h < 3 || w < 3) ? 'same' : 'valid';
          const { got, want } = compare({ batch, x: [h, w, c], filters: f, padding }, bias, relu ? { op: 'relu' } : undefined, seed);
          expectNear(got, want);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a wrong transform constant or sign fails the same check', () => {
    const c: Case = { batch: 2, x: [7, 6, 3], filters: 5, padding: 'same' };
    // One change each in G (kernel), Bᵀ (input) and Aᵀ (output).
    const mutations: [string, string][] = [
      ['(g00 - g10 + g20) * 0.5', '(g00 + g10 + g20) * 0.5'],
      ['u03 = q02', 'u03 = -q02'],
      ['p20 = d20 - d10', 'p20 = d10 - d20'],
      ['v33 = p31 - p33', 'v33 = p33 - p31'],
      ['y01 = s01 - s02 - s03', 'y01 = s01 - s02 + s03'],
    ];
    for (const [from, to] of mutations) {
      const { got, want } = compare(c, true, undefined, 5, (body) => {
        expect(body).toContain(from);
        return body.replaceAll(from, to);
      });
      expect(worstRelative(got, want).worst, `mutation ${from} -> ${to}`).toBeGreaterThan(1e-2);
    }
  });
});

describe('the cost rule and Winograd', () => {
  const mnistConv2: Case = { batch: 1, x: [26, 26, 32], filters: 64, padding: 'valid' };
  it('takes Winograd for the mnist_cnn conv2 shape, and im2col + GEMM for conv1 (1 input channel)', () => {
    expect(convPlan({ kind: 'forward', depth: 288, cols: 64, winogradOutput: [24, 24] }).path).toBe('winograd');
    expect(convPlan({ kind: 'forward', depth: 9, cols: 32, winogradOutput: [26, 26] }).path).toBe('im2col-gemm');
    expect(emit(mnistConv2, true, { op: 'relu' }).emitted.plan).toEqual({ path: 'winograd', reason: '3x3 window at stride 1, 32 input channels: 16 products per 2x2 tile instead of 36' });
    expect(emit(mnistConv2, true, { op: 'relu' }).emitted.summary).toMatch(/Winograd F\(2x2, 3x3\)/);
    expect(emit({ ...mnistConv2, x: [28, 28, 1], filters: 32 }, true, { op: 'relu' }).emitted.plan.path).toBe('im2col-gemm');
  });
  it('not where tiles would waste products: outputs with a row or a column of 1', () => {
    expect(winogradPays(32, [1, 1])).toBe(false);
    expect(winogradPays(32, [1, 18])).toBe(false);
    expect(winogradPays(32, [3, 3])).toBe(true);
    expect(winogradPays(32, [2, 2])).toBe(true);
    expect(emit({ batch: 1, x: [3, 3, 32], filters: 32, padding: 'valid' }, false, undefined).emitted.plan.path).toBe('im2col-gemm');
  });
  it('never for a strided, dilated, 5x5 or grouped conv', () => {
    const a = { strides: [1, 1], padding: 'same', dilation_rate: [1, 1], groups: 1 };
    const xt = tensor(['N', 16, 16, 16]);
    const variants: [string, object, number[]][] = [
      ['strided', { strides: [2, 2] }, [3, 3, 16, 16]],
      ['dilated', { dilation_rate: [2, 2] }, [3, 3, 16, 16]],
      ['5x5', {}, [5, 5, 16, 16]],
      ['3x1', {}, [3, 1, 16, 16]],
      ['grouped', { groups: 4 }, [3, 3, 4, 16]],
    ];
    const op = getOp('conv2d')!;
    const plain = op.emit({ operands: [xt, tensor([3, 3, 16, 16])], result: op.infer([xt, tensor([3, 3, 16, 16])], a as never), attrs: a as never });
    expect(plain.kind === 'kernel' && plain.plan.path).toBe('winograd');
    for (const [name, change, k] of variants) {
      const attrs = { ...a, ...change };
      const kt = tensor(k);
      const emitted = op.emit({ operands: [xt, kt], result: op.infer([xt, kt], attrs as never), attrs: attrs as never });
      expect(emitted.kind === 'kernel' && emitted.plan.path, name).not.toBe('winograd');
    }
    const strided = tensor(['N', 8, 8, 16]);
    expect(() => conv2dKernel(strided, tensor([3, 3, 16, 16]), false, tensor(['N', 4, 4, 16]), 1,
      { strides: [2, 2], dilation_rate: [1, 1], before: [0, 0], valid: false }, undefined, 'winograd')).toThrow(/stride 1/);
  });
});

describe('a generated module with Winograd layers', () => {
  it('matches the interpreter over batches 3, 1, 4 and type-checks strictly', async () => {
    const spec = model([7, 9, 3], [
      { type: 'conv2d', filters: 6, kernel_size: 3, padding: 'same', activation: 'relu', name: 'a' },
      { type: 'conv2d', filters: 5, kernel_size: 3, name: 'b' },
      { type: 'conv2d', filters: 4, kernel_size: 3, padding: 'same', use_bias: false, name: 'c' },
    ]);
    const graph = randomParams(lowerJson(spec).graph, 3);
    const mod = await generateInferenceModule(graph);
    const convs = mod.kernels.filter((k) => k.op === 'conv2d');
    expect(convs.map((k) => [k.layers, k.plan.path])).toEqual([[['a'], 'winograd'], [['b'], 'winograd'], [['c'], 'winograd']]);
    const m = new (await importModule(mod.js, 'winograd')).Model();
    for (const [k, batch] of [3, 1, 4].entries()) {
      const feed = randomFeeds(graph, batch, 10 + k)['x']!;
      const x = Float32Array.from(feed.data);
      const want = interpret(graph, { x: fromF32(feed.shape, x) })[graph.outputs[0]!]!;
      const got = m.predict(x, batch);
      expectNear({ shape: want.shape, data: Float64Array.from(got) }, want);
    }
    const dir = mkdtempSync(join(tmpdir(), 'modelc-winograd-'));
    writeFileSync(join(dir, 'm.ts'), mod.ts);
    expect(strictTypecheck(dir, ['m.ts'])).toBe('');
  }, 60_000);
});
