/**
 * fuse-activation: an elementwise activation right after a dense, conv or
 * affine node (or relu right after add) becomes that node's epilogue, so code
 * generation applies it while the value is still in a register. softmax over
 * the last axis fuses too, as a per-row epilogue.
 *
 *   %c = conv2d(%x, %k, %b) {...}; %r = relu(%c)
 *   ->  %r = conv2d(%x, %k, %b) {..., epilogue={op="relu"}}
 *
 * Pre: the producer's only consumer is the activation and it has no epilogue
 * yet. Post: the fused node has the activation's name (uses are unchanged).
 */
import type { Attrs } from '../ir/types.js';
import { epilogueNames, type Epilogue } from '../ops/activation.js';
import type { GraphEditor } from '../rewrite/editor.js';
import { hasSingleUser, op, type Guard, type Match, type Rule } from '../rewrite/pattern.js';
import { rulePass } from '../rewrite/pass.js';
import type { OpName } from '../rewrite/ops.js';

const noEpilogueYet: Guard = {
  name: 'noEpilogueYet(producer)',
  check: (m) => (m['producer']!.attrs['epilogue'] ? `${m['producer']!.result} already has an epilogue` : undefined),
};

function fuse(m: Match, ed: GraphEditor): string {
  const producer = m['producer']!;
  const act = m['act']!;
  const epilogue = { op: act.op, ...act.attrs } as Epilogue;
  ed.absorb(producer, act, {
    attrs: { ...producer.attrs, epilogue } as unknown as Attrs,
    layer: `${producer.layer} + ${fusedLabel(producer.layer, act.layer, act.op)}`,
  });
  return `${act.result} (${act.op}) fused into ${producer.result}`;
}

/**
 * How the activation reads in the fused node's provenance: its op when it is the
 * layer's own `activation` (`dense_1 + softmax (fused)`), else its layer and op
 * (`conv2d + batch_normalization (folded) + activation (relu, fused)`).
 */
function fusedLabel(producerLayer: string, actLayer: string, actOp: string): string {
  if (actLayer === producerLayer || actLayer === actOp) return `${actOp} (fused)`;
  return `${actLayer} (${actOp}, fused)`;
}

function fusionRule(name: string, producers: readonly OpName[], activations: readonly OpName[]): Rule {
  return {
    name,
    pattern: op(activations, { as: 'act', x: op(producers, { as: 'producer' }) }),
    guards: [hasSingleUser('producer'), noEpilogueYet],
    subject: 'act',
    rewrite: (m, ed) => fuse(m, ed),
  };
}

const linearProducers: readonly OpName[] = ['dense', 'conv2d', 'depthwise_conv2d', 'conv2d_transpose', 'affine'];

/** softmax fuses only over the last axis: each output row is complete when the op writes it. */
const overLastAxis: Guard = {
  name: 'overLastAxis(act)',
  check: (m) => {
    const act = m['act']!;
    const last = act.type.shape.length - 1;
    return act.attrs['axis'] === last ? undefined : `${act.result} normalizes axis ${act.attrs['axis']}, not the last axis ${last}`;
  },
};

export const fuseActivationRules: readonly Rule[] = [
  fusionRule('act(linear(x)) -> linear(x) {epilogue=act}', linearProducers, epilogueNames),
  { ...fusionRule('softmax(linear(x)) -> linear(x) {epilogue=softmax}', linearProducers, ['softmax']), guards: [hasSingleUser('producer'), noEpilogueYet, overLastAxis] },
  fusionRule('relu(add(x, y)) -> add(x, y) {epilogue=relu}', ['add'], ['relu']),
];

export const fuseActivation = rulePass('fuse-activation', 'fuse activations into the producing dense/conv/affine/add node', fuseActivationRules);
