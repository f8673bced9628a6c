/**
 * The IR verifier: re-derives every type and checks the graph's invariants.
 * Runs after lowering, after parsing, and (with the pass manager) between passes.
 *
 *  - every value is defined once (inputs, params, nodes share one namespace);
 *  - every operand is defined before its use (SSA in topological order);
 *  - every op is known, with the operand count its roles allow and
 *    exactly the attributes its schema declares;
 *  - each node's declared type equals the type its op infers;
 *  - inputs have the batch dimension first, parameters are fully static;
 *  - outputs name defined values;
 *  - every tensor fits the size limits (ir/limits.ts; code `limit`), for
 *    graphs that did not come through the frontend, which checks them first.
 *
 * The op table is a parameter because it lives above ir/ (in ops/): the IR
 * depends on nothing that depends on it. `ops/verify.ts` binds the registry,
 * which is what every caller outside ir/ uses.
 */
import { Type, type TProperties } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { ModelcError, type Diagnostic } from '../diagnostics/diagnostic.js';
import type { Graph, Node } from './graph.js';
import { formatType, sameType, ShapeError, type TensorType } from './types.js';
import { tensorSizeProblem } from './limits.js';
import { formatValueRef } from './print.js';

/** What the verifier needs of an op (the op registry's `OpDef` is one). */
export interface OpSignature {
  /** The attribute schema; a node has exactly these attributes. */
  readonly attrs: TProperties;
  /** The operand roles (`x`, `bias?`, `...xs`) for these attributes. */
  operands(attrs: never): readonly string[];
  /** The result type, or a `ShapeError` when the operands do not fit. */
  infer(operands: readonly TensorType[], attrs: never): TensorType;
}

/** Looks an op up by name; undefined for an unknown op. */
export type OpSignatures = (name: string) => OpSignature | undefined;

/** The problems of a graph, as diagnostics (empty when it is valid). */
export function checkGraph(g: Graph, ops: OpSignatures): Diagnostic[] {
  const problems: string[] = [];
  const types = new Map<string, TensorType>();
  const define = (name: string, type: TensorType, what: string) => {
    if (types.has(name)) problems.push(`${what} ${formatValueRef(name)} is defined more than once`);
    types.set(name, type);
  };
  for (const i of g.inputs) {
    if (i.type.shape[0] !== 'N' || i.type.shape.slice(1).includes('N')) {
      problems.push(`input ${formatValueRef(i.name)} must have the batch dimension N first and only there`);
    }
    define(i.name, i.type, 'input');
  }
  for (const p of g.params) {
    if (p.type.shape.includes('N')) problems.push(`param ${formatValueRef(p.name)} must have a static shape`);
    define(p.name, p.type, 'param');
  }
  for (const n of g.nodes) {
    const problem = checkNode(n, types, ops);
    if (problem) problems.push(`${formatValueRef(n.result)} = ${n.op}: ${problem}`);
    define(n.result, n.type, 'value');
  }
  if (g.outputs.length === 0) problems.push('the graph has no outputs');
  for (const o of g.outputs) if (!types.has(o)) problems.push(`output ${formatValueRef(o)} is not defined`);
  const tooBig: Diagnostic[] = [];
  for (const [name, t] of types) {
    const message = tensorSizeProblem(t.shape.filter((d): d is number => d !== 'N'), `${formatValueRef(name)} would need a tensor`, t.shape[0] === 'N');
    if (message) tooBig.push({ code: 'limit', message: `graph ${g.name}: ${message}` });
  }
  return [...problems.map((message): Diagnostic => ({ code: 'verify', message: `invalid IR in graph ${g.name}: ${message}` })), ...tooBig];
}

function checkNode(n: Node, types: Map<string, TensorType>, ops: OpSignatures): string | undefined {
  const op = ops(n.op);
  if (!op) return 'unknown op';
  const missing = n.operands.filter((o) => !types.has(o));
  if (missing.length > 0) return `operand ${missing.map(formatValueRef).join(', ')} is not defined before this node`;
  const attrSchema = Type.Object(op.attrs, { additionalProperties: false });
  const attrError = Value.Errors(attrSchema, n.attrs).First();
  if (attrError) return `attribute ${attrError.path.slice(1) || '{}'}: ${attrError.message.toLowerCase()}`;
  const roles = op.operands(n.attrs as never);
  const required = roles.filter((r) => !r.endsWith('?') && !r.startsWith('...')).length;
  const variadic = roles.some((r) => r.startsWith('...'));
  if (n.operands.length < required || (!variadic && n.operands.length > roles.length)) {
    return `expects operands (${roles.join(', ')}), got ${n.operands.length}`;
  }
  let inferred: TensorType;
  try {
    inferred = op.infer(n.operands.map((o) => types.get(o)!), n.attrs as never);
  } catch (err) {
    if (err instanceof ShapeError) return err.message;
    throw err;
  }
  if (!sameType(inferred, n.type)) return `declared type ${formatType(n.type)} but the op gives ${formatType(inferred)}`;
  return undefined;
}

/** Throws a ModelcError listing every problem of an invalid graph. */
export function verifyGraph(g: Graph, ops: OpSignatures): Graph {
  const problems = checkGraph(g, ops);
  if (problems.length > 0) throw new ModelcError(problems);
  return g;
}
