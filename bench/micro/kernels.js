// Kernel-level timings: single codegen templates (OpDef.emit from dist/) on
// the shapes of the examples, medians, with GFLOP/s where it means something.
//
//   npm run build && node bench/micro/kernels.js [filter...] [--save DIR] [--against DIR]
//
// `--save DIR` writes each case's kernel source to DIR/kernels.json;
// `--against DIR` times those saved kernels side by side with today's
// (interleaved samples), the before/after of a change to a template.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { emitKernel, fmt, loadKernel, options, randomArray, selected, timeAll } from './common.js';

const win = (padding = 'valid', strides = [1, 1], dilation_rate = [1, 1]) => ({ strides, padding, dilation_rate });
const conv = (groups = 1, w = win()) => ({ ...w, groups });

/**
 * Each case: op, operand types (N first for batched ones), attrs, the batch
 * size, and the multiply-adds per call (for GFLOP/s).
 */
const cases = [
  // mnist_cnn
  ['conv1 28x28x1 k3 f32', 'conv2d', [['N', 28, 28, 1], [3, 3, 1, 32], [32]], conv(), 32, 32 * 26 * 26 * 9 * 32],
  ['conv2 26x26x32 k3 f64', 'conv2d', [['N', 26, 26, 32], [3, 3, 32, 64], [64]], conv(), 32, 32 * 24 * 24 * 288 * 64],
  ['conv2 grad_input', 'conv2d_grad_input', [['N', 24, 24, 64], [3, 3, 32, 64]], { ...conv(), input_shape: [26, 26, 32] }, 32, 32 * 24 * 24 * 288 * 64],
  ['conv2 grad_kernel', 'conv2d_grad_kernel', [['N', 26, 26, 32], ['N', 24, 24, 64]], { ...conv(), kernel_size: [3, 3] }, 32, 32 * 24 * 24 * 288 * 64],
  ['conv1 grad_kernel', 'conv2d_grad_kernel', [['N', 28, 28, 1], ['N', 26, 26, 32]], { ...conv(), kernel_size: [3, 3] }, 32, 32 * 26 * 26 * 9 * 32],
  ['max_pool 24x24x64', 'max_pool2d', [['N', 24, 24, 64]], { pool_size: [2, 2], strides: [2, 2], padding: 'valid' }, 32, 0],
  ['max_pool_grad 24x24x64', 'max_pool2d_grad', [['N', 12, 12, 64], ['N', 24, 24, 64]], { pool_size: [2, 2], strides: [2, 2], padding: 'valid', input_shape: [24, 24, 64] }, 32, 0],
  ['relu 24x24x64', 'relu', [['N', 24, 24, 64]], {}, 32, 0],
  ['batchnorm_train 24x24x64', 'batchnorm_train', [['N', 24, 24, 64], [64], [64]], { axis: 3, epsilon: 0.001, center: true, scale: true, renorm: false, renorm_clipping: { rmax: null, rmin: 0, dmax: null } }, 32, 0],
  ['batchnorm_train_grad_input 24x24x64', 'batchnorm_train_grad_input', [['N', 24, 24, 64], ['N', 24, 24, 64], [64]], { axis: 3, epsilon: 0.001, center: true, scale: true, renorm: false, renorm_clipping: { rmax: null, rmin: 0, dmax: null } }, 32, 0],
  ['channel_sum 24x24x64', 'channel_sum', [['N', 24, 24, 64]], { axis: 3 }, 32, 0],
  ['dense 9216x64 b32', 'dense', [['N', 9216], [9216, 64], [64]], { epilogue: undefined }, 32, 32 * 9216 * 64],
  ['dense 9216x64 b1', 'dense', [['N', 9216], [9216, 64], [64]], {}, 1, 9216 * 64],
  ['dense_grad_input 9216x64', 'dense_grad_input', [['N', 64], [9216, 64]], {}, 32, 32 * 9216 * 64],
  ['dense_grad_kernel 9216x64', 'dense_grad_kernel', [['N', 9216], ['N', 64]], {}, 32, 32 * 9216 * 64],
  ['dense 1024x1024 b64', 'dense', [['N', 1024], [1024, 1024], [1024]], {}, 64, 64 * 1024 * 1024],
  ['dense 4096x512 b64', 'dense', [['N', 4096], [4096, 512], [512]], {}, 64, 64 * 4096 * 512],
  // seed_mlp
  ['dense 16x64 b1', 'dense', [['N', 16], [16, 64], [64]], {}, 1, 16 * 64],
  ['dense 64x64 b16', 'dense', [['N', 64], [64, 64], [64]], {}, 16, 16 * 64 * 64],
  ['dense 64x64 tanh b16', 'dense', [['N', 64], [64, 64], [64]], { epilogue: { op: 'tanh' } }, 16, 16 * 64 * 64],
  ['dense 16x64 tanh b1', 'dense', [['N', 16], [16, 64], [64]], { epilogue: { op: 'tanh' } }, 1, 16 * 64],
  ['tanh 64 b16', 'tanh', [['N', 64]], {}, 16, 0],
  ['sigmoid 64 b16', 'sigmoid', [['N', 64]], {}, 16, 0],
  // other conv geometries (the cost rule's cases)
  ['res conv 32x32x16 k3 same', 'conv2d', [['N', 32, 32, 16], [3, 3, 16, 16], [16]], conv(1, win('same')), 8, 8 * 32 * 32 * 144 * 16],
  ['res grad_input same', 'conv2d_grad_input', [['N', 32, 32, 16], [3, 3, 16, 16]], { ...conv(1, win('same')), input_shape: [32, 32, 16] }, 8, 8 * 32 * 32 * 144 * 16],
  ['res grad_kernel same', 'conv2d_grad_kernel', [['N', 32, 32, 16], ['N', 32, 32, 16]], { ...conv(1, win('same')), kernel_size: [3, 3] }, 8, 8 * 32 * 32 * 144 * 16],
  ['conv 16x16x8 k3 s2 same', 'conv2d', [['N', 16, 16, 8], [3, 3, 8, 16], [16]], conv(1, win('same', [2, 2])), 16, 16 * 8 * 8 * 72 * 16],
  ['conv 1x1 16x16x16 f16', 'conv2d', [['N', 16, 16, 16], [1, 1, 16, 16], [16]], conv(), 16, 16 * 256 * 16 * 16],
  ['conv 1x1 16x16x4 f4', 'conv2d', [['N', 16, 16, 4], [1, 1, 4, 4], [4]], conv(), 16, 16 * 256 * 4 * 4],
  ['conv 12x12x8 k3 f2', 'conv2d', [['N', 12, 12, 8], [3, 3, 8, 2], [2]], conv(), 16, 16 * 100 * 72 * 2],
  ['conv g4 16x16x16 k3 f32', 'conv2d', [['N', 16, 16, 16], [3, 3, 4, 32], [32]], conv(4, win('same')), 16, 16 * 256 * 36 * 32],
  ['conv dil2 20x20x8 k3 f16', 'conv2d', [['N', 20, 20, 8], [3, 3, 8, 16], [16]], conv(1, win('valid', [1, 1], [2, 2])), 16, 16 * 256 * 72 * 16],
];

const { save, against } = options();
const saved = against && existsSync(join(against, 'kernels.json')) ? JSON.parse(readFileSync(join(against, 'kernels.json'), 'utf8')) : {};
const toSave = {};

for (const [name, op, types, attrs, batch, macs] of cases) {
  if (!selected(name)) continue;
  const now = await emitKernel(op, types, attrs);
  toSave[name] = now.js;
  const kernels = [now.kernel, ...(saved[name] ? [loadKernel(saved[name])] : [])];
  const operands = types.map((t, i) => randomArray(t.map((d) => (d === 'N' ? batch : d)).reduce((a, b) => a * b, 1), i + 1));
  const size = now.result.shape.map((d) => (d === 'N' ? batch : d)).reduce((a, b) => a * b, 1);
  const outs = kernels.map(() => new Float32Array(size));
  kernels.forEach((k, j) => k(batch, ...operands, outs[j]));
  if (kernels.length > 1) {
    let worst = 0;
    for (let i = 0; i < size; i++) worst = Math.max(worst, Math.abs(outs[0][i] - outs[1][i]) / Math.max(1, Math.abs(outs[1][i])));
    if (worst > 1e-4) console.log(`  ${name}: results differ from the baseline by ${worst}`);
  }
  const heavy = macs > 2e7 || (macs === 0 && batch >= 32);
  const ts = timeAll(kernels.map((k, j) => () => k(batch, ...operands, outs[j])), heavy ? { reps: 7, minTime: 0.2, warmup: 2 } : {});
  const gflops = (t) => (macs > 0 ? `${((2 * macs) / t / 1e9).toFixed(2)} GFLOP/s` : '');
  const paren = (t) => (macs > 0 ? ` (${gflops(t)})` : '');
  const vs = ts.length > 1 ? `  before ${fmt(ts[1]).padStart(10)}${paren(ts[1])}  speedup ${(ts[1] / ts[0]).toFixed(2)}x` : '';
  console.log(`${name.padEnd(36)} ${fmt(ts[0]).padStart(10)}${paren(ts[0])}${vs}`);
}

if (save) {
  mkdirSync(save, { recursive: true });
  const file = join(save, 'kernels.json');
  const old = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  writeFileSync(file, JSON.stringify({ ...old, ...toSave }));
}
