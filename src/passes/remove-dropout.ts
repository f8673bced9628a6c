/**
 * remove-dropout: dropout is the identity at inference (its record says so:
 * `identity` on a `training-dependent` op).
 *
 *   %d = dropout(%h) {rate=0.5, seed=null}; %y = dense(%d, ...)
 *   ->  %y = dense(%h, ...)
 *
 * Pre: inference graph. Post: no dropout node (unless its removal would rename a
 * graph output whose input is used elsewhere; the explain log says so).
 */
import { identityRule } from '../rewrite/identity.js';
import { rulePass } from '../rewrite/pass.js';

export const removeDropoutRule = identityRule('dropout(x) -> x', true);

export const removeDropout = rulePass('remove-dropout', 'remove dropout (the identity at inference)', [removeDropoutRule]);
