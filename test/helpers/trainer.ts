/**
 * Building and loading generated training modules in tests: a spec object
 * (JSON form) or a spec file, seeded initial weights, the training program,
 * the generated module imported as a user would.
 */
import { buildTrainingProgram, type TrainingOptions, type TrainingProgram } from '../../src/autodiff/training.js';
import { generateTrainingModule } from '../../src/codegen/index.js';
import { lowerFile } from '../../src/frontend/load.js';
import type { TrainingSpec } from '../../src/frontend/spec.js';
import type { Graph } from '../../src/ir/graph.js';
import { materialize } from '../../src/ops/init.js';
import { importModule } from './generated.js';
import { lowerJson, type JsonSpec } from './graphs.js';
import { rng } from './tensors.js';

export interface Logs {
  loss: number;
  accuracy?: number;
  val_loss?: number;
  val_accuracy?: number;
}

export interface FitOptions {
  epochs: number;
  batchSize: number;
  shuffle?: boolean;
  validationData?: [Float32Array, Float32Array];
  onBatchEnd?: (batch: number, logs: Logs) => void;
  onEpochEnd?: (epoch: number, logs: Logs) => void;
}

/** The contract of every generated training module. */
export interface TrainerInstance {
  trainOnBatch(x: Float32Array, y: Float32Array, batchSize: number): number;
  fit(x: Float32Array, y: Float32Array, options: FitOptions): { history: Record<string, number[]> };
  fitAsync(x: Float32Array, y: Float32Array, options: FitOptions & { signal?: { readonly aborted: boolean } }): Promise<{ history: Record<string, number[]>; stopped: boolean }>;
  evaluate(x: Float32Array, y: Float32Array, batchSize: number): { loss: number; accuracy?: number };
  predict(x: Float32Array, batchSize: number): Float32Array;
  getWeights(): Record<string, Float32Array>;
  setWeights(weights: Record<string, Float32Array>): void;
  saveWeights(): Uint8Array;
  learningRate: number;
}

export interface TrainingModule {
  readonly Trainer: new (options?: { seed?: number; weights?: Uint8Array | Record<string, Float32Array>; learningRate?: number }) => TrainerInstance;
}

export interface Built {
  readonly graph: Graph;
  readonly program: TrainingProgram;
  readonly module: TrainingModule;
  readonly ts: string;
}

/** A graph with seeded weights and its training block, from a JSON spec object or a spec file path. */
export function trainableGraph(spec: JsonSpec | string, seed = 1): { graph: Graph; training: TrainingSpec } {
  if (typeof spec === 'string') {
    const c = lowerFile(spec);
    return { graph: materialize(c.graph, seed), training: c.spec.training! };
  }
  const { graph } = lowerJson(spec);
  return { graph: materialize(graph, seed), training: spec['training'] as TrainingSpec };
}

export async function buildTrainer(spec: JsonSpec | string, options: TrainingOptions & { seed?: number } = {}): Promise<Built> {
  const { graph, training } = trainableGraph(spec, options.seed);
  const program = buildTrainingProgram(graph, training, options);
  const mod = await generateTrainingModule(program, { name: graph.name });
  return { graph, program, module: await importModule<TrainingModule>(mod.js, `${graph.name}.train`), ts: mod.ts };
}

/** Seeded values in [-1, 1). */
export function seededData(length: number, seed: number): Float32Array {
  const next = rng(seed);
  return Float32Array.from({ length }, () => next() * 2 - 1);
}

/** One-hot rows of `classes` for `count` examples, class = a seeded function of the example. */
export function oneHot(count: number, classes: number, seed: number): Float32Array {
  const y = new Float32Array(count * classes);
  const u = seededData(count, seed);
  for (let i = 0; i < count; i++) y[i * classes + Math.min(classes - 1, Math.floor(((u[i]! + 1) / 2) * classes))] = 1;
  return y;
}
