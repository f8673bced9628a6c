/**
 * 1-D convolution over [N, steps, channels] (Keras Conv1D): the op conv1d,
 * its two gradient ops and the layer, each op a view of its 2-D counterpart.
 *
 *   %conv1d: f32[N,7,4] = conv1d(%x, %conv1d/kernel, %conv1d/bias)
 *       {strides=1, padding="valid", dilation_rate=1, groups=1}
 *
 * x [N, L, C] has the bytes of [N, 1, L, C] and the Keras kernel [k, C/G, F]
 * those of [1, k, C/G, F], so conv1d is conv2d on those views with strides
 * [1, s] and dilation [1, d]: the reference, the kernel template, the type
 * rule and the fold facts are conv2d's, called on the views. conv1d is an op
 * of its own (not reshapes around conv2d) because its kernel must keep the
 * shape Keras saves, and a batchnorm after it must meet a linear op on the
 * same value to fold. Keras's `causal` padding lowers to a zero padding of
 * d*(k-1) steps at the start, then a valid conv1d.
 */
import { Type, type Static, type TObject, type TProperties } from '@sinclair/typebox';
import type { Tensor } from '../ir/tensor.js';
import { exampleShape, tensor, type Attrs, type TensorType } from '../ir/types.js';
import { epilogueAttr, withActivation, type ActivationName } from './activation.js';
import { conv2dOp } from './conv.js';
import { convGradOps } from './conv-grad.js';
import { convOutputLength, Padding, windowAxis } from './conv/window.js';
import { kerasWeighted, show, type KerasConfig } from './keras-def.js';
import { kerasWeightedConfig } from './keras-export-def.js';
import { kernelAndBias, noEpilogue, weightedLayerAttrs } from './linear.js';
import { gradientOnly, onnxInt, onnxInts } from './onnx-def.js';
import { permute } from './onnx-util.js';
import { defineFamily, defineLayer, defineOp, dim, expectRank, ShapeError, type NamedOpDef, type OpDef } from './op-def.js';

const Int = Type.Integer({ minimum: 1 });
const window1d = { strides: Int, padding: Padding, dilation_rate: Int, groups: Int };

interface Window1d {
  readonly strides: number;
  readonly padding: string;
  readonly dilation_rate: number;
  readonly groups: number;
}

/** The 2-D window of a 1-D one: height 1. */
const window2d = (a: Window1d) => ({ strides: [1, a.strides], padding: a.padding, dilation_rate: [1, a.dilation_rate], groups: a.groups });

/** A 1-D operand as its 2-D counterpart sees it: a kernel gains a leading 1, a batched [N, L, C] a 1 after N. */
function upType(t: TensorType, role: string): TensorType {
  if (role === 'kernel') return tensor([1, ...t.shape]);
  return t.shape.length === 3 ? tensor([t.shape[0]!, 1, ...t.shape.slice(1)]) : t;
}
function upTensor(t: Tensor, role: string): Tensor {
  if (role === 'kernel') return { shape: [1, ...t.shape], data: t.data };
  return t.shape.length === 3 ? { shape: [t.shape[0]!, 1, ...t.shape.slice(1)], data: t.data } : t;
}
/** The 2-D result back in 1-D: a kernel loses its leading 1, a batched value the 1 after N. */
const drop = <T>(shape: readonly T[], kernel: boolean): T[] => (kernel ? shape.slice(1) : [shape[0]!, ...shape.slice(2)]);

/**
 * A 1-D op as a view of `base`: type rule, reference and kernel template are
 * `base`'s on the 2-D views of the operands (roles from `roles`) and attributes.
 */
function viewOp<const N extends string, P extends TProperties>(
  def: Omit<OpDef<P>, 'infer' | 'reference' | 'emit' | 'operands'> & { readonly name: N },
  base: OpDef,
  roles: readonly string[],
  attrs2d: (a: Static<TObject<P>>) => Attrs,
  kernelResult = false,
  check?: (operands: readonly TensorType[], a: Static<TObject<P>>) => void,
): NamedOpDef<N> {
  const rolesOf = (n: number) => roles.slice(0, n).map((r) => r.replace(/\?$/, ''));
  const ups = (ts: readonly TensorType[]) => ts.map((t, i) => upType(t, rolesOf(ts.length)[i]!));
  return defineOp<N, P>({
    ...def,
    operands: () => roles,
    infer: (operands, a) => {
      expectRank(operands[0]!, 3, def.name);
      check?.(operands, a);
      return tensor(drop(base.infer(ups(operands), attrs2d(a) as never).shape, kernelResult));
    },
    reference: (inputs, a) => {
      const y = base.reference(inputs.map((t, i) => upTensor(t, rolesOf(inputs.length)[i]!)), attrs2d(a) as never);
      return { shape: drop(y.shape, kernelResult), data: y.data };
    },
    emit: ({ operands, result, attrs }) =>
      base.emit({ operands: ups(operands), result: upType(result, kernelResult ? 'kernel' : 'y'), attrs: attrs2d(attrs) as never }),
  } as OpDef<P> & { readonly name: N });
}

const base = (name: string) => [conv2dOp, ...convGradOps].find((o) => o.name === name)! as unknown as OpDef;


export const conv1dOp = viewOp(
  {
    name: 'conv1d',
    summary: 'grouped, dilated 1-D convolution (cross-correlation) over [N, steps, channels]',
    traits: ['pure', 'linear-in-weights'],
    attrs: { ...window1d, ...epilogueAttr },
    // conv2d's facts on the views: [k, C/G, F] is indexed as [1, k, C/G, F].
    linear: {
      layout: (shape, a) => conv2dOp.linear!.layout([1, ...shape], window2d(a) as never),
      foldBefore: (operands, a) => conv2dOp.linear!.foldBefore(operands.map((t, i) => upType(t, ['x', 'kernel', 'bias'][i]!)), window2d(a) as never),
    },
    epilogue: { fuses: 'all' },
    examples: [
  { note: 'same padding, stride 2, 2 groups', attrs: { strides: 2, padding: 'same', dilation_rate: 1, groups: 2 }, operands: [tensor(['N', 7, 4]), tensor([3, 2, 6]), tensor([6])] },
  { note: 'valid, dilation 2, no bias', attrs: { strides: 1, padding: 'valid', dilation_rate: 2, groups: 1 }, operands: [tensor(['N', 8, 3]), tensor([3, 3, 4])] },
  { note: 'relu epilogue', attrs: { strides: 1, padding: 'same', dilation_rate: 1, groups: 1, epilogue: { op: 'relu' } }, operands: [tensor(['N', 5, 2]), tensor([2, 2, 3]), tensor([3])] },
],
    // Conv over [N, C, L]: x transposed, kernel [k, C/G, F] -> [F, C/G, k], the result transposed back.
    onnx: (b, n) => {
      const [x, kernel, bias] = n.operands;
      const [k] = b.typeOf(kernel!).shape as number[];
      const [before, after] = pads1d(b.typeOf(x!), dim(n.type, 1), k!, n.attrs);
      const w = b.param(kernel!, 'ocl', (shape, value) => ({ dims: [shape[2]!, shape[1]!, shape[0]!], data: permute(value, shape, [2, 1, 0]) }));
      const input = b.temp('Transpose', [b.nhwc(x!)], [onnxInts('perm', [0, 2, 1])]);
      const attrs = [onnxInts('kernel_shape', [k!]), onnxInts('strides', [n.attrs.strides]), onnxInts('dilations', [n.attrs.dilation_rate]),
        onnxInt('group', n.attrs.groups), onnxInts('pads', [before!, after!])];
      const conv = b.temp('Conv', bias === undefined ? [input, w] : [input, w, b.param(bias)], attrs);
      b.produce(n, 'nhwc', (out) => b.emit('Transpose', [conv], [out], [onnxInts('perm', [0, 2, 1])]));
    },
    // conv2d's rule seen in 1-D: dx a transposed conv of dy, dk x correlated with dy, db dy summed per filter.
    grad: (g, { operands: [x, k, b], attrs: a, result }, dy) => {
      noEpilogue('conv1d', result, a.epilogue);
      const w = { strides: a.strides, padding: a.padding, dilation_rate: a.dilation_rate, groups: a.groups };
      return [
        () => g.op('conv1d_grad_input', [dy, k!], { ...w, input_shape: exampleShape(g.typeOf(x!)) }),
        () => g.op('conv1d_grad_kernel', [x!, dy], { ...w, kernel_size: g.typeOf(k!).shape[0] as number }),
        b === undefined ? undefined : () => g.op('channel_sum', [dy], { axis: 2 }),
      ];
    },
  },
  base('conv2d'),
  ['x', 'kernel', 'bias?'],
  (a) => ({ ...window2d(a), ...(a.epilogue ? { epilogue: a.epilogue } : {}) }),
  false,
  ([x, kernel], a) => checkSteps(dim(x!, 1), kernel!.shape[0] as number, a),
);

/** The 2-D rule would name the [1, L] view; say it in steps. */
function checkSteps(steps: number, k: number, a: Window1d): void {
  const out = convOutputLength(steps, k, a.strides, a.padding as Padding, a.dilation_rate);
  if (out < 1) {
    const span = a.dilation_rate > 1 ? ` (dilation ${a.dilation_rate}: ${(k - 1) * a.dilation_rate + 1} steps)` : '';
    throw new ShapeError(`an input of ${steps} steps is too short for kernel_size ${k}${span}: the output would have ${out} steps`);
  }
}

/** ONNX pads [before, after] along the steps: before where conv2d's kernels start the window (TF 'same'), after so ONNX gets `out` steps. */
function pads1d(x: TensorType, out: number, k: number, a: Window1d): [number, number] {
  const before = windowAxis(dim(x, 1), k, a.strides, a.padding as Padding, a.dilation_rate).before;
  const extent = (out - 1) * a.strides + (k - 1) * a.dilation_rate + 1;
  return [before, Math.max(extent - dim(x, 1) - before, 0)];
}

export const conv1dGradInputOp = viewOp(
  {
    name: 'conv1d_grad_input',
    summary: 'the gradient of conv1d with respect to its input: the transposed conv of dy',
    traits: ['pure'],
    attrs: { ...window1d, input_shape: Type.Array(Int, { minItems: 2, maxItems: 2 }) },
    examples: [
      { attrs: { strides: 2, padding: 'same', dilation_rate: 1, groups: 2, input_shape: [7, 4] }, operands: [tensor(['N', 4, 6]), tensor([3, 2, 6])] },
      { attrs: { strides: 1, padding: 'valid', dilation_rate: 2, groups: 1, input_shape: [8, 3] }, operands: [tensor(['N', 4, 4]), tensor([3, 3, 4])] },
    ],
    onnx: gradientOnly,
    grad: 'none',
  },
  base('conv2d_grad_input'),
  ['dy', 'kernel'],
  (a) => ({ ...window2d(a), input_shape: [1, ...a.input_shape] }),
);

export const conv1dGradKernelOp = viewOp(
  {
    name: 'conv1d_grad_kernel',
    summary: 'the gradient of conv1d with respect to its kernel: x correlated with dy',
    traits: ['pure'],
    attrs: { ...window1d, kernel_size: Int },
    examples: [
      { attrs: { strides: 2, padding: 'same', dilation_rate: 1, groups: 2, kernel_size: 3 }, operands: [tensor(['N', 7, 4]), tensor(['N', 4, 6])] },
      { attrs: { strides: 1, padding: 'valid', dilation_rate: 2, groups: 1, kernel_size: 3 }, operands: [tensor(['N', 8, 3]), tensor(['N', 4, 4])] },
    ],
    onnx: gradientOnly,
    grad: 'none',
  },
  base('conv2d_grad_kernel'),
  ['x', 'dy'],
  (a) => ({ ...window2d(a), kernel_size: [1, a.kernel_size] }),
  true,
);

/** An int, or Keras 3's list of one (`kernel_size: [3]`), >= 1; undefined when absent. */
export function kerasInt1(c: KerasConfig, key: string): number | undefined {
  const v = c.get(key);
  if (v === undefined || v === null) return undefined;
  const n = Array.isArray(v) && v.length === 1 ? v[0] : v;
  if (!Number.isInteger(n) || (n as number) < 1) c.fail(key, `${key} must be an integer >= 1 or a list of one, got ${show(v)}`);
  return n as number;
}

const Padding1d = Type.Union([Type.Literal('valid'), Type.Literal('same'), Type.Literal('causal')], { default: 'valid' });

export const conv1dLayer = defineLayer({
  type: 'conv1d',
  keras: 'Conv1D',
  kerasImport: {
    classes: ['Conv1D', 'Convolution1D'],
    fromConfig: (c) => {
      c.set('filters', c.int('filters'));
      c.set('kernel_size', kerasInt1(c, 'kernel_size'));
      c.set('strides', kerasInt1(c, 'strides'));
      const padding = c.get('padding') ?? 'valid';
      if (padding !== 'valid' && padding !== 'same' && padding !== 'causal') c.fail('padding', `padding must be 'valid', 'same' or 'causal', got ${show(padding)}`);
      c.set('padding', padding);
      c.dataFormat();
      c.set('dilation_rate', kerasInt1(c, 'dilation_rate'));
      c.set('groups', c.optional('groups', (k) => c.int(k)));
      kerasWeighted(c, 'kernel_initializer');
    },
  },
  kerasExport: (a) => ({
    className: 'Conv1D',
    config: {
      filters: a.filters, kernel_size: [a.kernel_size], strides: [a.strides], padding: a.padding, data_format: 'channels_last',
      dilation_rate: [a.dilation_rate], groups: a.groups, ...kerasWeightedConfig(a, 'kernel_initializer'),
    },
  }),
  examples: [
    { attrs: { filters: 4, kernel_size: 3, strides: 2, padding: 'same', activation: 'relu' }, inputs: [[7, 2]] },
    { attrs: { filters: 4, kernel_size: 2, dilation_rate: 2, groups: 2, use_bias: false }, inputs: [[9, 4]] },
    { attrs: { filters: 3, kernel_size: 3, padding: 'causal', dilation_rate: 2 }, inputs: [[6, 2]] },
  ],
  namePrefix: 'conv1d',
  summary: '1-D convolution',
  attrs: {
    filters: Int,
    kernel_size: Int,
    strides: Type.Integer({ minimum: 1, default: 1 }),
    padding: Padding1d,
    dilation_rate: Type.Integer({ minimum: 1, default: 1 }),
    groups: Type.Integer({ minimum: 1, default: 1 }),
    ...weightedLayerAttrs,
  },
  positional: ['filters', 'kernel_size'],
  arity: [1, 1],
  lower: (ctx, [input], a) => {
    const t = ctx.typeOf(input!);
    expectRank(t, 3, 'conv1d');
    const [steps, channels] = [dim(t, 1), dim(t, 2)];
    if (channels % a.groups !== 0) throw new ShapeError(`groups=${a.groups} must divide the input channels (${channels})`);
    if (a.strides > 1 && a.dilation_rate > 1) throw new ShapeError('strides > 1 cannot be combined with dilation_rate > 1 (as in Keras)');
    let x = input!;
    if (a.padding === 'causal') {
      // Keras: pad d*(k-1) zero steps at the start, then a valid conv; the pad is zero_pad2d on the [1, L, C] view.
      const pad = a.dilation_rate * (a.kernel_size - 1);
      const rows = ctx.op('reshape', [x], { shape: [1, steps, channels] }, 'causal/rows');
      const padded = ctx.op('zero_pad2d', [rows], { padding: [0, 0, pad, 0] }, 'causal/pad');
      x = ctx.op('reshape', [padded], { shape: [steps + pad, channels] }, 'causal/steps');
    }
    const params = kernelAndBias(ctx, [a.kernel_size, channels / a.groups, a.filters], a.filters, a);
    const attrs = { strides: a.strides, padding: a.padding === 'same' ? 'same' : 'valid', dilation_rate: a.dilation_rate, groups: a.groups };
    return withActivation(ctx, 'conv1d', [x, ...params], attrs, a.activation as ActivationName | undefined);
  },
});

/** conv1d, its gradient ops and the Conv1D layer. */
export const conv1dFamily = defineFamily({ ops: [conv1dOp, conv1dGradInputOp, conv1dGradKernelOp], layers: [conv1dLayer] });
