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
} from './activation.js';
import { kernel, times } from './emit.js';
import { BLOCK_COLS, BLOCK_ROWS, columnTile, gemmCode, gemmPlan } from './gemm.js';
import { initializer, initSpec, type Initializer } from './init.js';
import { kerasWeighted } from './keras-def.js';
import { kerasWeightedConfig } from './keras-export-def.js';
import { defineFamily, defineLayer, defineOp, dim, formatShape, ShapeError, type LowerContext } from './op-def.js';
import { simdCommon } from './simd-common.js';
import { denseGradInputRequest, rowsField, selection } from './simd-def.js';
import { gradientOnly } from './onnx-def.js';

export const denseOp = defineOp({
  name: 'dense',
  summary: 'x · kernel (+ bias) over the last axis',
  traits: ['pure', 'linear-in-weights'],
  // kernel [in, units]: element i connects input i div units to output i mod units; every output sees every input.
  linear: {
    layout: ([inDim, units]) => ({ inChannels: inDim!, outChannels: units!, channels: (i) => ({ in: Math.floor(i / units!), out: i % units! }) }),
    foldBefore: () => ({ kind: 'exact' }),
  },
  epilogue: { fuses: 'all' },
  attrs: { ...epilogueAttr },
  operands: () => ['x', 'kernel', 'bias?'],
  examples: [
    { note: 'bias', attrs: {}, operands: [tensor(['N', 5]), tensor([5, 7]), tensor([7])] },
    { note: 'rank-3 input, no bias', attrs: {}, operands: [tensor(['N', 2, 3]), tensor([3, 4])] },
    { note: 'relu epilogue', attrs: { epilogue: { op: 'relu' } }, operands: [tensor(['N', 6]), tensor([6, 9]), tensor([9])] },
    { note: 'bias, units a multiple of 4 past one 8-unit panel (the Trainer has a SIMD kernel for it)', attrs: {}, operands: [tensor(['N', 6]), tensor([6, 12]), tensor([12])] },
    { note: 'softmax epilogue (the SIMD kernel leaves it as remaining)', attrs: { epilogue: { op: 'softmax', axis: 1 } }, operands: [tensor(['N', 5]), tensor([5, 10]), tensor([10])] },
  ],
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
    const rows = times('n', rowsPerExample);
    const body = gemmCode({
      rows, cols: units, depth: inDim,
      a: { name: 'x', row: inDim, step: 1 },
      b: { name: 'w', step: units, col: 1 },
      c: { name: 'y', row: units },
      start: b ? { bias: 'b' } : 'zero',
      value: ep.scalar,
      tileCols: columnTile(inDim, units),
    });
    return kernel(
      `dense_${tag}`,
      b ? ['x', 'w', 'b'] : ['x', 'w'],
      `GEMM [rows, ${inDim}] x [${inDim}, ${units}] in ${BLOCK_ROWS}x${BLOCK_COLS} register blocks${b ? ', bias' : ''}${ep.tag ? `, ${ep.tag}` : ''}`,
      [body, ep.rows(rows, units)].filter((c) => c !== '').join('\n'),
      ep.helpers,
      gemmPlan,
    );
  },
  simd: ({ operands: [x, w, b], attrs }, use) => {
    if (w!.shape.length !== 2 || w!.shape.some((d) => typeof d !== 'number') || x!.shape.length < 2) return undefined;
    const [inDim, units] = w!.shape as [number, number];
    const { common, remaining } = simdCommon(b !== undefined, attrs.epilogue);
    const request = { kind: 'dense', inDim, units, ...rowsField(x!), ...common } as const;
    if (use === 'inference') return selection(request, remaining);
    // The Trainer's kernel changes every step: it stays row-major, read in whole f32x4 vectors of units.
    return remaining || units % 4 !== 0 ? undefined : selection({ ...request, rowMajor: true });
  },
  // Gemm on rank 2; MatMul (+ Add) on higher ranks, which MatMul broadcasts over the leading axes.
  onnx: (b, n) => {
    const [x, kernel, bias] = n.operands;
    const input = b.nhwc(x!);
    const k = b.param(kernel!);
    const bb = bias === undefined ? undefined : b.param(bias);
    b.produce(n, 'nhwc', (out) => {
      if (n.type.shape.length === 2) b.emit('Gemm', bb === undefined ? [input, k] : [input, k, bb], [out]);
      else if (bb === undefined) b.emit('MatMul', [input, k], [out]);
      else b.emit('Add', [b.temp('MatMul', [input, k]), bb], [out]);
    });
  },
  // y = x · w + b: dx = dy · wᵀ, dw = xᵀ · dy (summed over every row), db = dy summed per unit.
  grad: (g, { operands: [x, w, b], attrs, result }, dy) => {
    noEpilogue('dense', result, attrs.epilogue);
    const last = g.typeOf(x!).shape.length - 1;
    return [
      () => g.op('dense_grad_input', [dy, w!], {}),
      () => g.op('dense_grad_kernel', [x!, dy], {}),
      b === undefined ? undefined : () => g.op('channel_sum', [dy], { axis: last }),
    ];
  },
});

/** Gradient rules see unfused graphs: autodiff runs before `fuse-activation`. */
export function noEpilogue(op: string, result: string, epilogue: unknown): void {
  if (epilogue !== undefined) throw new Error(`${op} ${result} has a fused activation: differentiate before fuse-activation`);
}

/**
 * dx = dy · wᵀ for dense: dx[r, k] = sum_u dy[r, u] w[k, u] over every row r.
 *
 *   %dense/grad_x: f32[N,16] = dense_grad_input(%dense/grad, %dense/kernel)
 */
export const denseGradInputOp = defineOp({
  name: 'dense_grad_input',
  summary: 'the gradient of dense with respect to its input: dy · kernelᵀ',
  traits: ['pure'],
  attrs: {},
  operands: () => ['dy', 'kernel'],
  examples: [
    { attrs: {}, operands: [tensor(['N', 7]), tensor([5, 7])] },
    { note: 'rank-3 dy', attrs: {}, operands: [tensor(['N', 2, 4]), tensor([3, 4])] },
  ],
  infer: ([dy, w]) => {
    const [inDim, units] = w!.shape as number[];
    if (dim(dy!, -1) !== units) throw new ShapeError(`dense_grad_input: dy has ${dim(dy!, -1)} features, the kernel ${units} units`);
    return tensor([...dy!.shape.slice(0, -1), inDim!]);
  },
  reference: ([dy, w]) => {
    const [inDim, units] = w!.shape as [number, number];
    const rows = dy!.data.length / units;
    const dx = new Float64Array(rows * inDim);
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < inDim; k++) {
        let s = 0;
        for (let u = 0; u < units; u++) s += dy!.data[r * units + u]! * w!.data[k * units + u]!;
        dx[r * inDim + k] = s;
      }
    }
    return { shape: [...dy!.shape.slice(0, -1), inDim], data: dx };
  },
  emit: ({ operands: [dy, w] }) => {
    const [inDim, units] = w!.shape as [number, number];
    const rows = times('n', dy!.shape.slice(1, -1).reduce<number>((p, d) => p * (d as number), 1));
    // B = wᵀ: B[u, k] = w[k, u], read along rows of w.
    const body = gemmCode({
      rows, cols: inDim, depth: units,
      a: { name: 'dy', row: units, step: 1 },
      b: { name: 'w', step: 1, col: units },
      c: { name: 'y', row: inDim },
      start: 'zero',
      tileCols: columnTile(units, inDim),
    });
    return kernel(`dense_grad_input_${inDim}x${units}`, ['dy', 'w'], `dy · kernelᵀ: [rows, ${units}] x [${units}, ${inDim}] in ${BLOCK_ROWS}x${BLOCK_COLS} register blocks`, body, [], gemmPlan);
  },
  simd: ({ operands: [dy, w] }, use) => {
    if (use !== 'training' || w!.shape.length !== 2) return undefined;
    const [inDim, units] = w!.shape as [number, number];
    return units % 4 === 0 ? selection(denseGradInputRequest({ inDim, units, ...rowsField(dy!) })) : undefined;
  },
  onnx: gradientOnly,
  grad: 'none',
});

/**
 * dw = xᵀ · dy for dense: dw[k, u] = sum_r x[r, k] dy[r, u] over every row r
 * of the batch (a static result: the kernel's shape).
 *
 *   %dense/kernel/grad: f32[16,64] = dense_grad_kernel(%x, %dense/grad)
 */
export const denseGradKernelOp = defineOp({
  name: 'dense_grad_kernel',
  summary: 'the gradient of dense with respect to its kernel: xᵀ · dy over the batch',
  traits: ['pure'],
  attrs: {},
  operands: () => ['x', 'dy'],
  examples: [
    { attrs: {}, operands: [tensor(['N', 5]), tensor(['N', 7])] },
    { note: 'rank-3 x: sums over rows of every example', attrs: {}, operands: [tensor(['N', 2, 3]), tensor(['N', 2, 4])] },
  ],
  infer: ([x, dy]) => {
    if (x!.shape[0] !== 'N' || dy!.shape[0] !== 'N') throw new ShapeError('dense_grad_kernel reduces over a batch');
    return tensor([dim(x!, -1), dim(dy!, -1)]);
  },
  reference: ([x, dy]) => {
    const inDim = x!.shape[x!.shape.length - 1]!;
    const units = dy!.shape[dy!.shape.length - 1]!;
    const rows = x!.data.length / inDim;
    const dw = new Float64Array(inDim * units);
    for (let r = 0; r < rows; r++) {
      for (let k = 0; k < inDim; k++) {
        const v = x!.data[r * inDim + k]!;
        for (let u = 0; u < units; u++) dw[k * units + u] += v * dy!.data[r * units + u]!;
      }
    }
    return { shape: [inDim, units], data: dw };
  },
  emit: ({ operands: [x, dy] }) => {
    const inDim = dim(x!, -1);
    const units = dim(dy!, -1);
    const rows = times('n', x!.shape.slice(1, -1).reduce<number>((p, d) => p * (d as number), 1));
    // A = xᵀ: A[k, r] = x[r, k]; every sum runs over the rows of the batch in float64.
    const body = gemmCode({
      rows: inDim, cols: units, depth: rows,
      a: { name: 'x', row: 1, step: inDim },
      b: { name: 'dy', step: units, col: 1 },
      c: { name: 'y', row: units },
      start: 'zero',
    });
    return kernel(`dense_grad_kernel_${inDim}x${units}`, ['x', 'dy'], `xᵀ · dy: [${inDim}, rows] x [rows, ${units}] in ${BLOCK_ROWS}x${BLOCK_COLS} register blocks, summed in float64`, body, [], gemmPlan);
  },
  simd: ({ operands: [x, dy] }, use) => {
    if (use !== 'training' || dy!.shape[0] !== 'N') return undefined;
    const units = dim(dy!, -1);
    return units % 4 === 0 ? selection({ kind: 'dense_grad_kernel', inDim: dim(x!, -1), units, ...rowsField(x!) }) : undefined;
  },
  onnx: gradientOnly,
  grad: 'none',
});

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
  kerasImport: {
    classes: ['Dense'],
    fromConfig: (c) => {
      c.set('units', c.int('units'));
      kerasWeighted(c, 'kernel_initializer');
    },
  },
  kerasExport: (a) => ({ className: 'Dense', config: { units: a.units, ...kerasWeightedConfig(a, 'kernel_initializer') } }),
  examples: [
    { attrs: { units: 3, activation: 'relu', use_bias: false }, inputs: [[5]] },
    { attrs: { units: 2, activation: 'tanh' }, inputs: [[4, 3]] },
  ],
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

/** Dense layers: the op, its two gradient ops and the layer. */
export const linearFamily = defineFamily({ ops: [denseOp, denseGradInputOp, denseGradKernelOp], layers: [denseLayer] });
