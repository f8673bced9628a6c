/**
 * The shapes of training data: where it comes from, what the model expects of
 * it, and the float32 arrays it is loaded into. Apart from index.ts so that
 * each loader can name them without importing the module that imports it.
 */
import type { LossName } from '../spec/training.js';

export type DataSource =
  | { kind: 'mnist' }
  | { kind: 'csv'; path: string; label: string } // --data file.csv --label <column>
  | { kind: 'npy'; x: string; y: string }; // --data x.npy --labels y.npy

export interface Target {
  /** Per-example input shape of the model, e.g. [28, 28, 1], [784] or [16]. */
  inputShape: readonly number[];
  /** Floats per example of the model output, e.g. 10. */
  outputSize: number;
  loss: LossName;
}

/** x: count * prod(inputShape) floats; y: count * labelSize floats. */
export interface Dataset {
  x: Float32Array;
  y: Float32Array;
  count: number;
}

export interface LoadedData {
  train: Dataset;
  /** Only MNIST comes with a held-out test split. */
  test?: Dataset;
  /** Floats of `y` per example: 1 for sparse_categorical_crossentropy, outputSize otherwise. */
  labelSize: number;
  /** One line for the CLI. */
  description: string;
}
