/**
 * The rule that bypasses nodes computing the identity at inference, asked of
 * the op records (`OpDef.identity`). `remove-identity` uses it for ordinary
 * ops and `remove-dropout` for `training-dependent` ones (dropout is the
 * identity only at inference).
 */
import type { Node } from '../ir/graph.js';
import { getOp } from '../ops/registry.js';
import type { GraphEditor } from './editor.js';
import { op, where, type Rule } from './pattern.js';

function isIdentity(n: Node, ed: GraphEditor): boolean {
  const def = getOp(n.op);
  return def?.identity?.(n as never, n.operands.map((o) => ed.typeOf(o))) ?? false;
}

/** Bypasses identity nodes of ops that are (`trainingDependent`) or are not training-dependent. */
export function identityRule(name: string, trainingDependent: boolean): Rule {
  const kind = trainingDependent ? 'an op that is the identity at inference only' : 'an op that can be the identity';
  return {
    name,
    pattern: op(where(kind, (d) => d.identity !== undefined && d.traits.includes('training-dependent') === trainingDependent), { as: 'node' }),
    when: (m, ed) => isIdentity(m['node']!, ed),
    rewrite: (m, ed) => {
      const n = m['node']!;
      const reason = ed.bypass(n);
      return reason === undefined ? `removed ${n.result}` : { skipped: `${n.result} not removed: ${reason}` };
    },
  };
}
