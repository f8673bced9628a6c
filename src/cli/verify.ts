/**
 * `modelc verify`: runs the original and the optimized graph in the reference
 * interpreter on seeded random inputs and prints the differences per output,
 * then proves each batchnorm fold exactly (see passes/equivalence.ts).
 */
import type { Graph } from '../ir/graph.js';
import { checkFoldExactly, compareOnRandomInputs, type Difference } from '../passes/equivalence.js';
import { optimize, type OptimizeOptions } from './optimize.js';

const fmt = (x: number) => (x === 0 ? '0' : x.toExponential(2));

export function verifyOptimization(
  graph: Graph,
  passes: readonly string[],
  opts: OptimizeOptions,
  stderr: (t: string) => void,
  limits: { tolerance: number; batch: number },
): { ok: boolean; text: string } {
  const { optimized, explain, snapshots } = optimize(graph, passes, opts, stderr);
  const lines: string[] = [`${graph.name}: passes ${passes.join(', ') || '(none)'}`];
  let ok = true;
  const row = (what: string, d: Difference) => {
    const pass = d.maxRel <= limits.tolerance;
    ok &&= pass;
    lines.push(`  ${what}: max abs diff ${fmt(d.maxAbs)}, max rel diff ${fmt(d.maxRel)}  ${pass ? 'ok' : `FAIL (tolerance ${limits.tolerance})`}`);
  };
  for (const d of compareOnRandomInputs(graph, optimized, { batch: limits.batch })) row(`output ${d.name}`, d);
  const folds = snapshots.get('fold-bn');
  const regions = explain.entries.filter((e) => e.applied && e.values?.['fold'] !== undefined);
  let proved = 0;
  for (const e of folds ? regions : []) {
    const d = checkFoldExactly(folds!.before, folds!.after, e);
    if (d) row(`${e.message} (exact)`, d);
    proved++;
  }
  lines.push(ok ? `ok: ${proved} fold(s) proved exactly` : 'FAILED');
  return { ok, text: lines.join('\n') + '\n' };
}
