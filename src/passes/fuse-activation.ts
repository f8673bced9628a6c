/**
 * fuse-activation: an activation right after a node whose op applies fused
 * activations (its record's `epilogue` facts: dense, the convolutions and
 * affine take every one; add takes relu) becomes that node's epilogue, so code
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
import { epilogueKind, type Epilogue } from '../ops/activation.js';
import type { GraphEditor } from '../rewrite/editor.js';
import { getOp } from '../ops/registry.js';
import { hasSingleUser, op, where, type Guard, type Match, type NodeTest, type Pattern, type Rule } from '../rewrite/pattern.js';
import { rulePass } from '../rewrite/pass.js';

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

/** Activations that run as an epilogue, by their records: elementwise ones per value, softmax per row (over the last axis). */
const elementwiseActivation = where('an elementwise activation', (d) => epilogueKind(d.name) === 'elementwise');
const rowActivation = op(where('a per-row activation', (d) => epilogueKind(d.name) === 'rows'));
/** Producers that fuse every activation. */
const fusesAll = where('fuses every activation', (d) => d.epilogue?.fuses === 'all');
/** Producers that fuse only the activations their record lists. */
const fusesSome = where('fuses some activations', (d) => Array.isArray(d.epilogue?.fuses));

function fusionRule(name: string, producer: NodeTest, activation: Pattern): Rule {
  return {
    name,
    pattern: { ...activation, as: 'act', operands: [op(producer, { as: 'producer' })] },
    guards: [hasSingleUser('producer'), noEpilogueYet],
    subject: 'act',
    rewrite: (m, ed) => fuse(m, ed),
  };
}

/** softmax fuses only over the last axis: each output row is complete when the op writes it. */
const overLastAxis: Guard = {
  name: 'overLastAxis(act)',
  check: (m) => {
    const act = m['act']!;
    const last = act.type.shape.length - 1;
    return act.attrs['axis'] === last ? undefined : `${act.result} normalizes axis ${act.attrs['axis']}, not the last axis ${last}`;
  },
};

/** The producer's record lists the activation among those it fuses. */
const listedByProducer = (m: Match): boolean => {
  const fuses = getOp(m['producer']!.op)?.epilogue?.fuses;
  return fuses === 'all' || (fuses ?? []).includes(m['act']!.op);
};

export const fuseActivationRules: readonly Rule[] = [
  fusionRule('act(linear(x)) -> linear(x) {epilogue=act}', fusesAll, op(elementwiseActivation)),
  { ...fusionRule('softmax(linear(x)) -> linear(x) {epilogue=softmax}', fusesAll, rowActivation), guards: [hasSingleUser('producer'), noEpilogueYet, overLastAxis] },
  { ...fusionRule('act(y) -> y {epilogue=act} for the activations y\'s op lists', fusesSome, op(elementwiseActivation)), when: listedByProducer },
];

export const fuseActivation = rulePass('fuse-activation', 'fuse activations into the producing dense/conv/affine/add node', fuseActivationRules);
