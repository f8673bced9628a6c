/**
 * The order of `model.layers` that Keras 3 gives a functional model it loads
 * (keras/src/ops/function.py `map_graph`), which decides where Keras looks
 * for each layer's variables in model.weights.h5. Reproduced step by step:
 *
 * 1. Depth-first from each output in turn, inputs before the node that uses
 *    them: the nodes (layer applications) in topological order; each layer
 *    is numbered when it is first reached (its traversal index).
 * 2. Walking that list backwards, a node's depth is the largest of 0, its
 *    users' depths + 1 and, for a shared layer, its layer's depth so far;
 *    a layer takes the depth of its deepest node.
 * 3. Layers by decreasing depth, ties by traversal index. Model inputs that
 *    no output depends on come at depth 0 with index -1.
 */

/** One layer application: the layer it applies and the values it reads (a model input reads none). */
export interface KerasNode {
  readonly layer: string;
  readonly inputs: readonly string[];
}

export interface KerasOrder {
  /** Layer names (model inputs are their own InputLayer) in model.layers order. */
  readonly layers: readonly string[];
  /** The nodes some output depends on, by the value each defines. */
  readonly reached: ReadonlySet<string>;
}

/** `nodes` by the value each defines; `inputs` are the model inputs, each its own node and layer. */
export function kerasLayerOrder(nodes: ReadonlyMap<string, KerasNode>, inputs: readonly string[], outputs: readonly string[]): KerasOrder {
  const topological: string[] = [];
  const index = new Map<string, number>();
  const finished = new Set<string>();
  const visit = (value: string): void => {
    if (finished.has(value)) return;
    const node = nodes.get(value)!;
    if (!index.has(node.layer)) index.set(node.layer, index.size);
    for (const v of node.inputs) visit(v);
    finished.add(value);
    topological.push(value);
  };
  outputs.forEach(visit);

  const nodeDepth = new Map<string, number>();
  const layerDepth = new Map<string, number>();
  for (const value of [...topological].reverse()) {
    const node = nodes.get(value)!;
    const depth = Math.max(nodeDepth.get(value) ?? 0, layerDepth.get(node.layer) ?? 0);
    layerDepth.set(node.layer, depth);
    nodeDepth.set(value, depth);
    for (const parent of node.inputs) nodeDepth.set(parent, Math.max(depth + 1, nodeDepth.get(parent) ?? 0));
  }
  for (const i of inputs) {
    if (layerDepth.has(i)) continue;
    layerDepth.set(i, 0);
    index.set(i, -1);
  }
  const layers = [...layerDepth.keys()].sort((a, b) => layerDepth.get(b)! - layerDepth.get(a)! || index.get(a)! - index.get(b)!);
  return { layers, reached: finished };
}
