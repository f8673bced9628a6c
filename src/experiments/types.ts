/**
 * The shape of an experiment: a named, seeded run that trains generated
 * modules on MNIST and returns its measured numbers as a markdown summary,
 * Vega-Lite charts and a JSON record. `runner.ts` writes them out.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { Progress } from './harness.js';

export interface ExperimentContext {
  /** Called as work completes (the CLI draws a progress bar from it). */
  readonly progress: Progress;
  /** Seed of the initial weights and shuffling. */
  readonly seed: number;
  /**
   * Fraction of the full run's training examples and steps (1: the run
   * docs/experiments.md shows; tests use a small one). Never changes what is
   * compared, only how long each side trains.
   */
  readonly scale: number;
}

export interface ExperimentChart {
  /** File stem: `<name>.svg` and `<name>.png`. */
  readonly name: string;
  readonly spec: TopLevelSpec;
}

export interface ExperimentResult {
  /** Markdown: what ran, the measured numbers, and whether the seed's claim held. */
  readonly summary: string;
  readonly charts: readonly ExperimentChart[];
  /** Every measured number, for results.json. */
  readonly data: Record<string, unknown>;
  /** Checks the experiment makes of itself (e.g. folded accuracy equals unfolded): all must hold. */
  readonly checks: readonly { readonly what: string; readonly ok: boolean }[];
}

export interface Experiment {
  readonly name: string;
  readonly title: string;
  /** One line: the claim the experiment measures and where it comes from. */
  readonly claim: string;
  /** The file stems of the charts it draws (known before it runs, so that a bad output folder fails first). */
  readonly charts: readonly string[];
  run(context: ExperimentContext): Promise<ExperimentResult>;
}
