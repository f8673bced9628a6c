/**
 * The one static list of ops and layers. Adding an op is its record in its
 * family file (`ops/<family>.ts`) and one line here; nothing else keeps a list
 * of op names. Op names and attribute types are derived from the records
 * (`OpName`, `OpAttrs`), so a rewrite written in TypeScript that names an op
 * kind or attribute that does not exist fails to compile.
 */
import type { Static, TObject, TProperties } from '@sinclair/typebox';
import { activationGradOps, activationLayer, activationOps, activationShorthandLayers } from './activation.js';
import { convGradOps } from './conv-grad.js';
import { conv2dLayer, conv2dOp, conv2dTransposeLayer, conv2dTransposeOp, depthwiseConv2dLayer, depthwiseConv2dOp } from './conv.js';
import { dropoutLayer, dropoutOp } from './dropout.js';
import { denseGradInputOp, denseGradKernelOp, denseLayer, denseOp } from './linear.js';
import { lossOps } from './loss.js';
import { addLayer, addOp, concatenateLayer, concatenateOp, mergeGradOps, multiplyOp } from './merge.js';
import { affineOp, batchnormGradOp, batchnormLayer, batchnormOp } from './norm.js';
import { batchnormTrainOps } from './norm-train.js';
import type { LayerDef, OpDef } from './op-def.js';
import { optimizerOps } from './optim.js';
import { poolGradOps, poolLayers, poolOps } from './pool.js';
import { reduceOps } from './reduce.js';
import { flattenLayer, reshapeLayer, reshapeOp } from './shape.js';

const opList = [
  denseOp,
  conv2dOp,
  conv2dTransposeOp,
  depthwiseConv2dOp,
  batchnormOp,
  affineOp,
  ...activationOps,
  dropoutOp,
  ...poolOps,
  reshapeOp,
  addOp,
  concatenateOp,
  // training: forward ops of training mode, gradient ops, losses, optimizer updates
  multiplyOp,
  ...reduceOps,
  ...batchnormTrainOps,
  batchnormGradOp,
  denseGradInputOp,
  denseGradKernelOp,
  ...convGradOps,
  ...poolGradOps,
  ...activationGradOps,
  ...mergeGradOps,
  ...lossOps,
  ...optimizerOps,
] as const;

type AnyOp = (typeof opList)[number];

/** Every op kind, by name. */
export type OpName = AnyOp['name'];

type AttrsOf<D> = D extends OpDef<infer P extends TProperties> ? Static<TObject<P>> : never;

/** The attributes of every op kind, by name (as its record's schema types them). */
export type OpAttrs = { [D in AnyOp as D['name']]: AttrsOf<D> };

/** Every op record, in registry order. */
export const ops: readonly OpDef[] = opList as readonly OpDef[];

/** Every op record, keyed by its name. */
export const opsByName: { readonly [K in OpName]: OpDef } = Object.fromEntries(ops.map((o) => [o.name, o])) as { [K in OpName]: OpDef };
if (Object.keys(opsByName).length !== ops.length) {
  const seen = new Set<string>();
  const twice = ops.find((o) => seen.size === seen.add(o.name).size);
  throw new Error(`internal: op ${twice?.name} is registered twice`);
}

export const layers: readonly LayerDef[] = [
  denseLayer,
  conv2dLayer,
  conv2dTransposeLayer,
  depthwiseConv2dLayer,
  batchnormLayer,
  activationLayer,
  ...activationShorthandLayers,
  dropoutLayer,
  ...poolLayers,
  flattenLayer,
  reshapeLayer,
  addLayer,
  concatenateLayer,
] as LayerDef[];

const layersByType = new Map<string, LayerDef>();
for (const l of layers) for (const t of [l.type, ...(l.aliases ?? [])]) layersByType.set(t, l);

/** The record of op `name`, or undefined for a name that is not an op. */
export function getOp(name: string): OpDef | undefined {
  return Object.hasOwn(opsByName, name) ? opsByName[name as OpName] : undefined;
}

/** The layer definition for a spec `type` (aliases included). */
export function getLayer(type: string): LayerDef | undefined {
  return layersByType.get(type);
}

/** Every spec `type` that names a layer, aliases included. */
export function layerTypes(): string[] {
  return [...layersByType.keys()];
}
