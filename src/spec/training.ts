/**
 * The spec's training block (loss, optimizer, batch size, epochs) as TypeBox
 * schemas, which are also its TypeScript types. It sits at the bottom of the
 * layering and imports nothing from src/: the frontend builds the model
 * schema on it, the autodiff reads it, and the `loss` op takes its kinds from
 * `lossNames`, so a loss is named in one place. Keras's other names for
 * losses, metrics and optimizers are listed here too; frontend/keras-names.ts
 * resolves them to these before a spec is validated.
 */
import { Type, type Static, type TProperties } from '@sinclair/typebox';

/** The Keras losses a `train` block may name. */
export const lossNames = [
  'binary_crossentropy',
  'categorical_crossentropy',
  'sparse_categorical_crossentropy',
  'mse',
  'mae',
] as const;
export type LossName = (typeof lossNames)[number];

/**
 * Keras's other names for the losses above (`keras.losses.get` accepts
 * each): its function names, class names and short forms. `fmt` prints the
 * canonical name.
 */
export const lossAliases: Readonly<Record<string, LossName>> = {
  BinaryCrossentropy: 'binary_crossentropy',
  bce: 'binary_crossentropy',
  BCE: 'binary_crossentropy',
  CategoricalCrossentropy: 'categorical_crossentropy',
  SparseCategoricalCrossentropy: 'sparse_categorical_crossentropy',
  mean_squared_error: 'mse',
  MeanSquaredError: 'mse',
  MSE: 'mse',
  mean_absolute_error: 'mae',
  MeanAbsoluteError: 'mae',
  MAE: 'mae',
};

/** Keras losses modelc does not compute, by the names a user types, with Keras's full name. */
export const kerasOnlyLosses: Readonly<Record<string, string>> = {
  mape: 'mean_absolute_percentage_error',
  MAPE: 'mean_absolute_percentage_error',
  mean_absolute_percentage_error: 'mean_absolute_percentage_error',
  msle: 'mean_squared_logarithmic_error',
  MSLE: 'mean_squared_logarithmic_error',
  mean_squared_logarithmic_error: 'mean_squared_logarithmic_error',
  kld: 'kl_divergence',
  kl_divergence: 'kl_divergence',
  ...Object.fromEntries(
    ['hinge', 'squared_hinge', 'categorical_hinge', 'huber', 'log_cosh', 'poisson', 'cosine_similarity', 'binary_focal_crossentropy', 'categorical_focal_crossentropy', 'ctc', 'dice', 'tversky', 'circle'].map((n) => [n, n]),
  ),
};

/** The metrics a `train` block may name: Keras's "accuracy", whose kind the loss chooses. */
export const metricNames = ['accuracy'] as const;
export type MetricName = (typeof metricNames)[number];

/**
 * Keras's names for the accuracy modelc computes: `acc` always; a named
 * kind only with the loss that makes "accuracy" that kind (Keras's choice,
 * `accuracyKind` in autodiff/loss.ts), since modelc computes one accuracy.
 */
export const metricAliases: Readonly<Record<string, { readonly loss?: LossName }>> = {
  acc: {},
  binary_accuracy: { loss: 'binary_crossentropy' },
  BinaryAccuracy: { loss: 'binary_crossentropy' },
  categorical_accuracy: { loss: 'categorical_crossentropy' },
  CategoricalAccuracy: { loss: 'categorical_crossentropy' },
  sparse_categorical_accuracy: { loss: 'sparse_categorical_crossentropy' },
  SparseCategoricalAccuracy: { loss: 'sparse_categorical_crossentropy' },
};

/** Keras metrics modelc does not compute (no did-you-mean: they are not typos of 'accuracy'). */
export const kerasOnlyMetrics: readonly string[] = [
  'top_k_categorical_accuracy', 'TopKCategoricalAccuracy', 'sparse_top_k_categorical_accuracy', 'SparseTopKCategoricalAccuracy',
  'Accuracy', 'mse', 'mae', 'mape', 'msle', 'mean_squared_error', 'mean_absolute_error', 'root_mean_squared_error', 'auc', 'AUC',
  'precision', 'Precision', 'recall', 'Recall', 'f1_score', 'F1Score', 'binary_crossentropy', 'categorical_crossentropy',
  'sparse_categorical_crossentropy', 'cosine_similarity', 'r2_score', 'mean_io_u', 'MeanIoU',
];

const lr = (d: number) => Type.Optional(Type.Number({ exclusiveMinimum: 0, default: d }));
/** Keras's optimizer arguments and their defaults, which `resolveOptimizer` fills in. */
const optimizerForms = {
  sgd: { learning_rate: lr(0.01), momentum: Type.Optional(Type.Number({ minimum: 0, default: 0 })), nesterov: Type.Optional(Type.Boolean({ default: false })) },
  adam: { learning_rate: lr(0.001), beta_1: Type.Optional(Type.Number({ default: 0.9 })), beta_2: Type.Optional(Type.Number({ default: 0.999 })), epsilon: Type.Optional(Type.Number({ default: 1e-7 })), amsgrad: Type.Optional(Type.Boolean({ default: false })) },
  adamw: { learning_rate: lr(0.001), weight_decay: Type.Optional(Type.Number({ default: 0.004 })), beta_1: Type.Optional(Type.Number({ default: 0.9 })), beta_2: Type.Optional(Type.Number({ default: 0.999 })), epsilon: Type.Optional(Type.Number({ default: 1e-7 })), amsgrad: Type.Optional(Type.Boolean({ default: false })) },
  rmsprop: { learning_rate: lr(0.001), rho: Type.Optional(Type.Number({ default: 0.9 })), momentum: Type.Optional(Type.Number({ default: 0 })), epsilon: Type.Optional(Type.Number({ default: 1e-7 })), centered: Type.Optional(Type.Boolean({ default: false })) },
} satisfies Record<string, TProperties>;

export const optimizerNames = Object.keys(optimizerForms) as (keyof typeof optimizerForms)[];
export type OptimizerName = (typeof optimizerNames)[number];

/**
 * An optimizer name as Keras reads it: case does not matter
 * (`optimizers.get` accepts `sgd`, `SGD`, `Adam`, `RMSprop`, `ADAM`).
 */
export function optimizerNamed(name: string): OptimizerName | undefined {
  const lower = name.toLowerCase();
  return optimizerNames.find((n) => n === lower);
}

/** Keras optimizers modelc does not have (lowercase, as `optimizerNamed` compares). */
export const kerasOnlyOptimizers: readonly string[] = ['adadelta', 'adafactor', 'adagrad', 'adamax', 'ftrl', 'lion', 'nadam', 'lamb', 'muon'];

/** An optimizer by name (Keras defaults) or as `{ type, ...arguments }`. */
export const OptimizerSpec = Type.Union([
  Type.Union(optimizerNames.map((n) => Type.Literal(n)), { description: 'an optimizer with Keras defaults' }),
  ...optimizerNames.map((n) =>
    Type.Object({ type: Type.Literal(n), ...optimizerForms[n] }, { additionalProperties: false, title: `optimizer '${n}'` }),
  ),
]);
export type OptimizerSpec = Static<typeof OptimizerSpec>;

/**
 * A name the schema accepts: modelc's and Keras's (editors see them all);
 * typed as modelc's, since frontend/keras-names.ts resolves the others before
 * a spec is validated.
 */
function acceptedNames<T extends string>(names: readonly string[]) {
  return Type.Unsafe<T>(Type.Union(names.map((n) => Type.Literal(n))));
}

export const TrainingSpec = Type.Object(
  {
    loss: acceptedNames<LossName>([...lossNames, ...Object.keys(lossAliases)]),
    optimizer: OptimizerSpec,
    metrics: Type.Optional(Type.Array(acceptedNames<MetricName>([...metricNames, ...Object.keys(metricAliases)]))),
    batch_size: Type.Optional(Type.Integer({ minimum: 1, default: 32 })),
    epochs: Type.Optional(Type.Integer({ minimum: 1, default: 1 })),
  },
  { additionalProperties: false, title: 'the training block' },
);
export type TrainingSpec = Static<typeof TrainingSpec>;
