/**
 * GraphEditor: a mutable working copy of a graph for passes and users'
 * rewrites. Queries (producers, users, types, parameter values) and edits
 * (insert, remove, replace uses, rename, add/set/remove parameters); `finish()`
 * returns a new immutable Graph. Nodes keep topological order: inserted nodes
 * go before or after an anchor node.
 *
 * Naming rule shared by the built-in passes: when a node absorbs the nodes
 * after it (a fold, a fusion), it takes the name of the last one, so uses and
 * graph outputs keep their names.
 */
import { fail, q } from '../diagnostics/diagnostic.js';
import type { Graph, InputDecl, Node, ParamDecl } from '../ir/graph.js';
import type { TensorType } from '../ir/types.js';
import type { OpName, TypedNode } from './ops.js';

export class GraphEditor {
  readonly name: string;
  readonly inputs: readonly InputDecl[];
  private nodeList: Node[];
  private paramMap: Map<string, ParamDecl>;
  private outputList: string[];

  constructor(graph: Graph) {
    this.name = graph.name;
    this.inputs = graph.inputs;
    this.nodeList = [...graph.nodes];
    this.paramMap = new Map(graph.params.map((p) => [p.name, p]));
    this.outputList = [...graph.outputs];
  }

  // ---- queries -------------------------------------------------------------

  get nodes(): readonly Node[] {
    return this.nodeList;
  }

  get params(): readonly ParamDecl[] {
    return [...this.paramMap.values()];
  }

  get outputs(): readonly string[] {
    return this.outputList;
  }

  /** The node that defines `value`, if a node does (not an input or a parameter). */
  producer(value: string): Node | undefined {
    return this.nodeList.find((n) => n.result === value);
  }

  param(name: string): ParamDecl | undefined {
    return this.paramMap.get(name);
  }

  /** A parameter's value; throws a diagnostic naming it when the graph has no weights for it. */
  paramValue(name: string): Float32Array {
    const p = this.paramMap.get(name);
    if (!p?.value) fail('verify', `parameter ${q(name)} has no value (load weights or initialize with a seed)`);
    return p.value;
  }

  isInput(value: string): boolean {
    return this.inputs.some((i) => i.name === value);
  }

  isOutput(value: string): boolean {
    return this.outputList.includes(value);
  }

  /** The nodes that use `value` as an operand (once per node). */
  users(value: string): Node[] {
    return this.nodeList.filter((n) => n.operands.includes(value));
  }

  /** How many places consume `value`: using nodes plus graph outputs. */
  consumers(value: string): number {
    return this.users(value).length + this.outputList.filter((o) => o === value).length;
  }

  typeOf(value: string): TensorType {
    const t =
      this.inputs.find((i) => i.name === value)?.type ?? this.paramMap.get(value)?.type ?? this.producer(value)?.type;
    if (!t) fail('verify', `no value named ${q(value)} in graph ${this.name}`);
    return t;
  }

  has(value: string): boolean {
    return this.isInput(value) || this.paramMap.has(value) || this.producer(value) !== undefined;
  }

  /** A name not yet used by any value: `base`, `base_1`, ... */
  freshName(base: string): string {
    for (let i = 0; ; i++) {
      const name = i === 0 ? base : `${base}_${i}`;
      if (!this.has(name)) return name;
    }
  }

  /** Type guard for an op kind: narrows the node's attributes. */
  is<K extends OpName>(node: Node | undefined, op: K | readonly K[]): node is TypedNode<K> {
    if (!node) return false;
    return typeof op === 'string' ? node.op === op : (op as readonly string[]).includes(node.op);
  }

  // ---- edits ---------------------------------------------------------------

  /** Replaces `node` (found by its result name) with `updated`, in place. */
  replaceNode(node: Node, updated: Node): Node {
    const i = this.indexOf(node);
    this.nodeList[i] = updated;
    return updated;
  }

  /** Updates some fields of a node in place; returns the new node. */
  updateNode(node: Node, changes: Partial<Node>): Node {
    return this.replaceNode(node, { ...node, ...changes });
  }

  insertBefore(anchor: Node, node: Node): Node {
    this.nodeList.splice(this.indexOf(anchor), 0, node);
    return node;
  }

  insertAfter(anchor: Node, node: Node): Node {
    this.nodeList.splice(this.indexOf(anchor) + 1, 0, node);
    return node;
  }

  /** Appends a node at the end (before nothing); its operands must already be defined. */
  append(node: Node): Node {
    this.nodeList.push(node);
    return node;
  }

  /** Removes a node. Its result must be unused (see replaceAllUses), unless `force`. */
  removeNode(node: Node, force = false): void {
    if (!force && this.consumers(node.result) > 0) {
      fail('verify', `cannot remove ${q(node.result)}: it still has ${this.consumers(node.result)} consumer(s)`);
    }
    this.nodeList.splice(this.indexOf(node), 1);
  }

  /** Makes every use of `from` (operands and graph outputs) use `to` instead. */
  replaceAllUses(from: string, to: string): void {
    this.nodeList = this.nodeList.map((n) =>
      n.operands.includes(from) ? { ...n, operands: n.operands.map((o) => (o === from ? to : o)) } : n,
    );
    this.outputList = this.outputList.map((o) => (o === from ? to : o));
  }

  /** Renames a node's result and every use of it. */
  renameValue(from: string, to: string): void {
    if (this.has(to)) fail('verify', `cannot rename ${q(from)} to ${q(to)}: the name is taken`);
    const node = this.producer(from);
    if (!node) fail('verify', `cannot rename ${q(from)}: only node results can be renamed`);
    this.replaceNode(node, { ...node, result: to });
    this.replaceAllUses(from, to);
  }

  /**
   * Removes a unary node, making its consumers use its input. When the node's
   * result is a graph output, the input's producer takes over the name (if the
   * node is its only consumer). Returns why it cannot, or undefined when done.
   */
  bypass(node: Node): string | undefined {
    const input = node.operands[0]!;
    if (!this.isOutput(node.result)) {
      this.replaceAllUses(node.result, input);
      this.removeNode(node);
      return undefined;
    }
    const producer = this.producer(input);
    if (!producer || this.consumers(input) !== 1) {
      return `${node.result} is a graph output and its input ${input} is ${producer ? 'used elsewhere' : 'not a node result'}`;
    }
    this.removeNode(node, true);
    this.replaceNode(producer, { ...producer, result: node.result });
    return undefined;
  }

  /**
   * `producer` absorbs `next`, its only consumer (a fold or a fusion): `next`
   * is removed and the producer, updated with `changes`, takes `next`'s name.
   */
  absorb(producer: Node, next: Node, changes: Partial<Omit<Node, 'result'>>): Node {
    if (this.consumers(producer.result) !== 1 || !next.operands.includes(producer.result)) {
      fail('verify', `${q(next.result)} cannot be absorbed into ${q(producer.result)}: it must be its only consumer`);
    }
    this.removeNode(next, true);
    return this.replaceNode(producer, { ...producer, ...changes, result: next.result });
  }

  addParam(decl: ParamDecl): string {
    if (this.has(decl.name)) fail('verify', `cannot add parameter ${q(decl.name)}: the name is taken`);
    this.paramMap.set(decl.name, decl);
    return decl.name;
  }

  /** Sets a parameter's value (and optionally its declaration), keeping its place. */
  setParam(name: string, changes: Partial<Omit<ParamDecl, 'name'>>): void {
    const p = this.paramMap.get(name);
    if (!p) fail('verify', `no parameter ${q(name)}`);
    this.paramMap.set(name, { ...p, ...changes });
  }

  removeParam(name: string): void {
    this.paramMap.delete(name);
  }

  finish(): Graph {
    return {
      name: this.name,
      inputs: this.inputs,
      params: [...this.paramMap.values()],
      nodes: [...this.nodeList],
      outputs: [...this.outputList],
    };
  }

  /** Nodes are identified by their result name (edits replace node objects). */
  private indexOf(node: Node): number {
    const i = this.nodeList.findIndex((n) => n.result === node.result);
    if (i < 0) fail('verify', `node ${q(node.result)} is not in graph ${this.name}`);
    return i;
  }
}
