// Shared by the orchestrator (bench/run.js) and the workers: seeded data, the
// agreement check and the statistics. Plain ESM, no dependencies.

/**
 * @typedef {{ name: string, shape: number[] }} InputDecl
 *
 * @typedef {object} ModelArtifact   What bench/prepare.js builds for one spec; every path is absolute.
 * @property {string} name           the spec's model name
 * @property {any} spec              the JSON spec, every layer carrying its (automatic) Keras `name`
 * @property {InputDecl} input       the one model input (per-example shape)
 * @property {string} output         the output value's name
 * @property {number[]} outputShape  per-example output shape
 * @property {string} weightsPath    safetensors: every weight of the unoptimized graph, Keras names
 * @property {string} [modulePath]   the generated inference module (.mjs, -O, weights embedded)
 * @property {string} [simdModulePath] the same with the generator's `simd: true` (when the library has it)
 * @property {string} [onnxPath]     modelc's ONNX export of the -O graph
 * @property {string} [trainModulePath] the generated training module (.mjs)
 * @property {string} [simdTrainModulePath] the same with `simd: true` (the plain one when no layer takes a SIMD kernel)
 * @property {string} [kerasPath]    modelc's `.keras` export of the spec with these weights (training cases: the Keras runtime)
 *
 * @typedef {object} Job             One benchmark case as a worker sees it.
 * @property {'infer' | 'train' | 'compile'} kind
 * @property {string} id             e.g. `infer/seed_mlp/b1`
 * @property {number} batch
 * @property {ModelArtifact} [model] the timed model
 * @property {ModelArtifact} [checkModel] training: the model whose first step is compared (dropout removed)
 * @property {string} [specPath]     compile: the spec file
 *
 * @typedef {object} CheckResult
 * @property {Float32Array} [outputs]  inference: the outputs on the case's batch
 * @property {number} [loss]           training: the loss of one step from the initial weights
 * @property {Record<string, Float32Array>} [weights]  training: every model weight after that step
 * @property {number} [first]          compile: the first compile of the spec in the worker (ms)
 */

/** Relative tolerance of the agreement check: max |peer - modelc| / max(1, max |modelc|). */
export const CHECK_RTOL = 1e-3;

/** 32-bit FNV-1a of a string: the seed of a case's data. @param {string} s */
export function hash(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** mulberry32: a small seeded generator of floats in [0, 1). @param {number} seed */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const size = (/** @type {readonly number[]} */ shape) => shape.reduce((a, b) => a * b, 1);

/**
 * The batch a case runs on, the same in every worker: inputs uniform in
 * [-1, 1), and one-hot labels (for training).
 * @param {Job} job
 * @param {ModelArtifact} model
 */
export function batchData(job, model) {
  const next = mulberry32(hash(job.id));
  const x = new Float32Array(job.batch * size(model.input.shape));
  for (let i = 0; i < x.length; i++) x[i] = Math.fround(2 * next() - 1);
  const classes = size(model.outputShape);
  const y = new Float32Array(job.batch * classes);
  for (let i = 0; i < job.batch; i++) y[i * classes + Math.floor(next() * classes)] = 1;
  return { x, y, xShape: [job.batch, ...model.input.shape], yShape: [job.batch, classes] };
}

/**
 * max |got - want| / max(1, max |want|): the tests' relative error (NaN and a
 * size mismatch count as Infinity).
 * @param {ArrayLike<number>} got
 * @param {ArrayLike<number>} want
 */
export function relDiff(got, want) {
  if (!got || got.length !== want.length) return Infinity;
  let scale = 1;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst / scale;
}

/**
 * How far a peer's check result is from modelc's: the outputs (inference), or
 * the loss and every model weight after one step (training).
 * @param {CheckResult} got
 * @param {CheckResult} want
 * @returns {{ rel: number, where: string }}
 */
export function compareCheck(got, want) {
  if (want.outputs) return { rel: relDiff(got.outputs ?? new Float32Array(0), want.outputs), where: 'outputs' };
  let rel = relDiff([got.loss ?? NaN], [want.loss ?? NaN]);
  let where = 'loss';
  for (const [name, w] of Object.entries(want.weights ?? {})) {
    const g = got.weights?.[name];
    const r = g ? relDiff(g, w) : Infinity;
    if (!(r <= rel)) {
      rel = r;
      where = g ? `weight ${name} after the step` : `weight ${name} (missing)`;
    }
  }
  return { rel, where };
}

/**
 * The q-quantile (0..1) of sorted values, linearly interpolated.
 * @param {readonly number[]} sorted
 * @param {number} q
 */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

/**
 * Median, p10 and p90 of per-iteration times (ms).
 * @param {readonly number[]} values
 */
export function summarize(values) {
  const s = [...values].sort((a, b) => a - b);
  return { median: quantile(s, 0.5), p10: quantile(s, 0.1), p90: quantile(s, 0.9), n: s.length };
}

/**
 * A duration for people: µs below 1 ms, ms below 1 s, else s; 3 significant digits.
 * @param {number} ms
 */
export function formatMs(ms) {
  if (!Number.isFinite(ms)) return String(ms);
  const fmt = (/** @type {number} */ v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
  if (ms < 1) return `${fmt(ms * 1000)} µs`;
  if (ms < 1000) return `${fmt(ms)} ms`;
  return `${fmt(ms / 1000)} s`;
}
