/**
 * Static types over the op registry, so rewrites written in TypeScript are
 * checked: an unknown op kind or attribute name is a compile error.
 *
 *   if (ed.is(node, 'conv2d')) node.attrs.strides   // number[]
 *   ed.is(node, 'conv3d')                           // error: not an OpName
 *
 * Both types are derived from the op records (`ops/registry.ts`), not copied.
 */
import type { Node } from '../ir/graph.js';
import type { Attrs } from '../ir/types.js';
import type { OpAttrs, OpName } from '../ops/registry.js';

export type { OpAttrs, OpName } from '../ops/registry.js';

/** A node known to be of kind K, with K's attributes. */
export type TypedNode<K extends OpName> = Node & { readonly op: K; readonly attrs: OpAttrs[K] & Attrs };
