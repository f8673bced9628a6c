/**
 * Static types over the op registry, so rewrites written in TypeScript are
 * checked: an unknown op kind or attribute name is a compile error.
 *
 *   if (ed.is(node, 'conv2d')) node.attrs.strides   // number[]
 *   ed.is(node, 'conv3d')                           // error: not an OpName
 */
import type { Static, TObject, TProperties } from '@sinclair/typebox';
import type { Node } from '../ir/graph.js';
import type { Attrs } from '../ir/types.js';
import type { ActivationName } from '../ops/activation.js';
import type { conv2dOp, conv2dTransposeOp, depthwiseConv2dOp } from '../ops/conv.js';
import type { dropoutOp } from '../ops/dropout.js';
import type { denseOp } from '../ops/linear.js';
import type { addOp, concatenateOp } from '../ops/merge.js';
import type { affineOp, batchnormOp } from '../ops/norm.js';
import type { OpDef } from '../ops/op-def.js';
import type { reshapeOp } from '../ops/shape.js';

type AttrsOf<D> = D extends OpDef<infer P extends TProperties> ? Static<TObject<P>> : never;

interface PoolAttrs {
  pool_size: number[];
  strides: number[];
  padding: 'valid' | 'same';
}

/** The attributes of every op kind, by name. */
export interface OpAttrs extends Record<ActivationName, Attrs> {
  dense: AttrsOf<typeof denseOp>;
  conv2d: AttrsOf<typeof conv2dOp>;
  conv2d_transpose: AttrsOf<typeof conv2dTransposeOp>;
  depthwise_conv2d: AttrsOf<typeof depthwiseConv2dOp>;
  batchnorm: AttrsOf<typeof batchnormOp>;
  affine: AttrsOf<typeof affineOp>;
  dropout: AttrsOf<typeof dropoutOp>;
  reshape: AttrsOf<typeof reshapeOp>;
  add: AttrsOf<typeof addOp>;
  concatenate: AttrsOf<typeof concatenateOp>;
  max_pool2d: PoolAttrs;
  avg_pool2d: PoolAttrs;
  global_max_pool2d: { keepdims: boolean };
  global_avg_pool2d: { keepdims: boolean };
}

export type OpName = keyof OpAttrs;

/** A node known to be of kind K, with K's attributes. */
export type TypedNode<K extends OpName> = Node & { readonly op: K; readonly attrs: OpAttrs[K] & Attrs };

/** Ops whose output is linear in a kernel and a bias: batchnorm folds into them. */
export const linearOps = ['dense', 'conv2d', 'depthwise_conv2d', 'conv2d_transpose'] as const satisfies readonly OpName[];
export type LinearOp = (typeof linearOps)[number];
