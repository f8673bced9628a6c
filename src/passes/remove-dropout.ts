/**
 * remove-dropout: dropout is the identity at inference.
 *
 *   %d = dropout(%h) {rate=0.5, seed=null}; %y = dense(%d, ...)
 *   ->  %y = dense(%h, ...)
 *
 * Pre: inference graph. Post: no dropout node (unless its removal would rename a
 * graph output whose input is used elsewhere; the explain log says so).
 */
import { op, type Rule } from '../rewrite/pattern.js';
import { rulePass } from '../rewrite/pass.js';

export const removeDropoutRule: Rule = {
  name: 'dropout(x) -> x',
  pattern: op('dropout', { as: 'dropout' }),
  rewrite: (m, ed) => {
    const d = m['dropout']!;
    const reason = ed.bypass(d);
    return reason === undefined ? `removed ${d.result}` : { skipped: `${d.result} not removed: ${reason}` };
  },
};

export const removeDropout = rulePass('remove-dropout', 'remove dropout (the identity at inference)', [removeDropoutRule]);
