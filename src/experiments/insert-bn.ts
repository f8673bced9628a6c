/**
 * Experiment `insert-bn`: adding batch normalization to a trained network
 * without changing what it computes, fine-tuning it at a higher learning
 * rate, and folding BN away again (seed 004).
 *
 *   1. Train a small VGG-style CNN without BN (four 3x3 convolutions, two
 *      max-pools, two dense layers) for one epoch at learning rate 0.05.
 *   2. `insertBatchNorm` (what `modelc insert-bn` runs): a BN after every
 *      conv and the hidden dense layer, before its relu, its moving
 *      statistics from 1,000 calibration digits and gamma, beta set so that
 *      inference computes the same function. Checked: its predictions equal
 *      the original's within 1e-5.
 *   3. Fine-tune the BN model for one epoch at a 10x higher rate (0.5).
 *      Controls: the original without BN fine-tuned for the same epoch at
 *      0.5 and at 0.05, from the same weights, seed and batches. The claim
 *      holds when the BN model improves at 0.5 and the network without BN
 *      does worse than that at 0.5; how it compares with fine-tuning at
 *      the old rate is reported as measured.
 *   4. Precise BN: the moving statistics recomputed over the training digits
 *      with the final weights (`Trainer.recalibrate`), as `train --precise-bn`
 *      does before folding.
 *   5. Fold: the BN model's optimized inference module (-O) has the original
 *      architecture (no batchnorm left, the same conv and dense layers), and
 *      its held-out accuracy equals the Trainer's.
 */
import type { TopLevelSpec } from 'vega-lite';
import { compile } from '../compile/index.js';
import { insertBatchNorm } from '../compile/insert-bn.js';
import { withWeights } from '../compile/inputs.js';
import { SourceFile } from '../diagnostics/source.js';
import { readSafetensors } from '../formats/safetensors.js';
import { lowerLoaded, parseSpecSource } from '../frontend/load.js';
import type { ModelSpec } from '../frontend/spec.js';
import { accuracy, breathe, firstExamples, mnistDigits, percent, trainerClass, trainerClassOf, type Trainer } from './harness.js';
import type { Experiment, ExperimentContext, ExperimentResult } from './types.js';

export const vggSource = `# A small VGG-style CNN without batch normalization (the insert-bn experiment's pre-trained network).
model vgg_small {
  input image: [28, 28, 1]
  conv2d(8, 3, activation: relu)
  conv2d(8, 3, activation: relu)
  max_pool2d(2)
  conv2d(16, 3, activation: relu)
  conv2d(16, 3, activation: relu)
  max_pool2d(2)
  flatten
  dense(32, activation: relu)
  dense(10, activation: softmax)
  train {
    loss: categorical_crossentropy
    optimizer: sgd(learning_rate: 0.01)
    metrics: [accuracy]
  }
}
`;

function record(bytes: Uint8Array): Record<string, Float32Array> {
  return Object.fromEntries([...readSafetensors(bytes).tensors].map(([name, t]) => [name, t.data]));
}

/** The largest difference between two models' class probabilities. */
function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** The conv/dense/batchnorm op counts of an optimized inference graph: the deployed architecture. */
function architecture(nodes: readonly { op: string }[]): Record<string, number> {
  const count: Record<string, number> = {};
  for (const n of nodes) if (/^(conv2d|dense|batchnorm|affine)$/.test(n.op)) count[n.op] = (count[n.op] ?? 0) + 1;
  return count;
}

export const insertBn: Experiment = {
  name: 'insert-bn',
  title: 'Adding BN to a pre-trained CNN, fine-tuning at a higher rate, folding it away',
  claim: 'BN can be added to a trained network without changing its function, then lets it fine-tune at a higher learning rate, and folds away for deployment (seed 004).',
  charts: ['fine-tuning'],
  async run(ctx: ExperimentContext): Promise<ExperimentResult> {
    const { train: allTrain, test } = mnistDigits();
    const train = firstExamples(allTrain, Math.max(64, Math.round(allTrain.count * ctx.scale)));
    const calibration = firstExamples(allTrain, Math.max(32, Math.round(1000 * ctx.scale)));
    const batchSize = 32;
    // pre-training rate, and the 10x higher fine-tuning rate
    const low = 0.05;
    const high = 0.5;
    const steps = Math.ceil(train.count / batchSize);
    const total = 4 * steps;
    let done = 0;
    const heldOut = (t: Trainer) => accuracy(t.predict(test.x, 500), test.y);
    // the curves' checkpoints use the first 500 held-out digits (the table: all of them)
    const probe = firstExamples(test, 500);
    const probeAccuracy = (t: Trainer) => accuracy(t.predict(probe.x, 500), probe.y);
    /** One epoch; held-out accuracy at 8 checkpoints, as (step, accuracy) for the chart. */
    const epoch = async (t: Trainer, run: string, curve: { run: string; step: number; accuracy: number }[]) => {
      ctx.progress(done, total, run);
      await breathe();
      let step = 0;
      const every = Math.max(1, Math.floor(steps / 8));
      curve.push({ run, step: 0, accuracy: probeAccuracy(t) });
      t.fit(train.x, train.y, {
        epochs: 1,
        batchSize,
        onBatchEnd: () => {
          step++;
          done++;
          if (step % every === 0 || step === steps) curve.push({ run, step, accuracy: probeAccuracy(t) });
        },
      });
    };

    // 1. the pre-trained network
    const Plain = await trainerClass(vggSource, 'vgg_small');
    const pre = new Plain({ seed: ctx.seed, learningRate: low });
    const pretraining: { run: string; step: number; accuracy: number }[] = [];
    await epoch(pre, `pre-training without BN, lr ${low}`, pretraining);
    const pretrained = pre.saveWeights();
    const before = heldOut(pre);

    // 2. insert BN
    const loaded = parseSpecSource(new SourceFile('vgg_small.nn', vggSource));
    const graph = withWeights(lowerLoaded(loaded).graph, readSafetensors(pretrained).tensors);
    const inserted = await insertBatchNorm({ spec: loaded.spec, graph }, calibration.x, calibration.count);
    const WithBn = await trainerClassOf({ spec: inserted.spec as ModelSpec, path: 'vgg_small_bn.json' }, 'vgg_small_bn');
    const weightsWithBn = Object.fromEntries([...inserted.weights].map(([name, w]) => [name, w.data]));
    const bnModel = new WithBn({ seed: ctx.seed, learningRate: high, weights: weightsWithBn });
    const preserved = maxAbsDiff(pre.predict(test.x, 500), bnModel.predict(test.x, 500));
    const afterInsert = heldOut(bnModel);

    // 3. fine-tune: BN at the high rate; controls without BN at the high and the low rate, from the same weights and seed
    const curves: { run: string; step: number; accuracy: number }[] = [];
    await epoch(bnModel, `with inserted BN, lr ${high}`, curves);
    const controlHigh = new Plain({ seed: ctx.seed, learningRate: high, weights: record(pretrained) });
    await epoch(controlHigh, `without BN, lr ${high}`, curves);
    const controlLow = new Plain({ seed: ctx.seed, learningRate: low, weights: record(pretrained) });
    await epoch(controlLow, `without BN, lr ${low}`, curves);
    ctx.progress(total, total, 'folding');
    const tuned = heldOut(bnModel);
    const tunedHigh = heldOut(controlHigh);
    const tunedLow = heldOut(controlLow);
    // precise BN before folding (what train --precise-bn does): moving statistics recomputed over the training digits
    const movingStatistics = bnModel.getWeights();
    bnModel.recalibrate(train.x);
    const precise = heldOut(bnModel);
    const recalibrated = Object.keys(movingStatistics).filter((k) => /moving_(mean|variance)$/.test(k) && movingStatistics[k]!.some((v, i) => v !== bnModel.getWeights()[k]![i]));

    // 4. fold
    const folded = await compile({ spec: inserted.spec as ModelSpec, path: 'vgg_small_bn.json' }, { name: 'vgg_small_bn', emit: 'js', weights: readSafetensors(bnModel.saveWeights()).tensors });
    const foldedModule = (await import(`data:text/javascript;base64,${Buffer.from(folded.files.find((f) => f.path === 'vgg_small_bn.js')!.contents as string).toString('base64')}`)) as { predict: (x: Float32Array, n: number) => Float32Array };
    const foldedAccuracy = accuracy(foldedModule.predict(test.x, test.count), test.y);
    const original = await compile({ source: vggSource, path: 'vgg_small.nn' }, { name: 'vgg_small', emit: 'js', weights: readSafetensors(pretrained).tensors });
    const deployed = architecture(folded.optimized.nodes);
    const originalArchitecture = architecture(original.optimized.nodes);
    const sameArchitecture = JSON.stringify(deployed) === JSON.stringify(originalArchitecture);

    const rows: [string, number][] = [
      [`pre-trained without BN (1 epoch at ${low})`, before],
      [`BN inserted (${inserted.inserted.length} layers), before fine-tuning`, afterInsert],
      [`fine-tuned 1 epoch with the inserted BN at ${high}`, tuned],
      ['the same after precise BN (moving statistics recomputed over the training digits)', precise],
      ['the same, folded (deployed module)', foldedAccuracy],
      [`control: fine-tuned 1 epoch without BN at ${high}`, tunedHigh],
      [`control: fine-tuned 1 epoch without BN at ${low}`, tunedLow],
    ];
    const holds = tuned > before && tuned > tunedHigh;
    const summary = [
      `vgg_small (four 3x3 convolutions with relu, two max-pools, dense 32, dense 10) on ${train.count} MNIST digits, batch ${batchSize}, plain SGD, seed ${ctx.seed}; BN inserted after ${inserted.inserted.map((i) => i.after).join(', ')} with statistics of ${calibration.count} calibration digits; held-out accuracy on ${test.count} test digits.`,
      '',
      '| model | held-out accuracy |',
      '|---|---:|',
      ...rows.map(([what, a]) => `| ${what} | ${percent(a)} |`),
      '',
      `- Inserting BN changed the predicted class probabilities by at most ${preserved.toExponential(2)}: the same function in inference mode.`,
      holds
        ? `- **With the inserted BN the network fine-tunes at ${high}** (${percent(before)} -> ${percent(tuned)}), where without BN it does worse (${percent(tunedHigh)}).`
        : `- **Not reproduced here**: the BN model fine-tuned at ${high} (${percent(before)} -> ${percent(tuned)}) does not both improve and beat the network without BN at ${high} (${percent(tunedHigh)}).`,
      `- Against fine-tuning without BN at the old rate ${low} (${percent(tunedLow)}), the BN model at ${high} is ${tuned > tunedLow ? 'ahead' : tuned === tunedLow ? 'level' : 'behind'} by ${(Math.abs(tuned - tunedLow) * 100).toFixed(2)} points after this one epoch.`,
      `- Folded: the deployed module has ${JSON.stringify(deployed)} (the original: ${JSON.stringify(originalArchitecture)}), ${sameArchitecture ? 'the original architecture' : 'NOT the original architecture'}, and its accuracy ${foldedAccuracy === precise ? 'equals' : 'does NOT equal'} the Trainer's.`,
      `- Precise BN (\`Trainer.recalibrate\`, \`train --precise-bn\`) before folding: ${percent(tuned)} with the moving averages of fine-tuning, ${percent(precise)} with the statistics recomputed over the ${train.count} training digits.`,
    ].join('\n');

    const chart: TopLevelSpec = {
      title: 'Fine-tuning the pre-trained CNN for one epoch (first 500 held-out digits)',
      data: { values: curves },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'step', type: 'quantitative', title: 'fine-tuning step' },
        y: { field: 'accuracy', type: 'quantitative', scale: { zero: false }, title: 'held-out accuracy' },
        color: { field: 'run', type: 'nominal', title: null },
      },
      width: 420,
      height: 260,
      config: { font: 'sans-serif', background: 'white', legend: { labelLimit: 300, orient: 'bottom', direction: 'vertical' } },
    };
    return {
      summary,
      charts: [{ name: 'fine-tuning', spec: chart }],
      data: { examples: train.count, calibration: calibration.count, inserted: inserted.inserted, preserved, recalibrated, accuracies: Object.fromEntries(rows), pretraining, curves, deployed, originalArchitecture, holds },
      checks: [
        { what: `inserting BN preserves the predictions within 1e-5 (largest difference of a class probability ${preserved.toExponential(2)})`, ok: preserved <= 1e-5 },
        { what: `the folded module's accuracy ${percent(foldedAccuracy)} equals the Trainer's after precise BN ${percent(precise)}`, ok: foldedAccuracy === precise },
        { what: `precise BN changed the moving statistics of every inserted BN (${recalibrated.length / 2} of ${inserted.inserted.length})`, ok: recalibrated.length === 2 * inserted.inserted.length },
        { what: 'the folded module has the original architecture (no batchnorm, the same conv and dense layers)', ok: sameArchitecture },
      ],
    };
  },
};
