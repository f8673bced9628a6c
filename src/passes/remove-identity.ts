/**
 * remove-identity: nodes that compute the identity at inference, as their op
 * records say (`OpDef.identity`): the `linear` activation, reshapes that keep
 * the shape. Ops that behave differently in training (dropout) are left to
 * `remove-dropout`, so a training pipeline can keep them.
 *
 *   %a = linear(%h)                      ->  (uses of %a use %h)
 *   %r: f32[N,8] = reshape(%h: f32[N,8])  ->  (uses of %r use %h)
 */
import { identityRule } from '../rewrite/identity.js';
import { rulePass } from '../rewrite/pass.js';

export const removeIdentity = rulePass('remove-identity', 'remove linear activations and shape-preserving reshapes', [
  identityRule('x -> x where the op computes the identity', false),
]);
