/**
 * The static list of op families (one per file in ops/), from which every
 * op and layer, and their lookup by name, are derived. Adding an op is its
 * record in its family file (`ops/<family>.ts`) and an entry in that file's
 * `defineFamily`; adding a family file is one line here. Nothing outside
 * ops/ keeps a list of op names. Op names and attribute types are derived
 * from the records (`OpName`, `OpAttrs`), so a rewrite written in TypeScript
 * that names an op kind or attribute that does not exist fails to compile.
 */
import type { Static, TObject, TProperties } from '@sinclair/typebox';
import { activationFamily } from './activation.js';
import { convGradFamily } from './conv-grad.js';
import { convFamily } from './conv.js';
import { separableConvFamily } from './conv-separable.js';
import { conv1dFamily } from './conv1d.js';
import { dropoutFamily } from './dropout.js';
import { linearFamily } from './linear.js';
import { lossFamily } from './loss.js';
import { mergeFamily } from './merge.js';
import { mergeBroadcastFamily } from './merge-broadcast.js';
import { layernormFamily } from './layernorm.js';
import { normFamily } from './norm.js';
import { normTrainFamily } from './norm-train.js';
import type { LayerDef, OpDef } from './op-def.js';
import { layerNameTable } from './layer-names.js';
import { optimFamily } from './optim.js';
import { paddingFamily } from './padding.js';
import { permuteFamily } from './permute.js';
import { poolFamily } from './pool.js';
import { pool1dFamily } from './pool1d.js';
import { reduceFamily } from './reduce.js';
import { normalizationFamily } from './normalization.js';
import { rescalingFamily } from './rescaling.js';
import { shapeFamily } from './shape.js';
import { upsampleFamily } from './upsampling.js';

/**
 * One line per family file. The order is the order of `layers` (the JSON
 * Schema's, `modelc check`'s suggestions) and of `ops`.
 */
const families = [
  linearFamily,
  convFamily,
  separableConvFamily,
  conv1dFamily,
  normFamily,
  layernormFamily,
  activationFamily,
  dropoutFamily,
  poolFamily,
  pool1dFamily,
  shapeFamily,
  permuteFamily,
  mergeFamily,
  mergeBroadcastFamily,
  rescalingFamily,
  normalizationFamily,
  paddingFamily,
  upsampleFamily,
  // training only: gradient ops, batchnorm by batch statistics, statistics, losses, optimizer updates
  convGradFamily,
  normTrainFamily,
  reduceFamily,
  lossFamily,
  optimFamily,
] as const;

type AnyOp = (typeof families)[number]['ops'][number];

/** Every op kind, by name. */
export type OpName = AnyOp['name'];

type AttrsOf<D> = D extends OpDef<infer P extends TProperties> ? Static<TObject<P>> : never;

/** The attributes of every op kind, by name (as its record's schema types them). */
export type OpAttrs = { [D in AnyOp as D['name']]: AttrsOf<D> };

/** Every op record, in registry order. */
export const ops: readonly OpDef[] = families.flatMap((f) => f.ops as readonly OpDef[]);

/** Every op record, keyed by its name; a name two records claim is a programming error. */
export const opsByName = {} as { readonly [K in OpName]: OpDef };
for (const o of ops) {
  if (Object.hasOwn(opsByName, o.name)) throw new Error(`internal: op ${o.name} is registered twice`);
  (opsByName as Record<string, OpDef>)[o.name] = o;
}

/** Every layer record, in registry order. */
export const layers: readonly LayerDef[] = families.flatMap((f) => f.layers);

/** Types, aliases and Keras names (`max_pooling2d`, `MaxPooling2D`) of every layer: see layer-names.ts. */
const layersByType = layerNameTable(layers).byName;

/** The record of op `name`, or undefined for a name that is not an op. */
export function getOp(name: string): OpDef | undefined {
  return Object.hasOwn(opsByName, name) ? opsByName[name as OpName] : undefined;
}

/** The layer definition for a spec `type` (aliases and Keras names included). */
export function getLayer(type: string): LayerDef | undefined {
  return layersByType.get(type);
}

/** Every spec `type` that names a layer, aliases and Keras names included. */
export function layerTypes(): string[] {
  return [...layersByType.keys()];
}
