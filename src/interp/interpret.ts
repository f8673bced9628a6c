/**
 * The float64 reference interpreter: the oracle that optimization passes and
 * generated code are checked against (`run(pass(g), x) ≈ run(g, x)`).
 *
 * It walks the nodes in order (graphs are topologically sorted) and calls
 * each op's `reference` kernel, which lives beside the op's type rule in
 * `ops/<family>.ts`; nothing here knows about any particular op. Semantics are
 * those of inference: batchnorm uses its moving statistics, dropout is the
 * identity.
 *
 *   const { graph } = lowerSpec(spec, locations);   // with ParamDecl.value set
 *   const { softmax } = interpret(graph, { x: tensorOf([2, 16], data) });
 *
 * Values: inputs from `feeds` (one concrete batch size for all of them),
 * parameters from `options.params` or else `ParamDecl.value` (f32, widened to
 * f64). Checks, each a ModelcError with code `interp` naming the culprit: a
 * missing, unknown or misshapen feed; a parameter without a value or with one
 * of the wrong size; a kernel whose result is not the node's type with N
 * replaced by the batch size (a bug in that kernel). The graph is verified
 * first unless `verify: false`.
 */
import { ModelcError } from '../diagnostics/diagnostic.js';
import type { Graph, Node } from '../ir/graph.js';
import { formatValueRef } from '../ir/print.js';
import { fromF32, size, type Tensor } from '../ir/tensor.js';
import { formatType, type TensorType } from '../ir/types.js';
import { verifyGraph } from '../ops/verify.js';
import { getOp } from '../ops/registry.js';

export interface InterpretOptions {
  /** Parameter values by name; they take precedence over `ParamDecl.value`. */
  readonly params?: Readonly<Record<string, Tensor>>;
  /** Run the verifier before interpreting (default true). */
  readonly verify?: boolean;
}

/** The graph's outputs, by name, for the given input values. */
export function interpret(graph: Graph, feeds: Readonly<Record<string, Tensor>>, options: InterpretOptions = {}): Record<string, Tensor> {
  const values = interpretAll(graph, feeds, options);
  return Object.fromEntries(graph.outputs.map((o) => [o, values.get(o)!]));
}

/** Every value of the graph by name, in definition order: inputs, parameters, then each node's result. */
export function interpretAll(graph: Graph, feeds: Readonly<Record<string, Tensor>>, options: InterpretOptions = {}): Map<string, Tensor> {
  if (options.verify ?? true) verifyGraph(graph);
  const batch = checkFeeds(graph, feeds);
  const values = new Map<string, Tensor>();
  for (const i of graph.inputs) values.set(i.name, feeds[i.name]!);
  for (const [name, value] of paramValues(graph, options.params ?? {})) values.set(name, value);
  for (const n of graph.nodes) values.set(n.result, runNode(n, values, batch));
  return values;
}

function fail(message: string): never {
  throw new ModelcError({ code: 'interp', message });
}

/** A type's shape with N replaced by the batch size. */
function concrete(t: TensorType, batch: number): number[] {
  return t.shape.map((d) => (d === 'N' ? batch : d));
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

const formatShape = (shape: readonly number[]) => `[${shape.join(',')}]`;

/** Checks every feed against its input's type; returns the batch size they share (1 without inputs). */
function checkFeeds(graph: Graph, feeds: Readonly<Record<string, Tensor>>): number {
  for (const name of Object.keys(feeds)) {
    if (!graph.inputs.some((i) => i.name === name)) fail(`${formatValueRef(name)} is fed but is not an input of graph ${graph.name}`);
  }
  let batch: number | undefined;
  let batchFrom = '';
  for (const input of graph.inputs) {
    const ref = formatValueRef(input.name);
    const feed = feeds[input.name];
    if (feed === undefined) fail(`no value is fed for input ${ref}: ${formatType(input.type)}`);
    if (feed.data.length !== size(feed.shape)) {
      fail(`the value fed for input ${ref} has shape ${formatShape(feed.shape)} (${size(feed.shape)} elements) but ${feed.data.length} values`);
    }
    const n = feed.shape[0] ?? 0;
    if (!sameShape(feed.shape, concrete(input.type, n))) {
      fail(`input ${ref} is ${formatType(input.type)}, but the value fed has shape ${formatShape(feed.shape)}`);
    }
    if (batch !== undefined && n !== batch) {
      fail(`input ${ref} is fed a batch of ${n}, but ${batchFrom} a batch of ${batch}`);
    }
    batch = n;
    batchFrom = ref;
  }
  return batch ?? 1;
}

/** Each parameter's value in f64, from the overrides or the graph. */
function paramValues(graph: Graph, overrides: Readonly<Record<string, Tensor>>): Map<string, Tensor> {
  for (const name of Object.keys(overrides)) {
    if (!graph.params.some((p) => p.name === name)) fail(`a value is given for ${formatValueRef(name)}, which is not a parameter of graph ${graph.name}`);
  }
  const values = new Map<string, Tensor>();
  for (const p of graph.params) {
    const ref = formatValueRef(p.name);
    const shape = concrete(p.type, 1); // parameters are static
    const override = overrides[p.name];
    if (override !== undefined) {
      if (!sameShape(override.shape, shape) || override.data.length !== size(shape)) {
        fail(`parameter ${ref} is ${formatType(p.type)}, but the value given has shape ${formatShape(override.shape)} and ${override.data.length} values`);
      }
      values.set(p.name, override);
    } else if (p.value === undefined) {
      fail(`parameter ${ref}: ${formatType(p.type)} has no value (load weights or initialize the graph first)`);
    } else if (p.value.length !== size(shape)) {
      fail(`parameter ${ref} is ${formatType(p.type)} (${size(shape)} elements), but its value has ${p.value.length}`);
    } else {
      values.set(p.name, fromF32(shape, p.value));
    }
  }
  return values;
}

/** One node's value: its op's reference kernel applied to its operands' values. */
function runNode(n: Node, values: ReadonlyMap<string, Tensor>, batch: number): Tensor {
  const op = getOp(n.op);
  const where = `${formatValueRef(n.result)} = ${n.op}`;
  if (!op) fail(`${where}: unknown op`);
  const operands = n.operands.map((o) => values.get(o) ?? fail(`${where}: operand ${formatValueRef(o)} has no value yet`));
  let result: Tensor;
  try {
    result = op.reference(operands, n.attrs as never);
  } catch (err) {
    if (err instanceof ModelcError) throw err;
    return fail(`${where}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const expected = concrete(n.type, batch);
  if (!sameShape(result.shape, expected) || result.data.length !== size(expected)) {
    fail(`internal: the ${n.op} kernel gave shape ${formatShape(result.shape)} for ${formatValueRef(n.result)}: ${formatType(n.type)} (batch ${batch})`);
  }
  return result;
}
