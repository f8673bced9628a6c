// The markdown bench/run.js prints and writes to docs/benchmarks.md: the
// results table, the issue's goals (met / missed), the per-runtime details,
// the machine and the method.
import { formatMs } from './common.js';

/**
 * @typedef {import('./run.js').CaseResult} CaseResult
 * @typedef {{ id: string, label: string }} Column
 */

/**
 * The goals of issues 8, 17 and 18, as ratios peer time / modelc time (higher is better for modelc).
 * `versus` is the modelc variant the peer is compared with.
 */
const GOALS = [
  // Issue 18: every inference row, with default compile options (`modelc compile` generates the SIMD module).
  ...[['seed_mlp', 1], ['seed_mlp', 256], ['mnist_cnn', 1], ['mnist_cnn', 64], ['mini_resnet', 1], ['mini_resnet', 16]].map(([model, batch]) => ({
    caseId: `infer/${model}/b${batch}`,
    peer: 'ort-web',
    versus: 'modelc-simd',
    target: 1.5,
    text: `issue 18: ${model} inference, batch ${batch}, default compile options (SIMD): ≥ 1.5x faster than onnxruntime-web (wasm SIMD, 1 thread)`,
  })),
  { caseId: 'train/mnist_cnn/b32', peer: 'keras', versus: 'modelc-simd', target: 0.5, text: 'issue 17: mnist_cnn training step (batch 32), `--simd`, 1 thread each: at least 0.5x Keras on TensorFlow CPU (ratio = Keras time / modelc time)' },
  { caseId: 'train/mnist_cnn/b32', peer: 'keras-2t', versus: 'modelc-simd-2t', target: 1, text: 'issue 17: mnist_cnn training step (batch 32), `--simd`, 2 threads each: at least 1x Keras on TensorFlow CPU' },
  { caseId: 'train/seed_mlp/b16', peer: 'keras', versus: 'modelc-simd', target: 5, text: 'issue 17: seed_mlp training step (batch 16), `--simd`: ≥ 5x faster than Keras on TensorFlow CPU' },
  { caseId: 'infer/seed_mlp/b1', peer: 'tfjs-wasm', versus: 'modelc', target: 20, text: 'issue 8: seed_mlp inference, batch 1: ≥ 20x faster than tfjs-wasm' },
  { caseId: 'infer/seed_mlp/b1', peer: 'ort', versus: 'modelc', target: 2, text: 'issue 8: seed_mlp inference, batch 1: ≥ 2x faster than onnxruntime-node' },
  { caseId: 'train/seed_mlp/b16', peer: 'tfjs-wasm', versus: 'modelc', target: 20, text: 'issue 8: seed_mlp training step (batch 16): ≥ 20x faster than tfjs-wasm' },
  { caseId: 'train/seed_mlp/b16', peer: 'tfjs-wasm', versus: 'modelc-simd', target: 20, text: 'issue 8: seed_mlp training step (batch 16), `--simd`: ≥ 20x faster than tfjs-wasm' },
  { caseId: 'train/mnist_cnn/b32', peer: 'tfjs-cpu', versus: 'modelc', target: 100, text: 'issue 8: mnist_cnn training step (batch 32): ≥ 100x faster than tfjs-cpu' },
  { caseId: 'infer/mnist_cnn/b64', peer: 'tfjs-wasm', versus: 'modelc-simd', target: 1, text: 'issue 8: mnist_cnn inference, batch 64, `--simd`: at least as fast as tfjs-wasm' },
  { caseId: 'infer/mnist_cnn/b64', peer: 'tfjs-wasm', versus: 'modelc', target: 0.25, text: 'issue 8: mnist_cnn inference, batch 64, pure TypeScript: within 4x of tfjs-wasm' },
];

/** onnxruntime-web's version and settings, or why it did not run. @param {string | number} version @param {any} s */
const ortWebInfo = (version, s) =>
  s?.available ? `${s.info?.version ?? version} (wasm execution provider in Node: WebAssembly SIMD, ${s.info?.numThreads} thread, no proxy worker)` : `${version}; not measured: ${s?.reason ?? 'not run'}`;

/** The Keras runtime's versions, or why it did not run. @param {any} s */
const kerasInfo = (s) =>
  s?.available ? `Keras ${s.info?.keras}, TensorFlow ${s.info?.tensorflow} (CPU, 1 intra-op and 1 inter-op thread; TF_ENABLE_ONEDNN_OPTS ${s.info?.onednn})` : `not measured: ${s?.reason ?? 'not run'}`;

/**
 * Cold CLI start-up rows (bench/run.js coldCli) and issue 18's two start-up goals; empty without them.
 * @param {{ command: string, medianMs: number, minMs: number, runs: number, error?: string }[] | undefined} rows
 */
export function renderCliSection(rows) {
  if (!rows) return '';
  const s = (/** @type {number} */ ms) => `${(ms / 1000).toFixed(2)} s`;
  const goal = (/** @type {string} */ prefix, /** @type {number} */ limitMs, /** @type {string} */ text) => {
    const r = rows.find((x) => x.command.startsWith(prefix));
    if (!r || r.error) return `| ${text} | < ${s(limitMs)} | — | not measured |`;
    return `| ${text} | < ${s(limitMs)} | ${s(r.medianMs)} | ${r.medianMs < limitMs ? '**met**' : '**missed**'} |`;
  };
  return `
## Cold CLI start-up

Each command in a fresh \`node bin/modelc.js\` process, as a build pipeline runs it (one untimed run
first, then the median and the fastest of 5 wall times).

| command | median | fastest |
|---|---:|---:|
${rows.map((r) => `| \`${r.command}\` | ${r.error ? r.error : s(r.medianMs)} | ${r.error ? '—' : s(r.minMs)} |`).join('\n')}

| goal (issue 18) | target | measured | status |
|---|---|---|---|
${goal('modelc --help', 200, '`modelc --help` from a cold process')}
${goal('modelc compile examples/seed_mlp.nn', 800, '`modelc compile examples/seed_mlp.nn` from a cold process')}
`;
}

/** @param {number} x */
const ratio = (x) => `${x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)}x`;

/** Markdown-safe cell text. @param {string} s */
const md = (s) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/**
 * @param {object} o
 * @param {CaseResult[]} o.results
 * @param {Column[]} o.columns
 * @param {Record<string, string | number>} o.machine
 * @param {Map<string, { available: boolean, reason?: string, hint?: string, info?: any }>} o.status
 * @param {boolean} o.quick
 * @param {string[]} o.only
 * @param {number} o.budgetS
 * @param {number} o.wallMs
 * @param {number} o.prepMs
 * @param {(r: CaseResult, id: string) => string} o.cellText
 */
export function renderReport(o) {
  const { results, columns, cellText } = o;

  // The results table.
  const head = ['work', 'batch', ...columns.map((c) => c.label)];
  const rows = results.map((r) => {
    const main = r.c.kind === 'compile' ? 'compile' : 'modelc';
    return [
      r.c.work,
      r.c.kind === 'compile' ? '—' : String(r.c.batch),
      ...columns.map((col) => (col.id === 'modelc' ? cellText(r, main) : r.c.runtimes.includes(col.id) ? cellText(r, col.id) : '—')),
    ];
  });
  const table = [
    `| ${head.join(' | ')} |`,
    `|${head.map((_, k) => (k < 1 ? '---' : '---:')).join('|')}|`,
    ...rows.map((cells) => `| ${cells.map(md).join(' | ')} |`),
  ].join('\n');

  // The goals.
  /** @param {string} caseId @param {string} id */
  const find = (caseId, id) => {
    const r = results.find((x) => x.c.id === caseId);
    return r ? { r, cell: r.cells[id] } : undefined;
  };
  const goalRows = GOALS.map((g) => {
    const peer = find(g.caseId, g.peer);
    const mine = find(g.caseId, g.versus);
    const target = g.target >= 1 ? `≥ ${g.target}x` : `≥ ${g.target}x (${g.peer} at most ${1 / g.target}x faster)`;
    if (!peer || !mine) return [g.text, target, '—', `not measured (case not run${o.only.length ? ': --only' : ''})`];
    const why = (/** @type {any} */ cell, /** @type {string} */ id) => `${id}: ${cell?.text ?? cell?.status ?? 'not run'}`;
    if (!mine.cell?.stats) return [g.text, target, '—', `not measured (${why(mine.cell, g.versus)})`];
    if (!peer.cell?.stats) return [g.text, target, '—', `not measured (${why(peer.cell, g.peer)})`];
    const x = peer.cell.stats.median / mine.cell.stats.median;
    return [g.text, target, `${ratio(x)} (${formatMs(peer.cell.stats.median)} / ${formatMs(mine.cell.stats.median)})`, x >= g.target ? '**met**' : '**missed**'];
  });
  const goals = [
    '| goal | target: peer time / modelc time | measured | status |',
    '|---|---|---|---|',
    ...goalRows.map((cells) => `| ${cells.map(md).join(' | ')} |`),
  ].join('\n');

  // Details: every timed runtime of every case.
  const detailRows = [];
  for (const r of results) {
    for (const id of r.c.runtimes) {
      const cell = r.cells[id];
      if (!cell) continue;
      const s = cell.stats;
      detailRows.push([
        r.c.id,
        id,
        s ? formatMs(s.median) : '—',
        s ? `${formatMs(s.p10)} – ${formatMs(s.p90)}` : '—',
        s ? `${s.n} × ${cell.iters}` : '—',
        cell.warmup === undefined ? '—' : String(cell.warmup),
        cell.rel === undefined || id === 'compile' ? '—' : id === 'modelc' ? 'reference' : cell.rel.toExponential(1),
        cell.status === 'ok' ? [cell.note, cell.detail].filter(Boolean).join('; ') : (cell.text ?? cell.status),
      ]);
    }
  }
  const details = [
    '| case | runtime | median / iteration | p10 – p90 | samples × iterations | warm-up iterations | check: max rel diff vs modelc | note |',
    '|---|---|---:|---:|---:|---:|---:|---|',
    ...detailRows.map((cells) => `| ${cells.map(md).join(' | ')} |`),
  ].join('\n');

  const m = o.machine;
  const runtimes = [...o.status.entries()].map(([id, s]) => `${id}: ${s.available ? 'ok' : s.reason}${s.hint ? ` (\`${s.hint}\`)` : ''}`).join('; ');
  const flags = [o.quick ? '--quick' : '', ...o.only.map((s) => `--only ${s}`)].filter(Boolean).join(' ');
  const command = flags ? `npm run bench -- ${flags}` : 'npm run bench';
  const document = `# Benchmarks

Generated by \`${command}\` (\`bench/run.js\`) on ${m.date}${o.quick ? ' (a smoke run: few samples)' : ''}. Do not edit by hand: rerun it.
Wall time ${(o.wallMs / 1000).toFixed(0)} s (budget ${o.budgetS} s; preparing the modules, ONNX files and weights took ${(o.prepMs / 1000).toFixed(1)} s of it).

**Noise.** Other processes (builds, tests, other agents) were using this 2-core machine during the run
(load average below), so single numbers can be off by tens of percent; the ± spreads show how much.
Compare ratios within one run, not absolute times across runs.

## Machine

| | |
|---|---|
| CPU | ${m.cpu} (${m.cores} logical cores, available parallelism ${m.parallelism}) |
| memory | ${m.memory} |
| OS | ${m.os} |
| Node | ${m.node} |
| modelc | ${m.modelc} |
| @tensorflow/tfjs | ${m.tfjs} (backends tfjs-backend-cpu ${m.tfjs}, tfjs-backend-wasm ${m.tfjsWasm}) |
| onnxruntime-node | ${m.ort} (native CPU execution provider, 1 intra-op and 1 inter-op thread) |
| onnxruntime-web | ${ortWebInfo(m.ortWeb, o.status.get('ort-web'))} |
| Keras | ${kerasInfo(o.status.get('keras'))} |
| load average | ${m.load} |
| runtimes | ${runtimes} |

## Results

Median time per iteration (one \`predict\` of the whole batch, one training step, or one compile);
± is half the p10–p90 range relative to the median; in parentheses, **peer time / modelc (TS) time**
(above 1: modelc is faster; in the \`--simd\` column, below 1: the SIMD module is faster than the TypeScript one).

${table}

- Inference: modelc \`new Model().predict(x, batch)\` of the module \`modelc compile\` generates (-O:
  batchnorm folded, activations fused); TF.js \`model.predict(tf.tensor(x), { batchSize: batch })\` then
  \`dataSync()\`; onnxruntime \`session.run\` of \`modelc export -O\`'s model (its own graph optimizations on
  too; \`run\` returns a promise, awaited per call). All take a Float32Array in and give one back.
- onnxruntime-web (wasm SIMD): the same ONNX file and \`session.run\` in onnxruntime-web's WebAssembly
  build, run in Node (bench/worker-ort-web.js): the \`wasm\` execution provider, its SIMD binary
  (\`ort-wasm-simd-threaded.wasm\`, read from node_modules, nothing fetched),
  \`ort.env.wasm.numThreads = 1\`, no proxy worker, all graph optimizations. Issue 18's goals compare
  it with the \`--simd\` column, the module \`modelc compile\` generates by default.
- Training: modelc's generated \`Trainer.trainOnBatch(x, y, batch)\` against TF.js \`model.trainOnBatch\` on
  the same \`tf.layers\` model (SGD, the spec's loss; accuracy metric when the spec asks for it).
  seed_mlp keeps its dropout layers in the timed step; the agreement check runs on a copy without
  them (the runtimes draw different dropout masks).
- mnist_cnn on tfjs-cpu (training): one cold \`trainOnBatch\` (no warm-up, the only thing running, last),
  because a step takes about a minute there; its loss and weights after the step are compared with
  modelc's first step afterwards. tfjs-wasm cannot train it: the wasm backend has no
  Conv2DBackpropFilter kernel.
- Keras (TF CPU): Keras 3's \`train_on_batch\` on TensorFlow's CPU backend with one intra-op and one
  inter-op thread (bench/keras_worker.py, timed in Python), on modelc's own \`.keras\` export of the spec
  with the same initial weights, compiled with the spec's optimizer and loss; its first step (loss and
  every weight) is checked against modelc's like the other runtimes. Measured only where Python with
  Keras and TensorFlow is installed (\`MODELC_BENCH_PYTHON\`, default \`python3\`); never in CI.
  seed_mlp's binary_crossentropy gets its output through \`tf.identity\`: Keras 3 on TensorFlow
  otherwise computes it from the softmax's logits as if they were a sigmoid's (a different loss:
  0.8314 against 0.8567 on the check batch), see bench/keras_worker.py.
- 2 threads: modelc's Trainer after \`await trainer.startThreads(2)\` (the calling thread and one worker
  over a shared WebAssembly memory; batchnorm, pooling and the optimizer stay on the calling thread);
  Keras with 2 intra-op threads (and 1 inter-op thread). Their ratios are against each other in the goals.
- Compile: in-process through the library API, what \`modelc compile <spec>\` does without writing
  files: parse and lower, sample the weights (seed 0), the -O passes, and the generated module
  (ts-morph, prettier, embedded weights; the .ts, as the command writes by default). Warm process; the first compile of
  each spec is in the details.
- \`modelc --simd\`: modules generated with the code generator's \`simd: true\` option, benchmarked
  automatically once the library has it; "not built yet" until then.

## Goals

${goals}
${renderCliSection(o.cli)}
## Details

${details}

## Method

- **Same model, same weights everywhere.** Each spec is compiled once with the library (\`dist/\`); its
  parameters are sampled from the spec's initializers with seed 0 (what \`modelc init --seed 0\` writes).
  From that one weighted graph come the generated inference module, the generated training module,
  the ONNX export and a safetensors file that the TF.js workers load into a \`tf.layers\` model built
  from the spec (\`bench/tfjs-model.js\`, layers named as modelc names them).
  \`bench/models/mini_resnet.nn\` is the ResNet-style model: 10 convolutions, 4 residual adds.
- **Checked before timed.** Before any timing, each peer's output on the case's batch (inference), or
  its loss and every weight after one training step from the same weights (training), must be within
  1e-3 of modelc's (max |diff| / max(1, max |modelc|)); otherwise the cell says "wrong output" and the
  runtime is not timed for that case.
- **Isolation.** One child process per runtime (\`bench/worker-*.js\`, \`child_process.fork\`), so runtimes
  share no heap or JIT state. Timing loops run inside the workers (\`performance.now()\` around
  back-to-back iterations), never across IPC. Only one worker computes at a time.
- **Warm-up, then alternating rounds.** Each runtime warms up alone (at least ${o.quick ? 'one iteration' : 'two iterations'} and a
  share of the case's budget); then rounds, each with one sample per runtime, the starting runtime
  rotating. A sample is as many back-to-back iterations as fill about the same time for every
  runtime. Rounds continue until the case's budget is used (at least ${o.quick ? 2 : 3} rounds); the table gives
  the median per-iteration time of the samples.
- **Budget.** The run aims at ${o.budgetS} s in all: each case gets a share of the time left (after a
  reserve for the one slow TF.js training step), so overruns early shrink later cases.
`;
  return { table, goals, document };
}
