/**
 * GraphBuilder: appends nodes to a growing graph, inferring each result's
 * type with its op's rule, and names new values uniquely (`dense/grad`,
 * `dense/grad_1`, ...). The autodiff transform builds the training step with
 * it; the gradient rules of the ops see it as their `GradBuilder`, and the
 * `training` rules as their `TrainingBuilder`.
 */
import type { Graph, InputDecl, Node, ParamDecl } from '../ir/graph.js';
import type { Attrs, TensorType } from '../ir/types.js';
import { ShapeError, type GradBuilder } from '../ops/op-def.js';
import { getOp } from '../ops/registry.js';

export class GraphBuilder implements GradBuilder {
  readonly inputs: InputDecl[];
  readonly params: ParamDecl[];
  readonly nodes: Node[];
  private readonly types = new Map<string, TensorType>();
  private readonly reserved = new Set<string>();
  /** What new nodes get as their `name` hint and `layer` provenance. */
  private hint = 'value';
  private layer = '';

  constructor(graph: Pick<Graph, 'inputs' | 'params' | 'nodes'>) {
    this.inputs = [...graph.inputs];
    this.params = [...graph.params];
    this.nodes = [...graph.nodes];
    for (const v of [...this.inputs, ...this.params]) this.types.set(v.name, v.type);
    for (const n of this.nodes) this.types.set(n.result, n.type);
  }

  /** New nodes are named `<hint>`, `<hint>_1`, ... and carry `layer` as their provenance. */
  naming(hint: string, layer: string): this {
    this.hint = hint;
    this.layer = layer;
    return this;
  }

  /**
   * A name no value has yet (nor a reserved one): `base`, else `base.1`,
   * `base.2`, ... (a dot, so a derived name never looks like Keras's `dense_1`).
   */
  fresh(base: string): string {
    const taken = (n: string) => this.types.has(n) || this.reserved.has(n);
    if (!taken(base)) return base;
    for (let i = 1; ; i++) if (!taken(`${base}.${i}`)) return `${base}.${i}`;
  }

  /** Names that new values must not take (values copied in later keep their own names). */
  reserve(names: Iterable<string>): this {
    for (const n of names) this.reserved.add(n);
    return this;
  }

  /** Frees a reserved name (a node replaced by its training form passes its name on). */
  release(name: string): this {
    this.reserved.delete(name);
    return this;
  }

  /** Appends a node as it is (its own result name), with operands renamed. */
  copy(node: Node, operands: readonly string[]): string {
    this.nodes.push({ ...node, operands: [...operands] });
    this.types.set(node.result, node.type);
    return node.result;
  }

  typeOf(value: string): TensorType {
    const t = this.types.get(value);
    if (!t) throw new Error(`autodiff: no value named ${value}`);
    return t;
  }

  has(value: string): boolean {
    return this.types.has(value);
  }

  op(op: string, operands: readonly string[], attrs: Attrs, name?: string): string {
    const def = getOp(op);
    if (!def) throw new Error(`autodiff: no op named ${op}`);
    let type: TensorType;
    try {
      type = def.infer(operands.map((o) => this.typeOf(o)), attrs as never);
    } catch (err) {
      if (err instanceof ShapeError) throw new Error(`autodiff: ${op}(${operands.join(', ')}) for ${this.layer}: ${err.message}`);
      throw err;
    }
    const result = this.fresh(name ?? this.hint);
    this.nodes.push({ op, result, type, operands: [...operands], attrs, layer: this.layer });
    this.types.set(result, type);
    return result;
  }

  addInput(name: string, type: TensorType): string {
    const fresh = this.fresh(name);
    this.inputs.push({ name: fresh, type });
    this.types.set(fresh, type);
    return fresh;
  }

  addParam(decl: ParamDecl): string {
    const name = this.fresh(decl.name);
    this.params.push({ ...decl, name });
    this.types.set(name, decl.type);
    return name;
  }

  finish(name: string, outputs: readonly string[]): Graph {
    return { name, inputs: this.inputs, params: this.params, nodes: this.nodes, outputs };
  }
}
