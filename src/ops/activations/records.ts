/**
 * The one list of activation functions, in the order the vocabulary lists
 * them (docs, schema, error messages). Adding an activation is its record in
 * a family file and one line here; `ops/activation.ts` derives the rest.
 */
import type { ActivationDef, ElementwiseActivation, RowsActivation } from './define.js';
import { linearActivation } from './identity.js';
import { elu, leakyRelu, relu, relu6, reluGeneral, selu } from './rectifiers.js';
import { softmaxActivation } from './softmax.js';
import { gelu, hardSigmoid, hardSwish, mish, sigmoid, softplus, swish, tanh } from './smooth.js';

export const activationDefs = [
  relu,
  relu6,
  leakyRelu,
  reluGeneral,
  elu,
  selu,
  gelu,
  swish,
  tanh,
  sigmoid,
  hardSigmoid,
  hardSwish,
  softplus,
  mish,
  softmaxActivation,
  linearActivation,
] as const;

type Defs = (typeof activationDefs)[number];

export type ActivationName = Defs['name'];
/** The elementwise activations: every one that can be a scalar epilogue. */
export type ElementwiseName = Extract<Defs, { readonly form: 'elementwise' }>['name'];
/** The activations that normalize along an axis (softmax). */
export type RowsName = Extract<Defs, { readonly form: 'rows' }>['name'];

export const activationNames: ActivationName[] = activationDefs.map((d) => d.name);

const byName = new Map<string, ActivationDef>(activationDefs.map((d) => [d.name, d as ActivationDef]));

/** The record of an activation, by its modelc name. */
export function getActivation(name: string): ActivationDef | undefined {
  return byName.get(name);
}

/** The record of an elementwise activation (a name the types already vouch for). */
export function elementwise(name: ElementwiseName): ElementwiseActivation {
  return byName.get(name) as ElementwiseActivation;
}

/** The record of a rows activation. */
export function rows(name: RowsName): RowsActivation {
  return byName.get(name) as RowsActivation;
}

/** The record named `K`, with its precise attribute schema. */
export type ActivationRecord<K extends ActivationName> = Extract<Defs, { readonly name: K }>;
