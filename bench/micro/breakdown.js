// Time per kernel of a generated module: rewrites the module so that every
// kernel call is timed (performance.now around it), runs predict or
// trainOnBatch, and prints milliseconds per call of each kernel. Unlike the
// sampling profiler, inlining cannot hide a kernel in its caller.
//
//   node bench/micro/breakdown.js mnist_cnn train [batch] [--against DIR]
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { compileExample, fmt, options, randomArray } from './common.js';

const [model = 'mnist_cnn', what = 'train', batchArg] = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
const { against } = options();
const dir = against ?? (await compileExample(model)).dir;
const file = join(dir, `${model}${what === 'train' ? '.train' : ''}.js`);
let js = readFileSync(file, 'utf8');
// Kernels are the top-level functions whose first parameter is the batch size n (or _n).
const kernels = [...js.matchAll(/^function (\w+)\((_?n),/gm)].map((m) => m[1]);
for (const k of kernels) js = js.replace(new RegExp(`^function ${k}\\(`, 'm'), `function ${k}__timed(`);
js += `\nexport const __times = {};\n${kernels.map((k) => `function ${k}(...args) { const t0 = performance.now(); ${k}__timed(...args); __times[${JSON.stringify(k)}] = (__times[${JSON.stringify(k)}] ?? 0) + performance.now() - t0; }`).join('\n')}\n`;
const out = file.replace(/\.js$/, '.timed.mjs');
writeFileSync(out, js);
const mod = await import(pathToFileURL(out).href);
const inSize = mod.inputs[0].shape.reduce((a, b) => a * b, 1);
const outSize = mod.outputs[0].shape.reduce((a, b) => a * b, 1);
const batch = Number(batchArg ?? (what === 'train' ? 32 : 64));
const x = randomArray(batch * inSize, 3);
let run;
if (what === 'train') {
  const trainer = new mod.Trainer({ seed: 1, learningRate: 1e-4 });
  const y = new Float32Array(batch * outSize);
  for (let i = 0; i < batch; i++) y[i * outSize + (i % outSize)] = 1;
  run = () => trainer.trainOnBatch(x, y, batch);
} else {
  const m = new mod.Model();
  run = () => m.predict(x, batch);
}
for (let i = 0; i < 3; i++) run();
for (const k of Object.keys(mod.__times)) delete mod.__times[k];
const t0 = performance.now();
let calls = 0;
while (performance.now() - t0 < 3000 || calls < 3) {
  run();
  calls++;
}
const total = (performance.now() - t0) / calls;
console.log(`${model} ${what} batch ${batch}: ${fmt(total / 1000)} per call (${calls} calls)`);
const rows = Object.entries(mod.__times).map(([k, t]) => [k, t / calls]).sort((a, b) => b[1] - a[1]);
const inKernels = rows.reduce((s, [, t]) => s + t, 0);
for (const [k, t] of rows.slice(0, 25)) console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${fmt(t / 1000).padStart(10)}  ${k}`);
console.log(`outside kernels: ${fmt((total - inKernels) / 1000)}`);
