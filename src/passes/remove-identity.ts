/**
 * remove-identity: the `linear` activation and reshapes that keep the shape.
 *
 *   %a = linear(%h)                      ->  (uses of %a use %h)
 *   %r: f32[N,8] = reshape(%h: f32[N,8])  ->  (uses of %r use %h)
 */
import { sameType } from '../ir/types.js';
import { op, type Rule } from '../rewrite/pattern.js';
import { rulePass } from '../rewrite/pass.js';

function bypassRule(name: string, ops: 'linear' | 'reshape'): Rule {
  return {
    name,
    pattern: op(ops, { as: 'node' }),
    rewrite: (m, ed) => {
      const n = m['node']!;
      if (ops === 'reshape' && !sameType(ed.typeOf(n.operands[0]!), n.type)) return undefined;
      const reason = ed.bypass(n);
      return reason === undefined ? `removed ${n.result}` : { skipped: `${n.result} not removed: ${reason}` };
    },
  };
}

export const removeIdentity = rulePass('remove-identity', 'remove linear activations and shape-preserving reshapes', [
  bypassRule('linear(x) -> x', 'linear'),
  bypassRule('reshape(x) -> x when the shape is unchanged', 'reshape'),
]);
