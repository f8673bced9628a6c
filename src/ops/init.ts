/**
 * Initializers, with Keras names. A spec gives an initializer as a name
 * (`"glorot_uniform"`) or as an object with its arguments
 * (`{"type": "random_normal", "stddev": 0.1}`). Their sampling semantics come
 * with the weights issue; here they are part of each parameter's declaration.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { InitSpec } from '../ir/graph.js';

export const initializerNames = [
  'zeros',
  'ones',
  'constant',
  'uniform',
  'random_uniform',
  'random_normal',
  'truncated_normal',
  'glorot_uniform',
  'glorot_normal',
  'he_uniform',
  'he_normal',
  'lecun_uniform',
  'lecun_normal',
] as const;

const InitializerName = Type.Union(
  initializerNames.map((n) => Type.Literal(n)),
  { description: 'a Keras initializer name' },
);

const initializerForms = () => [
    InitializerName,
    Type.Object(
      {
        type: InitializerName,
        value: Type.Optional(Type.Number({ description: 'constant: the value' })),
        minval: Type.Optional(Type.Number({ description: 'random_uniform: lower bound' })),
        maxval: Type.Optional(Type.Number({ description: 'random_uniform: upper bound' })),
        mean: Type.Optional(Type.Number({ description: 'random_normal, truncated_normal: mean' })),
        stddev: Type.Optional(Type.Number({ description: 'random_normal, truncated_normal: standard deviation' })),
        seed: Type.Optional(Type.Integer({ description: 'a per-initializer seed' })),
      },
      { additionalProperties: false, title: 'an initializer' },
    ),
  ];

const initializerDescription = 'an initializer: a name, or {"type": name, ...arguments}';
export const Initializer = Type.Union(initializerForms(), { description: initializerDescription });
export type Initializer = Static<typeof Initializer>;

/** An initializer attribute with a Keras default. */
export function initializer(defaultName: (typeof initializerNames)[number]) {
  return Type.Union(initializerForms(), { description: initializerDescription, default: defaultName });
}

/** The IR form of a spec initializer. */
export function initSpec(init: Initializer): InitSpec {
  if (typeof init === 'string') return { type: init, args: {} };
  const { type, ...args } = init;
  return { type, args: args as Record<string, number> };
}
