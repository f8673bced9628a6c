// The TF.js runtimes: `node bench/worker-tfjs.js cpu` (tfjs-backend-cpu, the
// pure-JS kernels) or `... wasm` (tfjs-backend-wasm, one thread, SIMD when the
// engine has it). The model is built from the spec with tf.layers
// (bench/tfjs-model.js) and given modelc's weights.
//
//   inference: model.predict(tf.tensor(x), { batchSize: batch }).dataSync()
//   training:  await model.trainOnBatch(tf.tensor(x), tf.tensor(y))
// Both include making the input tensors from Float32Arrays and reading the
// result back, as modelc's predict takes and returns Float32Arrays.
//
// The wasm backend comes from `@tensorflow/tfjs-backend-wasm` (same version as
// @tensorflow/tfjs), or from the file that MODELC_BENCH_TFJS_WASM names (its
// CommonJS entry, dist/tf-backend-wasm.node.js, of an install elsewhere).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { readSafetensors } from '../dist/formats/safetensors.js';
import { batchData } from './common.js';
import { buildModel, getWeights, setWeights, trainingConfig } from './tfjs-model.js';
import { serve } from './worker.js';

const backend = process.argv[2] === 'wasm' ? 'wasm' : 'cpu';
/** A variable, so that type checkers do not need the optional package. */
const wasmPackage = '@tensorflow/tfjs-backend-wasm';
const require = createRequire(import.meta.url);

/** @type {import('./common.js').Job | undefined} */
let job;
/** @type {any} */
let model;
/** @type {() => unknown} */
let step = () => {
  throw new Error('no case prepared');
};
/** @type {ReturnType<typeof batchData>} */
let data;
/** @type {Map<string, { shape: number[], data: Float32Array }>} */
let weights = new Map();

/** @param {any} artifact */
function readWeights(artifact) {
  return readSafetensors(readFileSync(artifact.weightsPath), artifact.weightsPath).tensors;
}

/**
 * A fresh model of `artifact` with modelc's weights, compiled for training when asked.
 * @param {any} artifact
 * @param {boolean} training
 */
function makeModel(artifact, training) {
  const m = buildModel(tf, artifact.spec);
  setWeights(tf, m, artifact === job?.model ? weights : readWeights(artifact));
  if (training) m.compile(trainingConfig(tf, artifact.spec.training));
  return m;
}

/** One training step on the case's batch; the loss. @param {any} m */
async function trainStep(m) {
  const xt = tf.tensor(data.x, data.xShape);
  const yt = tf.tensor(data.y, data.yShape);
  try {
    const r = await m.trainOnBatch(xt, yt);
    return Array.isArray(r) ? r[0] : r;
  } finally {
    tf.dispose([xt, yt]);
  }
}

serve({
  async init() {
    tf.enableProdMode(); // no debug checks, no "install tfjs-node" banner
    if (backend === 'wasm') {
      const override = process.env.MODELC_BENCH_TFJS_WASM;
      let wasm;
      try {
        wasm = override
          ? await import(isAbsolute(override) ? pathToFileURL(override).href : override)
          : await import(wasmPackage);
      } catch (err) {
        const e = /** @type {any} */ (err);
        const missing = e && (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND');
        return {
          available: false,
          reason: missing ? 'not installed' : `cannot load @tensorflow/tfjs-backend-wasm: ${e && e.message}`,
          ...(missing ? { hint: `npm i -D @tensorflow/tfjs-backend-wasm@${tf.version.tfjs}` } : {}),
        };
      }
      wasm.setThreadsCount(1);
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    }
    if (!(await tf.setBackend(backend))) return { available: false, reason: `tf.setBackend('${backend}') failed` };
    await tf.ready();
    /** @type {Record<string, unknown>} */
    const info = { tfjs: tf.version.tfjs, backend: tf.getBackend() };
    if (backend === 'wasm') {
      info.simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      info.threads = 1;
      try {
        const pkg = process.env.MODELC_BENCH_TFJS_WASM ? undefined : require('@tensorflow/tfjs-backend-wasm/package.json');
        info.wasmVersion = pkg ? pkg.version : 'from MODELC_BENCH_TFJS_WASM';
      } catch {
        info.wasmVersion = 'unknown';
      }
    }
    return { available: true, info };
  },
  async prepare(j) {
    job = j;
    if (!j.model) throw new Error('no model');
    data = batchData(j, j.model);
    weights = readWeights(j.model);
    model = makeModel(j.model, j.kind === 'train');
    if (j.kind === 'infer') {
      const batchSize = j.batch;
      step = () => {
        const xt = tf.tensor(data.x, data.xShape);
        const yt = /** @type {any} */ (model.predict(xt, { batchSize }));
        const out = yt.dataSync();
        tf.dispose([xt, yt]);
        return out;
      };
    } else if (j.kind === 'train') {
      step = () => trainStep(model);
    } else {
      throw new Error(`the TF.js worker cannot run a '${j.kind}' case`);
    }
  },
  async check() {
    if (!job) throw new Error('no case prepared');
    if (job.kind === 'infer') return { outputs: Float32Array.from(/** @type {Float32Array} */ (step())) };
    // One step of the dropout-free twin from the initial weights.
    const twin = makeModel(job.checkModel, true);
    try {
      const loss = await trainStep(twin);
      return { loss, weights: getWeights(twin) };
    } finally {
      twin.dispose();
    }
  },
  step: () => step(),
  async single() {
    if (!job || job.kind !== 'train') throw new Error('single steps are for training cases');
    if (job.checkModel?.trainModulePath !== job.model?.trainModulePath) throw new Error('a single checked step needs a model without dropout');
    const t0 = performance.now();
    const loss = await trainStep(model);
    const ms = performance.now() - t0;
    return { ms, check: { loss, weights: getWeights(model) } };
  },
  async release() {
    if (model) model.dispose();
    model = undefined;
    job = undefined;
    weights = new Map();
    step = () => {
      throw new Error('no case prepared');
    };
  },
});
