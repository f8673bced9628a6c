#!/usr/bin/env node
// npm run demo [-- --epochs N --output DIR --model SPEC --momentum M]
//
// The batch-normalization experiment of seed 002 on real MNIST digits, on the
// seed's own CNN (examples/mnist_cnn.nn): the same model, data and seed trained
// three times with SGD,
//   1. with batch normalization, learning rate 0.01
//   2. without batch normalization, learning rate 0.01
//   3. without batch normalization, learning rate 0.001 (the seed's setup)
// each evaluated on the 2,004 held-out test digits after every epoch; then a
// per-epoch table of training and held-out loss and accuracy, one chart
// overlaying the three runs (training and held-out curves), and the BN model's
// folded inference module with its test accuracy. The three runs train at once
// in worker threads (the machine's cores share them), each with the generated
// training module's WebAssembly SIMD kernels.
//
// Batchnorm momentum. The seed trains on Keras's 60,000 digits: 1,875 steps
// per epoch, against 250 here (the mnist package's 7,996 training digits).
// Keras's default momentum 0.99 averages the batch statistics over about the
// last 100 steps, so after an epoch this short the moving statistics still
// describe the weights of 100 steps ago and inference-mode accuracy lags far
// behind training-mode accuracy (modelc train warns about it). The demo uses
// momentum 0.9 (about the last 10 steps) for the BN run; --momentum 0.99 shows
// the lag. examples/mnist_mlp.nn (--model) trains the dense version.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Writable } from 'node:stream';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { renderChart } from '../dist/report/chart.js';
import { trainCommand } from '../dist/cli/train.js';
import { loadSpec } from '../dist/frontend/load.js';
import { printJsonSpec } from '../dist/frontend/json.js';
import { writeFileAtomic } from '../dist/util/fs.js';
import { renderDiagnostics } from '../dist/diagnostics/render.js';
import { ModelcError } from '../dist/diagnostics/diagnostic.js';

if (!isMainThread) {
  // One training run: its output lines go to the main thread, prefixed with the run's name.
  const { run, epochs } = workerData;
  const lines = (text) => {
    for (const line of String(text).split('\n')) if (line.trim() !== '') parentPort.postMessage({ kind: 'line', text: `[${run.name}] ${line}` });
  };
  const io = { stdout: lines, stderr: lines, progress: new Writable({ write: (chunk, _e, done) => (lines(chunk), done()) }), interactive: false };
  try {
    const t = Date.now();
    const result = await trainCommand(run.spec, { data: 'mnist', epochs, learningRate: run.learningRate, seed: '1', validateOnTest: true, output: run.output }, io);
    parentPort.postMessage({ kind: 'result', result: { history: result.history, test: result.test, seconds: (Date.now() - t) / 1000 } });
  } catch (err) {
    parentPort.postMessage({ kind: 'error', message: err instanceof ModelcError ? renderDiagnostics(err.diagnostics, { color: false }) : String(err?.stack ?? err) });
  }
} else {
  await main();
}

async function main() {
  const { values: args } = parseArgs({
    options: {
      epochs: { type: 'string', default: '2' },
      output: { type: 'string', default: 'demo-output' },
      model: { type: 'string', default: 'examples/mnist_cnn.nn' },
      momentum: { type: 'string', default: '0.9' },
    },
  });
  const epochs = Number(args.epochs);
  if (!Number.isInteger(epochs) || epochs < 1) {
    console.error(`--epochs must be a positive integer, got '${args.epochs}'`);
    process.exit(2);
  }
  const momentum = Number(args.momentum);
  if (!(momentum >= 0 && momentum < 1)) {
    console.error(`--momentum must be a number in [0, 1), got '${args.momentum}'`);
    process.exit(2);
  }

  const started = Date.now();
  const out = args.output;
  mkdirSync(out, { recursive: true });

  let spec;
  try {
    spec = loadSpec(args.model).spec;
  } catch (err) {
    if (err instanceof ModelcError) {
      console.error(renderDiagnostics(err.diagnostics, { color: Boolean(process.stderr.isTTY) }));
      process.exit(1);
    }
    throw err;
  }
  // The model with its batchnorm layers at the demo's momentum, and without them, written next to the results.
  const withBn = { ...spec, layers: spec.layers.map((l) => (l.type === 'batchnorm' ? { ...l, momentum } : l)) };
  const withoutBn = { ...spec, name: `${spec.name}_no_bn`, layers: spec.layers.filter((l) => l.type !== 'batchnorm') };
  if (withoutBn.layers.length === spec.layers.length) {
    console.error(`${args.model} has no batchnorm layer: nothing to compare`);
    process.exit(2);
  }
  const bnPath = join(out, `${spec.name}.json`);
  const noBnPath = join(out, `${withoutBn.name}.json`);
  writeFileAtomic(bnPath, printJsonSpec(withBn));
  writeFileAtomic(noBnPath, printJsonSpec(withoutBn));

  const runs = [
    { name: 'BN, lr 0.01', spec: bnPath, learningRate: 0.01, dir: 'bn_lr0.01' },
    { name: 'no BN, lr 0.01', spec: noBnPath, learningRate: 0.01, dir: 'no_bn_lr0.01' },
    { name: 'no BN, lr 0.001', spec: noBnPath, learningRate: 0.001, dir: 'no_bn_lr0.001' },
  ].map((r) => ({ ...r, output: join(out, r.dir) }));

  console.log(`Training ${spec.name} (${args.model}) three ways on MNIST, ${epochs} epoch${epochs === 1 ? '' : 's'} each, held-out test digits after every epoch; BN momentum ${momentum}.`);
  const results = await Promise.all(
    runs.map(
      (run) =>
        new Promise((resolve, reject) => {
          const worker = new Worker(new URL(import.meta.url), { workerData: { run, epochs } });
          worker.on('message', (m) => {
            if (m.kind === 'line') console.log(m.text);
            else if (m.kind === 'result') resolve({ ...run, ...m.result });
            else reject(new Error(`${run.name}: ${m.message}`));
          });
          worker.on('error', reject);
          worker.on('exit', (code) => code !== 0 && reject(new Error(`${run.name}: worker exited with code ${code}`)));
        }),
    ),
  ).catch((err) => {
    console.error(err.message);
    process.exit(1);
  });

  // The per-epoch comparison: training loss and accuracy, held-out (test) loss and accuracy.
  const f = (x) => (x === undefined ? '-' : x.toFixed(4));
  const columns = [
    ['loss', 'loss'],
    ['accuracy', 'acc'],
    ['val_loss', 'test loss'],
    ['val_accuracy', 'test acc'],
  ];
  const header = ['epoch', ...results.flatMap((r) => columns.map(([, label], i) => (i === 0 ? `${r.name}: ${label}` : label)))];
  const rows = Array.from({ length: epochs }, (_, e) => [String(e + 1), ...results.flatMap((r) => columns.map(([key]) => f(r.history[key]?.[e])))]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padStart(widths[i])).join(' | ')} |`;
  console.log(`\nPer epoch (MNIST: ${results[0].test.examples} held-out test digits; same data, seed and initial weights):\n`);
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows) console.log(line(row));

  const chartPath = join(out, 'curves.svg');
  const chart = await renderChart(
    results.map((r) => ({ name: r.name, history: r.history })),
    { title: `MNIST ${spec.name}: with and without batch normalization (SGD; training and held-out)` },
  );
  writeFileAtomic(chartPath, chart);

  const [bn, noBn, noBnSlow] = results;
  const firstVal = (r) => r.history.val_accuracy?.[0];
  const firstLoss = (r) => r.history.loss[0];
  const ahead = firstVal(bn) > firstVal(noBn) && firstVal(bn) > firstVal(noBnSlow);
  const faster = firstLoss(bn) < firstLoss(noBn) && firstLoss(bn) < firstLoss(noBnSlow);
  const pct = (x) => (x === undefined ? '-' : `${(x * 100).toFixed(2)}%`);
  console.log(
    `\nAfter epoch 1, held-out accuracy: ${pct(firstVal(bn))} with BN at 0.01, ${pct(firstVal(noBn))} without BN at 0.01, ${pct(firstVal(noBnSlow))} without BN at 0.001: ` +
      (ahead ? 'the BN network is ahead of both.' : 'the BN network is NOT ahead of both.'),
  );
  console.log(
    `Epoch 1 training loss: ${f(firstLoss(bn))}, ${f(firstLoss(noBn))}, ${f(firstLoss(noBnSlow))}: ` +
      (faster ? 'batch normalization converges faster, also at a 10x higher learning rate.' : 'the BN run does NOT have the lowest loss.'),
  );
  const test = bn.test;
  console.log(
    `BN model, folded inference module ${join(bn.output, `${spec.name}.ts`)}: test accuracy ${pct(test.after)} ` +
      `(before folding ${pct(test.before)}: ${test.after === test.before ? 'equal' : 'DIFFERENT'})`,
  );
  console.log(`Runs took ${results.map((r) => `${r.seconds.toFixed(0)} s`).join(', ')} (in parallel). Chart: ${chartPath}`);
  const seconds = (Date.now() - started) / 1000;
  console.log(`Done in ${seconds.toFixed(1)} s${seconds > 180 ? ' (over the 3 minutes this demo aims for: a slower machine or a busy CPU)' : ''}.`);
  if (!ahead || !faster || test.after !== test.before) process.exitCode = 1;
}
