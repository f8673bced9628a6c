/**
 * The IR verifier with modelc's op registry: what the frontend, the
 * interpreter and the pass manager call. The verifier itself (`ir/verify.ts`)
 * takes the op table as a parameter, since ir/ sits below ops/.
 */
import type { Diagnostic } from '../diagnostics/diagnostic.js';
import type { Graph } from '../ir/graph.js';
import { checkGraph as checkGraphWith, verifyGraph as verifyGraphWith } from '../ir/verify.js';
import { getOp } from './registry.js';

/** The problems of a graph, as diagnostics (empty when it is valid). */
export function checkGraph(g: Graph): Diagnostic[] {
  return checkGraphWith(g, getOp);
}

/** Throws a ModelcError listing every problem of an invalid graph; returns the graph otherwise. */
export function verifyGraph(g: Graph): Graph {
  return verifyGraphWith(g, getOp);
}
