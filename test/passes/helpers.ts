/** Golden pass tests: IR text before, IR text after, plus parameter values to fold. */
import { expect } from 'vitest';
import type { Graph } from '../../src/ir/graph.js';
import { parseGraph } from '../../src/ir/parse.js';
import { printGraph } from '../../src/ir/print.js';
import { checkGraph } from '../../src/ops/verify.js';
import { ExplainLog } from '../../src/rewrite/explain.js';
import { createPassManager } from '../../src/passes/pipeline.js';

/** IR text from lines (a trailing newline, as printGraph ends). */
export const ir = (...lines: string[]) => lines.join('\n') + '\n';

/** Deterministic small values in [-1, 1) for every parameter without one (variances made positive). */
export function withValues(g: Graph, seed = 1, overrides: Record<string, number[]> = {}): Graph {
  let state = seed >>> 0;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  };
  return {
    ...g,
    params: g.params.map((p) => {
      if (p.value) return p;
      const n = p.type.shape.reduce<number>((a, d) => a * (d as number), 1);
      const given = overrides[p.name];
      const value = Float32Array.from(given ?? Array.from({ length: n }, () => (/variance/.test(p.name) ? 0.5 + Math.abs(next()) : next())));
      return { ...p, value };
    }),
  };
}

/** Runs passes on parsed IR (with values) and returns the result and the explain log. */
export function runPasses(before: string, passes: string[], overrides: Record<string, number[]> = {}) {
  const graph = withValues(parseGraph(before), 1, overrides);
  expect(checkGraph(graph)).toEqual([]);
  const explain = new ExplainLog();
  const after = createPassManager().run(graph, passes, { explain });
  return { before: graph, after, explain };
}

/** Asserts that `passes` turn `before` into exactly `after` (IR text). */
export function expectPasses(passes: string[], before: string, after: string, overrides: Record<string, number[]> = {}) {
  const result = runPasses(before, passes, overrides);
  expect(printGraph(result.after)).toBe(after);
  return result;
}
