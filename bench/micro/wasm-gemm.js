// WebAssembly SIMD kernels (src/codegen/wasm) against the pure-TypeScript
// kernels modelc emits (OpDef.emit: 3x4 register-blocked GEMM, im2col or
// direct convolutions), in GFLOP/s (2 flops per multiply-add).
//
//   npm run build && node bench/micro/wasm-gemm.js [filter...] [--dist DIR] [--reps N] [--tiles 4x2,3x3] [--unroll U]
//
// Cases: a 1024x1024x1024 matmul, and mnist_cnn's layers at batch 64 as the
// passes leave them (bias, fused relu), and a MobileNet-like depthwise conv. Each row: the TS kernel, then the wasm
// kernel (median and best of --reps runs, interleaved), speedup of medians.
// --tiles also times the wasm GEMM/conv with other register tiles (rows x f32x4 vectors),
// --unroll with another number of reduction steps per loop iteration.
// Reference point: tfjs-wasm (XNNPACK) reaches 20-28 GFLOP/s on a 1024^3 matmul on the
// development machine.
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { kernelFunction } from './common.js';

const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const argv = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = argv.indexOf(name);
  if (i < 0) return fallback;
  const v = argv[i + 1];
  argv.splice(i, 2);
  return v;
};
const distDir = resolve(flag('--dist', join(root, 'dist')));
const reps = Number(flag('--reps', '7'));
const unroll = flag('--unroll', undefined);
const extraTiles = (flag('--tiles', '') || '').split(',').filter(Boolean).map((t) => t.split('x').map(Number));
const filters = argv;
const dist = (p) => pathToFileURL(join(distDir, p)).href;

const { buildSimdModule, packWeights, padBias } = await import(dist('codegen/wasm/module.js'));
const { getOp } = await import(dist('ops/registry.js'));
const { tensor } = await import(dist('ir/types.js'));

let seed = 1;
const random = (n) => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    a[i] = seed / 2 ** 31 - 1;
  }
  return a;
};

/** The TS kernel modelc emits for `op`, transpiled: kernel(n, ...operands, y). */
function tsKernel(op, operandShapes, attrs) {
  const def = getOp(op);
  const types = operandShapes.map((s) => tensor(s));
  const emitted = def.emit({ operands: types, result: def.infer(types, attrs), attrs });
  return kernelFunction(emitted).kernel;
}

/** A wasm kernel with its operands in a fresh memory: run() calls it on batch n. */
function wasmKernel(request, n, x, kernel, bias) {
  const mod = buildSimdModule([request]);
  const layout = mod.layouts[0];
  const floats = n * layout.inputFloats + layout.weightFloats + layout.biasFloats + n * layout.outputFloats + 64;
  const memory = new WebAssembly.Memory({ initial: Math.ceil((floats * 4) / 65536) + 1 });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(mod.bytes), { env: { memory } });
  const f = new Float32Array(memory.buffer);
  const align = (p) => Math.ceil(p / 16) * 16;
  const xp = 16;
  const wp = align(xp + n * layout.inputFloats * 4);
  const bp = align(wp + layout.weightFloats * 4);
  const yp = align(bp + layout.biasFloats * 4);
  f.set(x, xp / 4);
  f.set(packWeights(layout, kernel), wp / 4);
  if (bias) f.set(padBias(layout, bias), bp / 4);
  const fn = instance.exports[layout.name];
  return { bytes: mod.bytes.length, run: () => fn(n, xp, wp, bp, yp), y: () => f.subarray(yp / 4, yp / 4 + n * layout.outputFloats) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Interleaved timings (ms) of several functions, after one warm-up call each. */
function timeAll(fns) {
  fns.forEach((f) => f());
  const samples = fns.map(() => []);
  for (let r = 0; r < reps; r++) {
    fns.forEach((f, i) => {
      const t = performance.now();
      f();
      samples[i].push(performance.now() - t);
    });
  }
  return samples.map((s) => ({ median: median(s), best: Math.min(...s) }));
}

const gflops = (flops, ms) => (flops / ms / 1e6).toFixed(2);

const cases = [
  {
    name: 'matmul 1024x1024x1024',
    n: 1024,
    op: 'dense',
    shapes: [['N', 1024], [1024, 1024], [1024]],
    attrs: {},
    request: { kind: 'dense', inDim: 1024, units: 1024, bias: true },
    flops: 2 * 1024 ** 3,
  },
  {
    name: 'mnist_cnn conv1 28x28x1 -> 26x26x32 3x3, relu (batch 64)',
    n: 64,
    op: 'conv2d',
    shapes: [['N', 28, 28, 1], [3, 3, 1, 32], [32]],
    attrs: { strides: [1, 1], padding: 'valid', dilation_rate: [1, 1], groups: 1, epilogue: { op: 'relu' } },
    request: { kind: 'conv2d', input: [28, 28, 1], kernel: [3, 3], filters: 32, bias: true, epilogue: 'relu' },
    flops: 2 * 64 * 26 * 26 * 32 * 9,
  },
  {
    name: 'mnist_cnn conv2 26x26x32 -> 24x24x64 3x3, relu (batch 64)',
    n: 64,
    op: 'conv2d',
    shapes: [['N', 26, 26, 32], [3, 3, 32, 64], [64]],
    attrs: { strides: [1, 1], padding: 'valid', dilation_rate: [1, 1], groups: 1, epilogue: { op: 'relu' } },
    request: { kind: 'conv2d', input: [26, 26, 32], kernel: [3, 3], filters: 64, bias: true, epilogue: 'relu' },
    flops: 2 * 64 * 24 * 24 * 64 * 288,
  },
  {
    name: 'mnist_cnn dense 9216 -> 64, relu (batch 64)',
    n: 64,
    op: 'dense',
    shapes: [['N', 9216], [9216, 64], [64]],
    attrs: { epilogue: { op: 'relu' } },
    request: { kind: 'dense', inDim: 9216, units: 64, bias: true, epilogue: 'relu' },
    flops: 2 * 64 * 9216 * 64,
  },
  {
    name: 'depthwise 56x56x128 3x3 same, relu (batch 8)',
    n: 8,
    op: 'depthwise_conv2d',
    shapes: [['N', 56, 56, 128], [3, 3, 128, 1], [128]],
    attrs: { strides: [1, 1], padding: 'same', dilation_rate: [1, 1], epilogue: { op: 'relu' } },
    request: { kind: 'depthwise_conv2d', input: [56, 56, 128], kernel: [3, 3], padding: 'same', bias: true, epilogue: 'relu' },
    flops: 2 * 8 * 56 * 56 * 128 * 9,
  },
];

console.log(`GFLOP/s, median (best) of ${reps} runs; Node ${process.version}; SIMD ${WebAssembly.validate(buildSimdModule([cases[0].request]).bytes)}`);
for (const c of cases) {
  if (filters.length > 0 && !filters.some((f) => c.name.includes(f))) continue;
  const [xShape, kShape, bShape] = c.shapes;
  const x = random(c.n * xShape.slice(1).reduce((a, b) => a * b, 1));
  const k = random(kShape.reduce((a, b) => a * b, 1));
  const b = random(bShape[0]);
  const tsFn = tsKernel(c.op, c.shapes, c.attrs);
  const base = unroll === undefined ? c.request : { ...c.request, unroll: Number(unroll) };
  const requests = [base, ...extraTiles.map(([rows, vecs]) => ({ ...base, tile: { rows, vecs } }))];
  const wasm = requests.map((r) => wasmKernel(r, c.n, x, k, b));
  const yTs = new Float32Array(wasm[0].y().length);
  const [tTs, ...tWasm] = timeAll([() => tsFn(c.n, x, k, b, yTs), ...wasm.map((w) => w.run)]);
  // The two agree (float32 accumulation vs float64).
  const y = wasm[0].y();
  let err = 0;
  let scale = 0;
  for (let i = 0; i < y.length; i++) {
    err = Math.max(err, Math.abs(y[i] - yTs[i]));
    scale = Math.max(scale, Math.abs(yTs[i]));
  }
  console.log(`\n${c.name}`);
  console.log(`  TS kernel        ${gflops(c.flops, tTs.median).padStart(7)} (${gflops(c.flops, tTs.best)})`);
  tWasm.forEach((t, i) => {
    const label = i === 0 ? 'wasm SIMD' : `wasm ${requests[i].tile.rows}x${requests[i].tile.vecs}`;
    console.log(`  ${label.padEnd(16)} ${gflops(c.flops, t.median).padStart(7)} (${gflops(c.flops, t.best)})  ${(tTs.median / t.median).toFixed(1)}x  ${wasm[i].bytes} B of wasm`);
  });
  console.log(`  max |wasm - TS| / max |TS| = ${(err / scale).toExponential(1)}`);
}
