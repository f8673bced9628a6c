/**
 * The one static list of ops and layers. Adding an op family is one file in
 * `ops/` and one line here.
 */
import { activationGradOps, activationLayer, activationOps, activationShorthandLayers } from './activation.js';
import { convGradOps } from './conv-grad.js';
import { lossOps } from './loss.js';
import { optimizerOps } from './optim.js';
import { reduceOps } from './reduce.js';
import { conv2dLayer, conv2dOp, conv2dTransposeLayer, conv2dTransposeOp, depthwiseConv2dLayer, depthwiseConv2dOp } from './conv.js';
import { dropoutLayer, dropoutOp } from './dropout.js';
import { denseGradInputOp, denseGradKernelOp, denseLayer, denseOp } from './linear.js';
import { addLayer, addOp, concatenateLayer, concatenateOp, mergeGradOps, multiplyOp } from './merge.js';
import { affineOp, batchnormGradOp, batchnormLayer, batchnormOp } from './norm.js';
import { batchnormTrainOps } from './norm-train.js';
import type { LayerDef, OpDef } from './op-def.js';
import { poolGradOps, poolLayers, poolOps } from './pool.js';
import { flattenLayer, reshapeLayer, reshapeOp } from './shape.js';

export const ops: readonly OpDef[] = [
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
] as OpDef[];

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

const opsByName = new Map(ops.map((o) => [o.name, o]));
const layersByType = new Map<string, LayerDef>();
for (const l of layers) for (const t of [l.type, ...(l.aliases ?? [])]) layersByType.set(t, l);

export function getOp(name: string): OpDef | undefined {
  return opsByName.get(name);
}

/** The layer definition for a spec `type` (aliases included). */
export function getLayer(type: string): LayerDef | undefined {
  return layersByType.get(type);
}

/** Every spec `type` that names a layer, aliases included. */
export function layerTypes(): string[] {
  return [...layersByType.keys()];
}
