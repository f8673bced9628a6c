/**
 * Experiment `learning-rate`: "batch normalization lets you use much higher
 * learning rates" (seeds 001, 002, 004; Ioffe & Szegedy 2015, section 3.3),
 * and where BN goes relative to the activation (seed 004 discusses both).
 *
 * One MLP (784-100-100-10) in six variants: activation relu or sigmoid, and
 * no BN, BN before the activation, or BN after it. Each variant trains with
 * plain SGD at every learning rate of a sweep from 0.003 to 3 for the same
 * epochs on the same digits, seed and initial weights; the held-out accuracy
 * of each run makes one curve per variant. A run "trains" at a rate when it
 * does not diverge and reaches the accuracy threshold on the held-out digits.
 * Every run that did not diverge is folded (BN before the activation folds
 * into the dense layer before it, BN after it folds forward into the next
 * dense layer) and the folded module's held-out accuracy must equal the
 * Trainer's.
 */
import type { TopLevelSpec } from 'vega-lite';
import { accuracy, breathe, firstExamples, foldedPredict, mnistDigits, percent, trainerClass } from './harness.js';
import type { Experiment, ExperimentContext, ExperimentResult } from './types.js';

const rates = [0.003, 0.01, 0.03, 0.1, 0.3, 1, 3];
/** The hidden activations compared, and why each is in the sweep. */
const activationWhy = {
  relu: 'the usual hidden activation today',
  sigmoid: "the paper's activation, which saturates at high rates without BN",
} as const;
const activations = Object.keys(activationWhy) as (keyof typeof activationWhy)[];
const placements = ['none', 'before', 'after'] as const;
type Placement = (typeof placements)[number];
/** Held-out accuracy a run must reach to count as trained. */
const threshold = 0.9;

/** The variant as a `.nn` spec. */
export function mlpSpec(name: string, activation: string, placement: Placement): string {
  const hidden = (units: number) => {
    const dense = `  dense(${units})`;
    const act = `  ${activation}`;
    if (placement === 'before') return [dense, '  batchnorm', act];
    if (placement === 'after') return [dense, act, '  batchnorm'];
    return [dense, act];
  };
  return [
    `model ${name} {`,
    '  input image: [28, 28, 1]',
    '  flatten',
    ...hidden(100),
    ...hidden(100),
    '  dense(10, activation: softmax)',
    '  train {',
    '    loss: categorical_crossentropy',
    '    optimizer: sgd(learning_rate: 0.01)',
    '    metrics: [accuracy]',
    '  }',
    '}',
    '',
  ].join('\n');
}

interface Run {
  activation: string;
  placement: Placement;
  variant: string;
  rate: number;
  diverged: boolean;
  /** Held-out accuracy of the Trainer (inference mode), and of the folded module. */
  accuracy: number;
  folded: number | null;
  finalLoss: number;
}

function label(activation: string, placement: Placement): string {
  return placement === 'none' ? `${activation}, no BN` : `${activation}, BN ${placement} ${activation}`;
}

export const learningRate: Experiment = {
  name: 'learning-rate',
  title: 'Learning-rate sweep, BN before and after the activation',
  claim: 'Batch normalization lets a network train at much higher learning rates (seeds 001, 002, 004).',
  charts: ['accuracy-by-learning-rate'],
  async run(ctx: ExperimentContext): Promise<ExperimentResult> {
    const { train: allTrain, test } = mnistDigits();
    const train = firstExamples(allTrain, Math.max(256, Math.round(allTrain.count * ctx.scale)));
    const epochs = 2;
    const batchSize = 32;
    const runs: Run[] = [];
    const total = activations.length * placements.length * rates.length;
    for (const activation of activations) {
      for (const placement of placements) {
        const name = `mlp_${activation}_${placement === 'none' ? 'no_bn' : `bn_${placement}`}`;
        const source = mlpSpec(name, activation, placement);
        const Trainer = await trainerClass(source, name);
        for (const rate of rates) {
          ctx.progress(runs.length, total, `${label(activation, placement)}, learning rate ${rate}`);
          await breathe();
          const trainer = new Trainer({ seed: ctx.seed, learningRate: rate });
          let diverged = false;
          let finalLoss = NaN;
          try {
            const { history } = trainer.fit(train.x, train.y, { epochs, batchSize });
            finalLoss = history['loss']!.at(-1)!;
          } catch {
            diverged = true; // a non-finite loss or weight: the Trainer stops with its last finite weights
          }
          // a diverged run is measured as it stopped (its last finite weights); the chart marks it
          const acc = accuracy(trainer.predict(test.x, 500), test.y);
          let folded: number | null = null;
          if (!diverged) folded = accuracy((await foldedPredict(source, name, trainer.saveWeights()))(test.x, test.count), test.y);
          runs.push({ activation, placement, variant: label(activation, placement), rate, diverged, accuracy: acc, folded, finalLoss });
        }
      }
    }
    ctx.progress(total, total, 'done');

    const trains = (r: Run) => !r.diverged && r.accuracy >= threshold;
    const largest = (activation: string, placement: Placement) => {
      const ok = runs.filter((r) => r.activation === activation && r.placement === placement && trains(r));
      return ok.length === 0 ? null : Math.max(...ok.map((r) => r.rate));
    };
    const best = (activation: string, placement: Placement) => runs.filter((r) => r.activation === activation && r.placement === placement).reduce((a, b) => (b.accuracy > a.accuracy ? b : a));
    const rows = activations.flatMap((a) => placements.map((p) => ({ variant: label(a, p), activation: a, placement: p, largest: largest(a, p), best: best(a, p) })));

    const table = [
      `| variant | ${rates.map((r) => `lr ${r}`).join(' | ')} | largest rate that trains | best |`,
      `|---|${rates.map(() => '---:').join('|')}|---:|---:|`,
      ...rows.map((row) => {
        const cells = rates.map((rate) => {
          const r = runs.find((x) => x.variant === row.variant && x.rate === rate)!;
          return r.diverged ? 'diverged' : percent(r.accuracy);
        });
        return `| ${row.variant} | ${cells.join(' | ')} | ${row.largest ?? 'none'} | ${percent(row.best.accuracy)} at ${row.best.rate} |`;
      }),
    ].join('\n');

    const claims = activations.map((a) => {
      const none = largest(a, 'none') ?? 0;
      const withBn = Math.max(largest(a, 'before') ?? 0, largest(a, 'after') ?? 0);
      return { activation: a, none, withBn, holds: withBn > none };
    });
    const foldChecks = runs.filter((r) => !r.diverged).map((r) => ({ what: `${r.variant} at ${r.rate}: folded accuracy ${percent(r.folded!)} equals unfolded ${percent(r.accuracy)}`, ok: r.folded === r.accuracy }));
    const unequal = foldChecks.filter((c) => !c.ok);

    const summary = [
      `MLP 784-100-100-10 on ${train.count} MNIST digits, ${epochs} epochs of plain SGD at batch ${batchSize}, seed ${ctx.seed}, the same initial weights for every rate; held-out accuracy on the ${test.count} test digits (inference mode). A run *trains* when it does not diverge and reaches ${percent(threshold)}.`,
      '',
      table,
      '',
      ...claims.map((c) => `- ${c.activation} (${activationWhy[c.activation]}): the largest rate that trains is ${c.none || 'none'} without BN and ${c.withBn || 'none'} with BN (either placement): ${c.holds ? '**BN allows a higher learning rate.**' : '**not reproduced here**: BN does not allow a higher rate.'}`),
      `- Folding: ${foldChecks.length - unequal.length} of ${foldChecks.length} runs that did not diverge have the same held-out accuracy after folding (BN before the activation folds into the dense layer before it; BN after the activation folds forward into the next dense layer).${unequal.length ? ` Not equal: ${unequal.map((u) => u.what).join('; ')}.` : ''}`,
    ].join('\n');

    const chart: TopLevelSpec = {
      title: `Held-out accuracy after ${epochs} epochs of SGD, by learning rate`,
      data: { values: runs.map((r) => ({ ...r, BN: r.placement === 'none' ? 'no BN' : `BN ${r.placement} the activation`, outcome: r.diverged ? 'diverged' : 'finished' })) },
      facet: { column: { field: 'activation', type: 'nominal', title: null, sort: [...activations] } },
      spec: {
        width: 300,
        height: 230,
        layer: [
          {
            mark: { type: 'line', point: false },
            encoding: {
              x: { field: 'rate', type: 'quantitative', scale: { type: 'log', domain: [0.002, 5] }, title: 'learning rate (log scale)' },
              y: { field: 'accuracy', type: 'quantitative', scale: { domain: [0, 1] }, title: 'held-out accuracy' },
              color: { field: 'BN', type: 'nominal', sort: ['no BN', 'BN before the activation', 'BN after the activation'] },
            },
          },
          {
            mark: { type: 'point', filled: true, size: 50 },
            encoding: {
              x: { field: 'rate', type: 'quantitative', scale: { type: 'log', domain: [0.002, 5] } },
              y: { field: 'accuracy', type: 'quantitative' },
              color: { field: 'BN', type: 'nominal', sort: ['no BN', 'BN before the activation', 'BN after the activation'] },
              shape: { field: 'outcome', type: 'nominal', scale: { domain: ['finished', 'diverged'], range: ['circle', 'cross'] }, title: null },
            },
          },
          { mark: { type: 'rule', strokeDash: [4, 4], color: 'gray' }, encoding: { y: { datum: threshold } } },
        ],
      },
      config: { font: 'sans-serif', background: 'white', legend: { labelLimit: 260 } },
    };

    return {
      summary,
      charts: [{ name: 'accuracy-by-learning-rate', spec: chart }],
      data: { epochs, batchSize, examples: train.count, threshold, rates, runs, largest: rows.map((r) => ({ variant: r.variant, largest: r.largest })), claims },
      checks: foldChecks,
    };
  },
};
