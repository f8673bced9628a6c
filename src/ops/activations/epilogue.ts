/**
 * Activations applied by name, for the ops that carry one as a fused
 * `epilogue` and for the activation ops themselves: the scalar function,
 * generated helper and derivative of a record with its attributes checked,
 * the `Epilogue` attribute schema, and how an epilogue runs (reference) and
 * is emitted (kernel code). A fused activation means exactly the separate op:
 * both go through the same record.
 */
import { Type, type Static, type TObject, type TProperties, type TUnsafe } from '@sinclair/typebox';
import { mapTensor, type Tensor } from '../../ir/tensor.js';
import type { RuntimeHelper } from '../emit.js';
import type { ActivationDef, Derivative, Source } from './define.js';
import {
  activationDefs,
  elementwise,
  getActivation,
  rows,
  type ActivationName,
  type ActivationRecord,
  type ElementwiseName,
  type RowsName,
} from './records.js';

/** The attributes a scalar activation reads (an activation op's, or an epilogue's). */
export interface ScalarActivationAttrs {
  readonly alpha?: number | undefined;
  readonly approximate?: boolean | undefined;
  /** relu_general's three (Keras's ReLU options) */
  readonly max_value?: number | null | undefined;
  readonly negative_slope?: number | undefined;
  readonly threshold?: number | undefined;
}

/** `attrs` as `def` reads them, each of its attributes present: a missing one is an error, not a silent default. */
export function complete<A>(def: ActivationDef, attrs: object): A {
  for (const key of Object.keys(def.attrs)) {
    if ((attrs as Record<string, unknown>)[key] === undefined) throw new Error(`${def.name} needs its ${key} attribute`);
  }
  return attrs as A;
}

/** The scalar function of an elementwise activation or `linear` (softmax is not one). */
export function activationFn(name: Exclude<ActivationName, RowsName>, attrs: ScalarActivationAttrs = {}): (x: number) => number {
  const def = getActivation(name)!;
  if (def.form === 'identity') return (x) => x;
  if (def.form === 'rows') throw new Error(`${name} is not a scalar function`);
  return def.reference(complete(def, attrs));
}

/**
 * The generated helper computing an elementwise activation, named after the
 * function and its attributes (`relu`, `leaky_relu_0p3`), so equal names
 * mean equal code.
 */
export function activationHelper(name: ElementwiseName, attrs: ScalarActivationAttrs = {}): RuntimeHelper {
  const def = elementwise(name);
  return def.helper(complete(def, attrs));
}

/** f' of an elementwise activation (`relu_grad(y)`, `gelu_grad(x)`), named after the function and its attributes. */
export function activationDerivative(name: ElementwiseName, attrs: ScalarActivationAttrs = {}): Derivative {
  const def = elementwise(name);
  return def.derivative(complete(def, attrs));
}

/** Whether an activation's gradient reads its output or its input. */
export function derivativeSource(name: ElementwiseName, attrs: ScalarActivationAttrs): Source {
  return activationDerivative(name, attrs).from;
}

/** Activations that can run as the epilogue of a linear op, one value at a time: the elementwise ones. */
export const epilogueNames = activationDefs.filter((d) => d.form === 'elementwise').map((d) => d.name) as ElementwiseName[];

/** Activations that run as a per-row epilogue over the last axis (softmax). */
const rowsNames = activationDefs.filter((d) => d.form === 'rows').map((d) => d.name) as RowsName[];

/** How an activation can be fused into the op producing its input, if it can. */
export function epilogueKind(op: string): 'elementwise' | 'rows' | undefined {
  const form = getActivation(op)?.form;
  return form === 'elementwise' || form === 'rows' ? form : undefined;
}

/** Whether `op` is an activation that can be a fused epilogue (a `rows` one only over the last axis). */
export function isEpilogueActivation(op: string): boolean {
  return epilogueKind(op) !== undefined;
}

/**
 * An activation fused into the op that produces its input (`fuse-activation`):
 * `{op: "relu"}`, `{op: "leaky_relu", alpha: 0.3}`. Its attributes are those of
 * the activation op, resolved.
 */
export const Epilogue = Type.Union([
  ...epilogueNames.map((n) =>
    Type.Object({ op: Type.Literal(n), ...(elementwise(n).attrs as TProperties) }, { additionalProperties: false }),
  ),
  // A rows activation over the last axis: a per-row epilogue (the row is complete when the op writes it).
  ...rowsNames.map((n) => Type.Object({ op: Type.Literal(n), axis: Type.Integer({ minimum: 1 }) }, { additionalProperties: false })),
  // The schema built by `map` knows only the names; its static type is each record's attributes.
]) as unknown as TUnsafe<EpilogueOf>;
export type Epilogue = Static<typeof Epilogue>;

/** `{op: "leaky_relu", alpha: number}`, ...: one member per elementwise record, and `{op: "softmax", axis: number}`. */
type EpilogueOf =
  | { [K in ElementwiseName]: { readonly op: K } & Static<TObject<ActivationRecord<K>['attrs']>> }[ElementwiseName]
  | { [K in RowsName]: { readonly op: K; readonly axis: number } }[RowsName];

/** The optional `epilogue` attribute of ops that can carry one. */
export const epilogueAttr = { epilogue: Type.Optional(Epilogue) };

/** An op's result with its fused activation applied (unchanged without one). */
export function applyEpilogue(t: Tensor, epilogue: Epilogue | undefined): Tensor {
  if (epilogue === undefined) return t;
  if (isRows(epilogue.op)) return rows(epilogue.op).reference(t, (epilogue as { axis: number }).axis);
  return mapTensor(t, activationFn(epilogue.op as ElementwiseName, epilogue as ScalarActivationAttrs));
}

function isRows(op: string): op is RowsName {
  return getActivation(op)?.form === 'rows';
}

/**
 * How a kernel applies its fused activation: `scalar(v)` wraps the value it
 * stores (identity without one, and for softmax); `rows(count, len)` is code
 * run once the whole result is written (softmax over the last axis, else '').
 */
export interface EpilogueCode {
  scalar(v: string): string;
  rows(count: string, len: number): string;
  readonly helpers: readonly RuntimeHelper[];
  /** For kernel names and comments: `relu`, `softmax`, or ''. */
  readonly tag: string;
}

export function epilogueCode(epilogue: Epilogue | undefined): EpilogueCode {
  if (epilogue === undefined) return { scalar: (v) => v, rows: () => '', helpers: [], tag: '' };
  if (isRows(epilogue.op)) return { scalar: (v) => v, rows: rows(epilogue.op).rowsCode, helpers: [], tag: epilogue.op };
  const helper = activationHelper(epilogue.op as ElementwiseName, epilogue as ScalarActivationAttrs);
  return { scalar: (v) => `${helper.name}(${v})`, rows: () => '', helpers: [helper], tag: helper.name };
}
