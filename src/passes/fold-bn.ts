/**
 * fold-bn: inference-mode batchnorm costs nothing.
 *
 * Rules, tried in this order at each batchnorm:
 *   1. after:  batchnorm(linear(x, K, b)) -> linear(x, K*s[out], b*s + t)
 *   2. before: linear(batchnorm(x), K, b) -> linear(x, K*s[in], b + K·t)
 *              (dense, or a conv whose windows never cover padding: else
 *              the zero padding would miss the shift t)
 *   3. alone:  batchnorm(x) -> affine(x, s, t)
 * Rules 1 and 2 also fold ops with a `channelAffine` fact (Keras
 * Normalization: s = 1 / std, t = -mean / std); rule 3 is batchnorm's only.
 * Linear is any op with the `linear-in-weights` trait (its record's
 * `linear` facts give the kernel's channel layout and whether rule 2 is exact
 * for it) and s, t make batchnorm a per-channel affine map (fold-bn-math.ts).
 * A batchnorm whose linear neighbour has other consumers, shares its weights
 * with another application of its layer, or already carries an epilogue is
 * not folded into it; the explain log says why. Numeric trouble (undefined
 * statistics, f32 overflow) refuses the fold; flushed subnormals and zero or
 * negative gamma are noted.
 *
 * Pre: parameters have values. Post: the folded node has the batchnorm's name.
 *
 *   %c = conv2d(%x, %k, %b); %bn = batchnorm(%c, %g, %beta, %m, %v)
 *   ->  %bn = conv2d(%x, %k', %b') @"conv2d + batch_normalization (folded)"
 */
import { ModelcError } from '../diagnostics/diagnostic.js';
import type { Node } from '../ir/graph.js';
import { tensor } from '../ir/types.js';
import { getOp } from '../ops/registry.js';
import type { GraphEditor } from '../rewrite/editor.js';
import type { ExplainLog } from '../rewrite/explain.js';
import { hasSingleUser, hasWeightValues, matchAt, op, ownsItsWeights, where, withTrait, type Guard, type RewriteOutcome, type Rule } from '../rewrite/pattern.js';
import { rulePass } from '../rewrite/pass.js';
import { batchnormAffine, foldAfter, foldBefore, FoldRefusal, kernelLayout, linearFacts, roundToF32, type ChannelAffine, type FoldedWeights } from './fold-bn-math.js';

/**
 * The node's channel affine map: another op's `channelAffine` fact (Keras
 * Normalization), refused where it is not finite; else the batchnorm's, from
 * its parameter values, noting numeric oddities in `log`.
 */
function affineOf(bn: Node, ed: GraphEditor, log?: ExplainLog): ChannelAffine {
  const fact = getOp(bn.op)!.channelAffine;
  if (fact) {
    const map = fact(bn as never, (i) => (ed.param(bn.operands[i]!) ? ed.paramValue(bn.operands[i]!) : undefined));
    const bad = [...map.scale, ...map.shift].findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new FoldRefusal(`${bn.result} is not finite in channel ${bad % map.scale.length}`);
    return map;
  }
  const roles = getOp('batchnorm')!.operands(bn.attrs as never);
  const value = (role: string) => {
    const i = roles.indexOf(role);
    return i < 0 ? undefined : ed.paramValue(bn.operands[i]!);
  };
  const gamma = value('gamma');
  const variance = value('moving_variance')!;
  const affine = batchnormAffine({ gamma, beta: value('beta'), mean: value('moving_mean')!, variance }, bn.attrs['epsilon'] as number);
  const eps = bn.attrs['epsilon'] as number;
  const zero = gamma ? [...gamma].filter((g) => g === 0).length : 0;
  const negative = gamma ? [...gamma].filter((g) => g < 0).length : 0;
  const tiny = [...variance].filter((v) => v + eps < 1e-6).length;
  if (!log) return affine;
  if (zero) log.note('numeric guard', `${bn.result}: ${zero} channel(s) with gamma = 0 become constant (beta)`);
  if (negative) log.note('numeric guard', `${bn.result}: ${negative} channel(s) with negative gamma flip sign (the fold stays exact)`);
  if (tiny) log.note('numeric guard', `${bn.result}: ${tiny} channel(s) with moving_variance + epsilon < 1e-6 scale their weights by up to ${Math.max(...affine.scale.map(Math.abs)).toPrecision(3)}`);
  return affine;
}

/** The batchnorm normalizes its input's last axis (the channel axis of every linear op). */
const normalizesChannels = (binding: string): Guard => ({
  name: `normalizesChannels(${binding})`,
  check: (m, ed) => {
    const bn = m[binding]!;
    const rank = ed.typeOf(bn.operands[0]!).shape.length;
    return bn.attrs['axis'] === rank - 1 ? undefined : `${bn.result} normalizes axis ${bn.attrs['axis']}, not the channel axis ${rank - 1}`;
  },
});

const noEpilogue: Guard = {
  name: 'noEpilogue(weighted)',
  check: (m) => (m['weighted']!.attrs['epilogue'] ? `${m['weighted']!.result} applies an activation (nonlinear)` : undefined),
};

/** Writes folded weights into the linear node's kernel and bias parameters (creating the bias). */
function writeWeights(ed: GraphEditor, linear: Node, folded: FoldedWeights, log: ExplainLog): string[] {
  const [x, kernelName, biasName] = linear.operands as [string, string, string | undefined];
  const kernel = roundToF32(folded.kernel, `kernel of ${linear.result}`);
  const bias = roundToF32(folded.bias, `bias of ${linear.result}`);
  const flushed = kernel.flushed + bias.flushed;
  if (flushed) log.note('numeric guard', `${linear.result}: ${flushed} folded weight(s) flushed to zero (subnormal in f32)`);
  ed.setParam(kernelName, { value: kernel.data, init: { type: 'data', args: {} } });
  let b = biasName;
  if (b === undefined) {
    b = ed.addParam({ name: ed.freshName(`${kernelName.replace(/\/[^/]*$/, '')}/bias`), type: tensor([bias.data.length]), trainable: true, init: { type: 'data', args: {} }, value: bias.data });
  } else ed.setParam(b, { value: bias.data, init: { type: 'data', args: {} } });
  return [x, kernelName, b];
}

/** Runs a fold, turning numeric refusals into explained skips. */
function attempt(what: string, body: () => RewriteOutcome): RewriteOutcome {
  try {
    return body();
  } catch (err) {
    if (err instanceof FoldRefusal) return { skipped: `${what}: ${err.message}` };
    throw err;
  }
}

/** Ops that batchnorm folds into: their records carry the `linear` facts. */
const linearInWeights = withTrait('linear-in-weights');

/** What rules 1 and 2 fold: batchnorm, and ops with a `channelAffine` fact (Keras Normalization). */
const perChannelAffine = where('batchnorm or a per-channel affine map', (d) => d.name === 'batchnorm' || d.channelAffine !== undefined);

const foldAfterRule: Rule = {
  name: 'batchnorm(linear(x, K, b)) -> linear(x, K*s, b*s + t)',
  pattern: op(perChannelAffine, { as: 'bn', x: op(linearInWeights, { as: 'weighted' }) }),
  guards: [hasSingleUser('weighted'), ownsItsWeights('weighted'), noEpilogue, normalizesChannels('bn'), hasWeightValues('weighted', 'bn')],
  subject: 'bn',
  refusal: (m, reason) => `${m['bn']!.result} not folded into ${m['weighted']!.result}: ${reason}`,
  rewrite: (m, ed, log) => {
    const { bn, weighted: linear } = m as { bn: Node; weighted: Node };
    return attempt(`${bn.result} not folded into ${linear.result}`, () => {
      const kernel = ed.param(linear.operands[1]!)!;
      const bias = linear.operands[2] === undefined ? undefined : ed.paramValue(linear.operands[2]);
      const layout = kernelLayout(linear, kernel.type.shape as number[]);
      const folded = foldAfter(ed.paramValue(kernel.name), bias, layout, affineOf(bn, ed, log));
      const operands = writeWeights(ed, linear, folded, log);
      ed.absorb(linear, bn, { operands, layer: `${linear.layer} + ${bn.layer} (folded)` });
      return { applied: `${bn.result} folded into ${linear.result}`, values: { fold: 'after', output: bn.result } };
    });
  },
};

/** Rule 2 is exact for this op (its record's `linear.foldBefore`), or the shift it would need to move is zero. */
const exactBeforeFold: Guard = {
  name: 'exactBeforeFold(weighted)',
  check: (m, ed) => {
    const linear = m['weighted']!;
    const verdict = linearFacts(linear).foldBefore(linear.operands.map((o) => ed.typeOf(o)), linear.attrs as never);
    if (verdict.kind === 'exact') return undefined;
    if (verdict.kind === 'zero-shift') {
      const shift = affineOfQuiet(m['bn']!, ed);
      if (shift && shift.every((t) => t === 0)) return undefined;
    }
    return `${linear.result} ${verdict.reason}`;
  },
};

/** The shift of a batchnorm if its statistics are usable, for guards (no notes). */
function affineOfQuiet(bn: Node, ed: GraphEditor): Float64Array | undefined {
  try {
    return affineOf(bn, ed).shift;
  } catch (err) {
    if (err instanceof FoldRefusal || err instanceof ModelcError) return undefined; // refused, or no values yet
    throw err;
  }
}

const foldBeforeRule: Rule = {
  name: 'linear(batchnorm(x), K, b) -> linear(x, K*s, b + K·t)',
  pattern: op(linearInWeights, { as: 'weighted', x: op(perChannelAffine, { as: 'bn' }) }),
  guards: [hasSingleUser('bn'), ownsItsWeights('weighted'), normalizesChannels('bn'), exactBeforeFold, hasWeightValues('weighted', 'bn')],
  subject: 'bn',
  refusal: (m, reason) => `${m['bn']!.result} not folded forward into ${m['weighted']!.result}: ${reason}`,
  rewrite: (m, ed, log) => {
    const { bn, weighted: linear } = m as { bn: Node; weighted: Node };
    return attempt(`${bn.result} not folded forward into ${linear.result}`, () => {
      const kernel = ed.param(linear.operands[1]!)!;
      const bias = linear.operands[2] === undefined ? undefined : ed.paramValue(linear.operands[2]);
      const layout = kernelLayout(linear, kernel.type.shape as number[]);
      const folded = foldBefore(ed.paramValue(kernel.name), bias, layout, affineOf(bn, ed, log));
      const [, k, b] = writeWeights(ed, linear, folded, log);
      const input = bn.operands[0]!;
      const updated = ed.updateNode(linear, { operands: [input, k!, b!], layer: `${bn.layer} (folded) + ${linear.layer}` });
      ed.removeNode(bn);
      return { applied: `${bn.result} folded forward into ${linear.result}`, values: { fold: 'before', output: updated.result } };
    });
  },
};

const toAffineRule: Rule = {
  name: 'batchnorm(x) -> affine(x, s, t)',
  pattern: op('batchnorm', { as: 'bn' }),
  guards: [hasWeightValues('bn')],
  rewrite: (m, ed, log) => {
    const bn = m['bn']!;
    // A batchnorm that rule 2 can fold forward waits for it; if rule 2 refuses, say why here,
    // since rule 2 (rooted at the later node) will not see this batchnorm again.
    const next = ed.users(bn.result)[0];
    const fm = next ? matchAt(ed, foldBeforeRule.pattern, next) : undefined;
    if (fm) {
      const reason = (foldBeforeRule.guards ?? []).map((g) => g.check(fm, ed)).find((r) => r !== undefined);
      if (reason === undefined) return undefined;
      log.skipped(foldBeforeRule.name, foldBeforeRule.refusal!(fm, reason));
    }
    return attempt(`${bn.result} not turned into affine`, () => {
      const affine = affineOf(bn, ed, log);
      const scale = roundToF32(affine.scale, `scale of ${bn.result}`).data;
      const shift = roundToF32(affine.shift, `shift of ${bn.result}`).data;
      const base = bn.operands[1]!.replace(/\/[^/]*$/, '');
      const param = (role: string, value: Float32Array) =>
        ed.addParam({ name: ed.freshName(`${base}/${role}`), type: tensor([value.length]), trainable: false, init: { type: 'data', args: {} }, value });
      ed.replaceNode(bn, { ...bn, op: 'affine', operands: [bn.operands[0]!, param('scale', scale), param('shift', shift)], attrs: { axis: bn.attrs['axis']! } });
      return `${bn.result} became affine (no linear neighbour it can fold into)`;
    });
  },
};

export const foldBnRules: readonly Rule[] = [foldAfterRule, foldBeforeRule, toAffineRule];

export const foldBn = rulePass('fold-bn', 'fold inference-mode batchnorm into neighbouring dense/conv weights, else into an affine', foldBnRules);
