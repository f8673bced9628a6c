// Every side of the conv cost rule (src/ops/conv/path.ts `convPlan`):
// each shape's conv2d forward, input gradient and kernel gradient through
// im2col + GEMM and through the direct loops (and the forward through
// Winograd F(2x2, 3x3) where it applies), timed side by side (medians,
// interleaved), with the path the rule picks.
//
//   npm run build && node bench/micro/conv-paths.js [filter...]
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fmt, kernelFunction, randomArray, root, selected, timeAll } from './common.js';

const load = (p) => import(pathToFileURL(join(root, 'dist', p)).href);
const { tensor } = await load('ir/types.js');
const { forwardGeometry } = await load('ops/conv/window.js');
const { conv2dKernel, convGradInputKernel, convGradKernelKernel, forwardPlan, gradInputPlan, gradKernelPlan } = await load('ops/conv/path.js');
const { winogradApplies } = await load('ops/conv/winograd.js');
const { getOp } = await load('ops/registry.js');

/** A KernelCode as a callable kernel(n, ...operands, y). */
const compile = (emitted) => kernelFunction(emitted).kernel;

// [name, batch, input [h, w, c], kernel [kh, kw, cg, f], strides, padding, dilation, groups]
const shapes = [
  ['mnist conv1 28x28x1 k3 f32', 32, [28, 28, 1], [3, 3, 1, 32], [1, 1], 'valid', [1, 1], 1],
  ['mnist conv2 26x26x32 k3 f64', 8, [26, 26, 32], [3, 3, 32, 64], [1, 1], 'valid', [1, 1], 1],
  ['res 32x32x16 k3 same', 8, [32, 32, 16], [3, 3, 16, 16], [1, 1], 'same', [1, 1], 1],
  ['14x14x64 k3 f64 same', 8, [14, 14, 64], [3, 3, 64, 64], [1, 1], 'same', [1, 1], 1],
  ['16x16x8 k3 f8 same', 16, [16, 16, 8], [3, 3, 8, 8], [1, 1], 'same', [1, 1], 1],
  ['32x32x3 k3 f16 same', 8, [32, 32, 3], [3, 3, 3, 16], [1, 1], 'same', [1, 1], 1],
  ['15x15x16 k3 f16 valid (odd tiles)', 16, [15, 15, 16], [3, 3, 16, 16], [1, 1], 'valid', [1, 1], 1],
  ['16x16x4 k3 f16 same', 16, [16, 16, 4], [3, 3, 4, 16], [1, 1], 'same', [1, 1], 1],
  ['16x16x16 k3 f4 same', 16, [16, 16, 16], [3, 3, 16, 4], [1, 1], 'same', [1, 1], 1],
  ['28x28x2 k3 f32 (2 channels)', 32, [28, 28, 2], [3, 3, 2, 32], [1, 1], 'valid', [1, 1], 1],
  ['5x5x32 k3 f32 (3x3 output)', 64, [5, 5, 32], [3, 3, 32, 32], [1, 1], 'valid', [1, 1], 1],
  ['3x3x32 k3 f32 (1x1 output)', 64, [3, 3, 32], [3, 3, 32, 32], [1, 1], 'valid', [1, 1], 1],
  ['1x1 16x16x16 f16', 16, [16, 16, 16], [1, 1, 16, 16], [1, 1], 'valid', [1, 1], 1],
  ['1x1 16x16x4 f4 (depth 4)', 16, [16, 16, 4], [1, 1, 4, 4], [1, 1], 'valid', [1, 1], 1],
  ['1x1 16x16x8 f8 (depth 8)', 16, [16, 16, 8], [1, 1, 8, 8], [1, 1], 'valid', [1, 1], 1],
  ['12x12x8 k3 f1 (1 column)', 16, [12, 12, 8], [3, 3, 8, 1], [1, 1], 'valid', [1, 1], 1],
  ['12x12x8 k3 f3 (3 columns)', 16, [12, 12, 8], [3, 3, 8, 3], [1, 1], 'valid', [1, 1], 1],
  ['12x12x8 k3 f6 (6 columns)', 16, [12, 12, 8], [3, 3, 8, 6], [1, 1], 'valid', [1, 1], 1],
  ['12x12x8 k3 f2 (2 columns)', 16, [12, 12, 8], [3, 3, 8, 2], [1, 1], 'valid', [1, 1], 1],
  ['12x12x8 k3 f4 (4 columns)', 16, [12, 12, 8], [3, 3, 8, 4], [1, 1], 'valid', [1, 1], 1],
  ['16x16x8 k3 f16 s2 same', 16, [16, 16, 8], [3, 3, 8, 16], [2, 2], 'same', [1, 1], 1],
  ['20x20x8 k3 f16 dilation 2', 16, [20, 20, 8], [3, 3, 8, 16], [1, 1], 'valid', [2, 2], 1],
  ['16x16x16 k3 f32 groups 4', 16, [16, 16, 16], [3, 3, 4, 32], [1, 1], 'same', [1, 1], 4],
  ['16x16x32 k3 groups 16 (2 per group)', 16, [16, 16, 32], [3, 3, 2, 32], [1, 1], 'same', [1, 1], 16],
];

for (const [name, batch, input, kernel, strides, padding, dilation, groups] of shapes) {
  if (!selected(name)) continue;
  const a = { strides, padding, dilation_rate: dilation, groups };
  const xt = tensor(['N', ...input]);
  const kt = tensor(kernel);
  const result = getOp('conv2d').infer([xt, kt], a);
  const out = result.shape.slice(1);
  const geometry = forwardGeometry(xt, kt, a);
  const s = { input, output: out, kernel, groups, window: geometry };
  const x = randomArray(batch * input.reduce((p, d) => p * d, 1), 1);
  const k = randomArray(kernel.reduce((p, d) => p * d, 1), 2);
  const dy = randomArray(batch * out.reduce((p, d) => p * d, 1), 3);
  const sizes = { forward: batch * out.reduce((p, d) => p * d, 1), grad_input: x.length, grad_kernel: k.length };
  const kinds = [
    ['forward', (path) => conv2dKernel(xt, kt, false, result, groups, geometry, undefined, path), [x, k], forwardPlan(s).path],
    ['grad_input', (path) => convGradInputKernel('conv2d_grad_input', s, path), [dy, k], gradInputPlan(s).path],
    ['grad_kernel', (path) => convGradKernelKernel('conv2d_grad_kernel', s, path), [x, dy], gradKernelPlan(s).path],
  ];
  for (const [kind, make, operands, rule] of kinds) {
    const paths = kind === 'grad_input' && strides.some((v) => v !== 1) ? ['direct'] : ['im2col-gemm', 'direct'];
    if (kind === 'forward' && winogradApplies(s)) paths.push('winograd');
    const fns = paths.map((p) => {
      const f = compile(make(p));
      const y = new Float32Array(sizes[kind]);
      return () => f(batch, ...operands, y);
    });
    const t = timeAll(fns, { reps: 7, minTime: 0.1 });
    const cells = paths.map((p, i) => `${p} ${fmt(t[i]).padStart(10)}`).join('  ');
    const ratio = paths.slice(1).map((p, i) => `  ${p}/gemm ${(t[i + 1] / t[0]).toFixed(2)}`).join('');
    console.log(`${`${name} ${kind}`.padEnd(46)} ${cells}${ratio}  rule: ${rule}`);
  }
}
