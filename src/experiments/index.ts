/**
 * The batch-normalization experiments by name, and the runner that writes
 * each one's results: `<out>/<name>/summary.md` (the measured numbers and
 * whether the seed's claim held), `results.json` (every number), and each
 * chart as `<chart>.svg` and `<chart>.png`. `modelc experiments <name>` and
 * `npm run experiments -- <name>` call `runExperiment`.
 */
import { renderVegaLite, svgToPng } from '../report/chart.js';
import { checkOutputDirectory, writeIntoDirectory } from '../util/fs.js';
import { ics } from './ics.js';
import { insertBn } from './insert-bn.js';
import { learningRate } from './learning-rate.js';
import { renorm } from './renorm.js';
import type { Progress } from './harness.js';
import type { Experiment, ExperimentResult } from './types.js';

export type { Experiment, ExperimentContext, ExperimentResult, ExperimentChart } from './types.js';

/** Every experiment, in the order `modelc experiments all` runs them. */
export const experiments: readonly Experiment[] = [ics, learningRate, renorm, insertBn];

export function experimentNames(): string[] {
  return experiments.map((e) => e.name);
}

export interface RunOptions {
  /** Folder for this experiment's files (created if missing). */
  readonly output: string;
  readonly seed?: number;
  /** Fraction of the full run's data and steps (default 1). */
  readonly scale?: number;
  readonly progress?: Progress;
}

export interface RunResult extends ExperimentResult {
  readonly files: string[];
  readonly seconds: number;
}

/** Runs one experiment and writes its files into `options.output`. */
export async function runExperiment(experiment: Experiment, options: RunOptions): Promise<RunResult> {
  const started = performance.now();
  checkOutputDirectory(options.output, ['summary.md', 'results.json', ...experiment.charts.flatMap((c) => [`${c}.svg`, `${c}.png`])]);
  const result = await experiment.run({ progress: options.progress ?? (() => {}), seed: options.seed ?? 1, scale: options.scale ?? 1 });
  const seconds = (performance.now() - started) / 1000;
  const files: [string, string | Uint8Array][] = [];
  const images: string[] = [];
  for (const chart of result.charts) {
    const svg = await renderVegaLite(chart.spec);
    files.push([`${chart.name}.svg`, svg], [`${chart.name}.png`, await svgToPng(svg)]);
    images.push(`![${chart.name}](${chart.name}.png)`);
  }
  const failed = result.checks.filter((c) => !c.ok);
  const summary = [
    `# ${experiment.title}`,
    '',
    `Claim: ${experiment.claim}`,
    '',
    result.summary,
    '',
    ...images.flatMap((i) => [i, '']),
    `Checks: ${result.checks.length - failed.length} of ${result.checks.length} hold${failed.length ? ` (failed: ${failed.map((f) => f.what).join('; ')})` : ''}. ` +
      `Seed ${options.seed ?? 1}, scale ${options.scale ?? 1}, ${seconds.toFixed(0)} s.`,
    '',
  ].join('\n');
  files.push(['summary.md', summary], ['results.json', JSON.stringify({ experiment: experiment.name, seed: options.seed ?? 1, scale: options.scale ?? 1, seconds, checks: result.checks, ...result.data }, null, 2) + '\n']);
  return { ...result, summary, files: writeIntoDirectory(options.output, files), seconds };
}
