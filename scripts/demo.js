#!/usr/bin/env node
// npm run demo [-- --epochs N --output DIR --model SPEC]
//
// The batch-normalization experiment of seed 002 on real MNIST digits: the same
// model, data and seed trained three times with SGD,
//   1. with batch normalization, learning rate 0.01
//   2. without batch normalization, learning rate 0.01
//   3. without batch normalization, learning rate 0.001 (the seed's setup)
// then a per-epoch comparison table, one chart overlaying the three runs, and
// the BN model's folded inference module with its test accuracy.
//
// The model is examples/mnist_mlp.nn: examples/mnist_cnn.nn trains the same way
// (`modelc train examples/mnist_cnn.nn`) but takes minutes per epoch here.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Writable } from 'node:stream';
import { renderChart } from '../dist/report/chart.js';
import { trainCommand } from '../dist/cli/train.js';
import { loadSpec } from '../dist/frontend/load.js';
import { printJsonSpec } from '../dist/frontend/json.js';
import { writeFileAtomic } from '../dist/util/fs.js';
import { renderDiagnostics } from '../dist/diagnostics/render.js';
import { ModelcError } from '../dist/diagnostics/diagnostic.js';

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '10' },
    output: { type: 'string', default: 'demo-output' },
    model: { type: 'string', default: 'examples/mnist_mlp.nn' },
  },
});
const epochs = Number(args.epochs);
if (!Number.isInteger(epochs) || epochs < 1) {
  console.error(`--epochs must be a positive integer, got '${args.epochs}'`);
  process.exit(2);
}

const started = Date.now();
const out = args.output;
mkdirSync(out, { recursive: true });

// The same model without its batchnorm layers, written next to the results so it can be inspected.
const withBn = loadSpec(args.model).spec;
const withoutBn = { ...withBn, name: `${withBn.name}_no_bn`, layers: withBn.layers.filter((l) => l.type !== 'batchnorm') };
if (withoutBn.layers.length === withBn.layers.length) {
  console.error(`${args.model} has no batchnorm layer: nothing to compare`);
  process.exit(2);
}
const noBnPath = join(out, `${withoutBn.name}.json`);
writeFileAtomic(noBnPath, printJsonSpec(withoutBn));

const runs = [
  { name: 'BN, lr 0.01', spec: args.model, learningRate: 0.01, dir: 'bn_lr0.01' },
  { name: 'no BN, lr 0.01', spec: noBnPath, learningRate: 0.01, dir: 'no_bn_lr0.01' },
  { name: 'no BN, lr 0.001', spec: noBnPath, learningRate: 0.001, dir: 'no_bn_lr0.001' },
];

const terminal = process.stderr.isTTY ? process.stderr : undefined;
const io = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  progress: terminal ?? new Writable({ write: (chunk, _e, done) => (process.stderr.write(chunk), done()) }),
  interactive: terminal !== undefined,
};

try {
  const results = [];
  for (const run of runs) {
    console.log(`\n== ${run.name} (${run.spec}) ==`);
    const t = Date.now();
    const result = await trainCommand(run.spec, { data: 'mnist', epochs, learningRate: run.learningRate, seed: '1', output: join(out, run.dir) }, io);
    results.push({ ...run, ...result, seconds: (Date.now() - t) / 1000 });
  }

  // The per-epoch comparison.
  const f = (x) => (x === undefined ? '-' : x.toFixed(4));
  const header = ['epoch', ...results.flatMap((r) => [`${r.name}: loss`, 'accuracy'])];
  const rows = Array.from({ length: epochs }, (_, e) => [String(e + 1), ...results.flatMap((r) => [f(r.history.loss[e]), f(r.history.accuracy?.[e])])]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padStart(widths[i])).join(' | ')} |`;
  console.log(`\nTraining loss and accuracy per epoch (MNIST, ${results[0].history.loss.length} epochs, same data, seed and initial weights):\n`);
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const row of rows) console.log(line(row));

  const chartPath = join(out, 'loss.svg');
  const chart = await renderChart(results.map((r) => ({ name: r.name, history: r.history })), { title: 'MNIST: with and without batch normalization (SGD)' });
  writeFileAtomic(chartPath, chart);

  const [bn, noBn, noBnSlow] = results;
  const first = (r) => r.history.loss[0];
  const claim = first(bn) < first(noBn) && first(bn) < first(noBnSlow);
  console.log(`\nEpoch 1 loss: ${f(first(bn))} with BN at 0.01, ${f(first(noBn))} without BN at 0.01, ${f(first(noBnSlow))} without BN at 0.001: ` +
    (claim ? 'batch normalization converges faster, also at a 10x higher learning rate.' : 'the BN run is NOT ahead after epoch 1.'));
  const test = bn.test;
  console.log(`BN model, folded inference module ${join(out, bn.dir, `${withBn.name}.ts`)}: test accuracy ${(test.after * 100).toFixed(2)}% ` +
    `(before folding ${(test.before * 100).toFixed(2)}%: ${test.after === test.before ? 'equal' : 'DIFFERENT'}), ${test.examples} test images`);
  console.log(`Chart: ${chartPath}`);
  const seconds = (Date.now() - started) / 1000;
  console.log(`Done in ${seconds.toFixed(1)} s${seconds > 180 ? ' (over the 3 minutes this demo aims for: a slower machine or a busy CPU)' : ''}.`);
  if (!claim || test.after !== test.before) process.exitCode = 1;
} catch (err) {
  if (err instanceof ModelcError) {
    console.error(renderDiagnostics(err.diagnostics, { color: Boolean(process.stderr.isTTY) }));
    process.exit(1);
  }
  throw err;
}
