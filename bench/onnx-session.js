// The inference handlers both onnxruntime workers share (worker-ort.js: onnxruntime-node;
// worker-ort-web.js: onnxruntime-web): a session on the case's ONNX export, created with the
// worker's options, and one step = session.run on the case's batch.
//
//   inference: (await session.run({ [input]: new ort.Tensor('float32', x, dims) }))[output].data
import { readFileSync } from 'node:fs';
import { batchData } from './common.js';

/**
 * prepare, check, step and release for serve() (worker.js).
 * @param {() => any} ortOf   the loaded onnxruntime module (loaded by the worker's init)
 * @param {string} label      the runtime's name in errors
 * @param {object} options    InferenceSession.create options (execution provider, threads)
 */
export function onnxHandlers(ortOf, label, options) {
  /** @type {import('./common.js').Job | undefined} */
  let job;
  /** @type {any} */
  let session;
  /** @type {() => Promise<Float32Array>} */
  let step = async () => {
    throw new Error('no case prepared');
  };
  return {
    /** @param {import('./common.js').Job} j */
    async prepare(j) {
      job = j;
      const model = j.model;
      if (j.kind !== 'infer' || !model?.onnxPath) throw new Error(`${label} runs inference cases with an ONNX export`);
      const ort = ortOf();
      session = await ort.InferenceSession.create(readFileSync(model.onnxPath), { ...options, executionMode: 'sequential', graphOptimizationLevel: 'all' });
      const { x, xShape } = batchData(j, model);
      const input = session.inputNames[0];
      const output = session.outputNames[0];
      step = async () => {
        const r = await session.run({ [input]: new ort.Tensor('float32', x, xShape) });
        return /** @type {Float32Array} */ (r[output].data);
      };
    },
    async check() {
      if (!job) throw new Error('no case prepared');
      return { outputs: Float32Array.from(await step()) };
    },
    step: () => step(),
    async release() {
      if (session) await session.release();
      session = undefined;
      job = undefined;
    },
  };
}
