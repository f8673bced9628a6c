// Where the time of a generated module goes: runs predict or trainOnBatch of
// an example under the V8 sampling profiler and prints self time per
// function (the kernels are top-level functions named after op and shape).
// V8 may inline a kernel into its caller and bill it there;
// bench/micro/breakdown.js times every kernel call instead.
//
//   node bench/micro/profile.js mnist_cnn train [--against DIR]
//   node bench/micro/profile.js mnist_cnn predict 64
import { Session } from 'node:inspector/promises';
import { compileExample, importExample, options, randomArray } from './common.js';

const [model = 'mnist_cnn', what = 'train', batchArg] = process.argv.slice(2).filter((a, i, all) => !a.startsWith('--') && !all[i - 1]?.startsWith('--'));
const { against } = options();
const mod = against ? await importExample(model, against) : await compileExample(model);
const inSize = mod.inference.inputs[0].shape.reduce((a, b) => a * b, 1);
const outSize = mod.inference.outputs[0].shape.reduce((a, b) => a * b, 1);
const batch = Number(batchArg ?? (what === 'train' ? 32 : 64));
const x = randomArray(batch * inSize, 3);
let run;
if (what === 'train') {
  const trainer = new mod.training.Trainer({ seed: 1, learningRate: 1e-4 });
  const y = new Float32Array(batch * outSize);
  for (let i = 0; i < batch; i++) y[i * outSize + (i % outSize)] = 1;
  run = () => trainer.trainOnBatch(x, y, batch);
} else {
  const m = new mod.inference.Model();
  run = () => m.predict(x, batch);
}
for (let i = 0; i < 2; i++) run();
const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.setSamplingInterval', { interval: 200 });
await session.post('Profiler.start');
const t0 = performance.now();
let calls = 0;
while (performance.now() - t0 < 4000) {
  run();
  calls++;
}
const { profile } = await session.post('Profiler.stop');
const self = new Map();
const dt = new Map();
profile.samples.forEach((id, i) => dt.set(id, (dt.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
for (const node of profile.nodes) {
  const name = node.callFrame.functionName || '(anonymous)';
  self.set(name, (self.get(name) ?? 0) + (dt.get(node.id) ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);
console.log(`${model} ${what} batch ${batch}: ${calls} calls, ${(performance.now() - t0) / calls | 0} ms per call`);
for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
  console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000 / calls).toFixed(2).padStart(8)} ms  ${name}`);
}
