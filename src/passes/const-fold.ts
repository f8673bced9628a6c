/**
 * const-fold: a node whose operands are all parameters with values computes
 * a constant; evaluate it once with the op's reference kernel (float64,
 * rounded to f32 once) and replace it with a new parameter.
 *
 *   param %a: f32[4]; param %b: f32[4]; %s: f32[4] = add(%a, %b)
 *   ->  param %s: f32[4] = data
 *
 * Activations always depend on a graph input, so only parameter-only
 * subgraphs (as user rewrites make them) fold. A node that is a graph output
 * keeps its node (outputs are node results).
 */
import { fromF32 } from '../ir/tensor.js';
import { getOp } from '../ops/registry.js';
import { editorPass } from '../rewrite/pass.js';
import { FoldRefusal, roundToF32 } from './fold-bn-math.js';

export const constFold = editorPass('const-fold', 'evaluate parameter-only subgraphs once', (ed, { explain }) => {
  let changed = false;
  for (const node of [...ed.nodes]) {
    const params = node.operands.map((o) => ed.param(o));
    if (params.length === 0 || params.some((p) => !p?.value) || node.type.shape.includes('N') || ed.isOutput(node.result)) continue;
    const inputs = params.map((p) => fromF32(p!.type.shape as number[], p!.value!));
    const out = getOp(node.op)!.reference(inputs, node.attrs as never);
    let data: Float32Array;
    try {
      data = roundToF32(out.data, `value of ${node.result}`).data;
    } catch (err) {
      if (!(err instanceof FoldRefusal)) throw err;
      explain.skipped('const-fold', `${node.result} not folded: ${err.message}`);
      continue;
    }
    ed.removeNode(node, true);
    ed.addParam({ name: node.result, type: node.type, trainable: false, init: { type: 'data', args: {} }, value: data });
    explain.applied('const-fold', `${node.result} (${node.op} of parameters) folded to a constant`);
    changed = true;
  }
  return changed;
});
