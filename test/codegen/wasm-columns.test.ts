/**
 * The window copies of training modules (src/codegen/wasm/columns.ts):
 * im2col against the definition (copies: exact), col2im against float64 sums
 * of the adjoint, over windows with strides, dilation, padding on either
 * side, channel counts around the f32x4 vector and runs past the unrolled
 * length. Operands sit between NaN guards: a kernel that wrote outside its
 * output or read outside its input would show.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildSimdModule } from '../../src/codegen/wasm/module.js';
import type { ConvWindow } from '../../src/ops/simd-def.js';
import { rng } from '../helpers/tensors.js';
import { wasm } from '../helpers/wasm.js';

const GUARD = 8;

/** Runs the kernel on `input` (n examples) between NaN guards; returns its output and checks the guards and the input. */
function run(kind: 'im2col' | 'col2im', window: ConvWindow, n: number, input: Float32Array, outFloats: number): Float32Array {
  const mod = buildSimdModule([{ kind, window }]);
  const name = mod.layouts[0]!.name;
  const inAt = GUARD;
  const outAt = inAt + Math.ceil(input.length / 4) * 4 + GUARD;
  const floats = outAt + outFloats + GUARD + 4;
  const memory = new wasm.Memory({ initial: Math.ceil((floats * 4 + 64) / 65536) });
  const all = new Float32Array(memory.buffer);
  all.fill(NaN);
  all.set(input, inAt);
  // Garbage where the output goes: col2im must overwrite every float, im2col too.
  all.fill(-7, outAt, outAt + outFloats);
  const { exports } = new wasm.Instance(new wasm.Module(mod.bytes), { env: { memory } });
  (exports[name] as (...args: number[]) => void)(n, inAt * 4, 0, 0, outAt * 4);
  expect(all.slice(inAt, inAt + input.length)).toEqual(input);
  const guards = [...all.slice(outAt - GUARD, outAt), ...all.slice(outAt + outFloats, outAt + outFloats + GUARD)];
  expect(guards.every(Number.isNaN)).toBe(true);
  return all.slice(outAt, outAt + outFloats);
}

/** Every (col index, image index) pair of the windows: col[r, t] reads x[i] (i = -1: padding). */
function cells(w: ConvWindow, n: number): Int32Array {
  const [h, wd, c] = w.input;
  const [oh, ow] = w.output;
  const [kh, kw] = w.kernel;
  const K = kh * kw * c;
  const map = new Int32Array(n * oh * ow * K).fill(-1);
  for (let e = 0; e < n; e++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let ky = 0; ky < kh; ky++)
          for (let kx = 0; kx < kw; kx++) {
            const iy = oy * w.strides[0] + ky * w.dilation[0] - w.before[0];
            const ix = ox * w.strides[1] + kx * w.dilation[1] - w.before[1];
            if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
            for (let ci = 0; ci < c; ci++) map[((e * oh + oy) * ow + ox) * K + (ky * kw + kx) * c + ci] = ((e * h + iy) * wd + ix) * c + ci;
          }
  return map;
}

const tally = { windows: 0, padded: 0, strided: 0, dilated: 0, channelTail: 0, longRun: 0 };

function check(w: ConvWindow, n: number, seed: number): void {
  const next = rng(seed);
  const imageFloats = w.input[0] * w.input[1] * w.input[2];
  const K = w.kernel[0] * w.kernel[1] * w.input[2];
  const colFloats = w.output[0] * w.output[1] * K;
  const map = cells(w, n);
  // im2col: exact copies and zeros.
  const x = Float32Array.from({ length: n * imageFloats }, () => next() * 2 - 1);
  const col = run('im2col', w, n, x, n * colFloats);
  const expected = Float32Array.from(map, (i) => (i < 0 ? 0 : x[i]!));
  expect(col).toEqual(expected);
  // col2im: float64 sums of the adjoint, within float32 rounding of the summed magnitudes.
  const dcol = Float32Array.from({ length: n * colFloats }, () => next() * 2 - 1);
  const dx = run('col2im', w, n, dcol, n * imageFloats);
  const sum = new Float64Array(n * imageFloats);
  const mag = new Float64Array(n * imageFloats);
  map.forEach((i, t) => {
    if (i < 0) return;
    sum[i] += dcol[t]!;
    mag[i] += Math.abs(dcol[t]!);
  });
  sum.forEach((s, i) => {
    if (Math.abs(dx[i]! - s) > 1e-6 * mag[i]! + 1e-30) throw new Error(`col2im ${JSON.stringify(w)} n=${n}: dx[${i}] = ${dx[i]}, expected ${s}`);
  });
  tally.windows++;
  if (w.before.some((b) => b > 0) || map.some((i) => i < 0)) tally.padded++;
  if (w.strides.some((s) => s > 1)) tally.strided++;
  if (w.dilation.some((d) => d > 1)) tally.dilated++;
  if (w.input[2] % 4 !== 0) tally.channelTail++;
  if (w.kernel[1] * w.input[2] > 32) tally.longRun++;
}

/** The output length of an axis padded `before` and `after`, or 0 when no window fits. */
function outLength(size: number, k: number, stride: number, dilation: number, before: number, after: number): number {
  const span = (k - 1) * dilation + 1;
  return size + before + after < span ? 0 : Math.floor((size + before + after - span) / stride) + 1;
}

describe('im2col and col2im', () => {
  it("mnist_cnn's windows: 28x28x1 and 26x26x32 through 3x3 valid, and a 3x3 same window", () => {
    check({ input: [28, 28, 1], output: [26, 26], kernel: [3, 3], strides: [1, 1], dilation: [1, 1], before: [0, 0] }, 2, 1);
    check({ input: [26, 26, 32], output: [24, 24], kernel: [3, 3], strides: [1, 1], dilation: [1, 1], before: [0, 0] }, 2, 2);
    check({ input: [7, 6, 5], output: [7, 6], kernel: [3, 3], strides: [1, 1], dilation: [1, 1], before: [1, 1] }, 3, 3);
    check({ input: [7, 6, 8], output: [4, 3], kernel: [3, 3], strides: [2, 2], dilation: [1, 1], before: [1, 0] }, 1, 4);
  });

  it('agree with their definitions on random windows (property)', () => {
    const before = { ...tally };
    fc.assert(
      fc.property(
        fc.record({
          h: fc.integer({ min: 1, max: 9 }),
          w: fc.integer({ min: 1, max: 9 }),
          c: fc.oneof(fc.integer({ min: 1, max: 9 }), fc.constantFrom(16, 37)),
          kh: fc.integer({ min: 1, max: 4 }),
          kw: fc.integer({ min: 1, max: 4 }),
          sy: fc.integer({ min: 1, max: 3 }),
          sx: fc.integer({ min: 1, max: 3 }),
          dy: fc.integer({ min: 1, max: 2 }),
          dx: fc.integer({ min: 1, max: 2 }),
          pads: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 4, maxLength: 4 }),
          n: fc.integer({ min: 1, max: 3 }),
          seed: fc.integer({ min: 0, max: 1000 }),
        }),
        (r) => {
          const oh = outLength(r.h, r.kh, r.sy, r.dy, r.pads[0]!, r.pads[1]!);
          const ow = outLength(r.w, r.kw, r.sx, r.dx, r.pads[2]!, r.pads[3]!);
          fc.pre(oh > 0 && ow > 0);
          const window: ConvWindow = { input: [r.h, r.w, r.c], output: [oh, ow], kernel: [r.kh, r.kw], strides: [r.sy, r.sx], dilation: [r.dy, r.dx], before: [r.pads[0]!, r.pads[2]!] };
          check(window, r.n, r.seed);
        },
      ),
      { numRuns: 150 },
    );
    const seen = Object.fromEntries(Object.entries(tally).map(([k, v]) => [k, v - before[k as keyof typeof tally]]));
    // What the runs exercised: most windows, each kind of geometry many times.
    expect(seen['windows']).toBeGreaterThanOrEqual(100);
    for (const k of ['padded', 'strided', 'dilated', 'channelTail', 'longRun']) expect(seen[k], k).toBeGreaterThanOrEqual(10);
  });

  it('refuses windows without a size', () => {
    expect(() => buildSimdModule([{ kind: 'im2col', window: { input: [4, 4, 0], output: [2, 2], kernel: [3, 3], strides: [1, 1], dilation: [1, 1], before: [0, 0] } }])).toThrow(/positive integers/);
    expect(() => buildSimdModule([{ kind: 'col2im', window: { input: [4, 4, 1], output: [2, 2], kernel: [3, 3], strides: [1, 1], dilation: [1, 1], before: [-1, 0] } }])).toThrow(/non-negative/);
  });
});
