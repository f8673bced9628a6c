// The Keras-on-TensorFlow-CPU runtime (training cases): `node bench/worker-keras.js`
// drives bench/keras_worker.py, one JSON request per line, in a Python that has
// Keras 3 and TensorFlow (MODELC_BENCH_PYTHON, default python3). Without one the
// column says why and the run goes on; CI never needs it.
//
// The model is modelc's own `.keras` export of the spec with the bench's weights
// (bench/prepare.js), compiled in Keras with the spec's optimizer and loss;
// TensorFlow runs with one intra-op and one inter-op thread. The timing loop runs
// in Python (`train_on_batch` back to back, numpy batch prepared once), so no
// inter-process time is counted; the check is one step of the dropout-free model
// from the initial weights: its loss and every model weight after it.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { batchData } from './common.js';
import { serve } from './worker.js';

const python = process.env['MODELC_BENCH_PYTHON'] || 'python3';
const script = fileURLToPath(new URL('./keras_worker.py', import.meta.url));

/** @type {import('node:child_process').ChildProcessWithoutNullStreams | undefined} */
let child;
/** @type {((line: string) => void)[]} */
const waiting = [];

/** One request to the Python worker and its reply. @param {object} req */
function call(req) {
  if (!child) throw new Error('the Keras worker is not running');
  return new Promise((resolve, reject) => {
    waiting.push((line) => {
      const reply = JSON.parse(line);
      if (reply.ok) resolve(reply.result);
      else reject(new Error(reply.error));
    });
    child.stdin.write(JSON.stringify(req) + '\n');
  });
}

serve({
  async init() {
    const probe = spawnSync(python, ['-c', 'import keras, tensorflow'], { encoding: 'utf8', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' } });
    if (probe.error || probe.status !== 0) {
      return { available: false, reason: `no Python with Keras and TensorFlow (${python} -c "import keras, tensorflow" failed)`, hint: 'MODELC_BENCH_PYTHON=/path/to/python' };
    }
    child = spawn(python, [script, ...process.argv.slice(2)], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' } });
    createInterface({ input: child.stdout }).on('line', (line) => waiting.shift()?.(line));
    child.stderr.resume();
    child.on('exit', (code) => {
      for (const w of waiting.splice(0)) w(JSON.stringify({ ok: false, error: `the Keras worker exited with code ${code}` }));
      child = undefined;
    });
    return /** @type {any} */ (await call({ cmd: 'init' }));
  },
  async prepare(job) {
    if (job.kind !== 'train' || !job.model?.kerasPath || !job.checkModel?.kerasPath) throw new Error('the Keras runtime times training steps of a .keras export');
    const data = batchData(job, job.model);
    await call({
      cmd: 'prepare',
      kerasPath: job.model.kerasPath,
      checkKerasPath: job.checkModel.kerasPath,
      x: Array.from(data.x),
      y: Array.from(data.y),
      xShape: data.xShape,
      yShape: data.yShape,
      training: job.model.spec.training,
    });
  },
  async check() {
    const r = /** @type {{ loss: number, weights: Record<string, number[]> }} */ (await call({ cmd: 'check' }));
    return { loss: r.loss, weights: Object.fromEntries(Object.entries(r.weights).map(([k, v]) => [k, Float32Array.from(v)])) };
  },
  step() {
    throw new Error('the Keras runtime times whole samples in Python (run)');
  },
  async run(iters) {
    return /** @type {{ ms: number }} */ (await call({ cmd: 'run', iters })).ms;
  },
  async release() {},
});
