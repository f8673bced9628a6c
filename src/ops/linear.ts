/**
 * Dense (fully connected) layers: y = x · kernel + bias over the last axis.
 *
 *   %dense: f32[N,64] = dense(%x, %dense/kernel, %dense/bias)
 *
 * Keras layout: kernel [in, units], bias [units]. `use_bias: false` drops the
 * bias operand. `linear-in-weights`: batchnorm folds into it.
 */
import { Type } from '@sinclair/typebox';
import type { Tensor } from '../ir/tensor.js';
import { tensor } from '../ir/types.js';
import {
  ActivationName,
  applyEpilogue,
  epilogueAttr,
  epilogueCode,
  withActivation,
  type ActivationName as Activation,
  type EpilogueCode,
} from './activation.js';
import { kernel, times } from './emit.js';
import { initializer, initSpec, type Initializer } from './init.js';
import { defineLayer, defineOp, dim, formatShape, ShapeError, type LowerContext } from './op-def.js';

export const denseOp = defineOp({
  name: 'dense',
  summary: 'x · kernel (+ bias) over the last axis',
  traits: ['pure', 'linear-in-weights'],
  attrs: { ...epilogueAttr },
  operands: () => ['x', 'kernel', 'bias?'],
  infer: ([x, kernel, bias]) => {
    if (x!.shape.length < 2) throw new ShapeError(`dense expects an input of rank >= 2, got ${formatShape(x!.shape)}`);
    if (kernel!.shape.length !== 2) throw new ShapeError(`dense kernel must be rank 2, got ${formatShape(kernel!.shape)}`);
    const [inDim, units] = kernel!.shape as number[];
    if (dim(x!, -1) !== inDim) {
      throw new ShapeError(`dense kernel expects ${inDim} input features, got ${dim(x!, -1)}`);
    }
    if (bias && (bias.shape.length !== 1 || bias.shape[0] !== units)) {
      throw new ShapeError(`dense bias must have shape [${units}], got ${formatShape(bias.shape)}`);
    }
    return tensor([...x!.shape.slice(0, -1), units!]);
  },
  reference: ([x, kernel, bias], a) => applyEpilogue(denseReference(x!, kernel!, bias), a.epilogue),
  emit: ({ operands: [x, w, b], attrs }) => {
    const [inDim, units] = w!.shape as [number, number];
    const rowsPerExample = x!.shape.slice(1, -1).reduce<number>((p, d) => p * (d as number), 1);
    const ep = epilogueCode(attrs.epilogue);
    const tag = `${inDim}x${units}${ep.tag ? `_${ep.tag}` : ''}${b ? '' : '_nobias'}`;
    return kernel(
      `dense_${tag}`,
      b ? ['x', 'w', 'b'] : ['x', 'w'],
      `GEMM [rows, ${inDim}] x [${inDim}, ${units}] in 4x4 register blocks${b ? ', bias' : ''}${ep.tag ? `, ${ep.tag}` : ''}`,
      gemmCode(times('n', rowsPerExample), inDim, units, b !== undefined, ep),
      ep.helpers,
    );
  },
});

/**
 * y[r, u] = f(b[u] + sum_k x[r, k] w[k, u]) for `rows` rows, as register
 * blocks of 4 rows x 4 columns (16 accumulators, 8 loads per 16
 * multiply-adds), then the leftover columns and rows in narrower blocks.
 */
function gemmCode(rows: string, inDim: number, units: number, bias: boolean, ep: EpilogueCode): string {
  const wide = units - (units % 4);
  /** An R x C block at rows r.., columns u..; `x${i}`/`y${i}` hold row i's offsets. */
  const block = (R: number, C: number): string => {
    const acc = (i: number, j: number) => `c${i}${j}`;
    const lines: string[] = [];
    for (let i = 0; i < R; i++) {
      const init = Array.from({ length: C }, (_, j) => `${acc(i, j)} = ${bias ? `b[u${j ? ` + ${j}` : ''}]!` : '0'}`);
      lines.push(`let ${init.join(', ')};`);
    }
    lines.push(`for (let k = 0; k < ${inDim}; k++) {`);
    lines.push(`  const at = k * ${units} + u;`);
    for (let j = 0; j < C; j++) lines.push(`  const w${j} = w[at${j ? ` + ${j}` : ''}]!;`);
    for (let i = 0; i < R; i++) {
      lines.push(`  const a${i} = x[x${i} + k]!;`);
      lines.push(`  ${Array.from({ length: C }, (_, j) => `${acc(i, j)} += a${i} * w${j};`).join(' ')}`);
    }
    lines.push('}');
    for (let i = 0; i < R; i++) {
      for (let j = 0; j < C; j++) lines.push(`y[y${i} + u${j ? ` + ${j}` : ''}] = ${ep.scalar(acc(i, j))};`);
    }
    return lines.join('\n');
  };
  const columns = (R: number) =>
    [
      wide > 0 ? `for (let u = 0; u < ${wide}; u += 4) {\n${block(R, 4)}\n}` : '',
      wide < units ? `for (let u = ${wide}; u < ${units}; u++) {\n${block(R, 1)}\n}` : '',
    ].filter((c) => c !== '').join('\n');
  const offsets = (R: number) =>
    Array.from({ length: R }, (_, i) =>
      `const x${i} = ${i === 0 ? `r * ${inDim}` : `x${i - 1} + ${inDim}`}, y${i} = ${i === 0 ? `r * ${units}` : `y${i - 1} + ${units}`};`,
    ).join('\n');
  return [
    `const rows = ${rows};`,
    'let r = 0;',
    `for (; r + 4 <= rows; r += 4) {\n${offsets(4)}\n${columns(4)}\n}`,
    `for (; r < rows; r++) {\n${offsets(1)}\n${columns(1)}\n}`,
    ep.rows('rows', units),
  ].filter((c) => c !== '').join('\n');
}

/** y[r, u] = bias[u] + sum_i x[r, i] * kernel[i, u], where r runs over every leading index of x. */
function denseReference(x: Tensor, kernel: Tensor, bias: Tensor | undefined): Tensor {
  const [inDim, units] = kernel.shape as [number, number];
  const rows = x.data.length / inDim;
  const y = new Float64Array(rows * units);
  // With a finite kernel, a zero input adds exactly zero: skip it (basis inputs are mostly zeros).
  const finite = kernel.data.every(Number.isFinite);
  for (let r = 0; r < rows; r++) {
    const yAt = r * units;
    for (let u = 0; u < units; u++) y[yAt + u] = bias ? bias.data[u]! : 0;
    // y[r, u] = bias[u] + sum over i of x[r, i] * kernel[i, u], summed in order of i.
    for (let i = 0; i < inDim; i++) {
      const v = x.data[r * inDim + i]!;
      if (v === 0 && finite) continue;
      const kAt = i * units;
      for (let u = 0; u < units; u++) y[yAt + u] += v * kernel.data[kAt + u]!;
    }
  }
  return { shape: [...x.shape.slice(0, -1), units], data: y };
}

/** Attributes shared by every layer with a kernel and a bias (dense, conv). */
export const weightedLayerAttrs = {
  activation: Type.Optional(ActivationName),
  use_bias: Type.Boolean({ default: true }),
  kernel_initializer: initializer('glorot_uniform'),
  bias_initializer: initializer('zeros'),
};

/** Declares kernel (and bias unless `use_bias` is false) for a weighted layer. */
export function kernelAndBias(
  ctx: LowerContext,
  kernelShape: readonly number[],
  units: number,
  a: { use_bias: boolean; kernel_initializer: Initializer; bias_initializer: Initializer },
  kernelRole = 'kernel',
): string[] {
  const params = [ctx.param(kernelRole, kernelShape, initSpec(a.kernel_initializer))];
  if (a.use_bias) params.push(ctx.param('bias', [units], initSpec(a.bias_initializer)));
  return params;
}

export const denseLayer = defineLayer({
  type: 'dense',
  keras: 'Dense',
  namePrefix: 'dense',
  summary: 'fully connected layer',
  attrs: {
    units: Type.Integer({ minimum: 1, description: 'number of output features' }),
    ...weightedLayerAttrs,
  },
  positional: ['units'],
  arity: [1, 1],
  lower: (ctx, [x], a) => {
    const t = ctx.typeOf(x!);
    if (t.shape.length < 2) throw new ShapeError(`dense expects an input of rank >= 2, got ${formatShape(t.shape)}`);
    const params = kernelAndBias(ctx, [dim(t, -1), a.units], a.units, a);
    return withActivation(ctx, 'dense', [x!, ...params], {}, a.activation as Activation | undefined);
  },
});
