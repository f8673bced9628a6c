#!/usr/bin/env node
// npm run bench -- [--quick] [--only <text>...] [--budget <seconds>] [--write | --no-write] [--list]
// (or node bench/run.js ...; needs dist/, so `npm run build` first)
//
// modelc's generated modules side by side with TF.js (cpu, wasm),
// onnxruntime-node and onnxruntime-web, and the compiler's own speed, in one run:
//
//   1. bench/prepare.js builds every artifact from the specs with the library
//      (dist/): the same sampled weights for the generated inference and
//      training modules, the ONNX export and the TF.js models;
//   2. one child process per runtime (bench/worker-*.js; no shared heap or
//      JIT), each case loaded in all of them;
//   3. before any timing, every runtime's outputs (or its loss and weights
//      after one training step) must agree with modelc's within 1e-3 relative,
//      else that runtime's cell says so and is not timed;
//   4. warm-up, then rounds that alternate between runtimes (the starting one
//      rotates), each round one sample per runtime of enough iterations to
//      last about the same time, within a per-case time budget that adapts to
//      the time left; medians and p10-p90 per iteration;
//   5. a markdown table and the issue's goals, printed, and written to
//      docs/benchmarks.md (atomically) by a full run.
//
// Options:
//   --quick           a ~1 minute smoke run (small budgets, the slow TF.js conv training step skipped)
//   --only <text>     only the cases whose id contains <text> (ids: infer/seed_mlp/b1, train/mnist_cnn/b32,
//                     compile/deep_mlp_200, ...); repeatable; `--only cli`: the cold CLI start-up timings
//                     (every full run has them)
//   --budget <s>      total time to aim for (default 260, --quick 55; with --only, a share of it)
//   --write           write docs/benchmarks.md even for a --quick or --only run
//   --no-write        do not write it after a full run
//   --list            list the cases and exit
//
// tfjs-wasm needs @tensorflow/tfjs-backend-wasm (the version of @tensorflow/tfjs); without it that
// column says "not installed". MODELC_BENCH_TFJS_WASM=<path of its dist/tf-backend-wasm.node.js> uses
// an install elsewhere instead.
import { fork, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, tmpdir, totalmem, type, release, arch, availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CHECK_RTOL, compareCheck, formatMs, summarize } from './common.js';
import { deepMlpSource, prepareModel } from './prepare.js';
import { renderCliSection, renderReport } from './report.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const here = fileURLToPath(new URL('./', import.meta.url));
const started = performance.now();

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
    budget: { type: 'string' },
    write: { type: 'boolean' },
    list: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  allowNegative: true,
});
if (args.help) {
  const text = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n');
  console.log(text.slice(1, text.findIndex((l) => l.startsWith('import'))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
  process.exit(0);
}
const quick = args.quick ?? false;
const log = (/** @type {string} */ line) => process.stderr.write(line + '\n');

/**
 * Cold CLI start-up: each command in a fresh \`node bin/modelc.js\` process, as a build pipeline
 * runs it; one untimed run first (file cache), then the median of 5 wall times.
 * @returns {{ command: string, medianMs: number, minMs: number, runs: number, error?: string }[]}
 */
function coldCli() {
  const out = mkdtempSync(join(tmpdir(), 'modelc-bench-cli-'));
  const bin = join(root, 'bin/modelc.js');
  const ex = (/** @type {string} */ f) => join(root, 'examples', f);
  const commands = [
    ['modelc --help', ['--help']],
    ['modelc check examples/seed_mlp.nn', ['check', ex('seed_mlp.nn')]],
    ['modelc ir examples/seed_mlp.nn', ['ir', ex('seed_mlp.nn')]],
    ['modelc compile examples/seed_mlp.nn -o out', ['compile', ex('seed_mlp.nn'), '-o', join(out, 'one')]],
    ['modelc compile seed_mlp.nn mnist_cnn.nn res_block.nn -o out (3 specs, one process)', ['compile', ex('seed_mlp.nn'), ex('mnist_cnn.nn'), ex('res_block.nn'), '-o', join(out, 'three')]],
  ];
  const rows = [];
  for (const [command, argv] of commands) {
    /** @type {number[]} */
    const times = [];
    let error;
    for (let i = 0; i < 6 && error === undefined; i++) {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [bin, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const ms = performance.now() - t0;
      if (r.status !== 0) error = `exit ${r.status}: ${(r.stderr || '').split('\n')[0]}`;
      else if (i > 0) times.push(ms);
    }
    times.sort((a, b) => a - b);
    rows.push({ command, medianMs: times.length ? times[Math.floor(times.length / 2)] : NaN, minMs: times[0] ?? NaN, runs: times.length, ...(error ? { error } : {}) });
    log(`cli: ${command}: ${error ?? `${(rows[rows.length - 1].medianMs / 1000).toFixed(2)} s`}`);
  }
  rmSync(out, { recursive: true, force: true });
  return rows;
}

/** The hand-run section (bench/micro/big-models.js) at the end of the old document, kept on a rewrite. */
function keptSection(/** @type {string} */ path) {
  let old = '';
  try {
    old = readFileSync(path, 'utf8');
  } catch {
    return '';
  }
  const at = old.indexOf(BIG_MODELS_HEADING);
  return at < 0 ? '' : '\n' + old.slice(at);
}
const BIG_MODELS_HEADING = '## Big models: compile time, module size, load time';

// ---------------------------------------------------------------------------
// Runtimes and cases

/**
 * @typedef {object} Runtime
 * @property {string} id
 * @property {string} label   the table's column heading
 * @property {string} script
 * @property {string[]} args
 */
/** @type {Runtime[]} */
const RUNTIMES = [
  { id: 'modelc', label: 'modelc (TS)', script: 'worker-modelc.js', args: [] },
  { id: 'modelc-simd', label: 'modelc `--simd`', script: 'worker-modelc.js', args: ['simd'] },
  { id: 'modelc-simd-2t', label: 'modelc `--simd`, 2 threads', script: 'worker-modelc.js', args: ['simd', '2'] },
  { id: 'tfjs-cpu', label: 'tfjs-cpu', script: 'worker-tfjs.js', args: ['cpu'] },
  { id: 'tfjs-wasm', label: 'tfjs-wasm', script: 'worker-tfjs.js', args: ['wasm'] },
  { id: 'ort', label: 'onnxruntime-node', script: 'worker-ort.js', args: [] },
  { id: 'ort-web', label: 'onnxruntime-web (wasm SIMD)', script: 'worker-ort-web.js', args: [] },
  { id: 'keras', label: 'Keras (TF CPU)', script: 'worker-keras.js', args: [] },
  { id: 'keras-2t', label: 'Keras (TF CPU), 2 threads', script: 'worker-keras.js', args: ['2'] },
  { id: 'compile', label: 'modelc compiler', script: 'worker-compile.js', args: [] },
];
const runtimeById = new Map(RUNTIMES.map((r) => [r.id, r]));
/** The table's columns after work and batch. */
const COLUMNS = ['modelc', 'modelc-simd', 'modelc-simd-2t', 'tfjs-cpu', 'tfjs-wasm', 'ort', 'ort-web', 'keras', 'keras-2t'];

const MODELS = /** @type {Record<string, string>} */ ({
  seed_mlp: join(root, 'examples/seed_mlp.nn'),
  mnist_cnn: join(root, 'examples/mnist_cnn.nn'),
  mini_resnet: join(here, 'models/mini_resnet.nn'),
});

/**
 * @typedef {object} Case
 * @property {string} id
 * @property {'infer' | 'train' | 'compile'} kind
 * @property {string} work      the table's first column
 * @property {string} model     MODELS key (infer, train) or the spec's label (compile)
 * @property {number} batch
 * @property {string[]} runtimes
 * @property {number} weight    share of the time budget
 * @property {string} [specPath] compile
 * @property {string} [deferred] a runtime measured by one cold checked step after every other case
 */
/** @type {Case[]} */
const ALL_CASES = [
  ...[['seed_mlp', 1], ['seed_mlp', 256], ['mnist_cnn', 1], ['mnist_cnn', 64], ['mini_resnet', 1], ['mini_resnet', 16]].map(
    ([model, batch]) => /** @type {Case} */ ({
      id: `infer/${model}/b${batch}`,
      kind: 'infer',
      work: `${model} inference`,
      model,
      batch,
      runtimes: ['modelc', 'modelc-simd', 'tfjs-cpu', 'tfjs-wasm', 'ort', 'ort-web'],
      weight: 1,
    }),
  ),
  { id: 'train/seed_mlp/b16', kind: 'train', work: 'seed_mlp training step', model: 'seed_mlp', batch: 16, runtimes: ['modelc', 'modelc-simd', 'tfjs-cpu', 'tfjs-wasm', 'keras'], weight: 1 },
  {
    id: 'train/mnist_cnn/b32',
    kind: 'train',
    work: 'mnist_cnn training step',
    model: 'mnist_cnn',
    batch: 32,
    runtimes: ['modelc', 'modelc-simd', 'modelc-simd-2t', 'tfjs-cpu', 'tfjs-wasm', 'keras', 'keras-2t'],
    weight: 1,
    deferred: 'tfjs-cpu',
  },
  { id: 'train/mnist_cnn/b64', kind: 'train', work: 'mnist_cnn training step', model: 'mnist_cnn', batch: 64, runtimes: ['modelc', 'modelc-simd', 'modelc-simd-2t', 'keras', 'keras-2t'], weight: 1 },
  ...[
    ['seed_mlp', join(root, 'examples/seed_mlp.nn')],
    ['mnist_cnn', join(root, 'examples/mnist_cnn.nn')],
    ['res_block', join(root, 'examples/res_block.nn')],
    ['mini_resnet', join(here, 'models/mini_resnet.nn')],
    ['deep_mlp_200', ''],
    // Big models (issue 15): many layers and kernels, and 151 MB of embedded weights.
    ['densenet121', join(here, 'models/densenet121.nn')],
    ['vgg16', join(here, 'models/vgg16.nn')],
  ].map(([model, specPath]) => /** @type {Case} */ ({
    id: `compile/${model}`,
    kind: 'compile',
    work: `compile ${model}${model === 'deep_mlp_200' ? ' (100 × dense + batchnorm)' : ''}`,
    model,
    batch: 0,
    runtimes: ['compile'],
    weight: 0.5,
    specPath,
  })),
];

const cases = ALL_CASES.filter((c) => !args.only || args.only.some((s) => c.id.includes(s)));
if (args.list) {
  for (const c of ALL_CASES) console.log(`${cases.includes(c) ? '*' : ' '} ${c.id}`);
  process.exit(0);
}
if (cases.length === 0 && args.only?.includes('cli')) {
  // Only the cold CLI timings: no runtimes, nothing written.
  const rows = coldCli();
  console.log(renderCliSection(rows));
  process.exit(rows.some((r) => r.error) ? 1 : 0);
}
if (cases.length === 0) {
  console.error(`no case matches --only ${args.only?.join(', ')}; the cases are:\n${ALL_CASES.map((c) => '  ' + c.id).join('\n')}`);
  process.exit(2);
}

// The default budget covers every case; with --only, the selected cases' share of it.
const fullBudgetS = quick ? 55 : 260;
const weightOf = (/** @type {Case[]} */ list) => list.reduce((s, c) => s + c.weight, 0);
const budgetS =
  args.budget !== undefined
    ? Number(args.budget)
    : cases.length === ALL_CASES.length
      ? fullBudgetS
      : Math.max(10, Math.round(((quick ? 40 : 150) * weightOf(cases)) / weightOf(ALL_CASES) + 15 + (!quick && cases.some((c) => c.deferred) ? 100 : 0)));
if (!(budgetS > 0)) {
  console.error(`--budget must be a positive number of seconds, got '${args.budget}'`);
  process.exit(2);
}

// ---------------------------------------------------------------------------
// Workers

class Worker {
  /** @param {Runtime} rt */
  constructor(rt) {
    this.rt = rt;
    /** @type {Map<number, { resolve: (v: any) => void, reject: (e: Error) => void }>} */
    this.pending = new Map();
    this.seq = 0;
    this.tail = '';
    this.exited = false;
    this.child = fork(join(here, rt.script), rt.args, { cwd: root, serialization: 'advanced', stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    const keep = (/** @type {Buffer} */ b) => (this.tail = (this.tail + b.toString()).slice(-4000));
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.child.on('message', (/** @type {any} */ msg) => {
      const p = this.pending.get(msg.seq);
      if (!p) return;
      this.pending.delete(msg.seq);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(msg.error));
    });
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      const why = new Error(`the ${rt.id} worker exited (${signal ?? `code ${code}`})${this.tail.trim() ? ': ' + this.tail.trim().split('\n').slice(-3).join(' / ') : ''}`);
      for (const p of this.pending.values()) p.reject(why);
      this.pending.clear();
    });
  }

  /**
   * @param {string} cmd
   * @param {Record<string, unknown>} [extra]
   * @param {number} [timeoutMs]
   * @returns {Promise<any>}
   */
  request(cmd, extra = {}, timeoutMs = 180_000) {
    if (this.exited) return Promise.reject(new Error(`the ${this.rt.id} worker is not running`));
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq);
        reject(new Error(`no answer to '${cmd}' within ${(timeoutMs / 1000).toFixed(0)} s: stopped the worker`));
        this.kill();
      }, timeoutMs);
      this.pending.set(seq, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.child.send({ seq, cmd, ...extra });
    });
  }

  kill() {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  /** Disconnects (the worker exits by itself); kills it if it has not within 3 s. */
  async close() {
    if (this.exited) return;
    const gone = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.disconnect();
    const timer = setTimeout(() => this.kill(), 3000);
    await gone;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------
// Results

/**
 * @typedef {object} Cell
 * @property {'ok' | 'unavailable' | 'not-possible' | 'wrong' | 'error' | 'skipped'} status
 * @property {string} [text]    what the cell says when not ok
 * @property {{ median: number, p10: number, p90: number, n: number }} [stats]  ms per iteration
 * @property {number} [iters]   iterations per sample
 * @property {number} [warmup]  warm-up iterations
 * @property {number} [rel]     the agreement check's relative difference with modelc
 * @property {string} [note]    shown in the table cell too
 * @property {string} [detail]  shown in the details only
 *
 * @typedef {{ c: Case, cells: Record<string, Cell>, wallMs: number }} CaseResult
 */

/** @type {CaseResult[]} */
const results = [];

// ---------------------------------------------------------------------------
// Main

const tmp = mkdtempSync(join(tmpdir(), 'modelc-bench-run-'));
/** @type {Map<string, Worker>} */
const workers = new Map();
/** @type {Map<string, { available: boolean, reason?: string, hint?: string, info?: any }>} */
const status = new Map();
const loadBefore = loadavg();

async function main() {
  const deadline = started + budgetS * 1000;
  log(`modelc bench: ${cases.length} case(s), budget ${budgetS} s${quick ? ' (--quick)' : ''}; other processes on this machine add noise (load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')})`);

  // Workers start (and load their runtimes) while the artifacts are generated.
  const needed = new Set(cases.flatMap((c) => c.runtimes).filter((r) => !r.startsWith('modelc-simd')));
  const inits = [...needed].map((id) => startWorker(id));

  // Artifacts.
  /** @type {Map<string, { model: import('./common.js').ModelArtifact, checkModel?: import('./common.js').ModelArtifact, simd: string }>} */
  const artifacts = new Map();
  const needs = /** @type {Record<string, { infer?: boolean, simd?: boolean, train?: boolean }>} */ ({});
  for (const c of cases) {
    if (c.kind === 'compile') continue;
    needs[c.model] ??= {};
    if (c.kind === 'infer') Object.assign(needs[c.model], { infer: true, simd: true });
    else needs[c.model].train = true;
  }
  const prepStart = performance.now();
  for (const [model, need] of Object.entries(needs)) artifacts.set(model, await prepareModel(MODELS[model], need, tmp, log));
  const deepPath = join(tmp, 'deep_mlp_200.nn');
  writeFileSync(deepPath, deepMlpSource(100));
  for (const c of cases) if (c.id === 'compile/deep_mlp_200') c.specPath = deepPath;
  const prepMs = performance.now() - prepStart;

  // The simd variant, when the generator built one.
  const simdStates = [...artifacts.values()].filter((a) => a.model.modulePath).map((a) => a.simd);
  const simdTraining = [...artifacts.values()].some((a) => a.model.simdTrainModulePath && a.model.simdTrainModulePath !== a.model.trainModulePath);
  const simdBuilt = simdStates.includes('built') || simdTraining;
  const simdText = simdStates.includes('no-op') ? 'not built yet (the simd option changes nothing)' : 'not built yet';
  for (const id of ['modelc-simd', 'modelc-simd-2t'].filter((r) => cases.some((c) => c.runtimes.includes(r)))) {
    if (simdBuilt) inits.push(startWorker(id));
    else status.set(id, { available: false, reason: simdText });
  }
  await Promise.all(inits);

  const remainingWeight = () => cases.filter((c) => !results.some((r) => r.c === c)).reduce((s, c) => s + c.weight, 0);
  // Time kept for the deferred single steps (about 60-90 s for mnist_cnn on tfjs-cpu) and the shutdown.
  const reserveMs = (!quick && cases.some((c) => c.deferred && status.get(c.deferred)?.available) ? 100_000 : 0) + 3000;
  /** @type {Map<Case, any>} modelc's check result, which a deferred step is compared with */
  const references = new Map();

  for (const c of cases) {
    const left = deadline - performance.now() - reserveMs;
    const budget = Math.max(quick ? 1000 : 2000, (left * c.weight) / remainingWeight());
    const t0 = performance.now();
    const result = await runCase(c, budget, artifacts, references);
    result.wallMs = performance.now() - t0;
    results.push(result);
    log(`${c.id}: ${summaryLine(result)} [${(result.wallMs / 1000).toFixed(1)} s of ${(budget / 1000).toFixed(1)} s]`);
  }

  // The deferred single steps (TF.js CPU conv training), last, with nothing else running.
  for (const r of results) {
    const rt = r.c.deferred;
    if (!rt || !r.cells[rt] || r.cells[rt].note !== 'pending') continue;
    if (quick) {
      r.cells[rt] = { status: 'skipped', text: 'skipped (--quick)' };
      continue;
    }
    const t0 = performance.now();
    r.cells[rt] = await runDeferred(r.c, rt, artifacts, references.get(r.c));
    r.wallMs += performance.now() - t0;
    log(`${r.c.id} (${rt}, one cold step): ${cellText(r, rt)}${r.cells[rt].rel !== undefined ? ` {check ${r.cells[rt].rel?.toExponential(1)}}` : ''} [${((performance.now() - t0) / 1000).toFixed(1)} s]`);
  }

  // Cold CLI start-up (issue 18): full runs, or --only cli.
  const cli = !quick && (!args.only || args.only.includes('cli')) ? coldCli() : undefined;

  const wallMs = performance.now() - started;
  const report = renderReport({
    cli,
    results,
    columns: COLUMNS.map((id) => ({ id, label: /** @type {Runtime} */ (runtimeById.get(id)).label })),
    machine: machine(),
    status,
    quick,
    only: args.only ?? [],
    budgetS,
    wallMs,
    prepMs,
    cellText,
  });
  console.log(report.table);
  console.log();
  console.log(report.goals);
  const partial = quick || (args.only?.length ?? 0) > 0;
  const write = args.write ?? !partial;
  if (write) {
    const target = join(root, 'docs/benchmarks.md');
    const tmpFile = join(root, 'docs', `.benchmarks.md.${process.pid}.tmp`);
    writeFileSync(tmpFile, report.document + keptSection(target));
    renameSync(tmpFile, target);
    log(`wrote docs/benchmarks.md`);
  } else {
    log(`docs/benchmarks.md not written (${args.write === false ? '--no-write' : 'a --quick or --only run; --write forces it'})`);
  }
  log(`total wall time ${(wallMs / 1000).toFixed(1)} s`);
}

/** @param {string} id */
async function startWorker(id) {
  const rt = /** @type {Runtime} */ (runtimeById.get(id));
  const w = new Worker(rt);
  workers.set(id, w);
  try {
    const s = await w.request('init', {}, 60_000);
    status.set(id, s);
    if (!s.available) log(`${id}: ${s.reason}${s.hint ? ` (${s.hint})` : ''}`);
  } catch (err) {
    status.set(id, { available: false, reason: `failed to start: ${/** @type {Error} */ (err).message}` });
    log(`${id}: failed to start: ${/** @type {Error} */ (err).message}`);
  }
}

/**
 * The job a worker gets for a case.
 * @param {Case} c
 * @param {Map<string, any>} artifacts
 * @returns {import('./common.js').Job}
 */
function jobOf(c, artifacts) {
  if (c.kind === 'compile') return { kind: 'compile', id: c.id, batch: 0, specPath: c.specPath };
  const a = artifacts.get(c.model);
  return { kind: c.kind, id: c.id, batch: c.batch, model: a.model, checkModel: a.checkModel ?? a.model };
}

/** @param {unknown} err */
const messageOf = (err) => (err instanceof Error ? err.message : String(err));

/**
 * A failed check or step as a cell: a missing kernel is "not possible".
 * @param {unknown} err
 * @returns {Cell}
 */
function failureCell(err) {
  const msg = messageOf(err);
  const kernel = /Kernel '([^']+)' not registered for backend '([^']+)'/.exec(msg);
  if (kernel) return { status: 'not-possible', text: `not possible (no ${kernel[1]} kernel on ${kernel[2]})` };
  return { status: 'error', text: `error: ${msg.split('\n')[0].slice(0, 160)}` };
}

/**
 * Loads, checks, warms up and times one case in every runtime it names.
 * @param {Case} c
 * @param {number} budget  ms of wall time for the whole case
 * @param {Map<string, any>} artifacts
 * @param {Map<Case, any>} references
 * @returns {Promise<CaseResult>}
 */
async function runCase(c, budget, artifacts, references) {
  const t0 = performance.now();
  /** @type {Record<string, Cell>} */
  const cells = {};
  const result = { c, cells, wallMs: 0 };
  const job = jobOf(c, artifacts);
  /** @type {string[]} */
  let active = [];
  for (const id of c.runtimes) {
    const s = status.get(id);
    if (!s?.available) cells[id] = { status: 'unavailable', text: s?.reason ?? 'not started' };
    else if (id === c.deferred) cells[id] = { status: 'skipped', text: quick ? 'skipped (--quick)' : 'deferred to the end', note: 'pending' };
    else active.push(id);
  }
  const w = (/** @type {string} */ id) => /** @type {Worker} */ (workers.get(id));
  const mainId = c.kind === 'compile' ? 'compile' : 'modelc';
  if (!active.includes(mainId)) return result;

  // Load everywhere (untimed, in parallel).
  await Promise.all(
    active.map(async (id) => {
      try {
        await w(id).request('prepare', { job });
      } catch (err) {
        cells[id] = failureCell(err);
      }
    }),
  );
  active = active.filter((id) => !cells[id]);

  // The agreement check: modelc first, then everyone else against it.
  if (active.includes(mainId)) {
    try {
      const ref = await w(mainId).request('check');
      references.set(c, ref);
      for (const id of active.filter((x) => x !== mainId)) {
        try {
          const got = await w(id).request('check');
          const { rel, where } = compareCheck(got, ref);
          if (!(rel <= CHECK_RTOL)) cells[id] = { status: 'wrong', text: `wrong output: ${where} off by ${rel.toExponential(1)} relative (not timed)` };
          else cells[id] = { status: 'ok', rel };
        } catch (err) {
          cells[id] = failureCell(err);
        }
      }
      cells[mainId] = { status: 'ok', rel: 0, ...(c.kind === 'compile' ? { detail: `first compile of this spec in the worker: ${formatMs(ref.first)}` } : {}) };
    } catch (err) {
      cells[mainId] = failureCell(err);
      for (const id of active) if (id !== mainId) cells[id] = { status: 'skipped', text: 'not timed (modelc failed)' };
    }
  }
  active = active.filter((id) => cells[id]?.status === 'ok');

  // Warm-up: each runtime alone, until it has run a few iterations and some time.
  const n = active.length;
  if (n > 0) {
    const share = Math.max(0, budget - (performance.now() - t0)) / n;
    /** @type {Map<string, number>} */
    const estimate = new Map();
    for (const id of active) {
      try {
        const { times } = await w(id).request('warmup', { minIters: quick ? 1 : 2, minMs: Math.min(0.15 * share, 400), maxMs: 0.25 * share });
        cells[id].warmup = times.length;
        const tail = times.slice(Math.floor(times.length / 2)).sort((/** @type {number} */ a, /** @type {number} */ b) => a - b);
        estimate.set(id, Math.max(1e-4, tail[Math.floor(tail.length / 2)]));
      } catch (err) {
        cells[id] = failureCell(err);
      }
    }
    active = active.filter((id) => cells[id].status === 'ok');

    // Rounds: one sample per runtime per round, the first runtime rotating.
    const targetRounds = quick ? 5 : 15;
    const minRounds = quick ? 2 : 3;
    const maxRounds = quick ? 10 : 40;
    const left = Math.max(0, budget - (performance.now() - t0));
    const sampleMs = Math.max(1, left / (Math.max(1, active.length) * targetRounds));
    /** @type {Map<string, number[]>} */
    const samples = new Map(active.map((id) => [id, []]));
    for (const id of active) cells[id].iters = Math.max(1, Math.round(sampleMs / /** @type {number} */ (estimate.get(id))));
    let lastRoundMs = 0;
    for (let round = 0; active.length > 0 && round < maxRounds; round++) {
      if (round >= minRounds && performance.now() - t0 + 0.5 * lastRoundMs >= budget) break;
      const roundStart = performance.now();
      const order = active.map((_, k) => active[(k + round) % active.length]);
      for (const id of order) {
        if (cells[id].status !== 'ok') continue;
        try {
          const iters = /** @type {number} */ (cells[id].iters);
          const { ms } = await w(id).request('run', { iters });
          samples.get(id)?.push(ms / iters);
        } catch (err) {
          cells[id] = failureCell(err);
        }
      }
      lastRoundMs = performance.now() - roundStart;
    }
    for (const id of active) if (cells[id].status === 'ok') cells[id].stats = summarize(/** @type {number[]} */ (samples.get(id)));
  }

  await Promise.all(c.runtimes.filter((id) => workers.has(id) && status.get(id)?.available).map((id) => w(id).request('release').catch(() => {})));
  return result;
}

/**
 * One cold timed step that is also the agreement check (for a runtime too slow
 * for anything more), compared afterwards with modelc's first step.
 * @param {Case} c
 * @param {string} id
 * @param {Map<string, any>} artifacts
 * @param {any} ref
 * @returns {Promise<Cell>}
 */
async function runDeferred(c, id, artifacts, ref) {
  if (!ref) return { status: 'skipped', text: 'not timed (modelc failed)' };
  const worker = workers.get(id);
  if (!worker) return { status: 'unavailable', text: 'not started' };
  try {
    await worker.request('prepare', { job: jobOf(c, artifacts) });
    const { ms, check } = await worker.request('single', {}, 240_000);
    await worker.request('release').catch(() => {});
    const { rel, where } = compareCheck(check, ref);
    if (!(rel <= CHECK_RTOL)) return { status: 'wrong', text: `wrong output: ${where} off by ${rel.toExponential(1)} relative (time discarded)` };
    return { status: 'ok', rel, stats: { median: ms, p10: ms, p90: ms, n: 1 }, iters: 1, warmup: 0, note: 'one cold run' };
  } catch (err) {
    return failureCell(err);
  }
}

/**
 * A cell's text for the table: median, spread and ratio to modelc.
 * @param {CaseResult} r
 * @param {string} id
 */
function cellText(r, id) {
  const cell = r.cells[id];
  if (!cell) return '—';
  if (cell.status !== 'ok' || !cell.stats) return cell.text ?? cell.status;
  const s = cell.stats;
  const spread = s.n > 1 ? ` ±${Math.round((50 * (s.p90 - s.p10)) / s.median)}%` : '';
  const base = r.cells[r.c.kind === 'compile' ? 'compile' : 'modelc']?.stats?.median;
  const ratio = id !== 'modelc' && id !== 'compile' && base ? ` (${formatRatio(s.median / base)})` : '';
  return `${formatMs(s.median)}${spread}${cell.note ? ` [${cell.note}]` : ''}${ratio}`;
}

/** @param {number} x */
function formatRatio(x) {
  return `${x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)}x`;
}

/** @param {CaseResult} r */
function summaryLine(r) {
  return r.c.runtimes
    .map((id) => {
      const rel = r.cells[id]?.rel;
      return `${id} ${cellText(r, id)}${rel !== undefined && id !== 'modelc' && id !== 'compile' ? ` {check ${rel.toExponential(1)}}` : ''}`;
    })
    .join(', ');
}

/** What the run ran on. */
function machine() {
  const version = (/** @type {string} */ p) => {
    try {
      return JSON.parse(readFileSync(join(root, 'node_modules', p, 'package.json'), 'utf8')).version;
    } catch {
      return 'not installed';
    }
  };
  const git = (/** @type {string[]} */ a) => spawnSync('git', a, { cwd: root, encoding: 'utf8' }).stdout?.trim() ?? '';
  const dirty = git(['status', '--porcelain', '--', 'src', 'grammar']) !== '';
  let distBuilt = 'unknown';
  try {
    distBuilt = statSync(join(root, 'dist/index.js')).mtime.toISOString();
  } catch {}
  const c = cpus();
  const wasm = status.get('tfjs-wasm');
  return {
    date: new Date().toISOString(),
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    parallelism: availableParallelism(),
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB (${(freemem() / 2 ** 30).toFixed(1)} GiB free at the end)`,
    os: `${type()} ${release()} ${arch()}`,
    node: `${process.version} (V8 ${process.versions.v8})`,
    modelc: `${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version}, commit ${git(['rev-parse', '--short', 'HEAD']) || 'unknown'}${dirty ? ' with uncommitted changes in src/' : ''}, dist/ built ${distBuilt}`,
    tfjs: version('@tensorflow/tfjs'),
    tfjsWasm: wasm?.available ? `${wasm.info?.wasmVersion} (SIMD ${wasm.info?.simd ? 'on' : 'off'}, 1 thread)` : version('@tensorflow/tfjs-backend-wasm'),
    ort: version('onnxruntime-node'),
    ortWeb: version('onnxruntime-web'),
    load: `${loadBefore.map((l) => l.toFixed(2)).join(' ')} at the start, ${loadavg().map((l) => l.toFixed(2)).join(' ')} at the end (1, 5, 15 min)`,
  };
}

// ---------------------------------------------------------------------------

// Clean up on Ctrl-C, and keep going when stdout's reader has gone (`| head`).
for (const signal of /** @type {const} */ (['SIGINT', 'SIGTERM'])) {
  process.once(signal, () => {
    for (const w of workers.values()) w.kill();
    rmSync(tmp, { recursive: true, force: true });
    process.exit(130);
  });
}
process.stdout.on('error', (/** @type {NodeJS.ErrnoException} */ err) => {
  if (err.code !== 'EPIPE') throw err;
});

let exitCode = 0;
try {
  await main();
} catch (err) {
  exitCode = 1;
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
} finally {
  await Promise.all([...workers.values()].map((w) => w.close()));
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(exitCode);
