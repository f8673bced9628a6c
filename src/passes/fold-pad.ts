/**
 * fold-pad: a zero padding that is exactly the convolution's `same` padding
 * costs nothing.
 *
 *   conv(zero_pad2d(x) {padding=[t,b,l,r]}, K) {padding="valid"}  ->  conv(x, K) {padding="same"}
 *
 * when [t, b, l, r] is where TF places `same` padding for this conv on x:
 * per axis total = max((out-1)*s + (k-1)*d + 1 - in, 0) with out = ceil(in/s),
 * floor(total/2) before and the rest after. Then the valid conv over the
 * padded input reads the same cells, zeros included, as the same conv over x,
 * and has the same output length (in + total - k_eff = (out-1)*s). Keras's
 * applications pad this way before strided convolutions (`correct_pad` in
 * MobileNetV2 and EfficientNet: ((0, 1), (0, 1)) before a 3x3 stride-2 conv on
 * an even size). Other pads (ResNet50's 3 on each side before a 7x7 stride 2,
 * where same would put 2 before and 3 after) stay: modelc's convolutions
 * have no explicit pads. Pools are never matched: their same padding is not
 * zeros (max ignores it, average does not count it).
 *
 * Pre: none. Post: the conv keeps its name; the pad is gone if the conv was its
 * only user.
 */
import type { Node } from '../ir/graph.js';
import { dim } from '../ops/op-def.js';
import { windowAxis, windowFoldBefore } from '../ops/conv/window.js';
import { getOp } from '../ops/registry.js';
import type { GraphEditor } from '../rewrite/editor.js';
import { hasSingleUser, op, type Guard, type NodeTest, type Rule } from '../rewrite/pattern.js';
import { rulePass } from '../rewrite/pass.js';

/** [top, bottom, left, right] of TF `same` padding for `conv` over an input of `x`'s type. */
export function samePads(conv: Node, ed: GraphEditor, x: string): number[] {
  const t = ed.typeOf(x);
  const kernel = ed.typeOf(conv.operands[1]!).shape as number[];
  const strides = conv.attrs['strides'] as number[];
  const dilation = conv.attrs['dilation_rate'] as number[];
  return [0, 1].flatMap((i) => {
    const input = dim(t, i + 1);
    const { out, before } = windowAxis(input, kernel[i]!, strides[i]!, 'same', dilation[i]!);
    const total = Math.max((out - 1) * strides[i]! + (kernel[i]! - 1) * dilation[i]! + 1 - input, 0);
    return [before, total - before];
  });
}

const padIsSame: Guard = {
  name: 'padIsSame(pad, conv)',
  check: (m, ed) => {
    const [pad, conv] = [m['pad']!, m['conv']!];
    const want = samePads(conv, ed, pad.operands[0]!);
    const got = pad.attrs['padding'] as number[];
    return want.every((p, i) => p === got[i])
      ? undefined
      : `padding [${got.join(', ')}] is not the 'same' padding [${want.join(', ')}] of ${conv.result}`;
  },
};

/**
 * Forward convolutions over zero padding (conv2d, depthwise_conv2d): the ops
 * whose record says a batchnorm folds before them by the window rule, which
 * is the record's fact that their `same` padding reads zeros placed as TF does.
 */
const zeroPaddedWindow: NodeTest = {
  name: 'zero-padded window',
  matches: (n) => getOp(n.op)?.linear?.foldBefore === windowFoldBefore,
};

const foldPadRule: Rule = {
  name: "conv(zero_pad2d(x), 'valid') -> conv(x, 'same') where the pad is the same padding",
  pattern: op(zeroPaddedWindow, { as: 'conv', x: op('zero_pad2d', { as: 'pad' }) }),
  when: (m) => m['conv']!.attrs['padding'] === 'valid',
  guards: [hasSingleUser('pad'), padIsSame],
  subject: 'pad',
  refusal: (m, reason) => `${m['pad']!.result} not folded into ${m['conv']!.result}: ${reason}`,
  rewrite: (m, ed) => {
    const { pad, conv } = m as { pad: Node; conv: Node };
    ed.updateNode(conv, { operands: [pad.operands[0]!, ...conv.operands.slice(1)], attrs: { ...conv.attrs, padding: 'same' }, layer: `${pad.layer} (folded) + ${conv.layer}` });
    ed.removeNode(pad);
    return `${pad.result} folded into ${conv.result} as 'same' padding`;
  },
};

export const foldPadRules: readonly Rule[] = [foldPadRule];

export const foldPad = rulePass('fold-pad', "fold a zero padding into the next convolution when it is the convolution's 'same' padding", foldPadRules);
