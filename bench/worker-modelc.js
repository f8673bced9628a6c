// The modelc runtime: the generated modules themselves, imported as plain ES
// modules (no library code in this process). `node bench/worker-modelc.js simd`
// runs the modules generated with the `simd: true` option instead, and
// `node bench/worker-modelc.js simd 2` their Trainers on 2 threads (startThreads).
//
//   inference: new Model(); model.predict(x, batch)
//   training:  new Trainer(); trainer.trainOnBatch(x, y, batch)
import { pathToFileURL } from 'node:url';
import { batchData } from './common.js';
import { serve } from './worker.js';

const simd = process.argv[2] === 'simd';
const threads = Number(process.argv[3] ?? '1');

/**
 * Imports a generated module, waiting for an asynchronous start if it has one
 * (what a module with WebAssembly kernels may offer to compile them off the
 * critical path): an exported `ready` or `init` (a promise or a function
 * returning one), or a static `Model.ready()`.
 * @param {string} path
 */
async function load(path) {
  const mod = await import(pathToFileURL(path).href);
  for (const start of [mod.ready, mod.init, mod.Model?.ready]) {
    if (typeof start === 'function') await start.call(start === mod.Model?.ready ? mod.Model : undefined);
    else if (start && typeof start.then === 'function') await start;
  }
  return mod;
}

/** @param {any} Model */
async function newModel(Model) {
  return typeof Model.create === 'function' ? await Model.create() : new Model();
}

/** @type {import('./common.js').Job | undefined} */
let job;
/** @type {() => unknown} */
let step = () => {
  throw new Error('no case prepared');
};
/** @type {{ x: Float32Array, y: Float32Array }} */
let data = { x: new Float32Array(0), y: new Float32Array(0) };
/** @type {any} */
let checkModule;
/** Stops the prepared Trainer's threads. */
let stop = () => {};

serve({
  async init() {
    return { available: true, info: { variant: simd ? 'simd' : 'ts', ...(threads > 1 ? { threads } : {}) } };
  },
  async prepare(j) {
    job = j;
    const model = j.model;
    if (!model) throw new Error('no model');
    data = batchData(j, model);
    const { x, y } = data;
    const batch = j.batch;
    if (j.kind === 'infer') {
      const path = simd ? model.simdModulePath : model.modulePath;
      if (!path) throw new Error(simd ? 'no simd module' : 'no inference module');
      const m = await newModel((await load(path)).Model);
      step = () => m.predict(x, batch);
    } else if (j.kind === 'train') {
      const trainPath = simd ? model.simdTrainModulePath : model.trainModulePath;
      const checkPath = simd ? j.checkModel?.simdTrainModulePath : j.checkModel?.trainModulePath;
      if (!trainPath || !checkPath) throw new Error(simd ? 'no simd training module' : 'no training module');
      checkModule = await load(checkPath);
      const { Trainer } = await load(trainPath);
      const trainer = new Trainer({ seed: 1 });
      stop = () => trainer.stopThreads?.();
      if (threads > 1) {
        const got = await trainer.startThreads(threads);
        if (got !== threads) throw new Error(`${threads} threads asked, ${got} run: ${trainer.threadsNote}`);
      }
      step = () => trainer.trainOnBatch(x, y, batch);
    } else {
      throw new Error(`modelc worker cannot run a '${j.kind}' case`);
    }
  },
  async check() {
    if (!job) throw new Error('no case prepared');
    if (job.kind === 'infer') return { outputs: /** @type {Float32Array} */ (step()) };
    // One step of the dropout-free twin from the initial weights, on the case's batch.
    const trainer = new checkModule.Trainer({ seed: 1 });
    const loss = trainer.trainOnBatch(data.x, data.y, job.batch);
    return { loss, weights: trainer.getWeights() };
  },
  step: () => step(),
  async release() {
    stop();
    stop = () => {};
    job = undefined;
    checkModule = undefined;
    step = () => {
      throw new Error('no case prepared');
    };
  },
});
