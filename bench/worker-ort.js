// The onnxruntime-node runtime (native CPU execution provider, one intra-op and
// one inter-op thread, sequential execution, all graph optimizations) running
// modelc's ONNX export of the -O graph.
//
//   inference: (await session.run({ [input]: new ort.Tensor('float32', x, dims) }))[output].data
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { batchData } from './common.js';
import { serve } from './worker.js';

const require = createRequire(import.meta.url);

/** @type {import('./common.js').Job | undefined} */
let job;
/** @type {any} */
let session;
/** @type {() => Promise<Float32Array>} */
let step = async () => {
  throw new Error('no case prepared');
};

serve({
  async init() {
    return {
      available: true,
      info: { version: require('onnxruntime-node/package.json').version, intraOpNumThreads: 1, interOpNumThreads: 1 },
    };
  },
  async prepare(j) {
    job = j;
    const model = j.model;
    if (j.kind !== 'infer' || !model?.onnxPath) throw new Error('onnxruntime runs inference cases with an ONNX export');
    session = await ort.InferenceSession.create(readFileSync(model.onnxPath), {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
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
});
