/**
 * Per-channel reductions over a batch: every axis but `axis` (batch included)
 * is summed or averaged, leaving one value per channel. Training builds them:
 * bias and beta gradients are `channel_sum`s of the incoming gradient, and
 * batchnorm's moving averages follow `channel_mean` and `channel_variance`.
 *
 *   %dense/bias/grad: f32[64] = channel_sum(%dense/grad) {axis=1}
 *   %bn/batch_mean: f32[64] = channel_mean(%dense) {axis=1}
 *
 * `channel_variance` is the biased (population) variance, mean((x - mean)^2),
 * the one TF.js's `tf.moments` returns and its BatchNormalization averages
 * into `moving_variance`.
 */
import { Type } from '@sinclair/typebox';
import { aroundAxis, type Tensor } from '../ir/tensor.js';
import { tensor, type TensorType } from '../ir/types.js';
import { kernel, shapeTag, times } from './emit.js';
import { channelPassCode, elem, lane } from './channel-emit.js';
import { scratch64Helper } from './gemm.js';
import { defineFamily, defineOp, dim, formatShape, ShapeError, type NamedOpDef } from './op-def.js';
import { rowsField, selection, type ChannelStatsRequest, type SimdUse } from './simd-def.js';

type Reduction = 'sum' | 'mean' | 'variance';

/** Per channel along `axis`: the sum, mean or biased variance of the fibre's values. */
export function channelReduce(x: Tensor, axis: number, how: Reduction): Tensor {
  const { outer, n: channels, inner } = aroundAxis(x.shape, axis);
  const count = outer * inner;
  const out = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let o = 0; o < outer; o++) for (let r = 0; r < inner; r++) sum += x.data[(o * channels + c) * inner + r]!;
    if (how === 'sum') {
      out[c] = sum;
      continue;
    }
    const mean = sum / count;
    if (how === 'mean') {
      out[c] = mean;
      continue;
    }
    let squares = 0;
    for (let o = 0; o < outer; o++) {
      for (let r = 0; r < inner; r++) squares += (x.data[(o * channels + c) * inner + r]! - mean) ** 2;
    }
    out[c] = squares / count;
  }
  return { shape: [channels], data: out };
}

/**
 * The kernel body: for each channel, walk its fibre (`outer` blocks of
 * `inner` contiguous values, `outer` counting the batch), in float64. With
 * the channels last (inner = 1, NHWC) the fibre is strided: blocks of
 * neighbouring channels are walked down the rows together, their sums in
 * registers (`channel-emit.ts`): the same additions in the same order per
 * channel, hence the same result, without a cache miss per element.
 */
function reduceCode(x: TensorType, axis: number, how: Reduction): string {
  const { outer, n: channels, inner } = aroundAxis([1, ...(x.shape.slice(1) as number[])], axis);
  if (inner === 1) return channelsLastCode(times('n', outer), channels, how);
  const walk = (stmt: string) => `for (let o = 0; o < ${times('n', outer)}; o++) {
    const at = (o * ${channels} + c) * ${inner};
    for (let i = at; i < at + ${inner}; i++) ${stmt}
  }`;
  const count = times('n', outer * inner);
  const lines = [`for (let c = 0; c < ${channels}; c++) {`, '  let sum = 0;', `  ${walk('sum += x[i]!;')}`];
  if (how === 'sum') lines.push('  y[c] = sum;');
  else if (how === 'mean') lines.push(`  y[c] = sum / (${count});`);
  else {
    lines.push(`  const mean = sum / (${count});`, '  let squares = 0;', `  ${walk('squares += (x[i]! - mean) ** 2;')}`);
    lines.push(`  y[c] = squares / (${count});`);
  }
  lines.push('}');
  return lines.join('\n');
}

/** Channels last: x is [rows, C]; per-channel sums in registers, blocks of channels walked down the rows. */
function channelsLastCode(rows: string, channels: number, how: Reduction): string {
  const sum = channelPassCode({
    rows, channels, sums: ['s'],
    step: (j) => `s${j} += x[${elem(j)}]!;`,
    finish: (j) => how === 'sum' ? `y[${lane(j)}] = s${j};` : `${how === 'mean' ? 'y' : 'mean'}[${lane(j)}] = s${j} / (${rows});`,
  });
  if (how !== 'variance') return sum;
  return [
    `const mean = scratch64(0, ${channels});`,
    sum,
    channelPassCode({
      rows, channels, sums: ['s'],
      setup: (j) => `const m${j} = mean[${lane(j)}]!;`,
      step: (j) => `s${j} += (x[${elem(j)}]! - m${j}) ** 2;`,
      finish: (j) => `y[${lane(j)}] = s${j} / (${rows});`,
    }),
  ].join('\n');
}

/**
 * The Trainer's SIMD kernel for a reduction of x (codegen/wasm/channel-stats.ts):
 * channels last (the last axis) in whole f32x4 vectors; undefined otherwise.
 */
function simdRequest(how: Reduction, x: TensorType, axis: number, use: SimdUse): ChannelStatsRequest | undefined {
  const channels = x.shape[axis];
  if (use !== 'training' || axis !== x.shape.length - 1 || typeof channels !== 'number' || channels % 4 !== 0) return undefined;
  return { kind: `channel_${how}`, channels, ...rowsField(x) };
}

function reductionOp<const H extends Reduction>(how: H, summary: string): NamedOpDef<`channel_${H}`> {
  return defineOp({
    name: `channel_${how}` as `channel_${H}`,
    summary,
    traits: ['pure'],
    attrs: { axis: Type.Integer({ minimum: 1 }) },
    operands: () => ['x'],
    examples: [
      { note: 'features', attrs: { axis: 1 }, operands: [tensor(['N', 5])] },
      { note: 'channels last', attrs: { axis: 3 }, operands: [tensor(['N', 2, 2, 3])] },
      { note: 'a middle axis', attrs: { axis: 1 }, operands: [tensor(['N', 3, 2, 2])] },
      { note: 'channels last in whole vectors (the SIMD kernel), 20 channels: a block of 16 and one of 4', attrs: { axis: 3 }, operands: [tensor(['N', 3, 5, 20])] },
      { note: 'features in whole vectors (the SIMD kernel)', attrs: { axis: 1 }, operands: [tensor(['N', 8])] },
    ],
    infer: ([x], a) => {
      if (x!.shape[0] !== 'N') throw new ShapeError(`channel_${how} reduces a batch; got the static shape ${formatShape(x!.shape)}`);
      if (a.axis >= x!.shape.length) throw new ShapeError(`channel_${how} axis ${a.axis} is out of range for ${formatShape(x!.shape)}`);
      return tensor([dim(x!, a.axis)]);
    },
    reference: ([x], a) => channelReduce(x!, a.axis, how),
    emit: ({ operands: [x], attrs: a }) => {
      const lastAxis = aroundAxis([1, ...(x!.shape.slice(1) as number[])], a.axis).inner === 1;
      return kernel(
        `channel_${how}_${shapeTag(x!)}_axis${a.axis}`,
        ['x'],
        `per-channel ${how} along axis ${a.axis} over the batch${lastAxis ? ', channels last in register blocks' : ''}`,
        reduceCode(x!, a.axis, how),
        lastAxis && how === 'variance' ? [scratch64Helper] : [],
      );
    },
    simd: ({ operands: [x], attrs: a }, use) => {
      const request = simdRequest(how, x!, a.axis, use);
      return request && selection(request);
    },
    onnx: { notExportable: 'a per-channel statistic over the batch: only training graphs compute it (gradients, batch statistics)' },
    // Sums appear in backward graphs only; the batch statistics only feed moving averages (not differentiated).
    grad: 'none',
  }) as unknown as NamedOpDef<`channel_${H}`>;
}

export const reduceOps = [
  reductionOp('sum', 'per-channel sum over the batch and every other axis'),
  reductionOp('mean', 'per-channel mean over the batch and every other axis'),
  reductionOp('variance', 'per-channel biased variance over the batch and every other axis'),
] as const;

export const reduceFamily = defineFamily({ ops: reduceOps });
