/**
 * The IR graph: SSA values referenced by name.
 *
 * A graph has typed inputs, typed parameters (kernels, biases, BN statistics,
 * each with its initializer and trainability), and nodes in topological order.
 * Each node applies one registered op to operand values and defines one result
 * value. Parameters are values like any other, so passes read and rewrite them;
 * two nodes that use the same parameter share weights (a layer applied twice).
 * Graphs are immutable: passes build new ones.
 */
import type { Attrs, TensorType } from './types.js';

export interface InputDecl {
  readonly name: string;
  readonly type: TensorType;
}

/** How a parameter gets its initial value (Keras initializer name and arguments). */
export interface InitSpec {
  readonly type: string;
  readonly args: Readonly<Record<string, number>>;
}

export interface ParamDecl {
  readonly name: string;
  readonly type: TensorType;
  readonly trainable: boolean;
  /** How the value is made when none is given (an initializer, or `{type: "data"}` for computed values). */
  readonly init: InitSpec;
  /**
   * The value, when the graph carries weights (loaded from a file, sampled from
   * the initializers with a seed, or computed by a pass). Row-major, f32. Not
   * part of the textual IR.
   */
  readonly value?: Float32Array;
}

export interface Node {
  readonly op: string;
  /** The value this node defines. */
  readonly result: string;
  readonly type: TensorType;
  readonly operands: readonly string[];
  readonly attrs: Attrs;
  /** The spec layer this node implements (provenance for summaries and generated comments). */
  readonly layer: string;
}

export interface Graph {
  readonly name: string;
  readonly inputs: readonly InputDecl[];
  readonly params: readonly ParamDecl[];
  readonly nodes: readonly Node[];
  readonly outputs: readonly string[];
}

/** The type of every value of the graph, by name. */
export function valueTypes(g: Graph): Map<string, TensorType> {
  const types = new Map<string, TensorType>();
  for (const i of g.inputs) types.set(i.name, i.type);
  for (const p of g.params) types.set(p.name, p.type);
  for (const n of g.nodes) types.set(n.result, n.type);
  return types;
}

/** For each value, the nodes that use it as an operand (graph outputs are not counted). */
export function users(g: Graph): Map<string, Node[]> {
  const map = new Map<string, Node[]>();
  for (const n of g.nodes) {
    for (const o of n.operands) {
      const list = map.get(o);
      if (list) list.push(n);
      else map.set(o, [n]);
    }
  }
  return map;
}
