/**
 * cse: common subexpression elimination. Two nodes with the same op, operands
 * and attributes compute the same value (every op is pure); uses of the later
 * one move to the earlier one. A later node that is a graph output keeps its
 * name, so it stays.
 *
 *   %a = relu(%x); %b = relu(%x); %c = add(%a, %b)   ->   %a = relu(%x); %c = add(%a, %a)
 */
import type { Node } from '../ir/graph.js';
import { editorPass } from '../rewrite/pass.js';

/** A key equal for nodes that compute the same value. */
function key(n: Node): string {
  return JSON.stringify([n.op, n.operands, n.attrs]);
}

export const cse = editorPass('cse', 'merge nodes that compute the same value', (ed, { explain }) => {
  const seen = new Map<string, Node>();
  let changed = false;
  for (const node of [...ed.nodes]) {
    const k = key(node);
    const first = seen.get(k);
    if (!first) {
      seen.set(k, node);
      continue;
    }
    if (ed.isOutput(node.result)) {
      explain.skipped('cse', `${node.result} not merged into ${first.result}: it is a graph output`);
      continue;
    }
    ed.replaceAllUses(node.result, first.result);
    ed.removeNode(node);
    explain.applied('cse', `${node.result} merged into ${first.result}`);
    changed = true;
  }
  return changed;
});
