/**
 * The spec's training block (loss, optimizer, batch size, epochs) as TypeBox
 * schemas, which are also its TypeScript types. It sits at the bottom of the
 * layering and imports nothing from src/: the frontend builds the model
 * schema on it, the autodiff reads it, and the `loss` op takes its kinds from
 * `lossNames`, so a loss is named in one place.
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

const lr = (d: number) => Type.Optional(Type.Number({ exclusiveMinimum: 0, default: d }));
/** Keras's optimizer arguments and their defaults, which `resolveOptimizer` fills in. */
const optimizerForms = {
  sgd: { learning_rate: lr(0.01), momentum: Type.Optional(Type.Number({ minimum: 0, default: 0 })), nesterov: Type.Optional(Type.Boolean({ default: false })) },
  adam: { learning_rate: lr(0.001), beta_1: Type.Optional(Type.Number({ default: 0.9 })), beta_2: Type.Optional(Type.Number({ default: 0.999 })), epsilon: Type.Optional(Type.Number({ default: 1e-7 })), amsgrad: Type.Optional(Type.Boolean({ default: false })) },
  adamw: { learning_rate: lr(0.001), weight_decay: Type.Optional(Type.Number({ default: 0.004 })), beta_1: Type.Optional(Type.Number({ default: 0.9 })), beta_2: Type.Optional(Type.Number({ default: 0.999 })), epsilon: Type.Optional(Type.Number({ default: 1e-7 })), amsgrad: Type.Optional(Type.Boolean({ default: false })) },
  rmsprop: { learning_rate: lr(0.001), rho: Type.Optional(Type.Number({ default: 0.9 })), momentum: Type.Optional(Type.Number({ default: 0 })), epsilon: Type.Optional(Type.Number({ default: 1e-7 })), centered: Type.Optional(Type.Boolean({ default: false })) },
} satisfies Record<string, TProperties>;

export const optimizerNames = Object.keys(optimizerForms) as (keyof typeof optimizerForms)[];

/** An optimizer by name (Keras defaults) or as `{ type, ...arguments }`. */
export const OptimizerSpec = Type.Union([
  Type.Union(optimizerNames.map((n) => Type.Literal(n)), { description: 'an optimizer with Keras defaults' }),
  ...optimizerNames.map((n) =>
    Type.Object({ type: Type.Literal(n), ...optimizerForms[n] }, { additionalProperties: false, title: `optimizer '${n}'` }),
  ),
]);
export type OptimizerSpec = Static<typeof OptimizerSpec>;

export const TrainingSpec = Type.Object(
  {
    loss: Type.Union(lossNames.map((n) => Type.Literal(n))),
    optimizer: OptimizerSpec,
    metrics: Type.Optional(Type.Array(Type.Literal('accuracy'))),
    batch_size: Type.Optional(Type.Integer({ minimum: 1, default: 32 })),
    epochs: Type.Optional(Type.Integer({ minimum: 1, default: 1 })),
  },
  { additionalProperties: false, title: 'the training block' },
);
export type TrainingSpec = Static<typeof TrainingSpec>;
