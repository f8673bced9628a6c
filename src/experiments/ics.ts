/**
 * Experiment `ics`: internal covariate shift, measured (seeds 001 and 003;
 * Ioffe & Szegedy 2015, Figure 1).
 *
 * The paper's network: 784-100-100-100-10, sigmoid hidden units, softmax
 * output, trained with plain SGD at batch 60, without BN and with a BN
 * before every sigmoid. Both start from the same initial weights (the BN
 * network's extra gamma = 1, beta = 0) and see the same batches.
 *
 *   (a) held-out accuracy against training steps, every 100 steps;
 *   (b, c) the 15th, 50th and 85th percentiles of the input of the last
 *       hidden layer's sigmoid, recorded by fit's `trace` every 100 steps
 *       (what `modelc train --trace last_sigmoid` writes into history.json).
 *
 * As in the paper the panels follow one sigmoid unit (the trace's `unit`
 * option; unit 0, chosen before any run): its input's percentiles over the
 * 60 examples of each training batch.
 *
 * How much the distribution moves is measured as the range each percentile
 * covers after the first 10% of the steps (the paper's "over the course of
 * training"), summed over the three percentiles.
 */
import type { TopLevelSpec } from 'vega-lite';
import { accuracy, breathe, firstExamples, mnistDigits, percent, trainerClass, type TraceSeries, type Trainer } from './harness.js';
import type { Experiment, ExperimentContext, ExperimentResult } from './types.js';

/** The traced layer: the last hidden layer's sigmoid, and the unit of it the panels follow. */
const traced = 'last_sigmoid';
const unit = 0;

/** The paper's network, with or without a batchnorm before each sigmoid, as a `.nn` spec. */
export function icsSpec(name: string, bn: boolean): string {
  const hidden = (last: boolean) => ['  dense(100)', ...(bn ? ['  batchnorm'] : []), last ? `  sigmoid(name: ${traced})` : '  sigmoid'];
  return [
    `model ${name} {`,
    '  input image: [28, 28, 1]',
    '  flatten',
    ...hidden(false),
    ...hidden(false),
    ...hidden(true),
    '  dense(10, activation: softmax)',
    '  train {',
    '    loss: categorical_crossentropy',
    '    optimizer: sgd(learning_rate: 0.1)',
    '    metrics: [accuracy]',
    '  }',
    '}',
    '',
  ].join('\n');
}

interface Variant {
  readonly name: string;
  readonly label: string;
  readonly bn: boolean;
}

const variants: readonly Variant[] = [
  { name: 'ics_no_bn', label: 'without BN', bn: false },
  { name: 'ics_bn', label: 'with BN', bn: true },
];

/** Sum over p15, p50 and p85 of the range each covers from step `from` on. */
function movement(series: TraceSeries, from: number): number {
  let total = 0;
  for (const p of [series.p15, series.p50, series.p85]) {
    const late = p.filter((_, k) => series.step[k]! >= from);
    total += Math.max(...late) - Math.min(...late);
  }
  return total;
}

/** The first step at which an accuracy curve reaches `level`, or undefined. */
function reaches(curve: readonly { step: number; accuracy: number }[], level: number): number | undefined {
  return curve.find((p) => p.accuracy >= level)?.step;
}

export const ics: Experiment = {
  name: 'ics',
  title: 'Internal covariate shift: the input of a sigmoid during training, with and without BN',
  claim: "Without BN the distribution of a sigmoid's input moves during training; with BN it stays stable and the network trains faster (Ioffe & Szegedy 2015, Figure 1).",
  charts: ['ics'],
  async run(ctx: ExperimentContext): Promise<ExperimentResult> {
    const { train: allTrain, test } = mnistDigits();
    const batchSize = 60;
    // whole batches of 60 only, as in the paper
    const train = firstExamples(allTrain, Math.floor(allTrain.count / batchSize) * batchSize);
    const stepsPerEpoch = train.count / batchSize;
    const epochs = Math.max(1, Math.round(40 * ctx.scale));
    const steps = epochs * stepsPerEpoch;
    const every = Math.max(1, Math.min(100, Math.floor(steps / 20)));
    const total = variants.length * steps;
    let done = 0;

    const runs: { variant: Variant; curve: { step: number; accuracy: number }[]; trace: TraceSeries; final: number }[] = [];
    for (const variant of variants) {
      const Trainer = await trainerClass(icsSpec(variant.name, variant.bn), variant.name);
      const trainer: Trainer = new Trainer({ seed: ctx.seed });
      const curve = [{ step: 0, accuracy: accuracy(trainer.predict(test.x, 500), test.y) }];
      const trace: TraceSeries = { step: [], p15: [], p50: [], p85: [] };
      let step = 0;
      for (let epoch = 0; epoch < epochs; epoch++) {
        ctx.progress(done, total, `${variant.label}, epoch ${epoch + 1} of ${epochs}`);
        await breathe();
        const result = trainer.fit(train.x, train.y, {
          epochs: 1,
          batchSize,
          trace: { layers: [traced], every, unit },
          onBatchEnd: () => {
            step++;
            done++;
            if (step % every === 0) curve.push({ step, accuracy: accuracy(trainer.predict(test.x, 500), test.y) });
          },
        });
        const series = result.trace![traced]!;
        trace.step.push(...series.step);
        trace.p15.push(...series.p15);
        trace.p50.push(...series.p50);
        trace.p85.push(...series.p85);
      }
      runs.push({ variant, curve, trace, final: curve[curve.length - 1]!.accuracy });
    }
    ctx.progress(total, total, 'done');

    const [plain, withBn] = runs as [(typeof runs)[0], (typeof runs)[0]];
    const from = Math.round(steps / 10);
    const moved = runs.map((r) => movement(r.trace, from));
    const level = 0.9;
    const reached = runs.map((r) => reaches(r.curve, level));
    const checkpoints = plain.curve.map((p, k) => ({ step: p.step, plain: p.accuracy, bn: withBn.curve[k]!.accuracy })).filter((p) => p.step > 0);
    const bnAhead = checkpoints.filter((p) => p.bn > p.plain).length;
    const faster = reached[1] !== undefined && (reached[0] === undefined || reached[1] < reached[0]);
    const stabler = moved[1]! < moved[0]!;
    const at = (series: TraceSeries, k: number) => `${series.p15[k]!.toFixed(2)} / ${series.p50[k]!.toFixed(2)} / ${series.p85[k]!.toFixed(2)}`;

    const summary = [
      `784-100-100-100-10 with sigmoid hidden units on ${train.count} MNIST digits, plain SGD at learning rate 0.1, batch ${batchSize}, ${steps} steps (${epochs} epochs), seed ${ctx.seed}, the same initial weights and batches for both; held-out accuracy on the ${test.count} test digits every ${every} steps; the trace of unit ${unit} of \`${traced}\` (the last hidden layer's sigmoid) every ${every} steps: the percentiles of its input over the ${batchSize} examples of the training batch, in training mode, as the paper plots one unit.`,
      '',
      `| network | accuracy after ${steps} steps | first step at ${percent(level)} | sigmoid input p15 / p50 / p85 at step 1 | at step ${plain.trace.step[plain.trace.step.length - 1]} | movement after step ${from} |`,
      '|---|---:|---:|---:|---:|---:|',
      ...runs.map((r, k) => `| ${r.variant.label} | ${percent(r.final)} | ${reached[k] ?? 'not reached'} | ${at(r.trace, 0)} | ${at(r.trace, r.trace.step.length - 1)} | ${moved[k]!.toFixed(2)} |`),
      '',
      `- Training speed: with BN the held-out accuracy is ahead at ${bnAhead} of ${checkpoints.length} checkpoints, and ${faster ? `**reaches ${percent(level)} first** (step ${reached[1]} against ${reached[0] ?? 'never'})` : `**does not reach ${percent(level)} first** (${reached[1] ?? 'never'} against ${reached[0] ?? 'never'}): not reproduced here`}.`,
      `- Distribution: after step ${from}, the three percentiles of the sigmoid input move by ${moved[0]!.toFixed(2)} in total without BN and ${moved[1]!.toFixed(2)} with BN: ${stabler ? '**more stable with BN**, as in the paper' : '**not more stable with BN here**: not reproduced'}.`,
      "- Movement = the sum over p15, p50, p85 of the range (largest minus smallest) each covers over the traced steps from that step on; 'movement' and the chart are of the training batches' inputs in training mode, as the paper plots them.",
    ].join('\n');

    const percentileRows = runs.flatMap((r) =>
      r.trace.step.flatMap((step, k) => [
        { network: r.variant.label, step, percentile: '85th', value: r.trace.p85[k]! },
        { network: r.variant.label, step, percentile: '50th', value: r.trace.p50[k]! },
        { network: r.variant.label, step, percentile: '15th', value: r.trace.p15[k]! },
      ]),
    );
    const values = percentileRows.map((p) => p.value);
    const domain = [Math.floor(Math.min(...values) * 2) / 2, Math.ceil(Math.max(...values) * 2) / 2];
    const accuracyRows = runs.flatMap((r) => r.curve.map((p) => ({ network: r.variant.label, step: p.step, accuracy: p.accuracy })));
    const panel = (variant: Variant, letter: string) => ({
      title: `(${letter}) input of one ${traced} unit, ${variant.label}`,
      data: { values: percentileRows.filter((p) => p.network === variant.label) },
      mark: { type: 'line' as const },
      encoding: {
        x: { field: 'step', type: 'quantitative' as const, title: 'training step' },
        y: { field: 'value', type: 'quantitative' as const, scale: { domain }, title: 'sigmoid input' },
        color: { field: 'percentile', type: 'nominal' as const, sort: ['85th', '50th', '15th'], title: 'percentile' },
      },
      width: 260,
      height: 220,
    });
    const chart: TopLevelSpec = {
      hconcat: [
        {
          title: '(a) held-out accuracy',
          data: { values: accuracyRows },
          mark: { type: 'line', clip: true },
          encoding: {
            x: { field: 'step', type: 'quantitative', title: 'training step' },
            y: { field: 'accuracy', type: 'quantitative', scale: { domain: [0.5, 1] }, title: 'held-out accuracy' },
            color: { field: 'network', type: 'nominal', title: null },
          },
          width: 260,
          height: 220,
        },
        panel(variants[0]!, 'b'),
        panel(variants[1]!, 'c'),
      ],
      resolve: { scale: { color: 'independent' } },
      config: { font: 'sans-serif', background: 'white' },
    };

    return {
      summary,
      charts: [{ name: 'ics', spec: chart }],
      data: { steps, every, batchSize, examples: train.count, curves: Object.fromEntries(runs.map((r) => [r.variant.label, r.curve])), trace: Object.fromEntries(runs.map((r) => [r.variant.label, r.trace])), movement: Object.fromEntries(runs.map((r, k) => [r.variant.label, moved[k]])), reached: Object.fromEntries(runs.map((r, k) => [r.variant.label, reached[k] ?? null])), faster, stabler },
      checks: runs.map((r) => ({ what: `${r.variant.label}: the trace has one point every ${every} steps from step 1 (${r.trace.step.length} points)`, ok: r.trace.step.length === Math.ceil(steps / every) && r.trace.step.every((s, k) => s === 1 + k * every) })),
    };
  },
};
