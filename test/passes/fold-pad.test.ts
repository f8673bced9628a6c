/**
 * fold-pad (`src/passes/fold-pad.ts`): a zero padding that is exactly TF's
 * `same` padding of the next conv2d / depthwise_conv2d becomes that padding
 * (Keras's correct_pad before a strided 3x3, on even and odd sizes), and
 * every other pad stays, with the reason in the explain log. Each case checks
 * the IR after and that the reference interpreter gives the same outputs.
 */
import { describe, expect, it } from 'vitest';
import type { Graph } from '../../src/ir/graph.js';
import { parseGraph } from '../../src/ir/parse.js';
import { printGraph } from '../../src/ir/print.js';
import { compareOnRandomInputs } from '../../src/passes/equivalence.js';
import { foldPad } from '../../src/passes/fold-pad.js';
import { createPassManager } from '../../src/passes/pipeline.js';
import { ExplainLog } from '../../src/rewrite/explain.js';
import { ir, withValues } from './helpers.js';

function run(text: string): { before: Graph; after: Graph; explain: string } {
  const before = withValues(parseGraph(text));
  const explain = new ExplainLog();
  const after = createPassManager([foldPad]).run(before, ['fold-pad'], { explain });
  for (const d of compareOnRandomInputs(before, after, { batch: 2 })) expect(d.maxRel).toBeLessThan(1e-12);
  return { before, after, explain: explain.format() };
}

/** x -> zero_pad2d(pads) -> op(3x3 kernel, strides) over an input [size, size, 2]. */
function padThenConv(size: number, pads: number[], conv: 'conv2d' | 'depthwise_conv2d', strides = 2, k = 3): string {
  const padded = [size + pads[0]! + pads[1]!, size + pads[2]! + pads[3]!];
  const out = padded.map((n) => Math.floor((n - k) / strides) + 1);
  const kernel = conv === 'conv2d' ? `${k},${k},2,3` : `${k},${k},2,1`;
  const channels = conv === 'conv2d' ? 3 : 2;
  const attrs = `strides=[${strides},${strides}], padding="valid", dilation_rate=[1,1]${conv === 'conv2d' ? ', groups=1' : ''}`;
  return ir(
    `graph g(%x: f32[N,${size},${size},2]) {`,
    `  param %c/kernel: f32[${kernel}] = glorot_uniform`,
    `  %pad: f32[N,${padded[0]},${padded[1]},2] = zero_pad2d(%x) {padding=[${pads.join(',')}]}`,
    `  %c: f32[N,${out[0]},${out[1]},${channels}] = ${conv}(%pad, %c/kernel) {${attrs}}`,
    '  return %c',
    '}',
  );
}

describe('fold-pad', () => {
  it.each([
    ['conv2d', 8, [0, 1, 0, 1]],
    ['conv2d', 7, [1, 1, 1, 1]],
    ['depthwise_conv2d', 8, [0, 1, 0, 1]],
  ] as const)("folds %s's same padding on a %i x %i input", (conv, size, pads) => {
    const { after, explain } = run(padThenConv(size, [...pads], conv));
    expect(after.nodes.map((n) => [n.op, n.operands[0], n.attrs['padding']])).toEqual([[conv, 'x', 'same']]);
    expect(explain).toBe("fold-pad: pad folded into c as 'same' padding");
  });

  it("keeps a pad that is not the conv's same padding (ResNet50's stem), and says why", () => {
    const { before, after, explain } = run(padThenConv(16, [3, 3, 3, 3], 'conv2d', 2, 7));
    expect(printGraph(after)).toBe(printGraph(before));
    expect(explain).toBe("fold-pad: skipped: pad not folded into c: padding [3, 3, 3, 3] is not the 'same' padding [2, 3, 2, 3] of c");
  });

  it('keeps a pad with another user', () => {
    const text = padThenConv(8, [0, 1, 0, 1], 'conv2d').replace('return %c', 'return %c, %pad');
    const { before, after } = run(text);
    expect(printGraph(after)).toBe(printGraph(before));
  });
});
