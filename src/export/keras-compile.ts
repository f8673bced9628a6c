/**
 * A spec's training block as Keras 3's `compile_config`, so the exported
 * model loads compiled with the same loss, optimizer and metrics. modelc's
 * loss, metric and optimizer names and arguments are Keras's (its defaults
 * too), so the translation is names to classes. Batch size and epochs are
 * arguments of Keras's `fit`, not of the model: the archive has no place for
 * them.
 */
import { resolveOptimizer, type ResolvedOptimizer } from '../autodiff/optimizers.js';
import type { TrainingSpec } from '../frontend/spec.js';
import { pyFloat } from '../ops/keras-export-def.js';

const optimizerClasses: Readonly<Record<string, string>> = { sgd: 'SGD', adam: 'Adam', adamw: 'AdamW', rmsprop: 'RMSprop' };

export interface KerasCompile {
  readonly config: Record<string, unknown>;
  /** The optimizer's Keras name and learning rate (its variables in the weights file). */
  readonly optimizer: KerasOptimizerState;
}

/**
 * What the weights file holds for an optimizer that has not taken a step
 * yet, as Keras builds it on load: iterations, the learning rate, then zero
 * slots, in passes over the model's trainable variables; a pass adds its
 * slots for each variable in turn (Adam: momentum, velocity, momentum,
 * velocity, ...), as Keras's `add_optimizer_variables` interleaves them.
 */
export interface KerasOptimizerState {
  readonly name: string;
  readonly learningRate: number;
  readonly slotPasses: readonly (readonly string[])[];
}

function slotPasses(o: ResolvedOptimizer): string[][] {
  switch (o.type) {
    case 'sgd':
      return o.momentum > 0 ? [['momentum']] : [];
    case 'adam':
    case 'adamw':
      return [['momentum', 'velocity'], ...(o.amsgrad ? [['velocity_hat']] : [])];
    case 'rmsprop':
      return [['velocity'], ...(o.momentum > 0 ? [['momentum']] : []), ...(o.centered ? [['average_gradient']] : [])];
  }
}

export function kerasCompileConfig(training: TrainingSpec): KerasCompile {
  const resolved = resolveOptimizer(training.optimizer);
  const { type, ...args } = resolved;
  const optimizer = {
    module: 'keras.optimizers',
    class_name: optimizerClasses[type]!,
    // Keras's optimizers check their float arguments' type
    config: { name: type, ...Object.fromEntries(Object.entries(args).map(([k, v]) => [k, typeof v === 'number' ? pyFloat(v) : v])) },
    registered_name: null,
  };
  return {
    config: {
      optimizer,
      loss: training.loss,
      loss_weights: null,
      metrics: training.metrics ?? null,
      weighted_metrics: null,
      run_eagerly: false,
      steps_per_execution: 1,
      jit_compile: false,
    },
    optimizer: { name: type, learningRate: args.learning_rate, slotPasses: slotPasses(resolved) },
  };
}
