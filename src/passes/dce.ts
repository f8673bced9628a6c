/**
 * dce: dead code elimination. Every op is pure, so a node whose result has no
 * consumer (no using node, not a graph output) goes, and so does a parameter
 * that no node uses. Walks backwards so chains of dead nodes go in one pass.
 *
 *   %a = relu(%x); %b = tanh(%x); return %b   ->   %b = tanh(%x); return %b
 */
import { editorPass } from '../rewrite/pass.js';

export const dce = editorPass('dce', 'remove unused nodes and parameters', (ed, { explain }) => {
  let changed = false;
  for (const node of [...ed.nodes].reverse()) {
    if (ed.consumers(node.result) === 0) {
      ed.removeNode(node);
      explain.applied('dead node', `removed unused ${node.result}`);
      changed = true;
    }
  }
  for (const p of ed.params) {
    if (ed.users(p.name).length === 0 && !ed.isOutput(p.name)) {
      ed.removeParam(p.name);
      changed = true;
    }
  }
  return changed;
});
